// enrolsync-sandbox: a Moodle 5.1 web-service simulator for tests and demos.
//
// It answers POST /webservice/rest/server.php like the Moodle recorded in
// shared/moodle/ (same response shapes, same exception/errorcode/message with
// debugging off, HTTP 200 for errors, 403 with an empty body when web services
// are disabled, the literal body `null` for write calls that return null).
// The site lives in SQLite (state_dir/site.db) and survives a restart.
//
// Thread-safe: every public method may be called from any thread while the
// server runs; calls are serialised on one lock (latency is added outside it).
#pragma once

#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "model/model.h"
#include "util/result.h"

namespace enrolsync::sandbox {

using model::MoodleId;

struct Options {
  std::string state_dir;                // created if missing; holds site.db
  std::string token = "sandbox-token";  // the only valid wstoken
  std::string host = "127.0.0.1";
  int port = 0;                         // 0 = pick a free port
  int max_input_vars = 5000;            // PHP's limit on POST variables
  int latency_ms = 0;                   // added to every call (Moodle's bootstrap ~50 ms)
  // A cost model (cost_model.h, e.g. "moodle-5.1"): every call then takes
  // as long as it would take that Moodle, and at most the model's number of
  // workers are served at once (the others wait their turn). "": none.
  std::string cost_model;
  bool webservices_enabled = true;      // false: every call gets 403, empty body
  // "Send course welcome message" of the manual instance of courses created
  // from now on (Moodle's default: on). Existing instances keep theirs.
  bool manual_welcome_message = true;
};

class Sandbox {
 public:
  // Opens or creates the site in options.state_dir and starts serving in a
  // background thread. Fails (kIo) when the state cannot be opened or the
  // port cannot be bound, (kInvalidArgument) for an empty state_dir/token.
  static Result<std::unique_ptr<Sandbox>> Start(const Options& options);
  ~Sandbox();  // Stop()s
  Sandbox(const Sandbox&) = delete;
  Sandbox& operator=(const Sandbox&) = delete;

  int port() const;
  std::string url() const;  // "http://127.0.0.1:PORT"
  // Stops serving and waits for the server thread. Idempotent. Introspection
  // keeps working on the stored state afterwards.
  void Stop();

  // --- introspection for tests (reads the SQLite state directly) ---
  struct Enrolment {
    MoodleId courseid = 0, userid = 0;
    std::string method;  // "manual", "self", "meta", ...
    int status = 0;      // 0 active, 1 suspended (the user_enrolments status)
    long long timestart = 0, timeend = 0;
  };
  struct RoleAssignment {
    MoodleId courseid = 0, userid = 0, roleid = 0;
    std::string component;  // "" for manual/web-service assignments, "enrol_meta"...
  };
  // Every user enrolment, ordered by course, user, method.
  std::vector<Enrolment> Enrolments();
  // Every role assignment in a course context, ordered by course, user, role.
  std::vector<RoleAssignment> RoleAssignments();
  // Every course except the front page (id 1), by id. visible from the course.
  std::vector<model::Course> Courses();
  int SectionCount(MoodleId courseid);  // course_sections rows (section 0 included)
  // The course's context id (for core_role_assign_roles' contextid); 0 if none.
  MoodleId CourseContextId(MoodleId courseid);
  // Every non-deleted user except guest (id 1), by id; admin (2) included.
  // profile holds firstname, lastname, email, idnumber, department,
  // institution, city, country.
  std::vector<model::User> Users();
  // POSTs received per wsfunction name (any outcome, unknown names too).
  std::map<std::string, int> CallCounts();
  void ResetCallCounts();
  // Welcome notifications written by enrol_manual_enrol_users so far.
  int WelcomeMessagesSent();
  // With a cost model: the most calls that were being served at once, and
  // the seconds charged so far (summed over parallel calls).
  int PeakConcurrentCalls();
  double ChargedSeconds();

  // --- acting as a human in Moodle's UI (no call counted, no latency) ---
  // Enrols through an instance of `method` ("manual", "self", "guest"...),
  // creating an enabled instance when the course has none or enabling it.
  // Returns the instance id. kNotFound for an unknown course/user.
  Result<MoodleId> AddEnrolmentAs(std::string method, MoodleId courseid, MoodleId userid, MoodleId roleid);
  // Unenrols from that method's instance, with Moodle's role rules.
  // kNotFound when the user has no such enrolment.
  Status RemoveEnrolment(MoodleId courseid, MoodleId userid, std::string method);
  Status SetEnrolmentStatus(MoodleId courseid, MoodleId userid, std::string method, int status);
  // Deletes the course with its enrolments, roles, groups and meta links.
  Status DeleteCourse(MoodleId courseid);
  Status SetUserSuspended(MoodleId userid, bool suspended);
  // Creates a user as auth_ldap would (auth=ldap, no password); returns the
  // existing id when the username is taken. Used by --seed-users.
  Result<MoodleId> EnsureLdapUser(const std::string& username, const std::string& firstname,
                                  const std::string& lastname, const std::string& email,
                                  const std::string& idnumber);
  // Bulk seeding (--seed-users, benchmarks): every user as EnsureLdapUser
  // would create it, all in ONE transaction with the statements prepared
  // once and reused, so that a 1M-user site seeds in seconds rather than one
  // commit per user. Usernames already present are skipped (not an error).
  // Returns how many were created. kInvalidArgument (nothing created) when
  // any username is empty or not clean.
  struct SeedUser {
    std::string username, firstname, lastname, email, idnumber;
  };
  Result<int> SeedLdapUsers(const std::vector<SeedUser>& users);
  // Top-level categories with these ids and names, created in order (so on a
  // fresh site ids 2, 3, ... come out as given); an id already present is
  // left alone. kInvalidArgument (nothing created) when a new category would
  // not get the id asked for.
  Status SeedCategories(const std::vector<std::pair<MoodleId, std::string>>& categories);
  // Enables/disables an enrol instance (Moodle's "set_instance_status").
  Status SetInstanceStatus(MoodleId courseid, std::string method, int status);
  // Switches the manual instance's "Send course welcome message" on or off.
  Status SetWelcomeMessage(MoodleId courseid, bool enabled);

  // --- probe replay (shared/moodle/probes) ---
  // Inserts a recorded state (JSON: table -> rows, the probes' format, see
  // probe_state.h) keeping the recorded ids. kInvalidArgument for bad JSON.
  Status SeedProbeState(const std::string& state_json);
  // The whole site in the probes' table format, as JSON text.
  Result<std::string> ProbeState();
  // Stops the site's clock at unix time `t` (0: the real clock), for every
  // sandbox in the process: a recorded state is replayed at the time it was
  // recorded, so that an enrolment starting "next week" then still does.
  static void SetFixedTime(long long t);
  // enrol_meta's scheduled "Meta enrolment sync task": re-derives every meta
  // instance from its child course.
  Status RunMetaSyncTask();

  // --- fault injection ---
  struct Fault {
    std::string function;  // wsfunction it applies to
    int skip = 0;          // let this many matching calls pass first
    int times = 1;         // then affect this many calls
    enum Kind {
      kException,       // answer {"exception","errorcode","message"}; nothing applied
      kHttp500,         // HTTP 500, empty body; applied only when `apply`
      kDelay,           // sleep delay_ms, then answer normally (with `apply`: apply first, then sleep)
      kMessageNotSent,  // apply the call, then answer "Message was not sent."
      kDropConnection,  // close the connection without a body; applied only when `apply`
    } kind = kException;
    std::string errorcode = "invalidparameter";  // for kException
    int delay_ms = 0;                            // for kDelay
    bool apply = false;                          // for kHttp500 / kDropConnection / kDelay
  };
  void InjectFault(Fault fault);
  void ClearFaults();

 private:
  struct Impl;
  explicit Sandbox(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace enrolsync::sandbox
