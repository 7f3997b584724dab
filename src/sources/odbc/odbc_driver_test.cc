#include "sources/odbc/odbc_driver.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>

#include "sources/source.h"
#include "support/pg_server.h"

namespace enrolsync::sources {
namespace {

using ::testing::AnyOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;
using testsupport::PgServer;
using testsupport::SharedPgServer;
using testsupport::TempDir;

std::string LongText() {
  std::string s;
  for (int i = 0; i < 100000; ++i) s += static_cast<char>('A' + i % 26);
  return s;
}

// 100,000 characters, 2 and 3 bytes each, so chunk boundaries fall inside characters.
std::string LongAccentedText() {
  std::string s;
  for (int i = 0; i < 50000; ++i) s += (i % 2) ? "é" : "€";
  return s;
}

// Both ODBC back ends get the same tables; the tests run against each.
const char* kFixtureSql =
    "CREATE TABLE t (id bigint, name text, note text);"
    "INSERT INTO t VALUES (1, 'Zoë O''Brien-Núñez', NULL);"
    "INSERT INTO t VALUES (42, 'long', '%LONG%');"
    "INSERT INTO t VALUES (-9000000000, '', 'x');"
    "INSERT INTO t VALUES (43, 'accents', '%ACCENTS%');"
    "CREATE TABLE x (a text); INSERT INTO x VALUES ('keep');"
    "CREATE TABLE courses (\"txtCourseName\" text, \"txtSetCode\" text, \"intCategory\" int);"
    "INSERT INTO courses VALUES ('Maths 7A', '7A/Ma1', 3);"
    "INSERT INTO courses VALUES ('Français 8B', '8B/Fr', NULL);"
    "CREATE VIEW \"VwMoodleCourseData\" AS SELECT * FROM courses;";

std::string FixtureSql() {
  std::string sql = kFixtureSql;
  sql.replace(sql.find("%LONG%"), 6, LongText());
  sql.replace(sql.find("%ACCENTS%"), 9, LongAccentedText());
  return sql;
}

enum class Backend { kPsqlodbc, kSqlite3 };
void PrintTo(Backend b, std::ostream* os) { *os << (b == Backend::kPsqlodbc ? "Psqlodbc" : "Sqlite3"); }

class OdbcDriverTest : public ::testing::TestWithParam<Backend> {
 protected:
  static void SetUpTestSuite() {
    sqlite_dir_ = new TempDir();
    auto ok = testsupport::ExecSqlite(sqlite_dir_->File("school.db"), FixtureSql());
    ASSERT_TRUE(ok) << ok.error().message;
  }
  static void TearDownTestSuite() {
    delete sqlite_dir_;
    sqlite_dir_ = nullptr;
  }

  void SetUp() override {
    if (GetParam() == Backend::kPsqlodbc) {
      auto server = SharedPgServer();
      ASSERT_TRUE(server) << server.error().message;
      static bool loaded = false;
      if (!loaded) {
        auto ok = (*server)->Exec(FixtureSql());
        ASSERT_TRUE(ok) << ok.error().message;
        loaded = true;
      }
      connection_string_ = testsupport::OdbcPostgresqlConnectionString(**server);
      password_ = (*server)->password();
    } else {
      connection_string_ = testsupport::OdbcSqliteConnectionString(sqlite_dir_->File("school.db"));
      password_ = "";
    }
    auto conn = OpenOdbc(connection_string_, password_);
    ASSERT_TRUE(conn) << conn.error().message;
    conn_ = std::move(*conn);
  }

  SqlResult MustQuery(const std::string& sql, const std::vector<SqlValue>& params = {}) {
    auto r = conn_->Query(sql, params);
    EXPECT_TRUE(r) << r.error().message;
    return r ? *r : SqlResult{};
  }

  static TempDir* sqlite_dir_;
  std::string connection_string_, password_;
  std::unique_ptr<SqlConnection> conn_;
};
TempDir* OdbcDriverTest::sqlite_dir_ = nullptr;

TEST_P(OdbcDriverTest, NullComesBackAsNullopt) {
  auto r = MustQuery("SELECT note, name FROM t WHERE id = 1");
  ASSERT_EQ(r.rows.size(), 1u);
  EXPECT_EQ(r.rows[0][0], std::nullopt);
}

TEST_P(OdbcDriverTest, NumbersComeBackAsDecimalText) {
  auto r = MustQuery("SELECT id FROM t WHERE id <> 43 ORDER BY id");
  ASSERT_EQ(r.rows.size(), 3u);
  EXPECT_EQ(r.rows[0][0], SqlValue("-9000000000"));
  EXPECT_EQ(r.rows[1][0], SqlValue("1"));
  EXPECT_EQ(r.rows[2][0], SqlValue("42"));
}

TEST_P(OdbcDriverTest, EmptyStringIsNotNull) {
  auto r = MustQuery("SELECT name FROM t WHERE id = -9000000000");
  ASSERT_EQ(r.rows.size(), 1u);
  EXPECT_EQ(r.rows[0][0], SqlValue(""));
}

TEST_P(OdbcDriverTest, LongTextIsReadWholeInChunks) {
  auto r = MustQuery("SELECT note, id FROM t WHERE id = 42");
  ASSERT_EQ(r.rows.size(), 1u);
  ASSERT_TRUE(r.rows[0][0]);
  EXPECT_EQ(r.rows[0][0]->size(), 100000u);
  EXPECT_EQ(*r.rows[0][0], LongText());
  EXPECT_EQ(r.rows[0][1], SqlValue("42"));
}

TEST_P(OdbcDriverTest, LongAccentedTextIsReadWholeAcrossChunkBoundaries) {
  auto r = MustQuery("SELECT note FROM t WHERE id = 43");
  ASSERT_EQ(r.rows.size(), 1u);
  ASSERT_TRUE(r.rows[0][0]);
  EXPECT_EQ(r.rows[0][0]->size(), LongAccentedText().size());
  EXPECT_TRUE(*r.rows[0][0] == LongAccentedText());
}

TEST_P(OdbcDriverTest, Utf8AccentsAndApostrophesRoundTrip) {
  auto r = MustQuery("SELECT name FROM t WHERE name = ?", {"Zoë O'Brien-Núñez"});
  ASSERT_EQ(r.rows.size(), 1u);
  EXPECT_EQ(r.rows[0][0], SqlValue("Zoë O'Brien-Núñez"));
}

TEST_P(OdbcDriverTest, BoundParameterWithInjectionRoundTripsAndDropsNothing) {
  const std::string evil = "'; DROP TABLE x; --";
  auto r = MustQuery("SELECT a FROM x WHERE a = " + conn_->Placeholder(1) + " OR a = ?",
                     {evil, "keep"});
  ASSERT_EQ(r.rows.size(), 1u);
  EXPECT_TRUE(MustQuery("SELECT a FROM x WHERE a = ?", {evil}).rows.empty());
  EXPECT_TRUE(MustQuery("SELECT a FROM x WHERE a = ?", {std::nullopt}).rows.empty());
  EXPECT_EQ(MustQuery("SELECT a FROM x").rows.size(), 1u);
}

TEST_P(OdbcDriverTest, LongParameterIsBound) {
  auto r = MustQuery("SELECT id FROM t WHERE note = ?", {LongText()});
  ASSERT_EQ(r.rows.size(), 1u);
  EXPECT_EQ(r.rows[0][0], SqlValue("42"));
}

TEST_P(OdbcDriverTest, MixedCaseQuotedViewIsRead) {
  EXPECT_EQ(conn_->QuoteIdentifier("VwMoodleCourseData"), "\"VwMoodleCourseData\"");
  auto cols = conn_->Columns("VwMoodleCourseData");
  ASSERT_TRUE(cols) << cols.error().message;
  EXPECT_THAT(*cols, ElementsAre("txtCourseName", "txtSetCode", "intCategory"));

  auto source = OpenSource({"odbc", "", connection_string_, password_});
  ASSERT_TRUE(source) << source.error().message;
  auto table = (*source)->ReadTable("VwMoodleCourseData", {"txtSetCode", "intCategory", "txtCourseName"});
  ASSERT_TRUE(table) << table.error().message;
  ASSERT_EQ(table->rows.size(), 2u);
  EXPECT_THAT(table->rows[0], ElementsAre(SqlValue("7A/Ma1"), SqlValue("3"), SqlValue("Maths 7A")));
  EXPECT_THAT(table->rows[1], ElementsAre(SqlValue("8B/Fr"), std::nullopt, SqlValue("Français 8B")));
}

TEST_P(OdbcDriverTest, ColumnsOfMissingTableIsNotFoundNamingTable) {
  auto cols = conn_->Columns("VwMoodleEnrolData");
  ASSERT_FALSE(cols);
  EXPECT_EQ(cols.error().code, ErrorCode::kNotFound) << cols.error().message;
  EXPECT_THAT(cols.error().message, HasSubstr("\"VwMoodleEnrolData\""));
}

TEST_P(OdbcDriverTest, QueryFirstStopsAfterMaxRows) {
  auto r = conn_->QueryFirst("SELECT id FROM t ORDER BY id", {}, 2);
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->rows.size(), 2u);
  EXPECT_EQ(MustQuery("SELECT COUNT(*) FROM t").rows[0][0], SqlValue("4"));
}

TEST_P(OdbcDriverTest, SqlErrorIsSourceErrorWithoutPassword) {
  auto r = conn_->Query("SELEKT 1", {});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::kSource);
  EXPECT_THAT(r.error().message, HasSubstr("odbc DRIVER="));
  if (!password_.empty()) {
    EXPECT_THAT(r.error().message, Not(HasSubstr(password_)));
  }
}

INSTANTIATE_TEST_SUITE_P(Drivers, OdbcDriverTest,
                         ::testing::Values(Backend::kPsqlodbc, Backend::kSqlite3),
                         [](const auto& info) {
                           return info.param == Backend::kPsqlodbc ? std::string("Psqlodbc")
                                                                   : std::string("Sqlite3");
                         });

TEST(OdbcTest, OdbcReadsPostgresqlThroughPsqlodbc) {
  auto server = SharedPgServer();
  ASSERT_TRUE(server) << server.error().message;
  ASSERT_TRUE((*server)->Exec("CREATE TABLE IF NOT EXISTS psql_only (n int, s text);"
                              "INSERT INTO psql_only VALUES (7, 'Núñez');"));
  auto conn = OpenOdbc(testsupport::OdbcPostgresqlConnectionString(**server), (*server)->password());
  ASSERT_TRUE(conn) << conn.error().message;
  EXPECT_EQ((*conn)->BackendName(), "odbc");
  auto r = (*conn)->Query("SELECT n, s, version() FROM psql_only", {});
  ASSERT_TRUE(r) << r.error().message;
  ASSERT_EQ(r->rows.size(), 1u);
  EXPECT_EQ(r->rows[0][0], SqlValue("7"));
  EXPECT_EQ(r->rows[0][1], SqlValue("Núñez"));
  EXPECT_THAT(r->rows[0][2].value_or(""), HasSubstr("PostgreSQL"));
}

TEST(OdbcTest, OdbcReadsSqliteThroughSqlite3Driver) {
  TempDir dir;
  ASSERT_TRUE(testsupport::ExecSqlite(dir.File("a.db"),
                                      "CREATE TABLE s (n INTEGER, s TEXT); INSERT INTO s VALUES (7, 'Núñez');"));
  auto conn = OpenOdbc(testsupport::OdbcSqliteConnectionString(dir.File("a.db")), "");
  ASSERT_TRUE(conn) << conn.error().message;
  auto r = (*conn)->Query("SELECT n, s, sqlite_version() FROM s", {});
  ASSERT_TRUE(r) << r.error().message;
  ASSERT_EQ(r->rows.size(), 1u);
  EXPECT_EQ(r->rows[0][0], SqlValue("7"));
  EXPECT_EQ(r->rows[0][1], SqlValue("Núñez"));
  EXPECT_THAT(r->rows[0][2].value_or(""), HasSubstr("3."));
}

TEST(OdbcTest, WrongPasswordGivesClearErrorWithoutPassword) {
  auto server = SharedPgServer();
  ASSERT_TRUE(server) << server.error().message;
  const std::string wrong = "Wr0ng;{Pass}word";
  auto conn = OpenOdbc(testsupport::OdbcPostgresqlConnectionString(**server), wrong);
  ASSERT_FALSE(conn);
  EXPECT_EQ(conn.error().code, ErrorCode::kSource);
  EXPECT_THAT(conn.error().message, HasSubstr("password authentication failed"));
  EXPECT_THAT(conn.error().message, HasSubstr("DRIVER={PostgreSQL Unicode}"));
  EXPECT_THAT(conn.error().message, Not(HasSubstr(wrong)));
  EXPECT_THAT(conn.error().message, Not(HasSubstr("Pass}word")));
  EXPECT_THAT(conn.error().message, Not(HasSubstr("PWD")));
}

TEST(OdbcTest, FreeTdsDriverLoadsAndClosedPortGivesClearError) {
  const std::string password = "Tds-Secret-987";
  auto start = std::chrono::steady_clock::now();
  auto conn = OpenOdbc("DRIVER=FreeTDS;SERVER=127.0.0.1;PORT=1;DATABASE=iSAMS;UID=moodle;"
                       "TDS_Version=7.4;ClientCharset=UTF-8",
                       password);
  ASSERT_FALSE(conn);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(30));
  const std::string& msg = conn.error().message;
  EXPECT_THAT(msg, HasSubstr("cannot connect"));
  EXPECT_THAT(msg, HasSubstr("DRIVER=FreeTDS;SERVER=127.0.0.1;PORT=1"));
  // The driver manager found and loaded the driver: the failure is FreeTDS's own.
  EXPECT_THAT(msg, HasSubstr("[FreeTDS]"));
  EXPECT_THAT(msg, Not(HasSubstr("Can't open lib")));
  EXPECT_THAT(msg, Not(HasSubstr(password)));
}

TEST(OdbcTest, UnknownDriverGivesClearError) {
  auto conn = OpenOdbc("DRIVER={No Such Driver};SERVER=x", "");
  ASSERT_FALSE(conn);
  EXPECT_THAT(conn.error().message, HasSubstr("No Such Driver"));
  EXPECT_THAT(conn.error().message, AnyOf(HasSubstr("IM002"), HasSubstr("not found")));
}

TEST(OdbcTest, StripOdbcPasswordRemovesPwdAndKeepsTheRest) {
  EXPECT_EQ(StripOdbcPassword("DRIVER={PostgreSQL Unicode};SERVER=db;UID=moodle;PWD=hunter22"),
            "DRIVER={PostgreSQL Unicode};SERVER=db;UID=moodle");
  EXPECT_EQ(StripOdbcPassword("Driver=FreeTDS;Password={a;b}}c};Server=x;"),
            "Driver=FreeTDS;Server=x");
  EXPECT_EQ(StripOdbcPassword("DSN=school;pwd=x"), "DSN=school");
  EXPECT_EQ(StripOdbcPassword("DRIVER=SQLite3;Database=/srv/mis.db"), "DRIVER=SQLite3;Database=/srv/mis.db");
}

}  // namespace
}  // namespace enrolsync::sources
