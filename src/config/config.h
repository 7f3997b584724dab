// The one TOML config file. Keys map 1:1 onto Moodle's enrol_database
// settings (see README "Configuration"). Loading validates everything up
// front: a broken file is reported with file, line, key and value, and no
// run starts.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "model/model.h"
#include "moodle/client.h"
#include "plan/policy.h"
#include "plan/user_plan.h"
#include "sources/directory.h"
#include "sources/source.h"
#include "util/result.h"

namespace enrolsync::config {

struct CoursesConfig {
  bool enabled = false;  // false when there is no [courses] section
  std::string table;     // newcoursetable
  std::string fullname;  // newcoursefullname
  std::string shortname; // newcourseshortname
  std::string idnumber;  // newcourseidnumber ("" = not read)
  std::string category;  // newcoursecategory ("" = not read: default category)
  std::string startdate; // newcoursestartdate ("" = not read: Moodle's default start date)
  std::string enddate;   // newcourseenddate ("" = not read: Moodle's default end date)
  plan::LocalCategoryField category_field = plan::LocalCategoryField::kId;
  std::string default_category = "1";
  // [courses.defaults], split the way core_course_create_courses wants them.
  std::vector<std::pair<std::string, std::string>> fields;          // visible=0, format=topics…
  std::vector<std::pair<std::string, std::string>> format_options;  // coursedisplay, numsections…
  // [courses.defaults] visible; unset: not sent, and Moodle decides: 5.1's
  // core_course_create_courses defaults it to moodlecourse|visible, the
  // site's course default enrol_database uses too (no web service reads
  // it), or to the category's when the token user lacks
  // moodle/course:visibility.
  std::optional<bool> visible;
};

struct EnrolmentsConfig {
  std::string table;         // remoteenroltable
  std::string course_field;  // remotecoursefield
  std::string user_field;    // remoteuserfield
  std::string role_field;    // remoterolefield ("" = every row gets default_role)
};

// [users]: the directory (or an MIS table) as the source of Moodle users.
struct UsersConfig {
  bool enabled = false;
  std::string source = "ldap";  // "ldap" | "sql" | "csv" (sql/csv read a table through [source])
  sources::LdapSettings ldap;   // source = "ldap"; ldap.map holds [users.map]
  // source = "sql" | "csv":
  std::string table;
  std::string username_column;
  std::string disabled_column;  // optional: a non-empty, non-"0" value suspends the user
  std::vector<std::pair<std::string, std::string>> map;  // Moodle field -> column or attribute
  plan::UserPolicy policy;      // auth, removed_user_action, update fields
};

// [log]: where a run's lines go besides the terminal.
struct LogConfig {
  std::string file;             // "" = no log file
  std::string format = "text";  // "text" | "json"
  std::string level = "info";   // "debug" | "info" | "warn" | "error"
};

// [schedule]: cron expressions for `enrolsync daemon`, in job order.
struct ScheduleConfig {
  std::vector<std::pair<std::string, std::string>> jobs;  // {"users", "0 8,13 * * *"}, {"full", "0 3 * * *"}
};

// [[hooks]]: commands run after a job (argv, no shell).
struct HookConfig {
  std::string after;  // "full" | "users"
  std::vector<std::string> command;
  int timeout_seconds = 120;
};

struct StateConfig {
  // Every managed course's participants are re-read from Moodle at least once
  // in this many days, in an even rotation (plan/verify_policy.h; README "How
  // drift is found").
  int verify_max_age_days = 7;
  // A floor on the rotation: at least this many courses a run (fewer only
  // when fewer are managed). The rotation itself is sized from
  // verify_max_age_days and the runs a day.
  int verify_courses_per_run = 6;
  // Enrolment runs a day, to size the rotation. 0 (not set): the [schedule]
  // full job's runs if there is one, else 1 (a nightly timer or cron job).
  int runs_per_day = 0;
  // Runs whose full report (every item, problem and failure) is kept, in
  // state.db and as reports/run-N.json; older runs keep their summary only.
  int keep_runs = 30;
};

// Moodle's standard roles plus the site's own from [roles] (shortname = id):
// Moodle has no web-service function that lists roles.
std::vector<model::Role> StandardRoles();

struct Config {
  std::string path;       // the config file, as given
  std::string state_dir;  // absolute or relative to the config file's folder, resolved
  moodle::ClientOptions moodle;
  sources::SourceSettings source;
  CoursesConfig courses;
  EnrolmentsConfig enrolments;
  UsersConfig users;
  LogConfig log;
  ScheduleConfig schedule;
  std::vector<HookConfig> hooks;
  std::vector<model::Role> roles;  // the standard roles and [roles]
  plan::Policy policy;  // the enrol_database settings + [safety]
  StateConfig state;
};

// Looks up an environment variable; replaceable in tests.
using EnvLookup = std::function<std::optional<std::string>(const std::string&)>;
EnvLookup RealEnv();

// Reads and validates `path`. Relative paths inside the file (state_dir,
// token_file, database, ca_file…) are resolved against the file's folder.
// Secrets come only from *_file or *_env keys and are registered with
// util/secrets.h; an inline token or password is an error.
Result<Config> LoadConfig(const std::string& path, const EnvLookup& env = RealEnv());

// Start times of the enrolment runs expected after `now`, up to and including
// `until`, to size the verification rotation: runs_per_day evenly spaced
// runs when [state] runs_per_day is set; else the [schedule] full job's cron
// times (local time, as the daemon runs them); else one a day.
std::vector<long long> ExpectedEnrolmentRuns(const Config& cfg, long long now, long long until);

}  // namespace enrolsync::config
