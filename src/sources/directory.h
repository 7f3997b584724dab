// Reading users from a directory (LDAP / Active Directory) for the user sync.
// The directory is read whole, every run; any failure (bind, one context,
// one page) fails the whole read, so a partial directory never looks like
// users who left.
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "util/result.h"

namespace enrolsync::sources {

struct LdapSettings {
  std::string url;            // ldap://host:389 or ldaps://host:636 (several, space-separated, are tried in order)
  bool start_tls = false;     // StartTLS on ldap://; certificate always verified
  std::string ca_file;        // PEM CA bundle; empty = system default
  std::string bind_dn;        // empty = anonymous bind
  std::string bind_password;  // resolved from *_file/*_env; never logged
  std::vector<std::string> contexts;  // search bases, each searched separately
  bool search_sub = false;            // subtree (true) or one level (false)
  std::string user_attribute = "uid";           // AD: sAMAccountName
  std::string object_class = "inetOrgPerson";   // AD: user; or a full filter "(&(objectClass=x)(y=z))"
  std::string user_type = "default";            // "default" | "ad"
  int page_size = 250;        // RFC 2696 paged results; AD caps pages at MaxPageSize (1000)
  int timeout_seconds = 30;   // network and search time limit
  // Moodle user field -> directory attribute (auth_ldap's field_map_*):
  // firstname, lastname, email, idnumber, department, institution, phone1,
  // phone2, address, city, country, description…
  std::vector<std::pair<std::string, std::string>> map;
};

struct DirectoryUser {
  std::string dn;
  std::string username;  // user_attribute's value, lower-cased as Moodle does
  std::map<std::string, std::string> fields;  // Moodle field -> first value of the mapped attribute
  bool disabled = false;  // AD: userAccountControl has ACCOUNTDISABLE (0x2)
  std::string guid;       // AD objectGUID as 8-4-4-4-12 text; entryUUID elsewhere; may be empty
  std::string context;    // which configured context it came from
};

struct DirectoryRead {
  std::vector<DirectoryUser> users;             // sorted by username
  std::map<std::string, int> context_counts;    // context -> entries found
};

// Binds and searches every context. kAuth for a rejected bind (message names
// the bind DN, never the password); kSource naming the context for a search
// or paging failure; kTransient when the server goes away mid-search.
Result<DirectoryRead> ReadDirectory(const LdapSettings& settings);

// RFC 4515 escaping of a value placed inside a filter: * ( ) \ NUL and
// non-ASCII bytes become \XX.
std::string EscapeLdapFilterValue(std::string_view value);

// The search filter used: (&(objectClass=…)(<user_attribute>=*)), or the
// object_class setting itself when it is already a filter.
std::string UserFilter(const LdapSettings& settings);

}  // namespace enrolsync::sources
