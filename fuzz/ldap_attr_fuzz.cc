// LDAP attribute decoding (sources/ldap/ldap_directory.h, sources/username.h):
// what the directory source does with each value an entry carries:
//   - the user attribute -> MoodleUsername (Utf8ToLower, PHP trim);
//   - AD's binary objectGUID -> FormatObjectGuid;
//   - a value placed in a search filter -> EscapeLdapFilterValue, UserFilter.
// Properties: the GUID text is "" or 8-4-4-4-12 lower-case hex; valid UTF-8
// stays valid UTF-8 when lower-cased, ASCII stays the same length;
// lower-casing is idempotent; MoodleUsername has no surrounding PHP whitespace; the escaped value holds
// no filter metacharacter or non-ASCII byte.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz_check.h"
#include "sources/directory.h"
#include "sources/ldap/ldap_directory.h"
#include "sources/sql_util.h"
#include "sources/username.h"

namespace {

bool IsPhpSpace(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\0' || c == '\x0B'; }

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  namespace src = enrolsync::sources;
  std::string_view value(reinterpret_cast<const char*>(data), size);

  // objectGUID: every 16-byte window of the value, and the value itself.
  std::string guid = src::ldap_internal::FormatObjectGuid(value);
  FUZZ_CHECK(value.size() == 16 ? guid.size() == 36 : guid.empty());
  if (size >= 16) {
    std::string g = src::ldap_internal::FormatObjectGuid(value.substr(size - 16));
    FUZZ_CHECK(g.size() == 36);
    for (std::size_t i = 0; i < g.size(); ++i) {
      if (i == 8 || i == 13 || i == 18 || i == 23) {
        FUZZ_CHECK(g[i] == '-');
      } else {
        FUZZ_CHECK((g[i] >= '0' && g[i] <= '9') || (g[i] >= 'a' && g[i] <= 'f'));
      }
    }
  }

  // The user attribute's value as a Moodle username.
  std::string lower = src::ldap_internal::LowerUsername(value);
  std::size_t bad = 0;
  bool ascii = true;
  for (char c : value) ascii = ascii && static_cast<unsigned char>(c) < 0x80;
  if (ascii) FUZZ_CHECK(lower.size() == value.size());
  if (src::internal::IsValidUtf8(value, &bad)) FUZZ_CHECK(src::internal::IsValidUtf8(lower, &bad));
  FUZZ_CHECK(src::Utf8ToLower(lower) == lower);  // lower-casing twice changes nothing
  std::string username = src::MoodleUsername(value);
  if (!username.empty()) {
    FUZZ_CHECK(!IsPhpSpace(username.front()));
    FUZZ_CHECK(!IsPhpSpace(username.back()));
  }

  // The value inside a filter.
  std::string escaped = src::EscapeLdapFilterValue(value);
  for (char ch : escaped) {
    auto c = static_cast<unsigned char>(ch);
    FUZZ_CHECK(c != '*' && c != '(' && c != ')' && c != 0 && c < 0x80);
  }
  src::LdapSettings settings;
  settings.object_class = std::string(value);
  settings.user_attribute = "sAMAccountName";
  std::string filter = src::UserFilter(settings);
  FUZZ_CHECK(!filter.empty());
  return 0;
}
