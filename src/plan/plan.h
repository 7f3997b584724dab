// The planner: desired state + current Moodle state + ownership + policy ->
// Plan. Pure: no I/O, no clock, deterministic output order. Everything the
// executor does and everything `plan` prints comes from a Plan.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "model/model.h"
#include "plan/policy.h"

namespace enrolsync::plan {

using model::MoodleId;

enum class Action {
  kCreateCourse,
  kEnrol,         // new manual enrolment (enrol_manual_enrol_users, suspend=0)
  kUnsuspend,     // re-activate our suspended enrolment
  kRoleAssign,    // core_role_assign_roles
  kSuspend,       // enrol_manual_enrol_users with suspend=1
  kRoleUnassign,  // core_role_unassign_roles
  kUnenrol,       // enrol_manual_unenrol_users
};

const char* ActionName(Action a);  // "create_course", "enrol", ...

struct PlanItem {
  Action action = Action::kEnrol;
  // The course. For a course created in this run courseid is 0 and
  // create_index points at its kCreateCourse item in Plan::items.
  MoodleId courseid = 0;
  int create_index = -1;
  std::string course_shortname;
  std::string course_fullname;  // kCreateCourse only
  std::string course_key;  // the value from the feed that named it

  MoodleId userid = 0;
  std::string user_key;    // the feed's value (email, username…)
  MoodleId roleid = 0;     // enrol/unsuspend/suspend: the roleid sent along
  std::string role;        // role shortname, for display

  // kCreateCourse only.
  std::string idnumber;
  MoodleId categoryid = 0;
  // From the row's startdate / enddate columns; unset: [courses.defaults]
  // or Moodle's own default.
  std::optional<long long> startdate;
  std::optional<long long> enddate;

  // Why: "new row", "drift: …", "row left the feed", "role changed". Shown
  // by `plan -d explain`.
  std::string reason;
};

// A row that could not be used. Reported, never guessed at.
struct Problem {
  std::string table;
  std::size_t row = 0;
  std::vector<std::pair<std::string, std::string>> values;  // column -> value
  std::string reason;
  bool skipped = true;  // false: a warning only (e.g. a duplicate row counted once)
};

struct Summary {
  int courses_create = 0;
  int enrol = 0;
  int unsuspend = 0;
  int suspend = 0;
  int unenrol = 0;
  int role_assign = 0;
  int role_unassign = 0;
  int Changes() const {
    return courses_create + enrol + unsuspend + suspend + unenrol + role_assign + role_unassign;
  }
  int Removals() const { return suspend + unenrol; }
};

// Ownership records the executor must drop because Moodle no longer has the
// thing (someone unenrolled by hand, an admin deleted the course) and the feed
// no longer wants it either.
struct Forget {
  model::CourseUser key;
  std::string reason;
};

struct Plan {
  std::vector<PlanItem> items;  // in apply order: creates, enrols, ..., unenrols
  std::vector<Problem> problems;
  std::vector<Forget> forget;
  std::vector<std::string> notes;  // things an admin should know (hidden courses skipped…)
  Summary summary;
  // Existing courses that have at least one item: the run must have read
  // their participants from Moodle before applying (see sync/).
  std::vector<MoodleId> touched_courses;

  // Removal safety.
  int removals_withheld = 0;             // removals dropped because block_removals was set
  std::vector<std::string> removal_block_reasons;
  long long managed_enrolments = 0;      // enrolments we own, the base of a % limit
  long long removal_limit = -1;          // -1: no limit
  bool guard_tripped = false;            // removals exceed the limit: apply nothing

  // ignore_hidden_courses with the new courses' visibility left to Moodle:
  // the executor reads the courses it created back and skips the items of
  // those Moodle created hidden.
  bool recheck_new_course_visibility = false;

  bool HasChanges() const { return !items.empty(); }
};

// `enrolsync adopt`: the ownership a lost state database held, rebuilt from
// what Moodle shows for the feed's own rows. Only what the feed still asks
// for can be recognised: an enrolment whose row left the feed before the
// ledger was lost is nobody's (as if made by hand), and is never touched.
struct AdoptEnrolment {
  MoodleId courseid = 0;
  MoodleId userid = 0;
  std::string course_shortname;
  std::string course_key;  // the feed's values
  std::string user_key;
  std::vector<MoodleId> roles;  // the feed's roles the participant holds
  std::vector<std::string> role_names;
  bool active = true;  // Moodle's status: some enrolment of the user is active
};

struct AdoptCourse {
  MoodleId courseid = 0;
  std::string shortname;
  std::string idnumber;
};

struct Adoption {
  // Feed courses that exist in Moodle with the feed row's idnumber and are
  // not yet recorded as enrolsync's.
  std::vector<AdoptCourse> courses;
  // Feed rows whose user is a participant of the course holding at least
  // one of the row's roles, not yet owned. Rows already owned are left as
  // they are.
  std::vector<AdoptEnrolment> enrolments;
  // Existing feed courses whose participants are not in the snapshot's
  // `verified`: the caller reads them and plans again.
  std::vector<MoodleId> unread_courses;
  int already_owned = 0;          // rows whose enrolment is already enrolsync's
  int not_participants = 0;       // rows whose user is not in the course (sync enrols them)
  int without_feed_role = 0;      // participants holding none of the row's roles: not claimed
  std::vector<Problem> problems;  // rows that resolve to nothing, as in a plan
  bool Empty() const { return courses.empty() && enrolments.empty(); }
};

// Pure, like BuildPlan; uses the same row resolution (course keys, user
// keys, roles, problems).
Adoption PlanAdoption(const model::DesiredState& desired, const model::MoodleSnapshot& moodle,
                      const model::Ownership& owned, const Policy& policy);

// Counts the items of each action.
Summary Summarize(const std::vector<PlanItem>& items);

// An enrolment row's user cell as it is looked up in Moodle, or nullopt with
// `why` when Moodle would refuse it (core_user_get_users_by_field fails the
// whole call for one value its clean_param rejects), so the row is a
// problem of its own:
// - email: surrounding whitespace removed, then Moodle's PARAM_EMAIL
//   (validate_email) and its 100-character column;
// - username: exactly as given (enrol_database matches it exactly), which
//   must be PARAM_USERNAME's own cleaned form (lower-case a-z 0-9 - . _ @,
//   extendedusernamechars off) and at most 100 characters;
// - idnumber: as is, at most 255 characters;
// - id: a whole number (surrounding whitespace allowed, as PARAM_INT).
std::optional<std::string> UserLookupValue(const std::string& raw, LocalUserField field, std::string* why);

Plan BuildPlan(const model::DesiredState& desired, const model::MoodleSnapshot& moodle,
               const model::Ownership& owned, const Policy& policy);

// The Moodle-style line `sync -v` prints for an applied item, e.g.
// "enrolling: 566 ==> Academic Extension - 10/AX1 as editingteacher".
std::string MoodleTraceLine(const PlanItem& item);

// terraform-style line for `plan`: "+ enrol 10/AX1 jane@school.test as student".
std::string PlanLine(const PlanItem& item);

}  // namespace enrolsync::plan
