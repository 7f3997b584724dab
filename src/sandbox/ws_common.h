// Shared helpers of the web-service function files (ws_<component>.cc):
// reading validated parameters, user details as core_user returns them,
// Moodle's context and user lookups, and each component's registration.
// Internal to the sandbox.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "sandbox/ws_functions.h"

namespace enrolsync::sandbox {

inline constexpr const char* kCoreVersion = "2025100600.02";
inline constexpr const char* kPluginVersion = "2025100600";

// A validated parameter: the string (def when absent or null), the integer
// (booleans as 0/1), whether the key was given.
std::string Str(const Json& j, const char* key, const std::string& def = "");
long long IntOr(const Json& j, const char* key, long long def);
bool Has(const Json& j, const char* key);

// Moodle 5.1's format_string() as web services call it (escape on, filters
// off, the default "strip all tags" on): strip_tags, then '<' and '>' become
// &lt; &gt;, and every '&' not already starting an entity ("&amp;", "&#039;",
// any &[A-Za-z0-9#]{1,8};) becomes &amp;. Quotes are left alone.
std::string FormatString(const std::string& s);

std::string ImageUrl(const CallEnv& env, bool small);

// The users columns UserDetails() reads, in its order.
extern const char* const kUserCols;
// core_user's user_get_user_details for an admin caller.
Json UserDetails(const Row& r, const CallEnv& env);
std::optional<Row> UserRow(SiteStore& s, MoodleId id);
// Charges env.work_units one unit per course the user is enrolled in:
// Moodle's user_get_user_details_courses walks them for every user returned.
void ChargeUserCourses(SiteStore& s, MoodleId userid, const CallEnv& env);
// Throws as Moodle's MUST_EXIST user lookups and deleted checks do.
void RequireLiveUser(SiteStore& s, MoodleId userid);
// external_api::get_context_from_params + validate_context.
MoodleId ContextFromParams(SiteStore& s, const Json& p);

// Each component appends its functions, in site-info order.
void RegisterWebservice(std::vector<FunctionDef>& f);
void RegisterCoreCourse(std::vector<FunctionDef>& f);
void RegisterCoreUser(std::vector<FunctionDef>& f);
void RegisterCoreEnrol(std::vector<FunctionDef>& f);
void RegisterEnrolManual(std::vector<FunctionDef>& f);
void RegisterCoreRole(std::vector<FunctionDef>& f);
void RegisterEnrolMeta(std::vector<FunctionDef>& f);
void RegisterCoreCohort(std::vector<FunctionDef>& f);
void RegisterCoreGroup(std::vector<FunctionDef>& f);

}  // namespace enrolsync::sandbox
