// The local state database (SQLite, <state_dir>/state.db): what enrolsync
// owns in Moodle, when each course was last verified against Moodle, and the
// history of runs. Moodle stays the truth for what exists; this file is the
// truth for what is *ours*. Losing it is safe: enrolsync then owns nothing,
// removes nothing, and re-adopts nothing on its own (see README).
//
// Thread-safety: one StateDb per process, used from one thread.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "model/model.h"
#include "util/result.h"

namespace enrolsync::state {

using model::MoodleId;

struct RunRecord {
  long long id = 0;
  long long started = 0;  // unix seconds
  long long ended = 0;
  std::string trigger;    // "manual" | "schedule"
  std::string command;    // "sync" | "plan"
  int exit_code = -1;
  std::string summary_json;
};

// The mirror: what enrolsync last read from Moodle or wrote to it, for each
// user and course it has met. A run plans against it and reads from Moodle
// only what it cannot know (sync/mirror.h). "Complete" means a full read
// filled it (every course; every user of the synced auth plus every user a
// source value named), after which new ids are found by scanning above
// max_*id.
struct Mirror {
  std::map<MoodleId, model::User> users;
  std::map<MoodleId, long long> user_checked;  // unix seconds
  std::map<MoodleId, model::Course> courses;
  std::map<MoodleId, long long> course_checked;
  std::map<std::string, long long> missing;  // lookup value Moodle had no user for -> when
  bool users_complete = false;
  bool courses_complete = false;
  MoodleId max_userid = 0;    // every id up to here was scanned
  MoodleId max_courseid = 0;
};

// A change a run is about to send to Moodle (pending_intent): recorded
// before the step's calls, dropped as its batch is answered. One left behind
// says the run died while it may have been applied. action is a plan
// action name: "create_course" (shortname, idnumber), "enrol",
// "unsuspend", "suspend", "role_assign", "role_unassign", "unenrol".
struct Intent {
  long long id = 0;  // set by AddIntents / LoadIntents
  std::string action;
  MoodleId courseid = 0, userid = 0, roleid = 0;
  std::string shortname, idnumber;         // create_course
  std::string source_course, source_user;  // the row that asked for it
  bool owns_enrolment = true;              // role_assign: the enrolment was not ours
};

// A write Moodle refused in the last sync (its own per-item error, not a
// transport failure): the next sync sends it alone first
// (moodle::Client::SendAlone).
struct FailedItem {
  std::string function;  // e.g. enrol_manual_enrol_users
  MoodleId courseid = 0, userid = 0;
};

class StateDb {
 public:
  // Creates `state_dir` (0700) and the database if missing; upgrades the
  // schema. kIo names the path on failure. A missing or empty state.db in a
  // state_dir where earlier runs left reports/ or backups/ is refused (kIo,
  // saying how to restore): it is a lost ledger, not a first run.
  // kAllowLostLedger (enrolsync adopt --apply) skips that refusal: the
  // ledger is about to be rebuilt from Moodle.
  enum OpenMode { kRefuseLostLedger, kAllowLostLedger };
  static Result<std::unique_ptr<StateDb>> Open(const std::string& state_dir, OpenMode mode = kRefuseLostLedger);
  // Whether Open would refuse `state_dir` as a lost ledger.
  static bool IsLostLedger(const std::string& state_dir);
  // An empty database in memory, gone when closed (adopt's plan on a lost
  // ledger must not leave a state.db behind that defuses the refusal).
  static Result<std::unique_ptr<StateDb>> OpenScratch();
  ~StateDb();

  Result<model::Ownership> LoadOwnership();

  // Ownership changes. Each call is its own transaction unless inside
  // Begin()/Commit().
  Status UpsertEnrolment(const model::OwnedEnrolment& e);
  Status DeleteEnrolment(model::CourseUser key);
  Status RecordCreatedCourse(MoodleId courseid, const std::string& shortname, long long now);
  // Users the user sync manages (created or adopted), and why we suspended them.
  // Pending changes (see Intent). AddIntents returns the new rows' ids in
  // order; call these inside Begin/Commit so a batch's bookkeeping lands at
  // once.
  Result<std::vector<long long>> AddIntents(const std::vector<Intent>& intents);
  Status DropIntents(const std::vector<long long>& ids);
  Result<std::vector<Intent>> LoadIntents();  // oldest first; empty when none

  // The last sync's refused writes: Load gives them, Replace stores this
  // sync's (all of them, in one transaction).
  Result<std::vector<FailedItem>> LoadFailedItems();
  Status ReplaceFailedItems(const std::vector<FailedItem>& items);

  Status UpsertManagedUser(const model::ManagedUser& u);
  Status DeleteManagedUser(MoodleId userid);

  // The mirror. Save* replaces the records given (checked = when read or
  // written); meta keys: users_complete, courses_complete, max_userid,
  // max_courseid.
  Result<Mirror> LoadMirror();
  Status SaveMirrorUsers(const std::vector<model::User>& users, long long checked);
  Status DropMirrorUsers(const std::vector<MoodleId>& ids);
  Status SaveMirrorCourses(const std::vector<model::Course>& courses, long long checked);
  Status DropMirrorCourses(const std::vector<MoodleId>& ids);
  Status SaveMirrorMissing(const std::vector<std::string>& values, long long checked);
  Status DropMirrorMissing(const std::vector<std::string>& values);
  Status SetMirrorMeta(const std::string& key, long long value);

  // Other keys of the meta table, e.g. "first_sync" (plan/first_run.h):
  // GetMeta gives "" for a key never set.
  Result<std::string> GetMeta(const std::string& key);
  Status SetMeta(const std::string& key, const std::string& value);

  Status Begin();
  Status Commit();
  Status Rollback();
  // Copies the database to <state_dir>/backups/state-<stamp>.db (a
  // consistent snapshot, VACUUM INTO) and keeps the `keep` newest copies
  // (stamps sort by time). Returns the copy's path.
  Result<std::string> Backup(const std::string& stamp, int keep);

  // When each course's participants were last read from Moodle.
  Result<std::map<MoodleId, long long>> LastVerified();
  Status MarkVerified(const std::vector<MoodleId>& courseids, long long now);

  Result<long long> BeginRun(const std::string& trigger, const std::string& command, long long now);
  // Records the run's end and its report; in the same transaction, the
  // reports of runs older than the newest `keep_runs` lose their item lists
  // (items, problems, failures, notes, trace; "problems_count" is kept), so
  // the history stays bounded while every run keeps its summary.
  Status FinishRun(long long id, long long now, int exit_code, const std::string& summary_json,
                   int keep_runs = 30);
  Result<std::vector<RunRecord>> RecentRuns(int limit);

  const std::string& path() const { return path_; }

 private:
  StateDb() = default;
  struct Impl;
  std::unique_ptr<Impl> impl_;
  std::string path_;
};

// An exclusive lock on <state_dir>/lock (flock): no two runs overlap. The lock
// is released when the object is destroyed or the process exits.
class RunLock {
 public:
  // kIo "another enrolsync run holds <path>" if it is taken.
  static Result<std::unique_ptr<RunLock>> Acquire(const std::string& state_dir);
  ~RunLock();

 private:
  int fd_ = -1;
};

}  // namespace enrolsync::state
