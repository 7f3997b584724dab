// Source-level behaviour, run against every back end: the same two tables in
// SQLite, PostgreSQL (a real server), ODBC->SQLite3, ODBC->PostgreSQL and CSV
// must read back as identical Table rows.
#include "sources/source.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "support/pg_server.h"

namespace enrolsync::sources {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;
using testsupport::TempDir;

// ---------------------------------------------------------------------------
// Fixture school: ~50 rows with NULL categories, accents, apostrophes,
// commas and quotes (to exercise CSV quoting).
// ---------------------------------------------------------------------------

const std::vector<std::string> kCourseColumns = {"txtCourseName", "txtSetCode", "txtIdNumber",
                                                 "txtCategory"};
const std::vector<std::string> kEnrolColumns = {"txtSetCode", "txtEmailAddress", "intRoleID"};

std::vector<SqlRow> FixtureCourses() {
  const char* subjects[] = {"Français", "Maths", "O'Brien's History", "Drama \"Studio\", Stage",
                            "Música", "Ελληνικά"};
  std::vector<SqlRow> rows;
  for (int i = 0; i < 12; ++i) {
    std::string year = std::to_string(7 + i % 5);
    std::string set = year + static_cast<char>('A' + i / 5) + "/" + std::to_string(i);
    SqlValue category;
    if (i % 3 != 0) category = "Year " + year;  // every third: NULL category
    rows.push_back({std::string(subjects[i % 6]) + " " + set, set, "crs-" + std::to_string(100 + i),
                    category});
  }
  return rows;
}

std::vector<SqlRow> FixtureEnrolments() {
  const char* people[] = {"zoe.obrien-nunez", "jose.garcia", "anne-marie.o'neill", "bjorn.larsen",
                          "chloe.dupont", "li.wei", "sean.ohara"};
  auto courses = FixtureCourses();
  std::vector<SqlRow> rows;
  for (int i = 0; i < 40; ++i) {
    const SqlValue& set = courses[i % courses.size()][1];
    std::string email = std::string(people[i % 7]) + "@example.org";
    rows.push_back({set, email, std::string(i % 9 == 0 ? "3" : "5")});
  }
  return rows;
}

std::string Literal(const SqlValue& v) {
  if (!v) return "NULL";
  std::string out = "'";
  for (char c : *v) {
    out += c;
    if (c == '\'') out += '\'';
  }
  return out + "'";
}

std::string FixtureSql() {
  std::string sql =
      "CREATE TABLE \"VwMoodleCourseData\" (\"txtCourseName\" varchar(200), \"txtSetCode\" "
      "varchar(50), \"txtIdNumber\" varchar(50), \"txtCategory\" varchar(100));"
      "CREATE TABLE \"VwMoodleEnrolData\" (\"txtSetCode\" varchar(50), \"txtEmailAddress\" "
      "varchar(200), \"intRoleID\" integer);";
  for (const auto& r : FixtureCourses()) {
    sql += "INSERT INTO \"VwMoodleCourseData\" VALUES (" + Literal(r[0]) + ", " + Literal(r[1]) +
           ", " + Literal(r[2]) + ", " + Literal(r[3]) + ");";
  }
  for (const auto& r : FixtureEnrolments()) {
    sql += "INSERT INTO \"VwMoodleEnrolData\" VALUES (" + Literal(r[0]) + ", " + Literal(r[1]) +
           ", " + *r[2] + ");";
  }
  return sql;
}

std::string CsvField(const SqlValue& v) {
  std::string s = v.value_or("");
  if (s.find_first_of(",\"\r\n") == std::string::npos) return s;
  std::string out = "\"";
  for (char c : s) {
    out += c;
    if (c == '"') out += '"';
  }
  return out + "\"";
}

std::string CsvText(const std::vector<std::string>& header, const std::vector<SqlRow>& rows) {
  std::string out = "\xEF\xBB\xBF";  // as Excel writes "CSV UTF-8"
  for (std::size_t i = 0; i < header.size(); ++i) out += (i ? "," : "") + header[i];
  out += "\r\n";
  for (const auto& r : rows) {
    for (std::size_t i = 0; i < r.size(); ++i) out += (i ? "," : "") + CsvField(r[i]);
    out += "\r\n";
  }
  return out;
}

// CSV cannot say NULL; callers treat "" and NULL alike.
std::vector<SqlRow> NullsAsEmpty(std::vector<SqlRow> rows) {
  for (auto& r : rows) {
    for (auto& v : r) {
      if (!v) v = "";
    }
  }
  return rows;
}

// ---------------------------------------------------------------------------

enum class Backend { kSqlite, kPostgresql, kOdbcSqlite, kOdbcPostgresql, kCsv };

std::string BackendName(Backend b) {
  switch (b) {
    case Backend::kSqlite: return "Sqlite";
    case Backend::kPostgresql: return "Postgresql";
    case Backend::kOdbcSqlite: return "OdbcSqlite3";
    case Backend::kOdbcPostgresql: return "OdbcPostgresql";
    case Backend::kCsv: return "Csv";
  }
  return "?";
}

void PrintTo(Backend b, std::ostream* os) { *os << BackendName(b); }

class EveryBackendTest : public ::testing::TestWithParam<Backend> {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir();
    auto ok = testsupport::ExecSqlite(dir_->File("school.db"), FixtureSql());
    ASSERT_TRUE(ok) << ok.error().message;
    ok = testsupport::WriteFile(dir_->File("VwMoodleCourseData.csv"),
                                CsvText(kCourseColumns, FixtureCourses()));
    ASSERT_TRUE(ok) << ok.error().message;
    ok = testsupport::WriteFile(dir_->File("VwMoodleEnrolData.csv"),
                                CsvText(kEnrolColumns, FixtureEnrolments()));
    ASSERT_TRUE(ok) << ok.error().message;
  }
  static void TearDownTestSuite() {
    delete dir_;
    dir_ = nullptr;
  }

  SourceSettings Settings() {
    switch (GetParam()) {
      case Backend::kSqlite: return {"sqlite", dir_->File("school.db"), "", ""};
      case Backend::kCsv: return {"csv", dir_->path(), "", ""};
      case Backend::kOdbcSqlite:
        return {"odbc", "", testsupport::OdbcSqliteConnectionString(dir_->File("school.db")), ""};
      case Backend::kPostgresql:
      case Backend::kOdbcPostgresql: break;
    }
    auto server = testsupport::SharedPgServer();
    EXPECT_TRUE(server) << server.error().message;
    if (!server) return {};
    static bool loaded = false;
    if (!loaded) {
      auto ok = (*server)->Exec(FixtureSql());
      EXPECT_TRUE(ok) << ok.error().message;
      loaded = true;
    }
    if (GetParam() == Backend::kPostgresql) {
      return {"postgresql", "", (*server)->conninfo(), (*server)->password()};
    }
    return {"odbc", "", testsupport::OdbcPostgresqlConnectionString(**server),
            (*server)->password()};
  }

  void SetUp() override {
    auto source = OpenSource(Settings());
    ASSERT_TRUE(source) << source.error().message;
    source_ = std::move(*source);
  }

  std::vector<SqlRow> Expected(std::vector<SqlRow> rows) {
    return GetParam() == Backend::kCsv ? NullsAsEmpty(std::move(rows)) : rows;
  }

  static TempDir* dir_;
  std::unique_ptr<Source> source_;
};
TempDir* EveryBackendTest::dir_ = nullptr;

TEST_P(EveryBackendTest, SameTablesGiveIdenticalRows) {
  auto courses = source_->ReadTable("VwMoodleCourseData", kCourseColumns);
  ASSERT_TRUE(courses) << courses.error().message;
  EXPECT_EQ(courses->columns, kCourseColumns);
  EXPECT_EQ(courses->rows, Expected(FixtureCourses()));

  auto enrol = source_->ReadTable("VwMoodleEnrolData", kEnrolColumns);
  ASSERT_TRUE(enrol) << enrol.error().message;
  EXPECT_EQ(enrol->rows, Expected(FixtureEnrolments()));
  ASSERT_EQ(enrol->row_numbers.size(), 40u);
  // SQL: 1..N in result order; CSV: the file line (header is line 1).
  std::size_t first = GetParam() == Backend::kCsv ? 2 : 1;
  EXPECT_EQ(enrol->row_numbers.front(), first);
  EXPECT_EQ(enrol->row_numbers.back(), first + 39);
}

TEST_P(EveryBackendTest, RequestedColumnsComeInRequestedOrder) {
  auto t = source_->ReadTable("VwMoodleEnrolData", {"intRoleID", "txtSetCode"});
  ASSERT_TRUE(t) << t.error().message;
  EXPECT_THAT(t->columns, ElementsAre("intRoleID", "txtSetCode"));
  ASSERT_FALSE(t->rows.empty());
  EXPECT_THAT(t->rows[0], ElementsAre(SqlValue("3"), FixtureEnrolments()[0][0]));
}

TEST_P(EveryBackendTest, ColumnNameCaseIsForgivenWhenUnambiguous) {
  auto t = source_->ReadTable("VwMoodleEnrolData", {"TXTSETCODE", "txtemailaddress"});
  ASSERT_TRUE(t) << t.error().message;
  EXPECT_THAT(t->columns, ElementsAre("TXTSETCODE", "txtemailaddress"));
  EXPECT_EQ(t->rows.size(), 40u);
}

TEST_P(EveryBackendTest, MissingColumnErrorNamesTableAndColumn) {
  auto t = source_->ReadTable("VwMoodleEnrolData", {"txtSetCode", "txtEmail"});
  ASSERT_FALSE(t);
  EXPECT_EQ(t.error().code, ErrorCode::kNotFound);
  const std::string& msg = t.error().message;
  EXPECT_THAT(msg, HasSubstr("source " + source_->Describe() + ": "));
  EXPECT_THAT(msg, HasSubstr("VwMoodleEnrolData"));
  EXPECT_THAT(msg, HasSubstr("has no column \"txtEmail\" (columns: txtSetCode, txtEmailAddress, intRoleID)"));
  if (GetParam() == Backend::kSqlite) {
    EXPECT_EQ(msg, "source sqlite " + dir_->File("school.db") +
                       ": table \"VwMoodleEnrolData\" has no column \"txtEmail\" (columns: "
                       "txtSetCode, txtEmailAddress, intRoleID)");
  }
}

TEST_P(EveryBackendTest, MissingTableErrorNamesTable) {
  auto t = source_->ReadTable("VwMoodleEnrolments", {"txtSetCode"});
  ASSERT_FALSE(t);
  EXPECT_EQ(t.error().code, ErrorCode::kNotFound) << t.error().message;
  EXPECT_THAT(t.error().message, HasSubstr("source " + source_->Describe() + ": "));
  EXPECT_THAT(t.error().message, HasSubstr("table \"VwMoodleEnrolments\" not found"));
}

TEST_P(EveryBackendTest, InvalidTableNameIsRejectedBeforeAnyQuery) {
  auto t = source_->ReadTable("x; DROP TABLE \"VwMoodleEnrolData\"", {"a"});
  ASSERT_FALSE(t);
  EXPECT_EQ(t.error().code, ErrorCode::kInvalidArgument);
  EXPECT_THAT(t.error().message, HasSubstr("';' is not allowed"));
  EXPECT_TRUE(source_->ReadTable("VwMoodleEnrolData", {"txtSetCode"}));
}

TEST_P(EveryBackendTest, InspectGivesColumnsCountAndSample) {
  auto i = source_->Inspect("VwMoodleCourseData", 3);
  ASSERT_TRUE(i) << i.error().message;
  EXPECT_EQ(i->columns, kCourseColumns);
  EXPECT_EQ(i->row_count, 12);
  auto expected = Expected(FixtureCourses());
  expected.resize(3);
  EXPECT_EQ(i->sample, expected);
  auto missing = source_->Inspect("nope", 3);
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code, ErrorCode::kNotFound);
}

TEST_P(EveryBackendTest, DescribeHasNoSecret) {
  std::string d = source_->Describe();
  EXPECT_FALSE(d.empty());
  if (GetParam() == Backend::kPostgresql || GetParam() == Backend::kOdbcPostgresql) {
    auto server = testsupport::SharedPgServer();
    ASSERT_TRUE(server);
    EXPECT_THAT(d, Not(HasSubstr((*server)->password())));
    EXPECT_THAT(d, HasSubstr("127.0.0.1"));
  }
}

INSTANTIATE_TEST_SUITE_P(Sources, EveryBackendTest,
                         ::testing::Values(Backend::kSqlite, Backend::kPostgresql,
                                           Backend::kOdbcSqlite, Backend::kOdbcPostgresql,
                                           Backend::kCsv),
                         [](const auto& info) { return BackendName(info.param); });

// ---------------------------------------------------------------------------

TEST(OpenSourceTest, UnknownTypeIsConfigError) {
  auto s = OpenSource({"mysql", "", "", ""});
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().code, ErrorCode::kConfig);
  EXPECT_THAT(s.error().message, HasSubstr("\"mysql\""));
}

TEST(OpenSourceTest, MissingSettingsAreConfigErrors) {
  EXPECT_EQ(OpenSource({"sqlite", "", "", ""}).error().code, ErrorCode::kConfig);
  EXPECT_EQ(OpenSource({"csv", "", "", ""}).error().code, ErrorCode::kConfig);
  EXPECT_EQ(OpenSource({"odbc", "", "", ""}).error().code, ErrorCode::kConfig);
}

TEST(OpenSourceTest, UnreadableSqliteFileIsAnError) {
  TempDir dir;
  ASSERT_TRUE(testsupport::WriteFile(dir.File("mis.db"), "not a database, just text\n"));
  auto s = OpenSource({"sqlite", dir.File("mis.db"), "", ""});
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().code, ErrorCode::kSource);
  EXPECT_THAT(s.error().message, HasSubstr(dir.File("mis.db")));
}

TEST(OpenSourceTest, WrongPasswordGivesClearErrorWithoutPassword) {
  auto server = testsupport::SharedPgServer();
  ASSERT_TRUE(server) << server.error().message;
  const std::string wrong = "N0t-The-Passw0rd";
  for (const SourceSettings& s :
       {SourceSettings{"postgresql", "", (*server)->conninfo(), wrong},
        SourceSettings{"odbc", "", testsupport::OdbcPostgresqlConnectionString(**server), wrong}}) {
    auto source = OpenSource(s);
    ASSERT_FALSE(source) << s.type;
    EXPECT_THAT(source.error().message, HasSubstr("password authentication failed")) << s.type;
    EXPECT_THAT(source.error().message, Not(HasSubstr(wrong))) << s.type;
  }
}

TEST(ValidateIdentifierTest, AcceptsNamesSchoolsUse) {
  for (const char* name : {"VwMoodleCourseData", "mis.Enrol", "txt_Set$Code", "Schüler Daten", "t1"}) {
    EXPECT_TRUE(ValidateIdentifier(name, "[courses] table")) << name;
  }
}

TEST(ValidateIdentifierTest, RejectsNamesThatCouldInjectOrBreakQuoting) {
  for (const char* name : {"", "a;b", "a\"b", "a'b", "a`b", "a.b.c", ".a", "a.", "a\nb", "a/b",
                           "a--b", " "}) {
    auto ok = ValidateIdentifier(name, "[courses] table");
    ASSERT_FALSE(ok) << name;
    EXPECT_EQ(ok.error().code, ErrorCode::kInvalidArgument);
    EXPECT_THAT(ok.error().message, HasSubstr("[courses] table")) << name;
  }
  EXPECT_FALSE(ValidateIdentifier("Sch\xFCler", "column"));  // Latin-1, not UTF-8
}

}  // namespace
}  // namespace enrolsync::sources
