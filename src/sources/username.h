// Usernames as Moodle keeps them. Every user source (LDAP, an MIS table, a
// CSV file) turns the value it reads into a Moodle username with
// MoodleUsername, so they agree with each other and with Moodle.
#pragma once

#include <string>
#include <string_view>

namespace enrolsync::sources {

// Lower-cases UTF-8 text the way Moodle's core_text::strtolower does
// (PHP 8.2's mb_strtolower): Unicode 14.0's full lower-case mapping of each
// code point, on its own (no context rules: Greek capital sigma always
// becomes σ, as in PHP 8.2). U+0130 İ becomes "i" + U+0307, the one mapping
// to two code points. Bytes that are not valid UTF-8 are kept as they are
// (PHP would turn them into "?"; Moodle refuses such a username anyway).
std::string Utf8ToLower(std::string_view text);

// auth_ldap's trim(core_text::strtolower($value)): lower-cased as above,
// then surrounding whitespace removed.
std::string MoodleUsername(std::string_view raw);

}  // namespace enrolsync::sources
