#include "sources/username.h"

#include "util/strings.h"

#include <algorithm>
#include <cstdint>
#include <iterator>

namespace enrolsync::sources {
namespace {

struct LowerRun {
  std::uint32_t first, last;
  std::uint8_t stride;
  std::int32_t delta;
};

constexpr LowerRun kLowerRuns[] = {
#include "sources/lower_table.inc"
};

std::uint32_t LowerCodePoint(std::uint32_t cp) {
  // The last run starting at or before cp.
  auto it = std::upper_bound(std::begin(kLowerRuns), std::end(kLowerRuns), cp,
                             [](std::uint32_t c, const LowerRun& r) { return c < r.first; });
  if (it == std::begin(kLowerRuns)) return cp;
  const LowerRun& r = *std::prev(it);
  if (cp > r.last || (cp - r.first) % r.stride != 0) return cp;
  return static_cast<std::uint32_t>(static_cast<std::int64_t>(cp) + r.delta);
}


// Decodes one well-formed UTF-8 sequence at s[i] (no overlongs, no
// surrogates, nothing above U+10FFFF); returns its length, 0 if malformed.
std::size_t Decode(std::string_view s, std::size_t i, std::uint32_t* cp) {
  auto b = [&](std::size_t k) { return static_cast<unsigned char>(s[i + k]); };
  auto cont = [&](std::size_t k) { return i + k < s.size() && (b(k) & 0xC0) == 0x80; };
  const unsigned char c = b(0);
  if (c < 0x80) {
    *cp = c;
    return 1;
  }
  if (c >= 0xC2 && c <= 0xDF && cont(1)) {
    *cp = ((c & 0x1Fu) << 6) | (b(1) & 0x3Fu);
    return 2;
  }
  if (c >= 0xE0 && c <= 0xEF && cont(1) && cont(2)) {
    *cp = ((c & 0x0Fu) << 12) | ((b(1) & 0x3Fu) << 6) | (b(2) & 0x3Fu);
    if (*cp < 0x800 || (*cp >= 0xD800 && *cp <= 0xDFFF)) return 0;
    return 3;
  }
  if (c >= 0xF0 && c <= 0xF4 && cont(1) && cont(2) && cont(3)) {
    *cp = ((c & 0x07u) << 18) | ((b(1) & 0x3Fu) << 12) | ((b(2) & 0x3Fu) << 6) | (b(3) & 0x3Fu);
    if (*cp < 0x10000 || *cp > 0x10FFFF) return 0;
    return 4;
  }
  return 0;
}

}  // namespace

std::string Utf8ToLower(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size();) {
    auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {  // fast path
      out += static_cast<char>(c >= 'A' && c <= 'Z' ? c + 32 : c);
      ++i;
      continue;
    }
    std::uint32_t cp = 0;
    std::size_t n = Decode(s, i, &cp);
    if (n == 0) {
      out += static_cast<char>(c);
      ++i;
      continue;
    }
    if (cp == 0x130) {
      out += "i\xCC\x87";  // İ -> i + combining dot above (SpecialCasing.txt)
    } else {
      AppendUtf8(out, LowerCodePoint(cp));
    }
    i += n;
  }
  return out;
}

std::string MoodleUsername(std::string_view raw) {
  // PHP's trim(): " \t\n\r\0\x0B" (not \f, unlike isspace).
  static constexpr std::string_view kPhpSpace(" \t\n\r\0\x0B", 6);
  std::string lower = Utf8ToLower(raw);
  const auto b = lower.find_first_not_of(kPhpSpace);
  if (b == std::string::npos) return "";
  const auto e = lower.find_last_not_of(kPhpSpace);
  return lower.substr(b, e - b + 1);
}

}  // namespace enrolsync::sources
