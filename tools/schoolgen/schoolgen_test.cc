#include "schoolgen/schoolgen.h"

#include <sqlite3.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <tuple>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace enrolsync::schoolgen {
namespace {

namespace fs = std::filesystem;

fs::path FreshDir(const std::string& name) {
  fs::path dir = fs::path(::testing::TempDir()) / ("schoolgen_test_" + name);
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

std::string SubjectOf(const CourseViewRow& row) {
  return row.fullname.substr(0, row.fullname.find(" - "));
}

bool IsStaffArea(const std::string& code) { return code.rfind("Stf/", 0) == 0; }

std::set<std::string> Emails(const School& s, bool staff) {
  std::set<std::string> out;
  for (const Person& p : s.people)
    if (p.staff == staff) out.insert(p.email);
  return out;
}

// The subject -> department mapping of the recorded school (staff areas).
const std::map<std::string, std::string>& Departments() {
  static const std::map<std::string, std::string> kMap = {
      {"Mathematics", "Mathematics"}, {"English", "English"},   {"Science", "Science"},
      {"Biology", "Science"},         {"Chemistry", "Science"}, {"Physics", "Science"},
      {"Computer Science", "Computing"}, {"Art", "Art"},        {"Design & Technology", "DT"},
      {"Drama", "Drama"},             {"Music", "Music"},       {"History", "History"},
      {"Geography", "Geography"},     {"Religious Studies", "RS"}, {"Economics", "Economics"},
      {"French", "MFL"},              {"German", "MFL"},        {"Spanish", "MFL"},
      {"Latin", "Classics"},
  };
  return kMap;
}

// Minimal RFC 4180 reader: quoted fields, doubled quotes, CRLF or LF.
std::vector<std::vector<std::string>> ReadCsv(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string text = ss.str();
  std::vector<std::vector<std::string>> rows;
  std::vector<std::string> row;
  std::string field;
  bool quoted = false, any = false;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (quoted) {
      if (c == '"' && i + 1 < text.size() && text[i + 1] == '"') {
        field += '"';
        ++i;
      } else if (c == '"') {
        quoted = false;
      } else {
        field += c;
      }
    } else if (c == '"') {
      quoted = true;
      any = true;
    } else if (c == ',') {
      row.push_back(field);
      field.clear();
      any = true;
    } else if (c == '\r' || c == '\n') {
      if (c == '\r' && i + 1 < text.size() && text[i + 1] == '\n') ++i;
      row.push_back(field);
      rows.push_back(row);
      row.clear();
      field.clear();
      any = false;
    } else {
      field += c;
      any = true;
    }
  }
  if (any) {
    row.push_back(field);
    rows.push_back(row);
  }
  return rows;
}

TEST(SchoolGen, SameSeedGivesIdenticalSchool) {
  const Options o;
  const School a = Generate(o), b = Generate(o);
  ASSERT_EQ(a.people.size(), b.people.size());
  for (std::size_t i = 0; i < a.people.size(); ++i) {
    const Person &x = a.people[i], &y = b.people[i];
    EXPECT_EQ(std::tie(x.username, x.firstname, x.lastname, x.email, x.idnumber, x.staff),
              std::tie(y.username, y.firstname, y.lastname, y.email, y.idnumber, y.staff));
  }
  ASSERT_EQ(a.course_view.size(), b.course_view.size());
  for (std::size_t i = 0; i < a.course_view.size(); ++i) {
    const CourseViewRow &x = a.course_view[i], &y = b.course_view[i];
    EXPECT_EQ(std::tie(x.fullname, x.shortname, x.idnumber, x.category),
              std::tie(y.fullname, y.shortname, y.idnumber, y.category));
  }
  ASSERT_EQ(a.enrol_view.size(), b.enrol_view.size());
  for (std::size_t i = 0; i < a.enrol_view.size(); ++i) {
    const EnrolViewRow &x = a.enrol_view[i], &y = b.enrol_view[i];
    EXPECT_EQ(std::tie(x.set_code, x.email, x.role_id), std::tie(y.set_code, y.email, y.role_id));
  }
  EXPECT_EQ(a.table_ddl, b.table_ddl);
  EXPECT_EQ(a.inserts, b.inserts);
  EXPECT_EQ(a.categories, b.categories);
  EXPECT_EQ(PostgresScript(a), PostgresScript(b));

  // Byte for byte on disk too.
  const fs::path d1 = FreshDir("same1"), d2 = FreshDir("same2");
  ASSERT_TRUE(WriteCsv(a, d1.string()));
  ASSERT_TRUE(WriteCsv(b, d2.string()));
  for (const char* f : {"VwMoodleCourseData.csv", "VwMoodleEnrolData.csv", "users.csv",
                        "categories.csv"}) {
    std::ifstream i1(d1 / f, std::ios::binary), i2(d2 / f, std::ios::binary);
    std::stringstream s1, s2;
    s1 << i1.rdbuf();
    s2 << i2.rdbuf();
    EXPECT_EQ(s1.str(), s2.str()) << f;
    EXPECT_FALSE(s1.str().empty()) << f;
  }

  // Another seed gives another school of the same shape.
  Options other = o;
  other.seed = o.seed + 1;
  const School c = Generate(other);
  EXPECT_NE(PostgresScript(a), PostgresScript(c));
  EXPECT_EQ(a.people.size(), c.people.size());
}

TEST(SchoolGen, SqliteViewsReturnExactlyTheGeneratedRows) {
  const School school = Generate(Options{});
  const fs::path db_path = FreshDir("sqlite") / "school.db";
  // Written twice: the second write replaces the first file.
  ASSERT_TRUE(WriteSqlite(school, db_path.string()));
  const auto st = WriteSqlite(school, db_path.string());
  ASSERT_TRUE(st) << st.error().message;

  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open_v2(db_path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr), SQLITE_OK);
  auto text = [](sqlite3_stmt* s, int col) {
    const unsigned char* t = sqlite3_column_text(s, col);
    return t ? std::string(reinterpret_cast<const char*>(t)) : std::string();
  };

  sqlite3_stmt* stmt = nullptr;
  ASSERT_EQ(sqlite3_prepare_v2(db,
                               "SELECT txtFullName, txtShortName, txtCourseID, intCategoryID "
                               "FROM VwMoodleCourseData ORDER BY txtCourseID",
                               -1, &stmt, nullptr),
            SQLITE_OK)
      << sqlite3_errmsg(db);
  std::size_t i = 0;
  while (sqlite3_step(stmt) == SQLITE_ROW) {
    ASSERT_LT(i, school.course_view.size());
    const CourseViewRow& want = school.course_view[i++];
    EXPECT_EQ(text(stmt, 0), want.fullname);
    EXPECT_EQ(text(stmt, 1), want.shortname);
    EXPECT_EQ(text(stmt, 2), want.idnumber);
    if (want.category.empty()) {
      EXPECT_EQ(sqlite3_column_type(stmt, 3), SQLITE_NULL) << want.idnumber;
    } else {
      EXPECT_EQ(sqlite3_column_type(stmt, 3), SQLITE_INTEGER) << want.idnumber;
      EXPECT_EQ(text(stmt, 3), want.category);
    }
  }
  EXPECT_EQ(i, school.course_view.size());
  sqlite3_finalize(stmt);

  ASSERT_EQ(sqlite3_prepare_v2(db,
                               "SELECT txtSetCode, txtEmailAddress, intRoleID "
                               "FROM VwMoodleEnrolData ORDER BY 1, 2, 3",
                               -1, &stmt, nullptr),
            SQLITE_OK)
      << sqlite3_errmsg(db);
  i = 0;
  while (sqlite3_step(stmt) == SQLITE_ROW) {
    ASSERT_LT(i, school.enrol_view.size());
    const EnrolViewRow& want = school.enrol_view[i++];
    ASSERT_EQ(text(stmt, 0), want.set_code) << "row " << i;
    ASSERT_EQ(text(stmt, 1), want.email) << "row " << i;
    ASSERT_EQ(sqlite3_column_int(stmt, 2), want.role_id) << "row " << i;
  }
  EXPECT_EQ(i, school.enrol_view.size());
  sqlite3_finalize(stmt);
  sqlite3_close(db);
}

TEST(SchoolGen, SetCodesHaveIsamsShapes) {
  const std::regex numbered(R"((7|8|9|10|11|12|13)/[A-Z][A-Za-z][0-9]+)");  // 7/Ma2 10/AX1
  const std::regex by_teacher(R"(9/[EM]/[A-Z]{2,3}[0-9]*)");                // 9/E/TT 9/M/RCA2
  const std::regex option_block(R"(1[23]/[A-E]/[A-Z]{2,3}[0-9]*)");          // 12/B/TH
  const std::regex staff_area(R"(Stf/[A-Za-z]+)");                           // Stf/Mathematics
  for (const Options& o : {Options{}, Options{800, 90, 7}}) {
    const School s = Generate(o);
    std::map<std::string, int> shapes;
    std::set<std::string> codes;
    for (const CourseViewRow& r : s.course_view) {
      EXPECT_TRUE(codes.insert(r.idnumber).second) << "duplicate " << r.idnumber;
      EXPECT_EQ(r.fullname, r.shortname);
      if (std::regex_match(r.idnumber, staff_area)) {
        ++shapes["staff"];
        const std::string dept = r.idnumber.substr(4);
        EXPECT_EQ(r.fullname, dept + " Staff Area - Stf/" + dept);
        continue;
      }
      EXPECT_EQ(r.fullname, SubjectOf(r) + " - " + r.idnumber);
      if (std::regex_match(r.idnumber, numbered)) ++shapes["numbered"];
      else if (std::regex_match(r.idnumber, by_teacher)) ++shapes["teacher"];
      else if (std::regex_match(r.idnumber, option_block)) ++shapes["block"];
      else ADD_FAILURE() << "unexpected set code " << r.idnumber;
    }
    EXPECT_EQ(shapes["staff"], 14);
    EXPECT_GE(shapes["teacher"], 2);
    EXPECT_GE(shapes["block"], 4);
    EXPECT_GT(shapes["numbered"], shapes["block"]);
    for (const char* must : {"7/Ma1", "10/AX1", "11/CR1", "13/EP1", "Stf/Mathematics", "Stf/MFL"})
      EXPECT_TRUE(codes.count(must)) << must;
  }
  // In the full-size school two Year 9 teachers' sets share a code stem.
  const School big = Generate(Options{800, 90, 20261125});
  bool suffixed = false;
  for (const CourseViewRow& r : big.course_view)
    suffixed |= std::regex_match(r.idnumber, std::regex(R"((9/[EM]|1[23]/[A-E])/[A-Z]+[2-9])"));
  EXPECT_TRUE(suffixed);
}

TEST(SchoolGen, NamesIncludeAccentsAndApostrophes) {
  const School s = Generate(Options{});
  std::set<std::string> first, last, usernames, emails;
  for (const Person& p : s.people) {
    first.insert(p.firstname);
    last.insert(p.lastname);
    EXPECT_TRUE(usernames.insert(p.username).second) << "duplicate username " << p.username;
    EXPECT_TRUE(emails.insert(p.email).second) << "duplicate email " << p.email;
    EXPECT_TRUE(std::regex_match(p.username, std::regex("[a-z0-9]+"))) << p.username;
    EXPECT_TRUE(std::regex_match(p.email, std::regex(R"([a-z]+\.[a-z]+[0-9]*@school\.test)")))
        << p.email;
    if (!p.staff) {
      EXPECT_TRUE(std::regex_match(p.username, std::regex("(2[0-6])[a-z]+[0-9]*"))) << p.username;
    }
  }
  for (const char* f : {"Zoë", "Renée", "Siân"}) EXPECT_TRUE(first.count(f)) << f;
  for (const char* l : {"O'Brien", "D'Souza", "Núñez", "Ørsted"}) EXPECT_TRUE(last.count(l)) << l;
  EXPECT_TRUE(usernames.count("25younge"));
  EXPECT_TRUE(usernames.count("26obrienz"));
  EXPECT_TRUE(emails.count("zoe.obrien@school.test"));
  EXPECT_TRUE(emails.count("soren.orsted@school.test"));
}

TEST(SchoolGen, ExactlyOneNullAndOneUnknownCategory) {
  for (const Options& o : {Options{}, Options{800, 90, 3}}) {
    const School s = Generate(o);
    std::set<std::string> known;
    for (const auto& [id, name] : s.categories) known.insert(std::to_string(id));
    int nulls = 0, unknown = 0;
    for (const CourseViewRow& r : s.course_view) {
      if (r.category.empty()) {
        ++nulls;
      } else if (!known.count(r.category)) {
        ++unknown;
        EXPECT_EQ(r.category, "999");
        EXPECT_EQ(r.fullname, "Careers - 11/CR1");
      }
    }
    EXPECT_EQ(nulls, 1);
    EXPECT_EQ(unknown, 1);
  }
  // The category list is what a fresh Moodle gives when created in order.
  const School s = Generate(Options{});
  ASSERT_FALSE(s.categories.empty());
  for (std::size_t i = 0; i < s.categories.size(); ++i)
    EXPECT_EQ(s.categories[i].first, static_cast<int>(i) + 2);
}

TEST(SchoolGen, EveryEnrolledEmailBelongsToAPerson) {
  const School s = Generate(Options{});
  const std::set<std::string> pupils = Emails(s, false), staff = Emails(s, true);
  std::set<std::string> courses;
  for (const CourseViewRow& r : s.course_view) courses.insert(r.idnumber);
  std::set<std::tuple<std::string, std::string, int>> seen;
  std::set<std::string> enrolled_pupils;
  for (const EnrolViewRow& r : s.enrol_view) {
    EXPECT_TRUE(courses.count(r.set_code)) << r.set_code;
    EXPECT_TRUE(seen.insert({r.set_code, r.email, r.role_id}).second)
        << "duplicate " << r.set_code << " " << r.email;
    if (r.role_id == 5) {
      EXPECT_TRUE(pupils.count(r.email)) << r.email;
      enrolled_pupils.insert(r.email);
    } else {
      EXPECT_EQ(r.role_id, 3);
      EXPECT_TRUE(staff.count(r.email)) << r.email;
    }
  }
  EXPECT_EQ(enrolled_pupils, pupils);  // every pupil is in some set
  // Ordered by set code, email, role.
  EXPECT_TRUE(std::is_sorted(s.enrol_view.begin(), s.enrol_view.end(),
                             [](const EnrolViewRow& a, const EnrolViewRow& b) {
                               return std::tie(a.set_code, a.email, a.role_id) <
                                      std::tie(b.set_code, b.email, b.role_id);
                             }));
}

TEST(SchoolGen, StaffAreasEnrolDepartmentStaffAsTeachers) {
  const School s = Generate(Options{});
  const std::set<std::string> staff = Emails(s, true);
  std::map<std::string, std::string> subject_of;  // set code -> subject
  for (const CourseViewRow& r : s.course_view) subject_of[r.idnumber] = SubjectOf(r);

  std::set<std::pair<std::string, std::string>> expected, actual;  // (Stf/dept, email)
  for (const EnrolViewRow& r : s.enrol_view) {
    if (IsStaffArea(r.set_code)) {
      EXPECT_EQ(r.role_id, 3) << r.set_code << " " << r.email;
      EXPECT_TRUE(staff.count(r.email)) << r.email;
      actual.insert({r.set_code, r.email});
    } else if (r.role_id == 3) {
      auto d = Departments().find(subject_of[r.set_code]);
      if (d != Departments().end()) expected.insert({"Stf/" + d->second, r.email});
    }
  }
  EXPECT_EQ(actual, expected);
  // Every department has a staff area with somebody in it; most staff are in one.
  std::map<std::string, int> per_area;
  std::set<std::string> in_area;
  for (const auto& [area, email] : actual) {
    ++per_area[area];
    in_area.insert(email);
  }
  EXPECT_EQ(per_area.size(), 14u);
  EXPECT_GE(in_area.size() * 10, staff.size() * 9);
}

TEST(SchoolGen, ScalesTo800PupilsLikeTheRecordedSchool) {
  // The recorded school: 800 pupils, 90 staff, 458 sets (444 teaching sets
  // and 14 staff areas), 8,553 enrolment rows.
  for (unsigned seed : {20261125u, 1u, 2u}) {
    const School s = Generate(Options{800, 90, seed});
    int pupils = 0, staff = 0;
    for (const Person& p : s.people) (p.staff ? staff : pupils)++;
    EXPECT_EQ(pupils, 800);
    EXPECT_EQ(staff, 90);
    int areas = 0;
    for (const CourseViewRow& r : s.course_view) areas += IsStaffArea(r.idnumber);
    EXPECT_EQ(areas, 14);
    EXPECT_NEAR(static_cast<double>(s.course_view.size()), 458.0, 458 * 0.03) << "seed " << seed;
    EXPECT_NEAR(static_cast<double>(s.enrol_view.size()), 8553.0, 8553 * 0.03) << "seed " << seed;
    int teachers = 0;
    for (const EnrolViewRow& r : s.enrol_view) teachers += r.role_id == 3;
    EXPECT_NEAR(teachers, 607, 60) << "seed " << seed;  // 606 recorded + 11/CR1's teacher
  }
  // The default sample is small.
  const School small = Generate(Options{});
  EXPECT_LT(small.course_view.size(), 120u);
  EXPECT_LT(small.enrol_view.size(), 1500u);
}

TEST(SchoolGen, CsvExportRoundTrips) {
  const School s = Generate(Options{});
  const fs::path dir = FreshDir("csv") / "nested";
  const auto st = WriteCsv(s, dir.string());
  ASSERT_TRUE(st) << st.error().message;

  auto courses = ReadCsv(dir / "VwMoodleCourseData.csv");
  ASSERT_EQ(courses.size(), s.course_view.size() + 1);
  EXPECT_EQ(courses[0], (std::vector<std::string>{"txtFullName", "txtShortName", "txtCourseID",
                                                  "intCategoryID"}));
  for (std::size_t i = 0; i < s.course_view.size(); ++i) {
    const CourseViewRow& r = s.course_view[i];
    EXPECT_EQ(courses[i + 1],
              (std::vector<std::string>{r.fullname, r.shortname, r.idnumber, r.category}));
  }

  auto enrols = ReadCsv(dir / "VwMoodleEnrolData.csv");
  ASSERT_EQ(enrols.size(), s.enrol_view.size() + 1);
  EXPECT_EQ(enrols[0], (std::vector<std::string>{"txtSetCode", "txtEmailAddress", "intRoleID"}));
  for (std::size_t i = 0; i < s.enrol_view.size(); ++i) {
    const EnrolViewRow& r = s.enrol_view[i];
    EXPECT_EQ(enrols[i + 1],
              (std::vector<std::string>{r.set_code, r.email, std::to_string(r.role_id)}));
  }

  auto users = ReadCsv(dir / "users.csv");
  ASSERT_EQ(users.size(), s.people.size() + 1);
  EXPECT_EQ(users[0], (std::vector<std::string>{"username", "firstname", "lastname", "email",
                                                "idnumber"}));
  for (std::size_t i = 0; i < s.people.size(); ++i) {
    const Person& p = s.people[i];
    EXPECT_EQ(users[i + 1],
              (std::vector<std::string>{p.username, p.firstname, p.lastname, p.email, p.idnumber}));
  }

  auto categories = ReadCsv(dir / "categories.csv");
  ASSERT_EQ(categories.size(), s.categories.size() + 1);
  EXPECT_EQ(categories[0], (std::vector<std::string>{"id", "name"}));
  for (std::size_t i = 0; i < s.categories.size(); ++i) {
    EXPECT_EQ(categories[i + 1], (std::vector<std::string>{std::to_string(s.categories[i].first),
                                                           s.categories[i].second}));
  }
}

// examples/sample-school holds the default school's CSV export; it must be
// what the generator writes now (regenerate with --csv examples/sample-school).
TEST(SchoolGen, BundledSampleMatchesTheGenerator) {
  const fs::path sample = fs::path(ENROLSYNC_SOURCE_DIR) / "examples" / "sample-school";
  const fs::path fresh = FreshDir("sample");
  ASSERT_TRUE(WriteCsv(Generate(Options{}), fresh.string()));
  for (const char* f : {"VwMoodleCourseData.csv", "VwMoodleEnrolData.csv", "users.csv",
                        "categories.csv"}) {
    ASSERT_TRUE(fs::exists(sample / f)) << (sample / f);
    std::ifstream a(sample / f, std::ios::binary), b(fresh / f, std::ios::binary);
    std::stringstream sa, sb;
    sa << a.rdbuf();
    sb << b.rdbuf();
    EXPECT_TRUE(sa.str() == sb.str())
        << f << " is stale: run enrolsync-gen-school --csv examples/sample-school";
  }
}

}  // namespace
}  // namespace enrolsync::schoolgen
