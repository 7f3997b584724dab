// A JSON text written as it is made, for documents too big to build as a
// tree first: a run report with a million items (sync/report.h) is streamed
// to its file and to --json this way.
//
// The writer checks nesting only as far as it needs to place commas and
// newlines: a Key outside an object, or an End without its Begin, is a
// programming error (asserted in debug builds). Strings are written as
// UTF-8 with JSON's escapes; a byte that is not valid UTF-8 is written as
// U+FFFD, so the output is always valid JSON.
//
// Not thread-safe. The stream is borrowed: it must outlive the writer.
// Errors of the stream are the stream's (check `out` after writing).
#pragma once

#include <ostream>
#include <string>
#include <string_view>
#include <vector>

namespace enrolsync {

class JsonWriter {
 public:
  // `indent` spaces per level; containers opened while Inline() is in force
  // are written on one line ({"a": 1, "b": [2, 3]}).
  explicit JsonWriter(std::ostream& out, int indent = 2) : out_(out), indent_(indent) {}

  JsonWriter& BeginObject();
  JsonWriter& EndObject();
  JsonWriter& BeginArray();
  JsonWriter& EndArray();
  // The next container and everything inside it go on one line.
  JsonWriter& Inline();

  JsonWriter& Key(std::string_view key);
  JsonWriter& String(std::string_view value);
  JsonWriter& Int(long long value);
  JsonWriter& Uint(unsigned long long value);
  // Shortest text that reads back as the same double; NaN and infinities,
  // which JSON lacks, as null.
  JsonWriter& Double(double value);
  JsonWriter& Bool(bool value);
  JsonWriter& Null();
  // `json` is already one encoded JSON value (from another encoder): written
  // as it is, in place of a value.
  JsonWriter& Raw(std::string_view json);

  // Key(key) then the value, for the common case.
  JsonWriter& Field(std::string_view key, std::string_view value) { return Key(key).String(value); }
  JsonWriter& Field(std::string_view key, const char* value) { return Key(key).String(value); }
  JsonWriter& Field(std::string_view key, const std::string& value) { return Key(key).String(value); }
  JsonWriter& Field(std::string_view key, bool value) { return Key(key).Bool(value); }
  JsonWriter& Field(std::string_view key, int value) { return Key(key).Int(value); }
  JsonWriter& Field(std::string_view key, long value) { return Key(key).Int(value); }
  JsonWriter& Field(std::string_view key, long long value) { return Key(key).Int(value); }
  JsonWriter& Field(std::string_view key, unsigned long value) { return Key(key).Uint(value); }
  JsonWriter& Field(std::string_view key, unsigned long long value) { return Key(key).Uint(value); }
  JsonWriter& Field(std::string_view key, double value) { return Key(key).Double(value); }
  // An array of strings.
  JsonWriter& Field(std::string_view key, const std::vector<std::string>& values);

  // `value` as a JSON string, quotes included (the escaping String uses).
  static void AppendQuoted(std::string& out, std::string_view value);

 private:
  struct Frame {
    bool object = false;
    bool inline_ = false;
    std::size_t count = 0;
  };
  // Before a value (or a key in an object): the comma and the line break.
  void Separate();
  // A line break and `depth` levels of indent.
  void NewLine(std::size_t depth);
  JsonWriter& Open(char c, bool object);
  JsonWriter& Close(char c, bool object);

  std::ostream& out_;
  int indent_;
  std::vector<Frame> stack_;
  bool after_key_ = false;    // a key was written; its value comes next
  bool next_inline_ = false;  // Inline() was called
  std::string buf_;           // scratch for one escaped string
};

}  // namespace enrolsync
