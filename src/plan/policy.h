// The settings the planner obeys: the enrol_database settings that shape a
// plan, plus the safety switches. Filled in from config; plain data.
#pragma once

#include <optional>
#include <string>
#include <vector>

namespace enrolsync::plan {

// What happens to an enrolment enrolsync owns once its row leaves the feed
// (enrol_database's "External unenrol action").
enum class UnenrolAction {
  kUnenrol,             // delete the manual enrolment (roles go with it)
  kKeep,                // leave it as it is
  kSuspend,             // "Disable course enrolment": suspend, keep roles
  kSuspendRemoveRoles,  // suspend and remove the roles enrolsync assigned
};

enum class LocalCourseField { kId, kIdnumber, kShortname };
enum class LocalUserField { kId, kIdnumber, kEmail, kUsername };
enum class LocalRoleField { kId, kShortname };
enum class LocalCategoryField { kId, kIdnumber };

struct Policy {
  // [courses]
  LocalCategoryField category_field = LocalCategoryField::kId;
  std::string default_category = "1";  // id or idnumber, per category_field

  // [enrolments]
  LocalCourseField local_course_field = LocalCourseField::kIdnumber;
  LocalUserField local_user_field = LocalUserField::kEmail;
  LocalRoleField local_role_field = LocalRoleField::kId;
  std::string default_role = "student";  // shortname, used for empty role cells
  UnenrolAction unenrol_action = UnenrolAction::kSuspend;
  bool ignore_hidden_courses = false;
  // Moving over from enrol_database (or any other method): when a row's user
  // is already a participant through an enrolment enrolsync did not make,
  // add enrolsync's own manual enrolment next to it and manage that one.
  // Off: such users only get missing roles, and are never touched otherwise.
  bool take_over_existing = false;
  // Whether courses enrolsync creates start visible ([courses.defaults]
  // visible): with ignore_hidden_courses a hidden new course gets no
  // enrolments, as in enrol_database. Unset: Moodle's default decides, and
  // the executor reads the new courses back before enrolling anyone.
  std::optional<bool> new_courses_visible;

  // [safety]. Removals = suspensions + unenrolments of enrolments we own.
  long long max_removals = -1;        // absolute limit; -1 = none
  double max_removals_percent = -1;   // of managed enrolments; -1 = none
  long long allow_removals = -1;      // --allow-removals N for this run; -1 = not given

  // Set by the run when a source or a Moodle read was incomplete: nothing
  // may be removed anywhere, whatever the plan says. Each entry says why.
  std::vector<std::string> block_removals;
};

const char* UnenrolActionName(UnenrolAction a);

// The most removals one run may make: the smaller of `max_removals` and
// `max_removals_percent` of `managed` (each -1 = not set), unless an admin
// approved `allow_removals` for this run. -1 = no limit.
long long RemovalLimit(long long max_removals, double max_removals_percent, long long allow_removals,
                       long long managed);

}  // namespace enrolsync::plan
