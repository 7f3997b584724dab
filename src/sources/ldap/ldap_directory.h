// Internals of the LDAP / Active Directory source (sources/directory.h is the
// public interface). Exposed for tests only; ldap.h stays out of here.
#pragma once

#include <functional>
#include <string>
#include <string_view>

#include "sources/directory.h"
#include "util/result.h"

namespace enrolsync::sources::ldap_internal {

struct ReadHooks {
  // Called after each page of each context has been received and parsed,
  // before the next page is asked for (page counts from 1).
  std::function<void(const std::string& context, int page)> after_page;
};

// ReadDirectory with test hooks.
Result<DirectoryRead> ReadDirectoryWithHooks(const LdapSettings& settings, const ReadHooks& hooks);

// AD's binary objectGUID (16 bytes; the first three groups little-endian) as
// the text AD tools show: "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx", lower
// case. Anything but 16 bytes gives "".
std::string FormatObjectGuid(std::string_view bytes);

// Lower-cases a username as Moodle does (core_text::strtolower); the same
// function as sources::Utf8ToLower (sources/username.h), which every user
// source uses.
std::string LowerUsername(std::string_view s);

}  // namespace enrolsync::sources::ldap_internal
