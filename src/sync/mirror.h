// The mirror (state::Mirror) kept in step with Moodle at the least cost, so
// that a run plans against what enrolsync already knows and reads from Moodle
// only what it cannot know (README "What a run reads"):
//   - new users and courses: ids above the highest one seen, scanned in
//     pages (core_user_get_users_by_field field=id and
//     core_course_get_courses_by_field field=ids answer only for ids that
//     exist, so a scan that finds nothing costs one small call);
//   - records due in the verification rotation, and those the plan writes;
//   - everything, when the mirror is not complete yet or with --verify.
// Records enrolsync writes are updated here as they are written, without a
// read. Errors from the state database are kept (state_error()), never
// thrown away; Moodle errors come back to the caller.
//
// Thread safety: one thread.
#pragma once

#include <set>
#include <string>
#include <vector>

#include "moodle/client.h"
#include "state/state_db.h"
#include "util/result.h"

namespace enrolsync::sync {

class MoodleMirror {
 public:
  MoodleMirror(moodle::Client& client, state::StateDb& db, long long now);

  // Loads the mirror; kIo when the state database cannot be read.
  Status Load();

  const state::Mirror& data() const { return m_; }
  std::vector<model::User> Users() const;
  std::vector<model::Course> Courses() const;

  // Full reads: the mirror becomes exactly `users` (or `courses`; that one
  // complete). The users are complete once every source value was also
  // looked up: MarkUsersComplete().
  void ReplaceUsers(const std::vector<model::User>& users);
  void MarkUsersComplete();
  void ReplaceCourses(const std::vector<model::Course>& courses);

  // Users and courses created since the last scan (ids above max_*id),
  // in the same call as re-reading `refresh` (the rotation's share): an id
  // of `refresh` Moodle no longer has is dropped and added to `gone`.
  // Returns how many new ones were found.
  Result<int> ScanNewUsers(const std::vector<model::MoodleId>& refresh = {},
                           std::vector<model::MoodleId>* gone = nullptr);
  Result<int> ScanNewCourses(const std::vector<model::MoodleId>& refresh = {},
                             std::vector<model::MoodleId>* gone = nullptr);

  // Re-reads these records from Moodle; an id Moodle no longer has is
  // dropped (deleted by hand). Returns the ids that were dropped.
  Result<std::vector<model::MoodleId>> RefreshUsers(const std::vector<model::MoodleId>& ids);
  Result<std::vector<model::MoodleId>> RefreshCourses(const std::vector<model::MoodleId>& ids);

  // Records read some other way (lookups), and records enrolsync wrote.
  void Saw(const std::vector<model::User>& users);
  void Wrote(const model::User& user);
  void Wrote(const model::Course& course);
  void Forget(model::MoodleId userid);

  // Lookup values Moodle had no user for. Fresh = checked within max_age
  // seconds, spread per value (between half and all of it) so that they do
  // not all come due in the same run.
  bool MissingIsFresh(const std::string& value, long long max_age) const;
  void Missing(const std::vector<std::string>& values);
  void Found(const std::vector<std::string>& values);

  // Read from Moodle in this run (so the plan may write it).
  bool ReadThisRun(model::MoodleId userid) const;

  bool state_error() const { return state_error_; }

 private:
  void Persist(Status st) {
    if (!st) state_error_ = true;
  }
  void SaveUser(const model::User& u, bool read);

  moodle::Client& client_;
  state::StateDb& db_;
  long long now_;
  state::Mirror m_;
  std::set<model::MoodleId> read_;
  bool state_error_ = false;
};

}  // namespace enrolsync::sync
