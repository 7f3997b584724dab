#include "util/json_writer.h"

#include <algorithm>
#include <cassert>
#include <charconv>
#include <cmath>

namespace enrolsync {

namespace {

// Length of the valid UTF-8 sequence at s[i], or 0 when it is not one
// (overlong forms, surrogates and code points past U+10FFFF are invalid).
std::size_t Utf8Length(std::string_view s, std::size_t i) {
  const auto b = [&](std::size_t k) { return static_cast<unsigned char>(s[k]); };
  const unsigned char c = b(i);
  std::size_t n;
  unsigned cp;
  if (c < 0x80) return 1;
  if (c >= 0xC2 && c <= 0xDF) {
    n = 2;
    cp = c & 0x1F;
  } else if (c >= 0xE0 && c <= 0xEF) {
    n = 3;
    cp = c & 0x0F;
  } else if (c >= 0xF0 && c <= 0xF4) {
    n = 4;
    cp = c & 0x07;
  } else {
    return 0;
  }
  if (i + n > s.size()) return 0;
  for (std::size_t k = 1; k < n; ++k) {
    if ((b(i + k) & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (b(i + k) & 0x3F);
  }
  if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10FFFF)) || (cp >= 0xD800 && cp <= 0xDFFF))
    return 0;
  return n;
}

}  // namespace

void JsonWriter::AppendQuoted(std::string& out, std::string_view value) {
  static constexpr char kHex[] = "0123456789abcdef";
  out += '"';
  for (std::size_t i = 0; i < value.size();) {
    const unsigned char c = static_cast<unsigned char>(value[i]);
    if (c >= 0x80) {
      const std::size_t n = Utf8Length(value, i);
      if (n == 0) {
        out += "\xEF\xBF\xBD";  // U+FFFD for a byte that is not UTF-8
        ++i;
      } else {
        out.append(value.substr(i, n));
        i += n;
      }
      continue;
    }
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      default:
        if (c < 0x20) {
          out += "\\u00";
          out += kHex[c >> 4];
          out += kHex[c & 0xF];
        } else {
          out += static_cast<char>(c);
        }
    }
    ++i;
  }
  out += '"';
}

void JsonWriter::Separate() {
  if (after_key_) {
    after_key_ = false;
    return;
  }
  if (stack_.empty()) return;
  Frame& f = stack_.back();
  if (f.count++ > 0) out_.put(',');
  if (f.inline_) {
    if (f.count > 1) out_.put(' ');
  } else {
    NewLine(stack_.size());
  }
}

void JsonWriter::NewLine(std::size_t depth) {
  static constexpr char kSpaces[] = "\n                                                                ";
  std::size_t n = depth * static_cast<std::size_t>(indent_);
  out_.write(kSpaces, static_cast<std::streamsize>(1 + std::min(n, sizeof kSpaces - 2)));
  for (n -= std::min(n, sizeof kSpaces - 2); n > 0; --n) out_.put(' ');
}

JsonWriter& JsonWriter::Open(char c, bool object) {
  assert(stack_.empty() || !stack_.back().object || after_key_);
  Separate();
  out_.put(c);
  const bool in_inline = !stack_.empty() && stack_.back().inline_;
  stack_.push_back(Frame{object, next_inline_ || in_inline, 0});
  next_inline_ = false;
  return *this;
}

JsonWriter& JsonWriter::Close(char c, bool object) {
  assert(!stack_.empty() && stack_.back().object == object && !after_key_);
  (void)object;
  const Frame f = stack_.back();
  stack_.pop_back();
  if (f.count > 0 && !f.inline_) NewLine(stack_.size());
  out_.put(c);
  if (stack_.empty()) out_.flush();
  return *this;
}

JsonWriter& JsonWriter::BeginObject() { return Open('{', true); }
JsonWriter& JsonWriter::EndObject() { return Close('}', true); }
JsonWriter& JsonWriter::BeginArray() { return Open('[', false); }
JsonWriter& JsonWriter::EndArray() { return Close(']', false); }

JsonWriter& JsonWriter::Inline() {
  next_inline_ = true;
  return *this;
}

JsonWriter& JsonWriter::Key(std::string_view key) {
  assert(!stack_.empty() && stack_.back().object && !after_key_);
  Separate();
  buf_.clear();
  AppendQuoted(buf_, key);
  buf_ += ": ";
  out_.write(buf_.data(), static_cast<std::streamsize>(buf_.size()));
  after_key_ = true;
  return *this;
}

JsonWriter& JsonWriter::Raw(std::string_view json) {
  assert(stack_.empty() || !stack_.back().object || after_key_);
  Separate();
  out_.write(json.data(), static_cast<std::streamsize>(json.size()));
  return *this;
}

JsonWriter& JsonWriter::String(std::string_view value) {
  buf_.clear();
  AppendQuoted(buf_, value);
  return Raw(buf_);  // Raw and Separate leave buf_ alone
}

JsonWriter& JsonWriter::Int(long long value) {
  char b[24];
  auto r = std::to_chars(b, b + sizeof b, value);
  return Raw(std::string_view(b, static_cast<std::size_t>(r.ptr - b)));
}

JsonWriter& JsonWriter::Uint(unsigned long long value) {
  char b[24];
  auto r = std::to_chars(b, b + sizeof b, value);
  return Raw(std::string_view(b, static_cast<std::size_t>(r.ptr - b)));
}

JsonWriter& JsonWriter::Double(double value) {
  if (!std::isfinite(value)) return Null();
  char b[32];
  auto r = std::to_chars(b, b + sizeof b, value);
  std::string_view text(b, static_cast<std::size_t>(r.ptr - b));
  // "3" reads back as an integer; keep doubles recognisable as numbers with
  // a fraction, as other encoders do ("3.0").
  if (text.find_first_of(".eE") == std::string_view::npos) {
    std::string with(text);
    with += ".0";
    return Raw(with);
  }
  return Raw(text);
}

JsonWriter& JsonWriter::Bool(bool value) { return Raw(value ? "true" : "false"); }
JsonWriter& JsonWriter::Null() { return Raw("null"); }

JsonWriter& JsonWriter::Field(std::string_view key, const std::vector<std::string>& values) {
  Key(key).BeginArray();
  for (const auto& v : values) String(v);
  return EndArray();
}

}  // namespace enrolsync
