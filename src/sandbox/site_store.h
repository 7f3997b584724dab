// The simulated Moodle site's state in SQLite (state_dir/site.db), and the
// operations Moodle's own APIs perform on it (enrol_user, role_assign, meta
// sync, delete_user...). Not thread-safe: the Sandbox serialises access.
// Operations throw WsException/DbError; callers wrap them in a transaction.
#pragma once

#include <optional>
#include <set>
#include <string>
#include <vector>

#include "model/model.h"
#include "sandbox/db.h"

namespace enrolsync::sandbox {

using model::MoodleId;

inline constexpr int kContextSystem = 10;
inline constexpr int kContextUser = 30;
inline constexpr int kContextCategory = 40;
inline constexpr int kContextCourse = 50;
inline constexpr MoodleId kSiteCourseId = 1;
inline constexpr MoodleId kAdminUserId = 2;
inline constexpr MoodleId kEditingTeacherRole = 3;
inline constexpr MoodleId kStudentRole = 5;

struct NewCourse {
  std::string fullname, shortname, idnumber, summary, format = "topics";
  MoodleId category = 1;
  int summaryformat = 1, visible = 0, showreports = 1, enablecompletion = 1, showgrades = 1,
      newsitems = 5, groupmode = 0, groupmodeforce = 0, completionnotify = 0;
  long long startdate = -1, enddate = -1;  // -1: site default (today, +1 year)
  int numsections = -1;                    // -1: only section 0
  int coursedisplay = 1, hiddensections = 1;
  std::string lang;
};

struct NewUser {
  std::string username, auth = "manual", password, firstname, lastname, email, idnumber,
      department, institution, city, country, lang = "en", timezone = "99", description;
  int mailformat = 1;
  bool suspended = false;
};

class SiteStore {
 public:
  // Opens state_dir/site.db; creates the schema and the standard site
  // (front page 1, category 1, guest 1, admin 2, roles 1-8) the first time.
  explicit SiteStore(const std::string& db_path);

  Db& db() { return db_; }
  // customint1 ("send welcome message") of manual instances created from now on.
  void set_manual_welcome_default(bool on) { manual_welcome_default_ = on; }
  void Begin() { db_.Exec("BEGIN IMMEDIATE"); }
  void Commit() { db_.Exec("COMMIT"); }
  void Rollback() { db_.Exec("ROLLBACK"); }
  // The site's clock: unix seconds, or the time set by SetFixedNow.
  static long long Now();
  // Stops the clock at `t` for every site in the process (0: the real
  // clock again). For replaying recordings whose enrolment dates were in the
  // future when they were made.
  static void SetFixedNow(long long t);

  // --- contexts ---
  std::optional<MoodleId> ContextId(int level, MoodleId instance);
  MoodleId EnsureContext(int level, MoodleId instance);
  struct Context { MoodleId id; int level; MoodleId instance; };
  std::optional<Context> ContextById(MoodleId id);
  // Roles an admin may assign at this context level (role_context_levels).
  std::set<MoodleId> AssignableRoles(int level);

  // --- objects ---
  bool CourseExists(MoodleId id);
  bool CategoryExists(MoodleId id);
  MoodleId CreateCategory(const std::string& name, MoodleId parent, const std::string& idnumber,
                          const std::string& description, int descriptionformat);
  // Checks shortname/idnumber (throws shortnametaken / courseidnumbertaken),
  // then creates the course with sections and enrol instances.
  MoodleId CreateCourse(const NewCourse& c);
  MoodleId CreateUser(const NewUser& u);
  void DeleteUser(MoodleId userid);  // Moodle's delete_user()
  // enrol instance of `method` in the course; nullopt when there is none.
  std::optional<MoodleId> Instance(MoodleId courseid, const std::string& method);
  MoodleId AddInstance(MoodleId courseid, const std::string& method, int status, MoodleId roleid,
                       std::optional<long long> customint1, std::optional<long long> customint2);

  // --- enrolments and roles (enrol_plugin / accesslib behaviour) ---
  // Creates or updates the user's enrolment in the instance and adds the role
  // (component = "" for manual/self, "enrol_<x>" otherwise). Syncs meta links.
  void EnrolUser(MoodleId instanceid, MoodleId userid, MoodleId roleid, long long timestart,
                 long long timeend, int status);
  // Deletes the enrolment. Roles: if it was the last enrolment in the course,
  // all the user's roles there go (and group memberships); otherwise only the
  // roles given by this instance's component/itemid. Syncs meta links.
  void UnenrolUser(MoodleId instanceid, MoodleId userid);
  // Idempotent. Throws codingerror for a missing or deleted user.
  void RoleAssign(MoodleId roleid, MoodleId userid, MoodleId contextid,
                  const std::string& component = "", MoodleId itemid = 0);
  void RoleUnassign(MoodleId roleid, MoodleId userid, MoodleId contextid,
                    const std::string& component = "", MoodleId itemid = 0);
  // Re-derives the parent enrolments of every meta instance linked to child.
  void SyncMetaChild(MoodleId childcourseid);
  void SyncMetaInstance(MoodleId instanceid);
  // True when the course has a course contact (an editingteacher).
  bool HasContact(MoodleId courseid);
  std::optional<MoodleId> FirstContact(MoodleId courseid);
  void AddWelcomeNotification(MoodleId courseid, MoodleId userid);

 private:
  void CreateSchema();
  void SeedSite();
  MoodleId CourseOfInstance(MoodleId instanceid);
  void InsertSections(MoodleId courseid, int numsections);

  Db db_;
  bool manual_welcome_default_ = true;
};

}  // namespace enrolsync::sandbox
