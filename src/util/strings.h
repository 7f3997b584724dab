// Small string helpers shared by every module.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace enrolsync {

std::string Trim(std::string_view s);
std::string ToLower(std::string_view s);  // ASCII only; emails and usernames
bool IEquals(std::string_view a, std::string_view b);  // ASCII case-insensitive
std::vector<std::string> Split(std::string_view s, char sep);
std::string Join(const std::vector<std::string>& parts, std::string_view sep);
// application/x-www-form-urlencoded encoding (space as '+'), as PHP decodes it.
std::string UrlEncode(std::string_view s);
std::string UrlDecode(std::string_view s);
// Appends the UTF-8 encoding of code point `cp` (at most U+10FFFF; the
// caller has checked it is a scalar value).
void AppendUtf8(std::string& out, char32_t cp);
// Parses a non-negative decimal integer; false on anything else.
bool ParseInt64(std::string_view s, long long* out);

}  // namespace enrolsync
