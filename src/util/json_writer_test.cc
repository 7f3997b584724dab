// JsonWriter: what it writes reads back (nlohmann's parser as the judge) with
// the same values, for awkward strings and numbers too, and the layout is
// the documented one.
#include "util/json_writer.h"

#include <limits>
#include <sstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace enrolsync {
namespace {

TEST(JsonWriterTest, NestedDocumentReadsBackWithTheSameValues) {
  std::ostringstream out;
  JsonWriter w(out);
  w.BeginObject()
      .Field("command", "sync")
      .Field("exit_code", 4)
      .Field("big", std::numeric_limits<long long>::min())
      .Field("ubig", std::numeric_limits<unsigned long long>::max())
      .Field("seconds", 0.1)
      .Field("whole", 3.0)
      .Field("ok", false)
      .Key("none")
      .Null()
      .Field("notes", std::vector<std::string>{"a", "b"})
      .Key("empty_list")
      .BeginArray()
      .EndArray()
      .Key("empty_object")
      .BeginObject()
      .EndObject()
      .Key("items")
      .BeginArray();
  for (int i = 0; i < 3; ++i) w.Inline().BeginObject().Field("i", i).Key("roles").BeginArray().Int(i).EndArray().EndObject();
  w.EndArray().Key("raw").Raw(R"({"x":[1,2]})").EndObject();

  auto j = nlohmann::json::parse(out.str());
  EXPECT_EQ(j["command"], "sync");
  EXPECT_EQ(j["exit_code"], 4);
  EXPECT_EQ(j["big"].get<long long>(), std::numeric_limits<long long>::min());
  EXPECT_EQ(j["ubig"].get<unsigned long long>(), std::numeric_limits<unsigned long long>::max());
  EXPECT_DOUBLE_EQ(j["seconds"].get<double>(), 0.1);
  EXPECT_TRUE(j["whole"].is_number_float());
  EXPECT_EQ(j["ok"], false);
  EXPECT_TRUE(j["none"].is_null());
  EXPECT_EQ(j["notes"], (nlohmann::json{"a", "b"}));
  EXPECT_TRUE(j["empty_list"].is_array() && j["empty_list"].empty());
  EXPECT_TRUE(j["empty_object"].is_object() && j["empty_object"].empty());
  ASSERT_EQ(j["items"].size(), 3u);
  EXPECT_EQ(j["items"][2]["roles"][0], 2);
  EXPECT_EQ(j["raw"]["x"][1], 2);
}

TEST(JsonWriterTest, InlineContainersTakeOneLineEachAndTheRestIsIndented) {
  std::ostringstream out;
  JsonWriter w(out);
  w.BeginObject().Key("items").BeginArray();
  w.Inline().BeginObject().Field("a", 1).Key("b").BeginArray().Int(2).Int(3).EndArray().EndObject();
  w.Inline().BeginObject().Field("a", 4).EndObject();
  w.EndArray().EndObject();
  EXPECT_EQ(out.str(),
            "{\n"
            "  \"items\": [\n"
            "    {\"a\": 1, \"b\": [2, 3]},\n"
            "    {\"a\": 4}\n"
            "  ]\n"
            "}");
}

TEST(JsonWriterTest, StringsAreEscapedAndInvalidUtf8BecomesAReplacementCharacter) {
  const std::string control = std::string("tab\there \"q\" back\\slash nl\n cr\r nul") + '\0' + "\x1f end";
  const std::string utf8 = "Zo\xC3\xAB \xE2\x82\xAC \xF0\x9F\x98\x80";  // ë, €, an emoji
  // A lone continuation byte, a truncated sequence, an overlong '/', a
  // surrogate (U+D800) and a code point past U+10FFFF.
  const std::string bad = std::string("a\x80") + "b\xE2\x82" + "c\xC0\xAF" + "d\xED\xA0\x80" + "e\xF4\x90\x80\x80";
  std::ostringstream out;
  JsonWriter w(out);
  w.BeginObject().Field("control", control).Field("utf8", utf8).Field("bad", bad).EndObject();
  auto j = nlohmann::json::parse(out.str());  // throws on invalid UTF-8 or a raw control character
  EXPECT_EQ(j["control"].get<std::string>(), control);
  EXPECT_EQ(j["utf8"].get<std::string>(), utf8);
  const std::string fffd = "\xEF\xBF\xBD";
  const std::string got = j["bad"].get<std::string>();
  EXPECT_EQ(got.substr(0, 1 + 3), "a" + fffd);
  EXPECT_EQ(got.find('\x80'), std::string::npos);
  EXPECT_NE(got.find("b" + fffd + fffd + "c"), std::string::npos);
  EXPECT_NE(got.find("c" + fffd + fffd + "d"), std::string::npos);
  EXPECT_NE(got.find("d" + fffd + fffd + fffd + "e"), std::string::npos);
  EXPECT_EQ(got.substr(got.size() - 4 * 3), fffd + fffd + fffd + fffd);
}

TEST(JsonWriterTest, NonFiniteDoublesAreNull) {
  std::ostringstream out;
  JsonWriter w(out);
  w.BeginArray()
      .Double(std::numeric_limits<double>::quiet_NaN())
      .Double(std::numeric_limits<double>::infinity())
      .Double(1e300)
      .EndArray();
  auto j = nlohmann::json::parse(out.str());
  EXPECT_TRUE(j[0].is_null());
  EXPECT_TRUE(j[1].is_null());
  EXPECT_DOUBLE_EQ(j[2].get<double>(), 1e300);
}

}  // namespace
}  // namespace enrolsync
