// core_role: assign and unassign.
#include "sandbox/ws_common.h"

#include "sandbox/ws_error.h"
#include "util/strings.h"

namespace enrolsync::sandbox {

namespace {

Desc RoleAssignmentDesc() {
  return Single({{"roleid", Req(PType::kInt)},
                 {"userid", Req(PType::kInt)},
                 {"contextid", Opt(PType::kInt)},
                 {"contextlevel", Opt(PType::kAlpha)},
                 {"instanceid", Opt(PType::kInt)}});
}

Json AssignRoles(SiteStore& s, const Json& p, const CallEnv&) {
  for (const Json& a : p["assignments"]) {
    MoodleId ctx = ContextFromParams(s, a);
    auto c = s.ContextById(ctx);
    if (!s.AssignableRoles(c->level).count(IntOr(a, "roleid", 0))) Throw(InvalidParameter());
    s.RoleAssign(IntOr(a, "roleid", 0), IntOr(a, "userid", 0), ctx);
  }
  return nullptr;
}

Json UnassignRoles(SiteStore& s, const Json& p, const CallEnv&) {
  for (const Json& a : p["unassignments"]) {
    MoodleId ctx = ContextFromParams(s, a);
    auto c = s.ContextById(ctx);
    if (!s.AssignableRoles(c->level).count(IntOr(a, "roleid", 0))) Throw(InvalidParameter());
    // Only manual assignments (component "") can be removed this way.
    s.RoleUnassign(IntOr(a, "roleid", 0), IntOr(a, "userid", 0), ctx);
  }
  return nullptr;
}

}  // namespace

void RegisterCoreRole(std::vector<FunctionDef>& f) {
  f.push_back({"core_role_assign_roles", kCoreVersion, Single({{"assignments", Multi(RoleAssignmentDesc())}}),
               AssignRoles});
  f.push_back({"core_role_unassign_roles", kCoreVersion, Single({{"unassignments", Multi(RoleAssignmentDesc())}}),
               UnassignRoles});
}

}  // namespace enrolsync::sandbox
