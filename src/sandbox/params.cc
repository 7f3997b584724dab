#include "sandbox/params.h"

#include <cctype>

#include "sandbox/ws_error.h"
#include "util/strings.h"

namespace enrolsync::sandbox {

std::string CleanUsername(const std::string& s) {
  std::string t = ToLower(Trim(s));
  std::string out;
  for (char c : t) {
    if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '@' ||
        c == '_') {
      out += c;
    }
  }
  return out;
}

bool IsValidEmail(const std::string& s) {
  auto at = s.find('@');
  if (at == std::string::npos || at == 0 || at + 1 >= s.size()) return false;
  if (s.find('@', at + 1) != std::string::npos) return false;
  for (char c : s) {
    if (std::isspace(static_cast<unsigned char>(c)) || c == '<' || c == '>' || c == '"' || c == ',')
      return false;
  }
  return s.find('.', at) != std::string::npos;
}

namespace {

[[noreturn]] void Bad() { Throw(InvalidParameter()); }

bool AllOf(const std::string& s, bool (*ok)(char)) {
  for (char c : s) {
    if (!ok(c)) return false;
  }
  return true;
}

Json CleanValue(PType t, const std::string& v) {
  switch (t) {
    case PType::kInt: {
      std::string s = Trim(v);
      bool neg = !s.empty() && (s[0] == '-' || s[0] == '+');
      std::string digits = neg ? s.substr(1) : s;
      long long n = 0;
      if (digits.empty() || !ParseInt64(digits, &n)) Bad();
      return (!s.empty() && s[0] == '-') ? -n : n;
    }
    case PType::kBool:
      if (v == "0") return false;
      if (v == "1") return true;
      Bad();
    case PType::kAlpha:
      if (!AllOf(v, [](char c) { return std::isalpha(static_cast<unsigned char>(c)) != 0; })) Bad();
      return v;
    case PType::kAlphanumext:
      if (!AllOf(v, [](char c) {
            return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '_' || c == '-';
          }))
        Bad();
      return v;
    case PType::kPlugin:
      if (!AllOf(v, [](char c) {
            return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
          }))
        Bad();
      return v;
    case PType::kUsername:
      if (CleanUsername(v) != v) Bad();
      return v;
    case PType::kEmail:
      if (!v.empty() && !IsValidEmail(v)) Bad();
      return v;
    case PType::kRaw:
    case PType::kText:
      return v;
  }
  Bad();
}

}  // namespace

Json Validate(const Desc& desc, const Json& input) {
  switch (desc.kind) {
    case Desc::kValue:
      if (!input.is_string()) Bad();
      return CleanValue(desc.type, input.get<std::string>());
    case Desc::kSingle: {
      if (!input.is_object()) Bad();
      Json out = Json::object();
      std::size_t used = 0;
      for (const auto& [name, sub] : desc.fields) {
        auto it = input.find(name);
        if (it == input.end()) {
          if (sub.need == Need::kRequired) Bad();
          if (sub.need == Need::kDefault) out[name] = sub.def;
          continue;
        }
        ++used;
        out[name] = Validate(sub, *it);
      }
      if (used != input.size()) Bad();  // unexpected keys
      return out;
    }
    case Desc::kMultiple: {
      if (!input.is_object()) Bad();
      Json out = Json::array();
      for (const auto& item : input) out.push_back(Validate(desc.content.front(), item));
      return out;
    }
  }
  Bad();
}

}  // namespace enrolsync::sandbox
