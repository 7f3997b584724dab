#include "sources/csv/csv_source.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "support/pg_server.h"

namespace enrolsync::sources {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using testsupport::TempDir;
using testsupport::WriteFile;

CsvFile MustParse(const std::string& text) {
  auto r = ParseCsv(text, "enrol.csv");
  EXPECT_TRUE(r) << r.error().message;
  return r ? *r : CsvFile{};
}

std::string MustFail(const std::string& text) {
  auto r = ParseCsv(text, "enrol.csv");
  EXPECT_FALSE(r) << "parsed although it should not";
  if (r) return "";
  EXPECT_EQ(r.error().code, ErrorCode::kSource);
  return r.error().message;
}

TEST(CsvParseTest, HeaderNamesTheColumnsAndRowNumbersAreFileLines) {
  auto f = MustParse("a,b\n1,2\n3,4\n");
  EXPECT_THAT(f.header, ElementsAre("a", "b"));
  ASSERT_EQ(f.records.size(), 2u);
  EXPECT_THAT(f.records[0].fields, ElementsAre("1", "2"));
  EXPECT_EQ(f.records[0].line, 2u);
  EXPECT_EQ(f.records[1].line, 3u);
}

TEST(CsvParseTest, ByteOrderMarkIsSkipped) {
  auto f = MustParse("\xEF\xBB\xBFtxtSetCode,txtEmail\n7A,a@b\n");
  EXPECT_THAT(f.header, ElementsAre("txtSetCode", "txtEmail"));
}

TEST(CsvParseTest, CrlfLineEndingsAreAccepted) {
  auto f = MustParse("a,b\r\n1,2\r\n3,\r\n");
  ASSERT_EQ(f.records.size(), 2u);
  EXPECT_THAT(f.records[0].fields, ElementsAre("1", "2"));
  EXPECT_THAT(f.records[1].fields, ElementsAre("3", ""));
  EXPECT_EQ(f.records[1].line, 3u);
}

TEST(CsvParseTest, LastLineWithoutNewlineIsARecord) {
  auto f = MustParse("a,b\n1,2");
  ASSERT_EQ(f.records.size(), 1u);
  EXPECT_THAT(f.records[0].fields, ElementsAre("1", "2"));
}

TEST(CsvParseTest, QuotedFieldKeepsCommasAndEmbeddedNewlines) {
  auto f = MustParse("name,code\n\"Smith, Jane\",\"line1\nline2\"\nnext,row\n");
  ASSERT_EQ(f.records.size(), 2u);
  EXPECT_THAT(f.records[0].fields, ElementsAre("Smith, Jane", "line1\nline2"));
  EXPECT_EQ(f.records[0].line, 2u);
  EXPECT_EQ(f.records[1].line, 4u);  // the record after a two-line record
}

TEST(CsvParseTest, DoubledQuoteIsOneQuote) {
  auto f = MustParse("a\n\"say \"\"hi\"\"\"\n\"\"\n");
  ASSERT_EQ(f.records.size(), 2u);
  EXPECT_EQ(f.records[0].fields[0], "say \"hi\"");
  EXPECT_EQ(f.records[1].fields[0], "");
}

TEST(CsvParseTest, EmptyUnquotedFieldIsEmptyString) {
  auto f = MustParse("a,b,c\n,,\n");
  ASSERT_EQ(f.records.size(), 1u);
  EXPECT_THAT(f.records[0].fields, ElementsAre("", "", ""));
}

TEST(CsvParseTest, Utf8AccentsAndApostrophesAreKept) {
  auto f = MustParse("name\nZoë O'Brien-Núñez\n");
  EXPECT_EQ(f.records[0].fields[0], "Zoë O'Brien-Núñez");
}

TEST(CsvParseTest, BlankLinesAreSkipped) {
  auto f = MustParse("a,b\n\n1,2\n\n");
  ASSERT_EQ(f.records.size(), 1u);
  EXPECT_EQ(f.records[0].line, 3u);
}

TEST(CsvParseTest, RaggedRowErrorNamesFileLineAndMissingField) {
  std::string msg = MustFail("txtSetCode,txtEmailAddress,intRoleID\n7A,a@b,5\n7B,c@d\n");
  EXPECT_THAT(msg, HasSubstr("enrol.csv line 3"));
  EXPECT_THAT(msg, HasSubstr("2 fields, but the header has 3"));
  EXPECT_THAT(msg, HasSubstr("field 3 (intRoleID) is missing"));
}

TEST(CsvParseTest, ExtraFieldErrorNamesLine) {
  std::string msg = MustFail("a,b\n1,2,3\n");
  EXPECT_THAT(msg, HasSubstr("enrol.csv line 2"));
  EXPECT_THAT(msg, HasSubstr("field 3 is extra"));
}

TEST(CsvParseTest, UnterminatedQuoteErrorNamesLineAndField) {
  std::string msg = MustFail("a,b\n1,2\n3,\"never closed\n4,5\n");
  EXPECT_THAT(msg, HasSubstr("enrol.csv line 3"));
  EXPECT_THAT(msg, HasSubstr("field 2 (b)"));
  EXPECT_THAT(msg, HasSubstr("never closed"));
}

TEST(CsvParseTest, TextAfterClosingQuoteIsAnError) {
  std::string msg = MustFail("a,b\n\"x\"y,2\n");
  EXPECT_THAT(msg, HasSubstr("enrol.csv line 2"));
  EXPECT_THAT(msg, HasSubstr("field 1 (a)"));
}

TEST(CsvParseTest, InvalidUtf8ErrorNamesLineAndField) {
  std::string msg = MustFail("a,name\n1,ok\n2,Zo\xEB\n");  // Latin-1 ë
  EXPECT_THAT(msg, HasSubstr("enrol.csv line 3"));
  EXPECT_THAT(msg, HasSubstr("field 2 (name)"));
  EXPECT_THAT(msg, HasSubstr("invalid UTF-8 at byte 3"));
}

TEST(CsvParseTest, Utf16FileIsRejectedWithAdvice) {
  std::string msg = MustFail(std::string("\xFF\xFE" "a\0,\0", 6));
  EXPECT_THAT(msg, HasSubstr("UTF-16"));
}

TEST(CsvParseTest, EmptyFileIsAnError) {
  EXPECT_THAT(MustFail(""), HasSubstr("header"));
  EXPECT_THAT(MustFail("\xEF\xBB\xBF"), HasSubstr("header"));
}

class CsvSourceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(WriteFile(dir_.File("VwMoodleEnrolData.csv"),
                          "\xEF\xBB\xBFtxtSetCode,txtEmailAddress,intRoleID\r\n"
                          "7A/Ma1,zoe@example.org,5\r\n"
                          "\"7B/Fr\",\"o'brien@example.org\",\r\n"
                          "\"8C/En\",\"multi\r\nline\",3\r\n"));
    auto source = OpenCsvSource(dir_.path());
    ASSERT_TRUE(source) << source.error().message;
    source_ = std::move(*source);
  }
  TempDir dir_;
  std::unique_ptr<Source> source_;
};

TEST_F(CsvSourceTest, ReadTableReturnsRequestedColumnsWithFileLines) {
  auto t = source_->ReadTable("VwMoodleEnrolData", {"intRoleID", "txtSetCode"});
  ASSERT_TRUE(t) << t.error().message;
  EXPECT_EQ(t->name, "VwMoodleEnrolData.csv");
  EXPECT_THAT(t->columns, ElementsAre("intRoleID", "txtSetCode"));
  ASSERT_EQ(t->rows.size(), 3u);
  EXPECT_THAT(t->rows[0], ElementsAre(SqlValue("5"), SqlValue("7A/Ma1")));
  EXPECT_THAT(t->rows[1], ElementsAre(SqlValue(""), SqlValue("7B/Fr")));
  EXPECT_THAT(t->row_numbers, ElementsAre(2u, 3u, 4u));
}

TEST_F(CsvSourceTest, TableNameMayIncludeTheCsvExtension) {
  auto t = source_->ReadTable("VwMoodleEnrolData.csv", {"txtEmailAddress"});
  ASSERT_TRUE(t) << t.error().message;
  EXPECT_EQ(t->rows[2][0], SqlValue("multi\r\nline"));
}

TEST_F(CsvSourceTest, MissingColumnErrorNamesFileLineAndColumn) {
  auto t = source_->ReadTable("VwMoodleEnrolData", {"txtSetCode", "txtEmail"});
  ASSERT_FALSE(t);
  EXPECT_EQ(t.error().code, ErrorCode::kNotFound);
  EXPECT_EQ(t.error().message,
            "source csv " + dir_.path() + ": VwMoodleEnrolData.csv line 1 (header) has no column "
            "\"txtEmail\" (columns: txtSetCode, txtEmailAddress, intRoleID)");
}

TEST_F(CsvSourceTest, MissingFileIsNotFoundNamingTableAndPath) {
  auto t = source_->ReadTable("VwMoodleCourseData", {"a"});
  ASSERT_FALSE(t);
  EXPECT_EQ(t.error().code, ErrorCode::kNotFound);
  EXPECT_THAT(t.error().message, HasSubstr("table \"VwMoodleCourseData\" not found"));
  EXPECT_THAT(t.error().message, HasSubstr(dir_.File("VwMoodleCourseData.csv")));
}

TEST_F(CsvSourceTest, TableNameWithPathSeparatorIsRejected) {
  auto t = source_->ReadTable("../etc/passwd", {"a"});
  ASSERT_FALSE(t);
  EXPECT_EQ(t.error().code, ErrorCode::kInvalidArgument);
}

TEST_F(CsvSourceTest, BadFileErrorNamesSourceFileAndLine) {
  ASSERT_TRUE(WriteFile(dir_.File("bad.csv"), "a,b\n1,2\n3\n"));
  auto t = source_->ReadTable("bad", {"a"});
  ASSERT_FALSE(t);
  EXPECT_EQ(t.error().code, ErrorCode::kSource);
  EXPECT_THAT(t.error().message, HasSubstr("source csv " + dir_.path() + ": bad.csv line 3"));
}

TEST_F(CsvSourceTest, InspectGivesHeaderCountAndSample) {
  auto i = source_->Inspect("VwMoodleEnrolData", 2);
  ASSERT_TRUE(i) << i.error().message;
  EXPECT_THAT(i->columns, ElementsAre("txtSetCode", "txtEmailAddress", "intRoleID"));
  EXPECT_EQ(i->row_count, 3);
  ASSERT_EQ(i->sample.size(), 2u);
  EXPECT_EQ(i->sample[1][1], SqlValue("o'brien@example.org"));
}

TEST(CsvOpenTest, MissingDirectoryIsNotFound) {
  auto s = OpenCsvSource("/nonexistent/enrolsync/csv");
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().code, ErrorCode::kNotFound);
  EXPECT_THAT(s.error().message, HasSubstr("/nonexistent/enrolsync/csv"));
}

TEST(CsvOpenTest, ReadCsvFileOfMissingFileIsNotFound) {
  auto f = ReadCsvFile("/nonexistent/x.csv");
  ASSERT_FALSE(f);
  EXPECT_EQ(f.error().code, ErrorCode::kNotFound);
  EXPECT_THAT(f.error().message, HasSubstr("/nonexistent/x.csv"));
}

}  // namespace
}  // namespace enrolsync::sources
