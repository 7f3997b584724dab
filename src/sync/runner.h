// One run of enrolsync: read sources -> read Moodle -> plan -> (apply).
// The CLI's `plan` and `sync` are thin wrappers around RunOnce().
#pragma once

#include <atomic>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "config/config.h"
#include "moodle/client.h"
#include "plan/plan.h"
#include "sync/executor.h"
#include "sync/user_sync.h"
#include "ops/hooks.h"

namespace enrolsync::sync {

// Exit codes, the same for every command (README "Exit codes").
enum ExitCode : int {
  kExitOk = 0,              // success; with --detailed-exitcode: no changes
  kExitError = 1,           // the run failed before changing anything it should not
  kExitChanges = 2,         // --detailed-exitcode: the plan has changes
  kExitRemovalGuard = 3,    // removals over [safety] max_removals: nothing applied
  kExitPartial = 4,         // applied, but some items failed
  kExitUsage = 64,          // bad command line
  kExitConfig = 78,         // broken config file
};

struct RunOptions {
  bool apply = false;         // sync (true) or plan (false)
  bool verify_all = false;    // --verify: read every course's participants
  bool users = true;          // run the [users] sync (when configured)
  bool enrolments = true;     // run courses and enrolments
  // `enrolsync adopt`: rebuild ownership from Moodle instead of syncing
  // (plan::PlanAdoption); with `apply` it is recorded, nothing is sent to
  // Moodle either way. Allowed on a lost (missing or empty) state.db.
  bool adopt = false;
  long long allow_removals = -1;  // --allow-removals N
  // sync --first-run: this ledger's first sync may leave the enrolments the
  // site already holds to whoever made them (plan/first_run.h).
  bool first_run = false;
  std::string trigger = "manual";  // "manual" | "schedule"
  std::string job = "full";        // "full" | "users": which [[hooks]] run after it
  // Set by SIGTERM: no new phase or batch starts; the run is recorded.
  const std::atomic<bool>* stop = nullptr;
  // Moodle-style trace lines (sync -v) and warnings; may be empty.
  std::function<void(const std::string&)> trace;
  moodle::Progress progress;
  // Replaces the HTTP transport (tests only).
  std::function<std::unique_ptr<moodle::Transport>(const moodle::ClientOptions&)> transport_factory;
};

struct Timings {
  double sources = 0;      // reading the MIS
  double users = 0;        // the whole user sync (directory, Moodle, apply)
  double moodle_read = 0;  // site info, courses, users, participants
  double planning = 0;
  double apply = 0;
};

struct RunReport {
  bool users_ran = false;
  UserSyncOutcome users;
  plan::Plan plan;
  std::optional<plan::Adoption> adoption;  // set by an adopt run
  bool applied = false;
  ApplyResult apply;
  Timings timings;
  std::map<std::string, moodle::FunctionStats> calls;
  int write_calls = 0;
  // Calls sent again after Moodle rolled them back or the connection
  // failed, by reason ("deadlock", "timeout"...): see moodle::Client::Retries.
  std::map<std::string, int> retries;
  double moodle_wait_seconds = 0;  // wall time with a call in flight
  int courses_verified = 0;
  int users_verified = 0;
  std::vector<std::string> warnings;  // e.g. the welcome-message trap
  std::vector<ops::HookResult> hooks;  // [[hooks]] run after this job
  bool stopped = false;               // ended early by SIGTERM
  std::string report_file;            // <state_dir>/reports/run-<id>.json
  std::string error;                  // set when exit_code is kExitError
  int exit_code = kExitOk;
  long long run_id = 0;
};

// Never throws. On kExitError `error` says why (no secret in it).
RunReport RunOnce(const config::Config& cfg, const RunOptions& options);

}  // namespace enrolsync::sync
