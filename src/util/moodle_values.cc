#include "util/moodle_values.h"

#include <arpa/inet.h>

#include <cstdio>

#include "util/strings.h"

namespace enrolsync {
namespace {

bool IsAlnum(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'); }
bool IsAlpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }

// RFC 5322 atext as PHP's pattern spells it: printable ASCII except space
// and "(),.:;<>@[\].
bool IsAtext(char c) {
  unsigned char u = static_cast<unsigned char>(c);
  if (u < 0x21 || u > 0x7E) return false;
  switch (c) {
    case '"': case '(': case ')': case ',': case '.': case ':': case ';': case '<': case '>': case '@':
    case '[': case '\\': case ']':
      return false;
    default: return true;
  }
}

// One atom of the local part: atext+, or a whole "quoted string" (any
// ASCII but NUL, tab, LF, CR, space, '"' and '\' as is; '\' escapes one).
// Returns the characters it counts toward the 64 limit, or -1.
long QuotedOrAtom(std::string_view atom) {
  if (atom.empty()) return -1;
  if (atom.front() != '"') {
    for (char c : atom)
      if (!IsAtext(c)) return -1;
    return static_cast<long>(atom.size());
  }
  if (atom.size() < 2 || atom.back() != '"') return -1;
  long units = 0;
  for (std::size_t i = 1; i + 1 < atom.size(); ++i) {
    unsigned char u = static_cast<unsigned char>(atom[i]);
    if (u == '\\') {
      if (i + 2 >= atom.size() || static_cast<unsigned char>(atom[i + 1]) > 0x7F) return -1;
      ++i;
    } else if (u == 0 || u == '\t' || u == '\n' || u == '\r' || u == ' ' || u == '"' || u > 0x7F) {
      return -1;
    }
    ++units;
  }
  return units;
}

// dot-atom / quoted-string local part; `units` is its length as PHP counts
// it (quotes not counted, an escape pair once).
bool LocalPart(std::string_view local, long* units) {
  *units = 0;
  std::size_t start = 0;
  bool in_quotes = false;
  for (std::size_t i = 0; i <= local.size(); ++i) {
    if (i < local.size()) {
      char c = local[i];
      if (in_quotes && c == '\\') {
        ++i;
        continue;
      }
      if (c == '"') in_quotes = !in_quotes;
      if (in_quotes || c != '.') continue;
    }
    long n = QuotedOrAtom(local.substr(start, i - start));
    if (n < 0) return false;
    *units += n + (i < local.size() ? 1 : 0);
    start = i + 1;
  }
  return !in_quotes;
}

// letters/digits, with inner runs of hyphens.
bool Label(std::string_view label) {
  if (label.empty() || !IsAlnum(label.front()) || !IsAlnum(label.back())) return false;
  for (char c : label)
    if (!IsAlnum(c) && c != '-') return false;
  return true;
}

bool Domain(std::string_view domain) {
  if (domain.size() >= 2 && domain.front() == '[' && domain.back() == ']') {
    std::string inner(domain.substr(1, domain.size() - 2));
    unsigned char buf[16];
    if (inner.size() > 5 && ToLower(inner.substr(0, 5)) == "ipv6:")
      return inet_pton(AF_INET6, inner.c_str() + 5, buf) == 1;
    return inet_pton(AF_INET, inner.c_str(), buf) == 1;
  }
  std::size_t labels = 0, start = 0;
  for (std::size_t i = 0; i <= domain.size(); ++i) {
    if (i < domain.size() && domain[i] != '.') continue;
    std::string_view label = domain.substr(start, i - start);
    if (label.size() >= 64 || !Label(label)) return false;
    ++labels;
    if (i == domain.size() && !IsAlpha(label.front())) return false;  // the top-level label
    start = i + 1;
  }
  return labels >= 2;
}

}  // namespace

bool IsMoodleEmail(std::string_view address) {
  if (address.empty() || address.size() > 320) return false;
  for (char c : address)
    if (c == '\n' || c == '\r' || c == '<' || c == '>' || static_cast<unsigned char>(c) > 0x7F) return false;
  std::size_t at = address.rfind('@');
  if (at == std::string_view::npos || at == 0) return false;
  long units = 0;
  if (!LocalPart(address.substr(0, at), &units) || units > 64) return false;
  if (units + 1 + static_cast<long>(address.size() - at - 1) > 254) return false;
  return Domain(address.substr(at + 1));
}

std::string CleanMoodleUsername(std::string_view value) {
  std::string out;
  for (char c : ToLower(Trim(value))) {
    if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' || c == '@') out += c;
  }
  return out;
}

// The bytes of the UTF-8 character at `i` (1 for a byte that starts none).
static std::size_t CharLen(std::string_view text, std::size_t i) {
  unsigned char c = static_cast<unsigned char>(text[i]);
  std::size_t len = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xE ? 3 : (c >> 3) == 0x1E ? 4 : 1;
  if (i + len > text.size()) return 1;
  for (std::size_t k = 1; k < len; ++k)
    if ((static_cast<unsigned char>(text[i + k]) & 0xC0) != 0x80) return 1;
  return len;
}

std::size_t Utf8Length(std::string_view text) {
  std::size_t n = 0;
  for (std::size_t i = 0; i < text.size(); i += CharLen(text, i)) ++n;
  return n;
}

std::string ShownValue(std::string_view value, std::size_t max) {
  std::string out;
  std::size_t shown = 0, i = 0;
  for (; i < value.size() && shown < max; ++shown) {
    unsigned char c = static_cast<unsigned char>(value[i]);
    if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c == '\t') {
      out += "\\t";
    } else if (c < 0x20 || c == 0x7F) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02X", c);
      out += buf;
    } else if (c < 0x80) {
      out += static_cast<char>(c);
    } else {
      std::size_t len = CharLen(value, i);  // one UTF-8 character, kept whole
      out.append(value.substr(i, len));
      i += len;
      continue;
    }
    ++i;
  }
  if (i < value.size()) out += "… (" + std::to_string(Utf8Length(value)) + " characters)";
  return out;
}

}  // namespace enrolsync
