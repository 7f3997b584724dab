// What Moodle accepts in a value, checked before the value is sent: one bad
// value must be a problem with its own row, not an invalid_parameter_exception
// that fails a whole web-service call (core_user_get_users_by_field cleans
// every value and throws for the batch when one does not survive).
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace enrolsync {

// Moodle's validate_email(), which clean_param(PARAM_EMAIL) uses: not empty,
// no line break (PHPMailer), no '<' or '>', and PHP's filter_var
// FILTER_VALIDATE_EMAIL without FILTER_FLAG_EMAIL_UNICODE: at most 320
// bytes, a local part of at most 64 characters made of dot-separated atoms
// (RFC 5322 atext, or a whole quoted string), '@', and a domain of at least
// two labels (letters, digits, inner hyphens, each under 64 characters; the
// last starting with a letter) or an address literal ([192.0.2.1],
// [IPv6:…]). ASCII only. Surrounding whitespace makes it invalid: trim first.
bool IsMoodleEmail(std::string_view address);

// clean_param(PARAM_USERNAME) with $CFG->extendedusernamechars off: trimmed,
// lower-cased (ASCII here), and every character other than a-z 0-9 - . _ @
// removed. A value Moodle's lookups accept equals its own cleaned form.
std::string CleanMoodleUsername(std::string_view value);

// Moodle's column sizes (public/lib/db/install.xml), in characters.
inline constexpr std::size_t kCourseShortnameMax = 255;
inline constexpr std::size_t kCourseFullnameMax = 254;
inline constexpr std::size_t kCourseIdnumberMax = 100;
inline constexpr std::size_t kUserUsernameMax = 100;
inline constexpr std::size_t kUserEmailMax = 100;
inline constexpr std::size_t kUserIdnumberMax = 255;
inline constexpr std::size_t kUserNameMax = 100;  // firstname, lastname

// The length of UTF-8 text in code points (Moodle's columns count
// characters); bytes that are not valid UTF-8 count one each.
std::size_t Utf8Length(std::string_view text);

// A value as reports print it: control characters escaped (\n, \r, \t,
// \xNN), and anything longer than `max` characters cut, with the full length
// shown: "aaaa… (1048576 characters)".
std::string ShownValue(std::string_view value, std::size_t max = 200);

}  // namespace enrolsync
