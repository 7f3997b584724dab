#include "sources/sqlite/sqlite_driver.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>

#include "support/pg_server.h"

namespace enrolsync::sources {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;
using testsupport::ExecSqlite;
using testsupport::TempDir;

std::string LongText() {
  std::string s;
  for (int i = 0; i < 100000; ++i) s += static_cast<char>('a' + i % 26);
  return s;
}

class SqliteDriverTest : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = dir_.File("school.db");
    ASSERT_TRUE(ExecSqlite(path_,
                           "CREATE TABLE t (id INTEGER, name TEXT, note TEXT, score REAL);"
                           "INSERT INTO t VALUES (1, 'Zoë O''Brien-Núñez', NULL, 2.5);"
                           "INSERT INTO t VALUES (42, 'plain', '" + LongText() + "', -7);"
                           "INSERT INTO t VALUES (-9000000000, '', 'x', NULL);"
                           "CREATE VIEW \"VwMoodleCourseData\" AS SELECT name AS \"txtCourseName\","
                           " id AS \"intId\" FROM t;"
                           "CREATE TABLE x (a TEXT); INSERT INTO x VALUES ('keep');"));
    auto conn = OpenSqlite(path_);
    ASSERT_TRUE(conn) << conn.error().message;
    conn_ = std::move(*conn);
  }

  SqlResult MustQuery(const std::string& sql, const std::vector<SqlValue>& params = {}) {
    auto r = conn_->Query(sql, params);
    EXPECT_TRUE(r) << r.error().message;
    return r ? *r : SqlResult{};
  }

  TempDir dir_;
  std::string path_;
  std::unique_ptr<SqlConnection> conn_;
};

TEST_F(SqliteDriverTest, NullComesBackAsNullopt) {
  auto r = MustQuery("SELECT note, score FROM t WHERE id = 1");
  ASSERT_EQ(r.rows.size(), 1u);
  EXPECT_EQ(r.rows[0][0], std::nullopt);
  EXPECT_EQ(r.rows[0][1], SqlValue("2.5"));
}

TEST_F(SqliteDriverTest, NumbersComeBackAsDecimalText) {
  auto r = MustQuery("SELECT id FROM t ORDER BY rowid");
  ASSERT_EQ(r.rows.size(), 3u);
  EXPECT_EQ(r.rows[0][0], SqlValue("1"));
  EXPECT_EQ(r.rows[1][0], SqlValue("42"));
  EXPECT_EQ(r.rows[2][0], SqlValue("-9000000000"));
}

TEST_F(SqliteDriverTest, EmptyStringIsNotNull) {
  auto r = MustQuery("SELECT name FROM t WHERE id = -9000000000");
  ASSERT_EQ(r.rows.size(), 1u);
  EXPECT_EQ(r.rows[0][0], SqlValue(""));
}

TEST_F(SqliteDriverTest, LongTextIsReadWhole) {
  auto r = MustQuery("SELECT note FROM t WHERE id = 42");
  ASSERT_EQ(r.rows.size(), 1u);
  ASSERT_TRUE(r.rows[0][0]);
  EXPECT_EQ(r.rows[0][0]->size(), 100000u);
  EXPECT_EQ(*r.rows[0][0], LongText());
}

TEST_F(SqliteDriverTest, Utf8AccentsAndApostrophesRoundTrip) {
  auto r = MustQuery("SELECT name FROM t WHERE name = ?1", {"Zoë O'Brien-Núñez"});
  ASSERT_EQ(r.rows.size(), 1u);
  EXPECT_EQ(r.rows[0][0], SqlValue("Zoë O'Brien-Núñez"));
}

TEST_F(SqliteDriverTest, BoundParameterWithInjectionRoundTripsAndDropsNothing) {
  const std::string evil = "'; DROP TABLE x; --";
  auto r = MustQuery("SELECT " + conn_->Placeholder(1) + ", " + conn_->Placeholder(2), {evil, std::nullopt});
  ASSERT_EQ(r.rows.size(), 1u);
  EXPECT_EQ(r.rows[0][0], SqlValue(evil));
  EXPECT_EQ(r.rows[0][1], std::nullopt);
  EXPECT_TRUE(MustQuery("SELECT a FROM x WHERE a = ?1", {evil}).rows.empty());
  EXPECT_EQ(MustQuery("SELECT a FROM x").rows.size(), 1u);
}

TEST_F(SqliteDriverTest, ColumnsListsTableAndViewColumnsInOrder) {
  auto cols = conn_->Columns("t");
  ASSERT_TRUE(cols) << cols.error().message;
  EXPECT_THAT(*cols, ElementsAre("id", "name", "note", "score"));
  auto view = conn_->Columns("VwMoodleCourseData");
  ASSERT_TRUE(view) << view.error().message;
  EXPECT_THAT(*view, ElementsAre("txtCourseName", "intId"));
}

TEST_F(SqliteDriverTest, SchemaQualifiedTableIsRead) {
  auto cols = conn_->Columns("main.t");
  ASSERT_TRUE(cols) << cols.error().message;
  EXPECT_EQ(cols->size(), 4u);
  auto r = MustQuery("SELECT COUNT(*) FROM " + conn_->QuoteIdentifier("main.VwMoodleCourseData"));
  EXPECT_EQ(r.rows[0][0], SqlValue("3"));
}

TEST_F(SqliteDriverTest, ColumnsOfMissingTableIsNotFoundNamingTable) {
  auto cols = conn_->Columns("VwMoodleEnrolData");
  ASSERT_FALSE(cols);
  EXPECT_EQ(cols.error().code, ErrorCode::kNotFound);
  EXPECT_THAT(cols.error().message, HasSubstr("\"VwMoodleEnrolData\""));
}

TEST_F(SqliteDriverTest, QuoteIdentifierDoublesQuotesAndSplitsSchema) {
  EXPECT_EQ(conn_->QuoteIdentifier("VwMoodleCourseData"), "\"VwMoodleCourseData\"");
  EXPECT_EQ(conn_->QuoteIdentifier("a\"b"), "\"a\"\"b\"");
  EXPECT_EQ(conn_->QuoteIdentifier("main.t"), "\"main\".\"t\"");
  EXPECT_EQ(conn_->Placeholder(2), "?2");
  EXPECT_EQ(conn_->BackendName(), "sqlite");
}

TEST_F(SqliteDriverTest, QueryFirstStopsAfterMaxRows) {
  auto r = conn_->QueryFirst("SELECT id FROM t ORDER BY rowid", {}, 2);
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->rows.size(), 2u);
  EXPECT_THAT(r->columns, ElementsAre("id"));
}

TEST_F(SqliteDriverTest, DatabaseIsOpenedReadOnly) {
  auto r = conn_->Query("CREATE TABLE y (a TEXT)", {});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::kSource);
  EXPECT_THAT(r.error().message, HasSubstr("readonly"));
}

TEST_F(SqliteDriverTest, SqlErrorIsSourceErrorNamingTheFile) {
  auto r = conn_->Query("SELEKT 1", {});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::kSource);
  EXPECT_THAT(r.error().message, HasSubstr(path_));
  EXPECT_THAT(r.error().message, HasSubstr("syntax error"));
}

TEST(SqliteOpenTest, MissingFileIsNotFoundNamingPathAndIsNotCreated) {
  TempDir dir;
  std::string path = dir.File("nope.db");
  auto conn = OpenSqlite(path);
  ASSERT_FALSE(conn);
  EXPECT_EQ(conn.error().code, ErrorCode::kNotFound);
  EXPECT_THAT(conn.error().message, HasSubstr(path));
  EXPECT_FALSE(std::filesystem::exists(path));
}

TEST(SqliteOpenTest, UnreadableSqliteFileIsAnError) {
  TempDir dir;
  std::string path = dir.File("garbage.db");
  ASSERT_TRUE(testsupport::WriteFile(path, std::string(4096, 'x')));
  auto conn = OpenSqlite(path);
  ASSERT_FALSE(conn);
  EXPECT_EQ(conn.error().code, ErrorCode::kSource);
  EXPECT_THAT(conn.error().message, HasSubstr(path));
  EXPECT_THAT(conn.error().message, HasSubstr("not a database"));
}

TEST(SqliteOpenTest, DirectoryIsAnError) {
  TempDir dir;
  auto conn = OpenSqlite(dir.path());
  ASSERT_FALSE(conn);
  EXPECT_THAT(conn.error().message, HasSubstr("directory"));
}

}  // namespace
}  // namespace enrolsync::sources
