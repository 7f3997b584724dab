// The same generated school, loaded into every supported back end, must give
// the planner exactly the same desired state.
#include <algorithm>
#include <tuple>

#include <gtest/gtest.h>

#include "config/config.h"
#include "schoolgen/schoolgen.h"
#include "sources/source.h"
#include "support/pg_server.h"
#include "sync/desired.h"

namespace enrolsync::testing {
namespace {

using testsupport::TempDir;

using CourseKey = std::tuple<std::string, std::string, std::string, std::string>;
using EnrolKey = std::tuple<std::string, std::string, std::string>;

struct Normalized {
  std::vector<CourseKey> courses;
  std::vector<EnrolKey> enrolments;
};

config::Config BaseConfig() {
  config::Config c;
  c.courses.enabled = true;
  c.courses.table = "VwMoodleCourseData";
  c.courses.fullname = "txtFullName";
  c.courses.shortname = "txtShortName";
  c.courses.idnumber = "txtCourseID";
  c.courses.category = "intCategoryID";
  c.enrolments.table = "VwMoodleEnrolData";
  c.enrolments.course_field = "txtSetCode";
  c.enrolments.user_field = "txtEmailAddress";
  c.enrolments.role_field = "intRoleID";
  return c;
}

Result<Normalized> Read(const sources::SourceSettings& s) {
  auto cfg = BaseConfig();
  cfg.source = s;
  auto src = sources::OpenSource(s);
  if (!src) return Fail(src.error());
  auto d = sync::ReadDesired(**src, cfg);
  if (!d) return Fail(d.error());
  Normalized n;
  for (const auto& c : d->courses) n.courses.emplace_back(c.fullname, c.shortname, c.idnumber, c.category.value_or("<none>"));
  for (const auto& e : d->enrolments) n.enrolments.emplace_back(e.course, e.user, e.role.value_or("<none>"));
  // Views have no ORDER BY: back ends may return rows in any order.
  std::sort(n.courses.begin(), n.courses.end());
  std::sort(n.enrolments.begin(), n.enrolments.end());
  return n;
}

TEST(SourcesIdentityTest, EveryBackEndGivesTheSameDesiredStateForTheSameSchool) {
  schoolgen::School school = schoolgen::Generate({});
  TempDir dir;
  ASSERT_TRUE(schoolgen::WriteSqlite(school, dir.File("school.db")));
  ASSERT_TRUE(schoolgen::WriteCsv(school, dir.File("csv")));
  auto pg = testsupport::SharedPgServer();
  ASSERT_TRUE(pg) << pg.error().message;
  auto st = (*pg)->Exec(schoolgen::PostgresScript(school));
  ASSERT_TRUE(st) << st.error().message;

  sources::SourceSettings sqlite{"sqlite", dir.File("school.db"), "", ""};
  sources::SourceSettings csv{"csv", dir.File("csv"), "", ""};
  sources::SourceSettings postgresql{"postgresql", "", (*pg)->conninfo(), (*pg)->password()};
  sources::SourceSettings odbc_sqlite{"odbc", "", testsupport::OdbcSqliteConnectionString(dir.File("school.db")), ""};
  sources::SourceSettings odbc_pg{"odbc", "", testsupport::OdbcPostgresqlConnectionString(**pg), (*pg)->password()};

  auto reference = Read(sqlite);
  ASSERT_TRUE(reference) << reference.error().message;
  ASSERT_GT(reference->enrolments.size(), 1000u);
  ASSERT_EQ(reference->courses.size(), school.course_view.size());
  // The school has one NULL category; it must read as "no category" everywhere.
  EXPECT_EQ(std::count_if(reference->courses.begin(), reference->courses.end(),
                          [](const CourseKey& c) { return std::get<3>(c) == "<none>"; }),
            1);

  for (const auto& [name, settings] : std::vector<std::pair<std::string, sources::SourceSettings>>{
           {"csv", csv}, {"postgresql", postgresql}, {"odbc->sqlite3", odbc_sqlite}, {"odbc->postgresql", odbc_pg}}) {
    SCOPED_TRACE(name);
    auto got = Read(settings);
    ASSERT_TRUE(got) << got.error().message;
    EXPECT_EQ(got->courses, reference->courses);
    EXPECT_EQ(got->enrolments, reference->enrolments);
  }
}

}  // namespace
}  // namespace enrolsync::testing
