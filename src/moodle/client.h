// A Moodle web-service client speaking the REST protocol exactly as
// ../shared/moodle/transcripts/ record it: POST form-encoded arrays to
// <url>/webservice/rest/server.php with moodlewsrestformat=json; errors come
// back as HTTP 200 {"exception","errorcode","message"}.
//
// Thread-safety: a Client may be used from one thread at a time; it runs its
// own bounded pool of worker connections (keep-alive) inside batch calls.
// Secrets: the token is registered with util/secrets.h and never appears in a
// log line or an Error message.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <set>
#include <optional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "model/model.h"
#include "util/result.h"

namespace enrolsync::moodle {

using model::MoodleId;

struct ClientOptions {
  std::string url;       // site root, e.g. https://moodle.school.test
  std::string token;     // web-service token (secret)
  std::string ca_file;   // PEM bundle for TLS; empty = system store. TLS is always verified.
  int max_input_vars = 5000;  // PHP's max_input_vars on the site; batches stay below it
  int max_batch_rows = 500;   // and never send more rows than this in one call
  // and no write call should take Moodle longer than this: each function's
  // batch is cut to batch_seconds / its measured cost per item (client.cc,
  // kSecondsPerItem), well inside PHP's usual 30 s max_execution_time.
  int batch_seconds = 10;
  // Parallel calls inside one batch operation, per kind of call. Reads
  // (participants, user lookups) use `concurrency`.
  int concurrency = 2;
  // core_course_create_courses: parallel creates deadlock in Moodle on
  // mdl_course_categories.coursecount, so one at a time unless raised.
  int create_course_concurrency = 1;
  // enrol_manual_enrol_users / _unenrol_users, core_role_(un)assign_roles;
  // < 1 = `concurrency`. Batches of the same course never run in parallel,
  // and each batch is sent in ascending user order (see client.cc).
  int enrol_concurrency = 0;
  // core_user_create/update/delete_users; < 1 = `concurrency`.
  int user_concurrency = 0;
  std::chrono::seconds timeout{120};
  // Retries of transient failures: connect, HTTP 502/503/504, timeout or a
  // dropped connection (for the idempotent functions only: see the write
  // calls), and Moodle's rolled-back database errors (deadlock); a dml
  // error that does not say why is retried once.
  int max_retries = 3;
  std::chrono::milliseconds retry_base{400};  // backoff: base * 2^attempt
  // A Moodle that cannot be reached: once calls have failed with
  // connection-type errors (cannot connect, dropped, timeout, HTTP
  // 502/503/504) and nothing else for this long, every further call of this
  // Client fails at once ("Moodle unreachable for 60 s (last: …); giving
  // up"), so a run against a dead server ends within one bounded interval
  // instead of each batch retrying on its own. Any answer from Moodle
  // (an exception too) starts the interval again. 0 = never give up.
  std::chrono::seconds give_up_after{60};
  // The clock and the sleep between retries; empty = steady_clock and
  // std::this_thread::sleep_for. Tests inject a fake time.
  std::function<std::chrono::steady_clock::time_point()> now;
  std::function<void(std::chrono::milliseconds)> sleep;
  // Calls a run may spend isolating bad items: a failing batch is bisected
  // until each bad item stands alone, which costs about 2N calls when all N
  // items of a batch are bad. Once this many bisecting calls have been made
  // (all write functions together), a failing batch fails all its items
  // with its error, "not isolated". Halves of a batch stay serial: they
  // change the same course, and parallel writes to one course deadlock in
  // Moodle. 0 = never bisect.
  int max_bisect_calls = 100;
  // When set and true, write operations send no further batch (a batch in
  // flight completes); the unsent items fail with "not sent: stopping".
  // Used for a graceful SIGTERM. Not owned.
  const std::atomic<bool>* cancel = nullptr;
};

// Ordered form fields, already flattened: {"courses[0][fullname]", "Art"}.
using FormFields = std::vector<std::pair<std::string, std::string>>;

// What became of a request that got no answer from Moodle. A transport
// error carries it in Error::moodle_exception = kTransportException and
// Error::moodle_errorcode = TransportFailureName(kind) (TransportError()).
enum class TransportFailure {
  kNone,         // not a transport failure: Moodle answered, or enrolsync refused
  kConnect,      // nothing was sent: cannot connect, TLS handshake, sending failed
  kUnavailable,  // HTTP 503: refused before Moodle ran
  kGateway,      // HTTP 502/504: a proxy got no answer from Moodle, which may have applied it
  kTimeout,      // sent, no answer within the timeout: Moodle may have applied it
  kDropped,      // sent, the connection dropped before the answer: Moodle may have applied it
  kServerError,  // HTTP 500 (a PHP fatal error) or another status: not retried; may have applied it
};
inline constexpr std::string_view kTransportException = "transport";
const char* TransportFailureName(TransportFailure kind);
Error TransportError(ErrorCode code, TransportFailure kind, std::string message);
TransportFailure TransportFailureOf(const Error& e);
// Whether Moodle may have applied a call that failed this way: the request
// reached it and no answer said what became of it.
bool MayHaveApplied(const Error& e);
// The failures that say Moodle cannot be reached (they count towards
// ClientOptions::give_up_after).
bool IsUnreachable(const Error& e);

// The I/O seam: one POST of one web-service function. The real one speaks
// HTTP(S); tests of the executor may substitute another.
// Post() returns the raw body of a 200 answer, or a TransportError:
// kTransient (connect, dropped, timeout, HTTP 502/503/504), kAuth (HTTP 403:
// web services disabled), kIo (a TLS handshake or certificate failure, HTTP
// 500 and every other status: not worth sending again) or kConfig.
class Transport {
 public:
  virtual ~Transport() = default;
  virtual Result<std::string> Post(std::string_view function, const FormFields& params) = 0;
};

std::unique_ptr<Transport> MakeHttpTransport(const ClientOptions& options);

struct SiteInfo {
  std::string sitename;
  std::string release;   // "5.1+ (Build: 20251017)"
  std::string version;   // "2025100600.02"
  MoodleId userid = 0;
  std::string username;
  std::vector<std::string> functions;  // functions the token may call
};

struct NewCourse {
  std::string fullname;
  std::string shortname;
  std::string idnumber;
  MoodleId categoryid = 0;
  // Extra top-level fields (visible, format, showreports, enablecompletion…)
  // and course format options (coursedisplay, numsections…).
  std::vector<std::pair<std::string, std::string>> fields;
  std::vector<std::pair<std::string, std::string>> format_options;
};

struct ManualEnrolment {
  MoodleId courseid = 0;
  MoodleId userid = 0;
  MoodleId roleid = 0;
  bool suspend = false;  // always sent: every enrol call sets the full state
};

struct CourseUserRef {
  MoodleId courseid = 0;
  MoodleId userid = 0;
};

struct RoleAssignment {
  MoodleId courseid = 0;  // course context (contextlevel=course, instanceid)
  MoodleId userid = 0;
  MoodleId roleid = 0;
};

// A user for core_user_create_users: auth (e.g. "ldap") and profile fields
// (firstname, lastname, email, idnumber, department…). No password: external
// auth methods need none.
struct NewUser {
  std::string username;
  std::string auth;
  std::map<std::string, std::string> fields;
};

// core_user_update_users: only the given fields change; `suspended` is sent
// only when set.
struct UserUpdate {
  MoodleId id = 0;
  std::map<std::string, std::string> fields;
  std::optional<bool> suspended;
};

// Calls and time per web-service function, for run summaries.
struct FunctionStats {
  int calls = 0;
  int failed = 0;
  double seconds = 0;
};

// Moodle's errorcode for "the change was committed but the welcome message
// could not be sent" (see ../shared/moodle/README.md).
inline constexpr std::string_view kMessageNotSent = "Message was not sent.";

// The moodle_errorcode of a call enrolsync never sent (the run stopping, or
// Moodle given up on before this call went out): Moodle cannot have applied
// it. Not one of Moodle's codes.
inline constexpr std::string_view kNotSent = "enrolsync:notsent";

using Progress = std::function<void(std::size_t done, std::size_t total)>;
// Called on the calling thread as each batch of a write call is answered:
// `items` are the input indices of the batch's items, whose entries in
// `results` (indexed like the input) are then final. Lets the caller record
// what Moodle applied batch by batch, so that a crash loses at most the
// batches in flight.
using BatchDone =
    std::function<void(std::span<const std::size_t> items, std::span<const Result<model::MoodleId>> results)>;

class Client {
 public:
  explicit Client(ClientOptions options);  // uses MakeHttpTransport
  Client(ClientOptions options, std::unique_ptr<Transport> transport);
  ~Client();

  // One raw call; returns the body parsed-and-checked for a Moodle exception
  // (as Error{kMoodle, message, errorcode, exception}; invalidtoken -> kAuth).
  Result<std::string> Call(std::string_view function, const FormFields& params);

  Result<SiteInfo> GetSiteInfo();
  // Every category the token may see, in Moodle's sortorder (the first is
  // the one enrol_database falls back to). Names are HTML-decoded.
  Result<std::vector<model::Category>> GetCategories();
  // Every course except the site front page (one call). fullname and
  // shortname are HTML-decoded (Moodle sends them through format_string).
  Result<std::vector<model::Course>> GetAllCourses();
  // The courses among `ids` that exist (core_course_get_courses with
  // options[ids], 1,000 ids a call); an id with no course is simply absent.
  Result<std::vector<model::Course>> GetCoursesByIds(const std::vector<MoodleId>& ids);
  // core_user_get_users_by_field; values are batched under max_input_vars
  // (at most 1,000 a call).
  // Exact match, as Moodle does it (email is case-sensitive there).
  Result<std::vector<model::User>> GetUsersByField(const std::string& field,
                                                   const std::vector<std::string>& values);
  // Users whose email equals one of `emails` ignoring case (ASCII), which
  // core_user_get_users_by_field cannot do: one core_user_get_users call
  // per distinct email (its email criterion is a case-insensitive LIKE),
  // run with bounded concurrency; LIKE's wildcard matches are dropped here.
  // Meant for the few values the exact lookup did not find.
  Result<std::vector<model::User>> FindUsersByEmail(const std::vector<std::string>& emails);
  // Participants of each course, run with bounded concurrency. When the
  // site info (GetSiteInfo) listed core_enrol_get_enrolled_users_with_capability,
  // two calls per batch of up to 100 courses and about 2,500 expected
  // participants (every enrolled user with roles, then the active ones);
  // else two core_enrol_get_enrolled_users calls per course.
  // A course whose read failed maps to its Error (a failed multi-course
  // call is retried course by course, so it names the course).
  // `sizes` (optional): the expected participants of a course; a call's
  // courses stop at about 2,500 of them, so no call runs long.
  std::map<MoodleId, Result<model::Participants>> GetParticipants(const std::vector<MoodleId>& courseids,
                                                                  const Progress& progress = {},
                                                                  const std::map<MoodleId, int>& sizes = {});

  // Write calls. Each is split into batches sized by max_input_vars and
  // max_batch_rows, run with bounded concurrency. Moodle applies a batch all
  // or nothing; when a batch fails with a non-transient error it is bisected
  // until the bad items are isolated, so good items still land. The result
  // has one entry per input item, in input order. A batch that fails with
  // kMessageNotSent is not bisected: each of its items gets that error and the
  // caller verifies whether the change was committed.
  // A batch whose outcome is unknown (MayHaveApplied: sent, then a timeout,
  // a dropped connection, HTTP 502/504) is sent again only by the
  // idempotent calls (enrol, unenrol, roles, user updates); CreateCourses,
  // CreateUsers and DeleteUsers report it failed instead (see client.cc,
  // IsIdempotent), and the caller reads back next run what Moodle did.
  std::vector<Result<MoodleId>> CreateCourses(const std::vector<NewCourse>& courses,
                                              const Progress& progress = {},
      const BatchDone& batch_done = {});
  std::vector<Status> EnrolUsers(const std::vector<ManualEnrolment>& enrolments,
                                 const Progress& progress = {},
      const BatchDone& batch_done = {});
  std::vector<Status> UnenrolUsers(const std::vector<CourseUserRef>& users, const Progress& progress = {},
      const BatchDone& batch_done = {});
  std::vector<Status> AssignRoles(const std::vector<RoleAssignment>& assignments,
                                  const Progress& progress = {},
      const BatchDone& batch_done = {});
  std::vector<Status> UnassignRoles(const std::vector<RoleAssignment>& assignments,
                                    const Progress& progress = {},
      const BatchDone& batch_done = {});

  // Users. GetUsersByAuth is one core_user_get_users call (criteria auth);
  // the users come with their profile fields.
  Result<std::vector<model::User>> GetUsersByAuth(const std::string& auth);
  std::vector<Result<MoodleId>> CreateUsers(const std::vector<NewUser>& users, const Progress& progress = {},
      const BatchDone& batch_done = {});
  std::vector<Status> UpdateUsers(const std::vector<UserUpdate>& users, const Progress& progress = {},
      const BatchDone& batch_done = {});
  std::vector<Status> DeleteUsers(const std::vector<MoodleId>& userids, const Progress& progress = {},
      const BatchDone& batch_done = {});

  // Items to send alone, before any batch: those that failed in the last
  // run (the executor keeps them in the state database), so that one bad
  // row costs one call a night instead of a batch's bisection. Keyed by
  // write function, course and user. Not thread-safe: set before writing.
  struct ItemKey {
    std::string function;
    MoodleId courseid = 0, userid = 0;
    auto operator<=>(const ItemKey&) const = default;
  };
  // At most max_bisect_calls of them (in key order): a run that failed
  // wholesale does not turn into thousands of single calls.
  void SendAlone(std::set<ItemKey> items);
  // The items Moodle refused on their own this run (a call that held only
  // that item failed with Moodle's exception; not a batch given up on
  // unbisected, not a transport failure): what the next run should send
  // alone. Only writes that name a course and a user. Thread-safe.
  std::set<ItemKey> Refused() const;
  int BisectCalls() const;  // calls made isolating bad items. Thread-safe.

  // Per-function call counts and time since construction. Thread-safe.
  std::map<std::string, FunctionStats> Stats() const;
  int WriteCalls() const;  // calls to functions that change Moodle
  // Seconds of wall time with at least one call in flight: how long the
  // run waited on Moodle (parallel calls count once). Thread-safe.
  double WaitSeconds() const;
  // Calls sent again since construction, by reason: "deadlock",
  // "database error", "timeout", "connection", "connection dropped",
  // "HTTP 5xx". Thread-safe.
  std::map<std::string, int> Retries() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace enrolsync::moodle
