// The user half of a run: read people from the directory (or an MIS table),
// read Moodle's users, plan with plan/user_plan.h and apply. Runs before
// courses and enrolments, so a user created here is enrolled in the same run.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "config/config.h"
#include "moodle/client.h"
#include "plan/user_plan.h"
#include "state/state_db.h"
#include "sync/mirror.h"

namespace enrolsync::sync {

struct UserApplyResult {
  plan::UserSummary applied;
  std::vector<std::string> failures;  // "jsmith: <Moodle's error>"
  bool state_error = false;
};

struct UserSyncOutcome {
  plan::UserPlan plan;
  bool read_ok = false;       // the people were read completely
  std::string read_error;     // why not (then nothing was changed)
  std::size_t people = 0;
  std::map<std::string, int> context_counts;
  bool applied = false;
  UserApplyResult apply;
  // Users created in this run (for plan-only runs: none).
};

struct UserSyncOptions {
  bool apply = false;
  long long allow_removals = -1;
  std::set<model::MoodleId> protected_users;  // the token's user, the main admin
  std::function<void(const std::string&)> trace;  // "\tInserted user …" lines
  // Where Moodle's users are known from (not owned). With full_read (first
  // run, --verify) every user of the auth and every user a person names is
  // read, and the mirror becomes that; else the people the mirror does not
  // know are looked up, and the users the plan writes are read again first.
  MoodleMirror* mirror = nullptr;
  bool full_read = true;
  long long missing_max_age = 7 * 86400;  // re-look-up values Moodle lacked after this
};

// Reads people; kSource/kAuth/kTransient errors come back in read_error, not
// as a failed Result: the rest of the run goes on without user changes.
UserSyncOutcome SyncUsers(const config::Config& cfg, moodle::Client& client, state::StateDb& db,
                          model::Ownership& owned, const UserSyncOptions& options);

// The people, from LDAP or from a table through [source].
Result<std::vector<model::Person>> ReadPeople(const config::Config& cfg, std::map<std::string, int>* context_counts);

// The pending-intent action of a user write (core_user_update_users,
// core_user_delete_users) in flight.
inline constexpr const char* kUserWriteIntent = "user_write";

// Re-reads into the mirror the users a dead run's user writes left pending,
// then drops those intents (kept on a failed read). Call before the user
// sync plans.
Status ReadBackUserIntents(state::StateDb& db, MoodleMirror& mirror);

}  // namespace enrolsync::sync
