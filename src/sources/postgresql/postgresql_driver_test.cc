#include "sources/postgresql/postgresql_driver.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>

#include "sources/source.h"
#include "support/pg_server.h"
#include "util/secrets.h"

namespace enrolsync::sources {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;
using testsupport::PgServer;
using testsupport::SharedPgServer;

std::string LongText() {
  std::string s;
  for (int i = 0; i < 100000; ++i) s += static_cast<char>('A' + i % 26);
  return s;
}

class PostgresqlDriverTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto server = SharedPgServer();
    ASSERT_TRUE(server) << server.error().message;
    server_ = *server;
    auto ok = server_->Exec(
        "CREATE TABLE t (id bigint, name text, note text, score numeric(5,2), flag boolean);"
        "INSERT INTO t VALUES (1, 'Zoë O''Brien-Núñez', NULL, 2.5, true);"
        "INSERT INTO t SELECT 42, 'long', string_agg(chr(65 + i % 26), ''), -7, false"
        "  FROM generate_series(0, 99999) AS i;"
        "INSERT INTO t VALUES (-9000000000, '', 'x', NULL, NULL);"
        "CREATE TABLE x (a text); INSERT INTO x VALUES ('keep');"
        "CREATE TABLE many AS SELECT i FROM generate_series(1, 200000) AS i;"
        "CREATE TABLE courses (\"txtCourseName\" text, \"txtSetCode\" text, \"intCategory\" int);"
        "INSERT INTO courses VALUES ('Maths 7A', '7A/Ma1', 3), ('Français 8B', '8B/Fr', NULL);"
        "CREATE VIEW \"VwMoodleCourseData\" AS SELECT * FROM courses;"
        "CREATE SCHEMA mis;"
        "CREATE TABLE mis.\"Enrol\" (\"txtEmailAddress\" text, \"intRoleID\" int);"
        "INSERT INTO mis.\"Enrol\" VALUES ('zoe@example.org', 5);");
    ASSERT_TRUE(ok) << ok.error().message;
  }

  void SetUp() override {
    ASSERT_NE(server_, nullptr);
    auto conn = OpenPostgresql(server_->conninfo(), server_->password());
    ASSERT_TRUE(conn) << conn.error().message;
    conn_ = std::move(*conn);
  }

  SqlResult MustQuery(const std::string& sql, const std::vector<SqlValue>& params = {}) {
    auto r = conn_->Query(sql, params);
    EXPECT_TRUE(r) << r.error().message;
    return r ? *r : SqlResult{};
  }

  static PgServer* server_;
  std::unique_ptr<SqlConnection> conn_;
};
PgServer* PostgresqlDriverTest::server_ = nullptr;

TEST_F(PostgresqlDriverTest, NullComesBackAsNullopt) {
  auto r = MustQuery("SELECT note, flag FROM t WHERE id = 1");
  ASSERT_EQ(r.rows.size(), 1u);
  EXPECT_EQ(r.rows[0][0], std::nullopt);
  EXPECT_EQ(r.rows[0][1], SqlValue("t"));
}

TEST_F(PostgresqlDriverTest, NumbersComeBackAsDecimalText) {
  auto r = MustQuery("SELECT id, score FROM t ORDER BY id");
  ASSERT_EQ(r.rows.size(), 3u);
  EXPECT_EQ(r.rows[0][0], SqlValue("-9000000000"));
  EXPECT_EQ(r.rows[1][0], SqlValue("1"));
  EXPECT_EQ(r.rows[1][1], SqlValue("2.50"));
  EXPECT_EQ(r.rows[2][1], SqlValue("-7.00"));
}

TEST_F(PostgresqlDriverTest, EmptyStringIsNotNull) {
  auto r = MustQuery("SELECT name FROM t WHERE id = $1", {"-9000000000"});
  ASSERT_EQ(r.rows.size(), 1u);
  EXPECT_EQ(r.rows[0][0], SqlValue(""));
}

TEST_F(PostgresqlDriverTest, LongTextIsReadWhole) {
  auto r = MustQuery("SELECT note FROM t WHERE id = 42");
  ASSERT_EQ(r.rows.size(), 1u);
  ASSERT_TRUE(r.rows[0][0]);
  EXPECT_EQ(*r.rows[0][0], LongText());
}

TEST_F(PostgresqlDriverTest, Utf8AccentsAndApostrophesRoundTrip) {
  auto r = MustQuery("SELECT name, $1::text FROM t WHERE name = $1", {"Zoë O'Brien-Núñez"});
  ASSERT_EQ(r.rows.size(), 1u);
  EXPECT_EQ(r.rows[0][0], SqlValue("Zoë O'Brien-Núñez"));
  EXPECT_EQ(r.rows[0][1], SqlValue("Zoë O'Brien-Núñez"));
}

TEST_F(PostgresqlDriverTest, BoundParameterWithInjectionRoundTripsAndDropsNothing) {
  const std::string evil = "'; DROP TABLE x; --";
  auto r = MustQuery("SELECT " + conn_->Placeholder(1) + "::text, " + conn_->Placeholder(2) + "::text",
                     {evil, std::nullopt});
  ASSERT_EQ(r.rows.size(), 1u);
  EXPECT_EQ(r.rows[0][0], SqlValue(evil));
  EXPECT_EQ(r.rows[0][1], std::nullopt);
  EXPECT_TRUE(MustQuery("SELECT a FROM x WHERE a = $1", {evil}).rows.empty());
  EXPECT_EQ(MustQuery("SELECT a FROM x").rows.size(), 1u);
}

TEST_F(PostgresqlDriverTest, MixedCaseQuotedViewIsReadOnPostgresql) {
  auto cols = conn_->Columns("VwMoodleCourseData");
  ASSERT_TRUE(cols) << cols.error().message;
  EXPECT_THAT(*cols, ElementsAre("txtCourseName", "txtSetCode", "intCategory"));

  SourceSettings settings{"postgresql", "", server_->conninfo(), server_->password()};
  auto source = OpenSource(settings);
  ASSERT_TRUE(source) << source.error().message;
  auto table = (*source)->ReadTable("VwMoodleCourseData", {"txtSetCode", "intCategory", "txtCourseName"});
  ASSERT_TRUE(table) << table.error().message;
  ASSERT_EQ(table->rows.size(), 2u);
  EXPECT_THAT(table->rows[0], ElementsAre(SqlValue("7A/Ma1"), SqlValue("3"), SqlValue("Maths 7A")));
  EXPECT_THAT(table->rows[1], ElementsAre(SqlValue("8B/Fr"), std::nullopt, SqlValue("Français 8B")));
  EXPECT_THAT(table->row_numbers, ElementsAre(1u, 2u));
}

TEST_F(PostgresqlDriverTest, SchemaQualifiedTableIsRead) {
  auto cols = conn_->Columns("mis.Enrol");
  ASSERT_TRUE(cols) << cols.error().message;
  EXPECT_THAT(*cols, ElementsAre("txtEmailAddress", "intRoleID"));
  auto r = MustQuery("SELECT * FROM " + conn_->QuoteIdentifier("mis.Enrol"));
  ASSERT_EQ(r.rows.size(), 1u);
  EXPECT_THAT(r.rows[0], ElementsAre(SqlValue("zoe@example.org"), SqlValue("5")));
}

TEST_F(PostgresqlDriverTest, ColumnsOfMissingTableIsNotFoundNamingTable) {
  for (const char* name : {"VwMoodleEnrolData", "vwmoodlecoursedata", "nosuchschema.t"}) {
    auto cols = conn_->Columns(name);
    ASSERT_FALSE(cols) << name;
    EXPECT_EQ(cols.error().code, ErrorCode::kNotFound) << cols.error().message;
    EXPECT_THAT(cols.error().message, HasSubstr("\"" + std::string(name) + "\""));
  }
}

TEST_F(PostgresqlDriverTest, QueryOfMissingTableIsNotFound) {
  auto r = conn_->Query("SELECT * FROM \"VwMoodleEnrolData\"", {});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::kNotFound);
  EXPECT_THAT(r.error().message, HasSubstr("VwMoodleEnrolData"));
  EXPECT_THAT(r.error().message, HasSubstr("42P01"));
}

TEST_F(PostgresqlDriverTest, QuoteIdentifierKeepsCaseAndDoublesQuotes) {
  EXPECT_EQ(conn_->QuoteIdentifier("VwMoodleCourseData"), "\"VwMoodleCourseData\"");
  EXPECT_EQ(conn_->QuoteIdentifier("a\"b"), "\"a\"\"b\"");
  EXPECT_EQ(conn_->QuoteIdentifier("mis.Enrol"), "\"mis\".\"Enrol\"");
  EXPECT_EQ(conn_->Placeholder(3), "$3");
  EXPECT_EQ(conn_->BackendName(), "postgresql");
}

TEST_F(PostgresqlDriverTest, QueryFirstStopsAfterMaxRowsAndConnectionStaysUsable) {
  auto r = conn_->QueryFirst("SELECT i FROM many ORDER BY i", {}, 3);
  ASSERT_TRUE(r) << r.error().message;
  ASSERT_EQ(r->rows.size(), 3u);
  EXPECT_EQ(r->rows[2][0], SqlValue("3"));
  EXPECT_EQ(MustQuery("SELECT COUNT(*) FROM many").rows[0][0], SqlValue("200000"));
  auto again = conn_->QueryFirst("SELECT i FROM many", {}, 1);
  ASSERT_TRUE(again) << again.error().message;
  EXPECT_EQ(again->rows.size(), 1u);
}

TEST_F(PostgresqlDriverTest, SqlErrorIsSourceErrorWithSqlstate) {
  auto r = conn_->Query("SELEKT 1", {});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::kSource);
  EXPECT_THAT(r.error().message, HasSubstr("42601"));
}

TEST_F(PostgresqlDriverTest, WrongPasswordGivesClearErrorWithoutPassword) {
  const std::string wrong = "Wr0ng-Passw0rd-zz";
  auto conn = OpenPostgresql(server_->conninfo(), wrong);
  ASSERT_FALSE(conn);
  EXPECT_EQ(conn.error().code, ErrorCode::kSource);
  EXPECT_THAT(conn.error().message, HasSubstr("password authentication failed"));
  EXPECT_THAT(conn.error().message, HasSubstr("enrolsync@127.0.0.1"));
  EXPECT_THAT(conn.error().message, Not(HasSubstr(wrong)));
  EXPECT_THAT(conn.error().message, Not(HasSubstr(server_->password())));
}

TEST_F(PostgresqlDriverTest, PasswordInsideConninfoIsNeverEchoed) {
  const std::string wrong = "Inl1ne-Secret-qq";
  auto conn = OpenPostgresql(server_->conninfo() + " password=" + wrong, "");
  ASSERT_FALSE(conn);
  EXPECT_THAT(conn.error().message, Not(HasSubstr(wrong)));
  EXPECT_EQ(Redact("x " + wrong), "x [REDACTED]");
}

TEST_F(PostgresqlDriverTest, MissingPasswordSaysSo) {
  auto conn = OpenPostgresql(server_->conninfo(), "");
  ASSERT_FALSE(conn);
  EXPECT_THAT(conn.error().message, HasSubstr("no password"));
}

TEST(PostgresqlOpenTest, ClosedPortGivesClearErrorQuickly) {
  auto start = std::chrono::steady_clock::now();
  auto conn = OpenPostgresql("host=127.0.0.1 port=1 dbname=school user=enrolsync", "Secret-1234");
  ASSERT_FALSE(conn);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(15));
  EXPECT_THAT(conn.error().message, HasSubstr("cannot connect"));
  EXPECT_THAT(conn.error().message, HasSubstr("127.0.0.1"));
  EXPECT_THAT(conn.error().message, Not(HasSubstr("Secret-1234")));
}

TEST(PostgresqlOpenTest, InvalidConninfoIsConfigError) {
  auto conn = OpenPostgresql("host=127.0.0.1 bogus_key=1", "");
  ASSERT_FALSE(conn);
  EXPECT_EQ(conn.error().code, ErrorCode::kConfig);
  EXPECT_THAT(conn.error().message, HasSubstr("bogus_key"));
}

TEST(PostgresqlOpenTest, DescribeOmitsPassword) {
  EXPECT_EQ(DescribePostgresql("host=db.school port=5433 dbname=mis user=moodle password=hunter22"),
            "postgresql moodle@db.school:5433/mis");
  EXPECT_EQ(DescribePostgresql("postgresql://moodle:hunter22@db.school/mis"),
            "postgresql moodle@db.school/mis");
}

}  // namespace
}  // namespace enrolsync::sources
