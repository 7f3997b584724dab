#include "sources/sql_driver.h"

#include <cstdio>

#include "sources/sql_util.h"
#include "util/strings.h"

namespace enrolsync::sources {

Status ValidateIdentifier(std::string_view name, std::string_view what) {
  auto fail = [&](const std::string& why) {
    return Fail(ErrorCode::kInvalidArgument,
                std::string(what) + " \"" + std::string(name) + "\": " + why);
  };
  if (name.empty()) {
    return Fail(ErrorCode::kInvalidArgument, std::string(what) + " is empty");
  }
  std::size_t offset = 0;
  if (!internal::IsValidUtf8(name, &offset)) {
    return fail("is not valid UTF-8 (byte " + std::to_string(offset + 1) + ")");
  }
  int dots = 0;
  for (unsigned char c : name) {
    if (c == '.') {
      ++dots;
      continue;
    }
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '$' || c == ' ' || c >= 0x80;  // >= 0x80: UTF-8 letters
    if (ok) continue;
    if (c < 0x20 || c == 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "0x%02X", c);
      return fail(std::string("control character ") + buf + " is not allowed in a name");
    }
    return fail(std::string("character '") + static_cast<char>(c) +
                "' is not allowed in a name (use letters, digits, '_', '$', ' ' and one '.' "
                "between schema and table)");
  }
  if (dots > 1) return fail("has more than one '.' (only schema.table is supported)");
  for (const auto& part : internal::SplitQualifiedName(name)) {
    if (part.find_first_not_of(' ') == std::string::npos) {
      return fail(dots ? "has an empty schema or table part around the '.'" : "is blank");
    }
  }
  return Ok();
}

namespace internal {

std::vector<std::string> SplitQualifiedName(std::string_view name) {
  std::vector<std::string> parts;
  std::size_t start = 0;
  for (std::size_t i = 0; i <= name.size(); ++i) {
    if (i == name.size() || name[i] == '.') {
      parts.emplace_back(name.substr(start, i - start));
      start = i + 1;
    }
  }
  return parts;
}

std::string QuoteParts(std::string_view name, std::string_view quote) {
  std::string out;
  bool first = true;
  for (const auto& part : SplitQualifiedName(name)) {
    if (!first) out += '.';
    first = false;
    if (quote.empty()) {
      out += part;
      continue;
    }
    out += quote;
    std::size_t pos = 0;
    while (pos < part.size()) {
      std::size_t hit = part.find(quote, pos);
      if (hit == std::string::npos) {
        out.append(part, pos, std::string::npos);
        break;
      }
      out.append(part, pos, hit - pos);
      out += quote;
      out += quote;
      pos = hit + quote.size();
    }
    out += quote;
  }
  return out;
}

std::string ListNames(const std::vector<std::string>& names) {
  std::string out;
  for (std::size_t i = 0; i < names.size(); ++i) {
    if (i) out += ", ";
    out += names[i];
  }
  return out;
}

std::string TrimMessage(std::string_view message) {
  // One line: drivers put hints on new lines ("\n\tIs the server running...").
  std::string out;
  bool pending_space = false;
  for (char c : message) {
    if (c == '\n' || c == '\r' || c == '\t') {
      pending_space = true;
      continue;
    }
    if (pending_space && !out.empty() && out.back() != ' ') out += ' ';
    pending_space = false;
    out += c;
  }
  while (!out.empty() && out.back() == ' ') out.pop_back();
  return out;
}

bool IsValidUtf8(std::string_view text, std::size_t* bad_offset) {
  const auto* s = reinterpret_cast<const unsigned char*>(text.data());
  std::size_t n = text.size(), i = 0;
  while (i < n) {
    unsigned char c = s[i];
    std::size_t len;
    unsigned int cp;
    if (c < 0x80) {
      ++i;
      continue;
    } else if ((c & 0xE0) == 0xC0) {
      len = 2;
      cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      len = 3;
      cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      len = 4;
      cp = c & 0x07;
    } else {
      *bad_offset = i;
      return false;
    }
    if (i + len > n) {
      *bad_offset = i;
      return false;
    }
    for (std::size_t k = 1; k < len; ++k) {
      if ((s[i + k] & 0xC0) != 0x80) {
        *bad_offset = i;
        return false;
      }
      cp = (cp << 6) | (s[i + k] & 0x3F);
    }
    // Overlong forms, surrogates and values beyond U+10FFFF.
    if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
        (cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF) {
      *bad_offset = i;
      return false;
    }
    i += len;
  }
  return true;
}

bool MatchColumns(const std::vector<std::string>& available,
                  const std::vector<std::string>& requested, std::vector<std::size_t>* indexes,
                  std::string* problem) {
  indexes->clear();
  for (const auto& want : requested) {
    std::vector<std::size_t> exact, folded;
    for (std::size_t i = 0; i < available.size(); ++i) {
      if (available[i] == want) exact.push_back(i);
      if (IEquals(available[i], want)) folded.push_back(i);
    }
    if (exact.size() == 1 || (exact.empty() && folded.size() == 1)) {
      indexes->push_back(exact.empty() ? folded[0] : exact[0]);
      continue;
    }
    if (exact.size() > 1) {
      *problem = "has more than one column named \"" + want + "\"";
    } else if (folded.size() > 1) {
      *problem = "has no column \"" + want + "\" (and several that differ only in case: " +
                 ListNames([&] {
                   std::vector<std::string> names;
                   for (auto i : folded) names.push_back(available[i]);
                   return names;
                 }()) + ")";
    } else {
      *problem = "has no column \"" + want + "\" (columns: " + ListNames(available) + ")";
    }
    return false;
  }
  return true;
}

}  // namespace internal
}  // namespace enrolsync::sources
