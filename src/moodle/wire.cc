#include "moodle/wire.h"

#include <cctype>

#include "util/secrets.h"
#include "util/strings.h"

namespace enrolsync::moodle::wire {

using nlohmann::json;

std::string EncodeBody(std::string_view token, std::string_view function, const FormFields& params) {
  std::string body;
  body.reserve(64 + params.size() * 40);
  body += "wstoken=";
  body += UrlEncode(token);
  body += "&wsfunction=";
  body += UrlEncode(function);
  for (const auto& [key, value] : params) {
    body += '&';
    body += UrlEncode(key);
    body += '=';
    body += UrlEncode(value);
  }
  return body;
}

namespace {

std::string Truncate(std::string s, std::size_t n) {
  if (s.size() > n) {
    s.resize(n);
    s += "…";
  }
  return s;
}

void ReplaceAll(std::string& s, std::string_view from, std::string_view to) {
  std::size_t pos = 0;
  while ((pos = s.find(from, pos)) != std::string::npos) {
    s.replace(pos, from.size(), to);
    pos += to.size();
  }
}

}  // namespace

std::string CleanText(std::string_view text) {
  std::string_view t = text;
  if (t.substr(0, 6) == "error/") t.remove_prefix(6);
  std::string out;
  out.reserve(t.size());
  bool in_tag = false;
  for (char c : t) {
    if (in_tag) {
      if (c == '>') {
        in_tag = false;
        out += ' ';  // block boundaries (<div>, <br>) become spaces
      }
      continue;
    }
    if (c == '<') {
      in_tag = true;
      continue;
    }
    out += c;
  }
  ReplaceAll(out, "&amp;", "&");
  ReplaceAll(out, "&lt;", "<");
  ReplaceAll(out, "&gt;", ">");
  ReplaceAll(out, "&quot;", "\"");
  ReplaceAll(out, "&#39;", "'");
  ReplaceAll(out, "&#039;", "'");
  // Collapse whitespace (debuginfo carries newlines and indentation).
  std::string collapsed;
  collapsed.reserve(out.size());
  bool space = false;
  for (char c : out) {
    if (std::isspace(static_cast<unsigned char>(c))) {
      space = true;
      continue;
    }
    if (space && !collapsed.empty()) collapsed += ' ';
    space = false;
    collapsed += c;
  }
  return collapsed;
}

Result<json> ParseResponse(std::string_view function, std::string_view body) {
  const std::string fn(function);
  json doc = json::parse(body.begin(), body.end(), nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded()) {
    if (body.empty()) return Fail(ErrorCode::kIo, fn + ": Moodle sent an empty response (expected JSON)");
    return Fail(ErrorCode::kIo, Redact(fn + ": Moodle sent a response that is not JSON: " +
                                       Truncate(std::string(body.substr(0, 200)), 200)));
  }
  if (doc.is_object() && doc.contains("exception")) {
    Error e;
    e.moodle_errorcode = Redact(JStr(doc, "errorcode"));
    e.moodle_exception = Redact(JStr(doc, "exception"));
    e.code = e.moodle_errorcode == "invalidtoken" ? ErrorCode::kAuth : ErrorCode::kMoodle;
    std::string text = CleanText(JStr(doc, "message"));
    if (text.empty()) text = "Moodle exception " + e.moodle_exception;
    std::string msg = fn + ": " + text;
    // An errorcode that is a whole HTML string (password policy) repeats the
    // message; only plain codes are worth showing.
    if (!e.moodle_errorcode.empty() && e.moodle_errorcode.find('<') == std::string::npos &&
        e.moodle_errorcode != text) {
      msg += " (" + e.moodle_errorcode + ")";
    }
    if (e.code == ErrorCode::kAuth) msg += ": check the web-service token in the config";
    std::string debug = CleanText(JStr(doc, "debuginfo"));
    if (!debug.empty()) msg += " [debuginfo: " + Truncate(debug, 300) + "]";
    e.message = Redact(msg);
    return Fail(std::move(e));
  }
  return doc;
}

namespace {


// A numeric entity body ("#39", "#x26"): its code point, or -1.
long NumericEntity(std::string_view body) {
  if (body.size() < 2 || body[0] != '#') return -1;
  bool hex = body[1] == 'x' || body[1] == 'X';
  std::string_view digits = body.substr(hex ? 2 : 1);
  if (digits.empty() || digits.size() > 7) return -1;
  long v = 0;
  for (char c : digits) {
    int d;
    if (c >= '0' && c <= '9') {
      d = c - '0';
    } else if (hex && c >= 'a' && c <= 'f') {
      d = c - 'a' + 10;
    } else if (hex && c >= 'A' && c <= 'F') {
      d = c - 'A' + 10;
    } else {
      return -1;
    }
    v = v * (hex ? 16 : 10) + d;
  }
  // Not a character: NUL, UTF-16 surrogates, beyond Unicode.
  if (v == 0 || (v >= 0xD800 && v <= 0xDFFF) || v > 0x10FFFF) return -1;
  return v;
}

}  // namespace

std::string DecodeHtml(std::string_view text) {
  if (text.find('&') == std::string_view::npos) return std::string(text);
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size();) {
    if (text[i] != '&') {
      out += text[i++];
      continue;
    }
    const std::size_t semi = text.find(';', i + 1);
    // The longest entity decoded is "&#x10FFFF;" / "&#1114111;" (10 chars).
    if (semi == std::string_view::npos || semi - i > 10) {
      out += text[i++];
      continue;
    }
    const std::string_view body = text.substr(i + 1, semi - i - 1);
    if (body == "amp") {
      out += '&';
    } else if (body == "lt") {
      out += '<';
    } else if (body == "gt") {
      out += '>';
    } else if (body == "quot") {
      out += '"';
    } else if (long cp = NumericEntity(body); cp > 0) {
      AppendUtf8(out, static_cast<char32_t>(cp));
    } else {
      out += text[i++];  // not ours: keep the '&' and go on after it
      continue;
    }
    i = semi + 1;
  }
  return out;
}

std::string JName(const json& obj, const char* key) { return DecodeHtml(JStr(obj, key)); }

model::MoodleId JId(const json& obj, const char* key) {
  if (!obj.is_object()) return 0;
  auto it = obj.find(key);
  if (it == obj.end()) return 0;
  if (it->is_number_integer()) return it->get<long long>();
  if (it->is_number_unsigned()) return static_cast<model::MoodleId>(it->get<unsigned long long>());
  if (it->is_number_float()) {
    // Outside long long's range the conversion is undefined: not an id.
    const double d = it->get<double>();
    if (!(d >= -9223372036854775808.0 && d < 9223372036854775808.0)) return 0;
    return static_cast<model::MoodleId>(d);
  }
  if (it->is_string()) {
    long long v = 0;
    if (ParseInt64(it->get_ref<const std::string&>(), &v)) return v;
  }
  return 0;
}

std::string JStr(const json& obj, const char* key) {
  if (!obj.is_object()) return {};
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return {};
  if (it->is_string()) return it->get<std::string>();
  return it->dump();
}

bool JBool(const json& obj, const char* key, bool dflt) {
  if (!obj.is_object()) return dflt;
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return dflt;
  if (it->is_boolean()) return it->get<bool>();
  if (it->is_number()) return it->get<double>() != 0;
  if (it->is_string()) {
    const auto& s = it->get_ref<const std::string&>();
    if (s == "1" || s == "true") return true;
    if (s == "0" || s == "false" || s.empty()) return false;
  }
  return dflt;
}

}  // namespace enrolsync::moodle::wire
