// The vocabulary shared by sources, planner, Moodle client and executor.
// Plain data only: no I/O, no heavy headers.
#pragma once

#include <cstddef>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace enrolsync::model {

using MoodleId = long long;

// ---------------------------------------------------------------------------
// Desired state: what the MIS says, one struct per source row.
// Values are exactly as read (no trimming or case folding has happened).
// ---------------------------------------------------------------------------

// One row of the "Remote new courses table".
struct CourseRow {
  std::size_t row = 0;  // SQL: 1-based position in the result; CSV: the file line
  std::string fullname;
  std::string shortname;
  std::string idnumber;
  std::optional<std::string> category;  // nullopt or "" = default category
  // enrol_database's newcoursestartdate / newcourseenddate columns, when
  // configured: unix seconds or a date; nullopt, "" or "0" = Moodle's default.
  std::optional<std::string> startdate{};
  std::optional<std::string> enddate{};
};

// One row of the "Remote user enrolment table".
struct EnrolmentRow {
  std::size_t row = 0;  // SQL: 1-based position in the result; CSV: the file line
  std::string course;   // value of the remote course field (e.g. set code)
  std::string user;     // value of the remote user field (e.g. email)
  std::optional<std::string> role;  // nullopt or "" = default role
};

struct DesiredState {
  std::string courses_table;     // name used in problem reports
  std::string enrolments_table;  // name used in problem reports
  // Physical column names, in the order fullname, shortname, idnumber,
  // category[, startdate, enddate ("" = not configured)] and course, user,
  // role: problem reports name them.
  std::vector<std::string> course_columns;
  std::vector<std::string> enrolment_columns;
  bool have_courses = false;     // false when [courses] is not configured
  std::vector<CourseRow> courses;
  std::vector<EnrolmentRow> enrolments;
};

// ---------------------------------------------------------------------------
// Current state: what Moodle says.
// ---------------------------------------------------------------------------

struct Category {
  MoodleId id = 0;
  std::string name;
  std::string idnumber;
};

struct Role {
  MoodleId id = 0;
  std::string shortname;
};

struct Course {
  MoodleId id = 0;
  std::string fullname;
  std::string shortname;
  std::string idnumber;
  MoodleId categoryid = 0;
  bool visible = true;
};

struct User {
  MoodleId id = 0;
  std::string username;
  std::string email;
  std::string idnumber;
  std::string auth;
  bool suspended = false;  // suspended at site level; still matches rows
  // Profile fields as Moodle returns them (firstname, lastname, email,
  // idnumber, department, institution, city, country, phone1…), for the user
  // sync's comparisons. May be empty when only ids were asked for.
  std::map<std::string, std::string> profile;
};

// One person as the directory (or the MIS user table) describes them.
struct Person {
  std::string username;  // lower-cased
  std::map<std::string, std::string> fields;  // Moodle field -> value
  bool disabled = false;  // AD ACCOUNTDISABLE: the Moodle user is suspended
  std::string origin;     // "uid=…,ou=Students,…" or "users.csv line 12", for reports
};

// Why enrolsync suspended a user; only its own suspensions are ever revived.
enum class SuspendReason { kNone, kLeftDirectory, kDisabledInDirectory };

// A Moodle user the user sync manages (created or adopted).
struct ManagedUser {
  MoodleId userid = 0;
  std::string username;
  bool created = false;  // false: adopted (existed with the configured auth)
  SuspendReason suspended_by_us = SuspendReason::kNone;
};

// One line of core_enrol_get_enrolled_users, combined with the onlyactive
// listing: Moodle never says which enrolment method a participant came from.
struct Participant {
  MoodleId userid = 0;
  bool active = true;            // false: every enrolment suspended/expired
  std::set<MoodleId> roles;      // role ids held in the course context
  // False when Moodle's reads disagreed: the user showed up enrolled between
  // the read with roles and the active-only one, and a third read did not
  // show them either, so `roles` is unknown (empty). The planner leaves such
  // a user alone for the run, and an intent about them stays pending.
  bool roles_known = true;
};

// The participants of one course, as read from Moodle this run.
using Participants = std::map<MoodleId, Participant>;

struct MoodleSnapshot {
  std::vector<Category> categories;
  std::vector<Role> roles;
  std::vector<Course> courses;    // every course on the site except the front page
  std::vector<User> users;        // users looked up by the enrolment rows' keys
  // Courses whose participants were read from Moodle this run. A course not
  // in this map is "unverified": the planner trusts the state database.
  std::map<MoodleId, Participants> verified;
  // Courses whose participant read failed: nothing may be removed this run.
  std::set<MoodleId> read_failed;
};

// ---------------------------------------------------------------------------
// Ownership: what enrolsync made, as recorded in the state database.
// ---------------------------------------------------------------------------

enum class EnrolStatus { kActive, kSuspended };

struct OwnedEnrolment {
  MoodleId courseid = 0;
  MoodleId userid = 0;
  // true: enrolsync made (or re-made) this manual enrolment and may change it.
  // false: the user already had an enrolment we did not make; we only own the
  // role assignments listed in `roles`.
  bool owns_enrolment = true;
  EnrolStatus status = EnrolStatus::kActive;  // as enrolsync last set it
  std::set<MoodleId> roles;                   // role assignments enrolsync made
  std::string source_course;  // the row values that produced it, so an
  std::string source_user;    // unresolvable row still protects it
};

struct CourseUser {
  MoodleId courseid = 0;
  MoodleId userid = 0;
  auto operator<=>(const CourseUser&) const = default;
};

struct Ownership {
  std::map<CourseUser, OwnedEnrolment> enrolments;
  std::set<MoodleId> created_courses;  // courses enrolsync created
  std::map<MoodleId, ManagedUser> users;  // users the user sync manages
};

}  // namespace enrolsync::model
