// The user sync's planner (auth_ldap's sync_users, done safely): directory
// people + Moodle users + what we manage + policy -> UserPlan. Pure: no I/O.
#pragma once

#include <set>
#include <string>
#include <vector>

#include "model/model.h"
#include "plan/plan.h"

namespace enrolsync::plan {

enum class RemovedUserAction { kKeep, kSuspend, kDelete };

struct UserPolicy {
  std::string auth = "ldap";  // auth of users we create, and of users we may adopt
  RemovedUserAction removed_user_action = RemovedUserAction::kSuspend;
  // Mapped fields written on create; `update_fields` are also kept in step on
  // every run (auth_ldap's "Update local: On every login/sync").
  std::vector<std::string> mapped_fields;
  std::set<std::string> update_fields;
  // Never suspended, revived or deleted: site admins and the token's own
  // user. Moodle's guest user (username "guest") is never touched at all.
  std::set<MoodleId> protected_users;
  // Set by the run when the directory read was incomplete.
  std::vector<std::string> block_removals;
  long long max_removals = -1;
  double max_removals_percent = -1;
  long long allow_removals = -1;
};

// Moodle's guest account; never adopted, updated, suspended or deleted.
inline constexpr const char* kMoodleGuestUsername = "guest";

// True for the auth methods whose Moodle plugin syncs every account of that
// auth from an external list (the sync_users of auth_ldap, of auth_db and of
// the auth_cas add-on, built on auth_ldap): ldap, db, cas. Only for those
// does enrolsync act, as the plugin would, on accounts it does not manage
// yet: suspend (or delete) the ones missing from the source, revive the
// ones the plugin suspended, create disabled accounts suspended. Every
// other auth (manual, email, oauth2…) is shared with accounts made by hand,
// so only enrolsync's own users are touched.
bool AuthSyncsEveryAccount(const std::string& auth);

enum class UserAction { kCreate, kUpdate, kSuspend, kRevive, kDelete };
const char* UserActionName(UserAction a);

struct FieldChange {
  std::string field, from, to;
};

struct UserItem {
  UserAction action = UserAction::kCreate;
  MoodleId userid = 0;  // 0 for kCreate until applied
  std::string username;
  std::map<std::string, std::string> fields;  // kCreate: every mapped field
  std::vector<FieldChange> changes;           // kUpdate
  // kSuspend: why. kCreate: kDisabledInDirectory when the account is
  // created suspended (core_user_create_users takes no `suspended`: it is
  // created, then core_user_update_users suspended=1). Adoption: the suspension the adopted user already has,
  // when it is the directory's doing (then recorded as enrolsync's own, so
  // it is lifted once the person is back and enabled).
  model::SuspendReason reason = model::SuspendReason::kNone;
  bool adopt = false;  // start managing an existing user (with or without other changes)
  std::string why;
};

struct UserSummary {
  int create = 0, update = 0, suspend = 0, revive = 0, remove = 0;
  int Removals() const { return suspend + remove; }
  int Changes() const { return create + update + suspend + revive + remove; }
};

struct UserPlan {
  std::vector<UserItem> items;     // creates, updates, revives, suspends, deletes
  std::vector<UserItem> adoptions; // existing users to start managing (no Moodle call)
  std::vector<Problem> problems;
  std::vector<std::string> notes;
  UserSummary summary;
  int removals_withheld = 0;
  // The users the sync governs, the base of max_removals' percentage: the
  // managed ones still in Moodle, plus (AuthSyncsEveryAccount) every Moodle
  // user with the policy's auth.
  long long managed_users = 0;
  long long removal_limit = -1;
  bool guard_tripped = false;
};

// `moodle_users`: every Moodle user with the policy's auth, plus any user whose
// username or email matches a person (whatever their auth).
//
// As auth_ldap's sync_users (with removeuser = suspend or delete), where the
// auth is one AuthSyncsEveryAccount:
// - every non-deleted user with the policy's auth missing from the source is
//   suspended (deleted), managed or not: the removal guards apply
//   (block_removals, max_removals), protected users and the guest excepted;
// - a suspended user found again (and enabled) is revived when enrolsync
//   suspended them, or when it did not manage them yet (auth_ldap revives
//   those, with removeuser = suspend); a user an admin suspended while
//   enrolsync managed them stays suspended;
// - an account disabled in the directory is created suspended.
// For other auths only managed users are suspended, deleted or revived, and
// disabled accounts are not created.
// Mapped fields in `update_fields` follow the source; an attribute gone from
// it clears the field (auth_ldap's update_user_record), except email, which
// Moodle refuses empty: kept, and reported as a problem.
UserPlan BuildUserPlan(const std::vector<model::Person>& people, const std::vector<model::User>& moodle_users,
                       const std::map<MoodleId, model::ManagedUser>& managed, const UserPolicy& policy,
                       const std::string& source_name);

std::string UserPlanLine(const UserItem& item);
// auth_ldap's trace line: "\tInserted user jsmith id 823" (without the tab).
std::string UserTraceLine(const UserItem& item);

}  // namespace enrolsync::plan
