#include "moodle/client.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <span>
#include <thread>

#include <nlohmann/json.hpp>

#include "moodle/wire.h"
#include "util/moodle_values.h"
#include "util/secrets.h"
#include "util/strings.h"

namespace enrolsync::moodle {

using nlohmann::json;

const char* TransportFailureName(TransportFailure kind) {
  switch (kind) {
    case TransportFailure::kNone: return "";
    case TransportFailure::kConnect: return "connect";
    case TransportFailure::kUnavailable: return "unavailable";
    case TransportFailure::kGateway: return "gateway";
    case TransportFailure::kTimeout: return "timeout";
    case TransportFailure::kDropped: return "dropped";
    case TransportFailure::kServerError: return "server error";
  }
  return "";
}

Error TransportError(ErrorCode code, TransportFailure kind, std::string message) {
  return Error{code, std::move(message), TransportFailureName(kind), std::string(kTransportException)};
}

TransportFailure TransportFailureOf(const Error& e) {
  if (e.moodle_exception != kTransportException) return TransportFailure::kNone;
  for (TransportFailure k : {TransportFailure::kConnect, TransportFailure::kUnavailable, TransportFailure::kGateway,
                             TransportFailure::kTimeout, TransportFailure::kDropped, TransportFailure::kServerError})
    if (e.moodle_errorcode == TransportFailureName(k)) return k;
  return TransportFailure::kNone;
}

bool MayHaveApplied(const Error& e) {
  switch (TransportFailureOf(e)) {
    case TransportFailure::kGateway:
    case TransportFailure::kTimeout:
    case TransportFailure::kDropped:
    case TransportFailure::kServerError: return true;
    default: return false;
  }
}

bool IsUnreachable(const Error& e) {
  if (e.code != ErrorCode::kTransient) return false;
  const TransportFailure k = TransportFailureOf(e);
  return k != TransportFailure::kServerError;  // kNone: a test transport's transient error
}

namespace {

bool IsWriteFunction(std::string_view fn) {
  for (std::string_view verb : {"_create_", "_update_", "_delete_", "_enrol_users", "_unenrol_users",
                                "_assign_roles", "_unassign_roles", "_add_", "_remove_"}) {
    if (fn.find(verb) != std::string_view::npos) return true;
  }
  return false;
}

// Errors that say nothing about the items of a batch: bisecting would only
// multiply calls that fail the same way.
bool IsWholeCallError(const Error& e) {
  static const std::set<std::string> kCodes = {
      "accessexception",   "servicenotavailable", "sitemaintenance", "forbiddenwsuser",
      "usernotallowed",    "wsaccessuserdeleted", "wsaccessusersuspended", "wsaccessusernologin",
      "invalidtoken",      "codingerror",         "requireloginerror", "nopermissions"};
  return kCodes.count(e.moodle_errorcode) > 0;
}

std::string I(std::size_t i) { return std::to_string(i); }
std::string N(long long v) { return std::to_string(v); }

// Runs task(0..n-1) on up to `concurrency` threads; calls done(i) on the
// calling thread as tasks finish (for progress reports). With `keys`, task i
// holds keys[i] while it runs and never starts while another running task
// holds one of them; tasks start in index order otherwise.
void RunPool(std::size_t n, int concurrency, const std::function<void(std::size_t)>& task,
             const std::function<void(std::size_t)>& done,
             const std::vector<std::vector<long long>>* keys = nullptr) {
  if (n == 0) return;
  const std::size_t workers = std::min<std::size_t>(n, static_cast<std::size_t>(std::max(1, concurrency)));
  if (workers == 1) {
    for (std::size_t i = 0; i < n; ++i) {
      task(i);
      if (done) done(i);
    }
    return;
  }
  std::mutex mu;
  std::condition_variable cv;       // a task finished (for the caller)
  std::condition_variable free_cv;  // keys were released (for workers)
  std::deque<std::size_t> finished;
  std::vector<bool> started(n, false);
  std::size_t first_unstarted = 0;
  std::multiset<long long> held;
  auto startable = [&](std::size_t i) {
    if (!keys) return true;
    for (long long k : (*keys)[i])
      if (held.count(k)) return false;
    return true;
  };
  std::vector<std::thread> threads;
  threads.reserve(workers);
  for (std::size_t w = 0; w < workers; ++w) {
    threads.emplace_back([&] {
      for (;;) {
        std::size_t i = n;
        {
          std::unique_lock<std::mutex> lock(mu);
          for (;;) {
            while (first_unstarted < n && started[first_unstarted]) ++first_unstarted;
            if (first_unstarted >= n) return;
            for (std::size_t j = first_unstarted; j < n; ++j) {
              if (!started[j] && startable(j)) {
                i = j;
                break;
              }
            }
            if (i < n) break;
            free_cv.wait(lock);
          }
          started[i] = true;
          if (keys)
            for (long long k : (*keys)[i]) held.insert(k);
        }
        task(i);
        {
          std::lock_guard<std::mutex> lock(mu);
          if (keys)
            for (long long k : (*keys)[i]) held.erase(held.find(k));
          finished.push_back(i);
        }
        free_cv.notify_all();
        cv.notify_one();
      }
    });
  }
  for (std::size_t seen = 0; seen < n;) {
    std::unique_lock<std::mutex> lock(mu);
    cv.wait(lock, [&] { return !finished.empty(); });
    std::deque<std::size_t> batch;
    batch.swap(finished);
    lock.unlock();
    for (std::size_t i : batch) {
      ++seen;
      if (done) done(i);
    }
  }
  for (auto& t : threads) t.join();
}

// Why a failed call is worth sending again, or "" when it is not. Only
// failures after which nothing was committed, or after which sending it
// again is harmless, qualify:
// - transient transport failures: cannot connect, HTTP 502/503/504, a
//   timeout or a dropped connection (Transport). A TLS handshake failure,
//   HTTP 500 (a PHP fatal error: a memory or time limit, a broken plugin;
//   Moodle may have committed part of it and the same call fails the same
//   way) and every other status are kIo and never sent again;
// - a Moodle database error: every write function enrolsync calls runs in one
//   delegated transaction, which Moodle rolls back on a dml exception. A
//   PostgreSQL deadlock arrives as {"exception":"dml_write_exception",
//   "errorcode":"dmlwriteexception","message":"Error writing to database"}
//   (dml_read_exception/dmlreadexception for a read), with "ERROR: deadlock
//   detected" in debuginfo only when the site has debugging on.
// Whether the function may be sent again after an unknown outcome is
// decided by the caller (IsIdempotent).
std::string RetryReason(const Error& e) {
  if (e.code == ErrorCode::kTransient) {
    switch (TransportFailureOf(e)) {
      case TransportFailure::kUnavailable:
      case TransportFailure::kGateway: return "HTTP 5xx";
      case TransportFailure::kTimeout: return "timeout";
      case TransportFailure::kDropped: return "connection dropped";
      case TransportFailure::kConnect: return "connection";
      case TransportFailure::kServerError: return "";
      case TransportFailure::kNone: break;
    }
    // A transient error from a Transport that does not say what became of
    // the request (a test's): taken as "nothing was sent".
    return "connection";
  }
  if (e.code == ErrorCode::kMoodle &&
      (e.moodle_errorcode == "dmlwriteexception" || e.moodle_errorcode == "dmlreadexception")) {
    const std::string text = ToLower(e.message);
    if (text.find("deadlock") != std::string::npos || text.find("could not serialize") != std::string::npos)
      return "deadlock";
    return "database error";
  }
  return "";
}

// The contract for a call whose outcome is unknown (MayHaveApplied: the
// request reached Moodle, then a timeout, a dropped connection or a
// gateway's 502/504). Sending it again is safe only when doing a thing twice
// is the same as doing it once: enrol_manual_enrol_users (it sets the whole
// enrolment state), enrol_manual_unenrol_users, core_role_(un)assign_roles,
// core_user_update_users, and every read. core_course_create_courses and
// core_user_create_users are not: a second create fails on the duplicate
// shortname, idnumber or username (and for users, half-applied batches
// could not be told apart); core_user_delete_users fails on the user it
// already deleted. Those are not sent again: their items fail with the
// error, the executor keeps their pending intents (sync/executor.cc,
// Answered), and the next run reads back what Moodle applied before it
// plans (sync/reconcile.cc: a created course is found by shortname and
// idnumber; a created user is found by the user sync's read of its auth
// and adopted). Failures after which nothing reached Moodle (cannot
// connect, HTTP 503, a rolled-back deadlock) are retried for every function.
bool IsIdempotent(std::string_view fn) {
  return fn != "core_course_create_courses" && fn != "core_user_create_users" && fn != "core_user_delete_users";
}

// Moodle's messages can echo a parameter ("… the value is "…", the server
// was expecting …"): a value of a megabyte must not be printed whole. A
// message longer than this is cut, with its length shown (ShownValue).
constexpr std::size_t kMaxMessage = 1000;

// The message of `e` without the function name in front of it.
std::string WithoutFunction(const std::string& fn, const std::string& message) {
  if (message.rfind(fn + ": ", 0) == 0) return message.substr(fn.size() + 2);
  return message;
}

// One write operation: how to flatten an item, how many form variables it
// takes, and how to read the ids out of a successful response.
struct WriteJob {
  std::string function;
  std::size_t count = 0;
  std::function<std::size_t(std::size_t item)> vars;
  std::function<void(std::size_t item, std::size_t pos, FormFields& out)> add;
  // Parallel batches allowed for this function (ClientOptions).
  int concurrency = 1;
  // Optional: the course and the user an item changes. When set, items are
  // grouped by course, two batches that change the same course never run at
  // the same time, and each batch sends its items in ascending user order so
  // that parallel transactions take Moodle's per-user rows (mdl_cache_flags
  // "accesslib/dirtyusers") in the same order and cannot deadlock on them.
  std::function<MoodleId(std::size_t item)> course;
  std::function<MoodleId(std::size_t item)> user;
  // Fills ids for the items of a successful batch (optional: void writes).
  std::function<Status(const json& doc, std::span<const std::size_t> items, std::vector<MoodleId>& ids)> parse;
  // Optional: items a successful call refused all the same, as Moodle's
  // per-item "warnings" say (batch position -> {warningcode, message}).
  std::function<std::map<std::size_t, std::pair<std::string, std::string>>(const json& doc,
                                                                           std::span<const std::size_t> items)>
      refused;
};

// A course record of core_course_get_courses(_by_field). Both names come
// through format_string ("Design &amp; Technology"); idnumber is raw.
// Decoded so the planner compares the MIS's raw values.
model::Course ParseCourse(const json& c) {
  model::Course course;
  course.id = wire::JId(c, "id");
  course.fullname = wire::JName(c, "fullname");
  course.shortname = wire::JName(c, "shortname");
  course.idnumber = wire::JStr(c, "idnumber");
  course.categoryid = wire::JId(c, "categoryid");
  course.visible = wire::JBool(c, "visible", true);
  return course;
}

// Moodle 5.1's own work per item of each write function, measured on 2 cores
// (../shared/moodle/README.md "Throughput" and "Cost of a call";
// bench/realmoodle_bench): a course create about 78 ms, an enrolment or an
// unenrolment 11-14 ms, a user create about 7 ms. Role changes and user
// updates are taken as costly as an enrolment and a create; a user delete
// (it unenrols everywhere) is not measured and taken at 50 ms.
double SecondsPerItem(const std::string& function) {
  static const std::map<std::string, double> kSecondsPerItem = {
      {"core_course_create_courses", 0.080}, {"enrol_manual_enrol_users", 0.014},
      {"enrol_manual_unenrol_users", 0.014}, {"core_role_assign_roles", 0.014},
      {"core_role_unassign_roles", 0.014},   {"core_user_create_users", 0.007},
      {"core_user_update_users", 0.007},     {"core_user_delete_users", 0.050}};
  auto it = kSecondsPerItem.find(function);
  return it == kSecondsPerItem.end() ? 0 : it->second;
}

// Reads the participants of many courses per call when the site's service
// offers it (see Client::GetParticipants).
constexpr const char* kMultiCourseParticipants = "core_enrol_get_enrolled_users_with_capability";
constexpr std::size_t kCoursesPerParticipantCall = 100;
// Values (ids, emails…) in one read call.
constexpr std::size_t kValuesPerRead = 1000;
constexpr long long kParticipantsPerCall = 2500;

}  // namespace

struct Client::Impl {
  ClientOptions opts;
  std::unique_ptr<Transport> transport;
  // Set by GetSiteInfo when the token may call kMultiCourseParticipants.
  bool multi_course_participants = false;
  Result<std::vector<model::Course>> GetCourses(const FormFields& params);

  mutable std::mutex mu;  // guards stats, write_calls, rng
  std::map<std::string, FunctionStats> stats;
  std::map<std::string, int> retries;  // reason -> calls sent again
  std::set<Client::ItemKey> alone;      // SendAlone
  std::set<Client::ItemKey> refused;    // Refused(); guarded by mu
  std::atomic<int> bisect_calls{0};
  int write_calls = 0;
  // Wall time with at least one call in flight (parallel calls count once).
  int in_flight = 0;
  std::chrono::steady_clock::time_point busy_since;
  double waited = 0;

  // ClientOptions::give_up_after: since when every call has failed with an
  // unreachable-type error (nullopt: the last one got an answer), the last
  // such error, and the error every call gets once the client gave up.
  std::optional<std::chrono::steady_clock::time_point> down_since;
  std::string last_down;
  std::optional<Error> gave_up;

  std::chrono::steady_clock::time_point Now() const {
    return opts.now ? opts.now() : std::chrono::steady_clock::now();
  }
  void Sleep(std::chrono::milliseconds d) const {
    if (opts.sleep) opts.sleep(d);
    else std::this_thread::sleep_for(d);
  }

  // Notes how a call ended for give_up_after; returns the give-up error
  // when the client has given up.
  std::optional<Error> NoteOutcome(const Error* failure) {
    std::lock_guard<std::mutex> lock(mu);
    if (gave_up) return gave_up;
    if (!failure || !IsUnreachable(*failure)) {
      down_since.reset();
      return std::nullopt;
    }
    const auto now = Now();
    last_down = failure->message;
    if (!down_since) {
      down_since = now;
      return std::nullopt;
    }
    if (opts.give_up_after.count() <= 0 || now - *down_since < opts.give_up_after) return std::nullopt;
    const long long secs = std::chrono::duration_cast<std::chrono::seconds>(now - *down_since).count();
    gave_up = Error{ErrorCode::kTransient,
                    "Moodle unreachable for " + std::to_string(secs) + " s (last: " + last_down + "); giving up",
                    failure->moodle_errorcode, failure->moodle_exception};
    return gave_up;
  }
  std::optional<Error> GaveUp() {
    std::lock_guard<std::mutex> lock(mu);
    return gave_up;
  }

  void CallStarts() {
    std::lock_guard<std::mutex> lock(mu);
    if (in_flight++ == 0) busy_since = Now();
  }
  void CallEnds() {
    std::lock_guard<std::mutex> lock(mu);
    if (--in_flight == 0) waited += std::chrono::duration<double>(Now() - busy_since).count();
  }
  std::mt19937_64 rng{std::random_device{}()};

  struct Reply {
    std::string body;
    json doc;
  };

  void Record(const std::string& fn, double seconds, bool failed) {
    std::lock_guard<std::mutex> lock(mu);
    auto& s = stats[fn];
    ++s.calls;
    if (failed) ++s.failed;
    s.seconds += seconds;
    if (IsWriteFunction(fn)) ++write_calls;
  }

  std::chrono::milliseconds Backoff(int attempt) {
    const double base = static_cast<double>(opts.retry_base.count()) * std::pow(2.0, std::min(attempt, 16));
    const double capped = std::min(base, 60'000.0);
    std::lock_guard<std::mutex> lock(mu);
    std::uniform_real_distribution<double> jitter(0.5, 1.0);  // "equal jitter"
    return std::chrono::milliseconds(static_cast<long long>(capped * jitter(rng)));
  }

  // One web-service call, sent again (with backoff) only when RetryReason()
  // says it is worth it and, when the call may already have been applied,
  // only for idempotent functions (IsIdempotent). Any other Moodle exception
  // is never retried: the answer would not change. Once the client has given
  // up on an unreachable Moodle (give_up_after), fails at once.
  Result<Reply> Exchange(std::string_view function, const FormFields& params) {
    const std::string fn(function);
    for (int attempt = 0;; ++attempt) {
      if (auto given_up = GaveUp()) {
        Error e = *given_up;
        e.message = fn + ": " + e.message;
        if (attempt == 0) e.moodle_errorcode = std::string(kNotSent);  // never went out
        return Fail(std::move(e));
      }
      const auto t0 = Now();
      Result<Reply> out;
      try {
        CallStarts();
        Result<std::string> raw = [&] {
          struct Ends {
            Impl* impl;
            ~Ends() { impl->CallEnds(); }
          } ends{this};
          return transport->Post(function, params);
        }();
        if (!raw) {
          out = Fail(raw.error());
        } else {
          auto doc = wire::ParseResponse(function, *raw);
          if (doc) {
            out = Reply{std::move(*raw), std::move(*doc)};
          } else {
            out = Fail(doc.error());
          }
        }
      } catch (const std::exception& ex) {
        out = Fail(ErrorCode::kInternal, fn + ": unexpected exception: " + ex.what());
      }
      const double secs = std::chrono::duration<double>(Now() - t0).count();
      Record(fn, secs, !out.has_value());
      if (out) {
        NoteOutcome(nullptr);
        return out;
      }
      Error e = std::move(out.error());
      e.message = Redact(e.message);
      e.moodle_errorcode = Redact(e.moodle_errorcode);
      e.moodle_exception = Redact(e.moodle_exception);
      if (e.message.size() > kMaxMessage) e.message = ShownValue(e.message, kMaxMessage);
      if (e.message.rfind(fn, 0) != 0) e.message = fn + ": " + e.message;
      {
        Error bare = e;
        bare.message = WithoutFunction(fn, e.message);
        if (auto given_up = NoteOutcome(&bare)) {
          if (attempt > 0) e.message += " (gave up after " + std::to_string(attempt + 1) + " attempts)";
          return Fail(std::move(e));  // this call's own error; the next call gets the give-up
        }
      }
      std::string reason = RetryReason(e);
      if (!reason.empty() && MayHaveApplied(e) && !IsIdempotent(fn)) {
        e.message += "; not sent again (a second " + fn +
                     " would fail on the duplicate): the next run reads back what Moodle applied";
        return Fail(std::move(e));
      }
      // A database error that does not say "deadlock" (debugging off) may be
      // one, or may repeat for ever: it gets one more try only.
      const int limit = reason == "database error" ? std::min(1, opts.max_retries) : opts.max_retries;
      if (!reason.empty()) {
        if (attempt < limit) {
          {
            std::lock_guard<std::mutex> lock(mu);
            ++retries[reason];
          }
          Sleep(Backoff(attempt));
          continue;
        }
        if (attempt > 0) e.message += " (gave up after " + std::to_string(attempt + 1) + " attempts)";
      }
      return Fail(std::move(e));
    }
  }

  Result<json> CallJson(std::string_view function, const FormFields& params) {
    auto r = Exchange(function, params);
    if (!r) return Fail(r.error());
    return std::move(r->doc);
  }

  int VarBudget(int fixed) const {
    return std::max(1, opts.max_input_vars - wire::kFixedVars - wire::kReserveVars - fixed);
  }

  // Sends items (a contiguous run of one batch); on a Moodle error that is
  // about an item, bisects until each bad item stands alone.
  void RunBatch(const WriteJob& job, std::span<const std::size_t> items, std::vector<Result<MoodleId>>& out) {
    FormFields fields;
    for (std::size_t pos = 0; pos < items.size(); ++pos) job.add(items[pos], pos, fields);
    auto r = CallJson(job.function, fields);
    if (r) {
      std::vector<MoodleId> ids(items.size(), 0);
      Status parsed = Ok();
      if (job.parse) {
        try {
          parsed = job.parse(*r, items, ids);
        } catch (const std::exception& ex) {
          parsed = Fail(ErrorCode::kIo, job.function + ": unexpected response shape: " + ex.what());
        }
      }
      std::map<std::size_t, std::pair<std::string, std::string>> refused;
      if (parsed && job.refused) refused = job.refused(*r, items);
      for (std::size_t pos = 0; pos < items.size(); ++pos) {
        if (auto w = refused.find(pos); w != refused.end()) {
          out[items[pos]] = Fail(Error{ErrorCode::kMoodle,
                                       Redact(job.function + ": Moodle refused it: " +
                                              ShownValue(w->second.second, kMaxMessage) + " (" +
                                              w->second.first + ")"),
                                       w->second.first, "warning"});
        } else if (parsed && ids[pos] >= 0) {
          out[items[pos]] = ids[pos];
        } else {
          out[items[pos]] = Fail(parsed ? Error{ErrorCode::kIo,
                                                job.function + ": the call succeeded but its answer does not "
                                                               "list this item",
                                                {}, {}}
                                        : parsed.error());
        }
      }
      return;
    }
    const Error& e = r.error();
    const bool bisect = e.code == ErrorCode::kMoodle && e.moodle_errorcode != kMessageNotSent &&
                        items.size() > 1 && !IsWholeCallError(e);
    if (bisect) {
      // Two more calls, within the run's budget (max_bisect_calls).
      if (bisect_calls.fetch_add(2) + 2 <= opts.max_bisect_calls) {
        const std::size_t half = items.size() / 2;
        RunBatch(job, items.first(half), out);
        RunBatch(job, items.subspan(half), out);
        return;
      }
      bisect_calls.fetch_sub(2);
      Error whole = e;
      whole.message += " (one of " + I(items.size()) + " items in the call; not isolated: the run's " +
                       std::to_string(opts.max_bisect_calls) +
                       " bisecting calls are spent; the next run sends last run's failures alone first)";
      for (std::size_t item : items) out[item] = Fail(whole);
      return;
    }
    if (items.size() == 1 && e.code == ErrorCode::kMoodle && e.moodle_errorcode != kMessageNotSent &&
        !IsWholeCallError(e) && job.course && job.user) {
      std::lock_guard<std::mutex> lock(mu);
      refused.insert(Client::ItemKey{job.function, job.course(items[0]), job.user(items[0])});
    }
    for (std::size_t item : items) out[item] = Fail(e);
  }

  std::vector<Result<MoodleId>> RunWrites(const WriteJob& job, const Progress& progress,
                                          const BatchDone& batch_done = {}) {
    std::vector<Result<MoodleId>> out(job.count, Fail(ErrorCode::kInternal, job.function + ": not sent"));
    // Plan batches in input order: at most max_batch_rows rows and fewer form
    // variables than max_input_vars (PHP silently drops the rest).
    const std::size_t budget = static_cast<std::size_t>(VarBudget(0));
    std::size_t max_rows = static_cast<std::size_t>(std::max(1, opts.max_batch_rows));
    const double per_item = SecondsPerItem(job.function);  // sizes the batch by batch_seconds
    if (per_item > 0 && opts.batch_seconds > 0)
      max_rows = std::min(max_rows, std::max<std::size_t>(1, static_cast<std::size_t>(opts.batch_seconds / per_item)));
    std::vector<std::size_t> order(job.count);
    for (std::size_t i = 0; i < job.count; ++i) order[i] = i;
    // Last run's failures (SendAlone) first, one item a call.
    std::vector<char> solo(job.count, 0);
    if (!alone.empty() && job.course && job.user)
      for (std::size_t i = 0; i < job.count; ++i)
        solo[i] = alone.count(Client::ItemKey{job.function, job.course(i), job.user(i)}) ? 1 : 0;
    if (job.course)
      std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
        return std::make_pair(!solo[a], job.course(a)) < std::make_pair(!solo[b], job.course(b));
      });
    std::vector<std::pair<std::size_t, std::size_t>> batches;  // [begin, end) into order
    std::size_t begin = 0, vars = 0;
    for (std::size_t pos = 0; pos < job.count; ++pos) {
      const std::size_t i = order[pos];
      const std::size_t v = job.vars(i);
      if (solo[i] && v <= budget) {
        if (pos > begin) batches.emplace_back(begin, pos);
        batches.emplace_back(pos, pos + 1);
        begin = pos + 1;
        vars = 0;
        continue;
      }
      if (v > budget) {
        out[i] = Fail(ErrorCode::kInvalidArgument,
                      job.function + ": item " + I(i) + " needs " + I(v) + " form fields, more than max_input_vars (" +
                          std::to_string(opts.max_input_vars) + ") allows");
        if (pos > begin) batches.emplace_back(begin, pos);
        begin = pos + 1;
        vars = 0;
        continue;
      }
      if (pos > begin && (pos - begin >= max_rows || vars + v > budget)) {
        batches.emplace_back(begin, pos);
        begin = pos;
        vars = 0;
      }
      vars += v;
    }
    if (job.count > begin) batches.emplace_back(begin, job.count);
    std::vector<std::vector<long long>> keys;
    if (job.course) {
      for (auto [b, e] : batches) {
        std::set<long long> courses;
        for (std::size_t pos = b; pos < e; ++pos) courses.insert(job.course(order[pos]));
        keys.emplace_back(courses.begin(), courses.end());
        if (job.user)
          std::stable_sort(order.begin() + static_cast<std::ptrdiff_t>(b), order.begin() + static_cast<std::ptrdiff_t>(e),
                           [&](std::size_t x, std::size_t y) { return job.user(x) < job.user(y); });
      }
    }

    std::size_t done = job.count;
    for (auto [b, e] : batches) done -= e - b;  // oversized items are already "done"
    if (progress && done > 0) progress(done, job.count);
    RunPool(
        batches.size(), job.concurrency,
        [&](std::size_t k) {
          auto [b, e] = batches[k];
          if (opts.cancel && opts.cancel->load()) {
            for (std::size_t i = b; i < e; ++i) {
              Error stopped{ErrorCode::kTransient, job.function + ": not sent: stopping", std::string(kNotSent), ""};
              out[order[i]] = Fail(std::move(stopped));
            }
            return;
          }
          RunBatch(job, std::span<const std::size_t>(order).subspan(b, e - b), out);
        },
        [&](std::size_t k) {
          done += batches[k].second - batches[k].first;
          if (batch_done)
            batch_done(std::span<const std::size_t>(order).subspan(batches[k].first, batches[k].second - batches[k].first),
                       std::span<const Result<MoodleId>>(out));
          if (progress) progress(done, job.count);
        },
        job.course ? &keys : nullptr);
    return out;
  }

  static std::vector<Status> ToStatus(std::vector<Result<MoodleId>> in) {
    std::vector<Status> out;
    out.reserve(in.size());
    for (auto& r : in) {
      if (r) {
        out.emplace_back();
      } else {
        out.emplace_back(Fail(std::move(r.error())));
      }
    }
    return out;
  }

  // Adds the users of one course's "every enrolled user, with roles" answer
  // to `out`; active when listed in `active`.
  static void AddListed(const json& users, const std::set<MoodleId>& active, model::Participants& out) {
    for (const auto& u : users) {
      MoodleId id = wire::JId(u, "id");
      if (id <= 0) continue;
      auto& p = out[id];
      p.userid = id;
      p.active = active.count(id) > 0;
      if (u.contains("roles") && u["roles"].is_array()) {
        for (const auto& role : u["roles"]) {
          MoodleId rid = wire::JId(role, "roleid");
          if (rid > 0) p.roles.insert(rid);  // a user enrolled twice lists roles twice
        }
      }
    }
  }

  // The users listed active but missing from the read with roles: enrolled
  // between the two calls, by a write still running inside Moodle (another
  // admin, or a dead run's last batch, which PHP finishes without its
  // client).
  static std::set<MoodleId> EnrolledBetween(const std::set<MoodleId>& active, const model::Participants& listed) {
    std::set<MoodleId> out;
    for (MoodleId id : active)
      if (id > 0 && !listed.count(id)) out.insert(id);
    return out;
  }

  // Takes the roles of `between` from a third read (`again`, made after the
  // active-only one, so it shows every enrolment that one showed unless it
  // was removed since). Whoever it still does not show is recorded active
  // with roles_known = false: the planner leaves them alone this run.
  // Users the third read shows that neither earlier read did are left out:
  // their status was never read.
  static void FillBetween(const json* again, const std::set<MoodleId>& between, model::Participants& out) {
    if (again && again->is_array()) {
      for (const auto& u : *again) {
        MoodleId id = wire::JId(u, "id");
        if (!between.count(id)) continue;
        model::Participants one;
        AddListed(json::array({u}), {id}, one);
        out[id] = one[id];
      }
    }
    for (MoodleId id : between)
      if (!out.count(id)) out[id] = model::Participant{id, true, {}, /*roles_known=*/false};
  }

  // The participants of several courses in two calls of
  // core_enrol_get_enrolled_users_with_capability (every enrolled user with
  // their roles, then the active ones), capability "" meaning any enrolled
  // user, and a third for the courses where a user was enrolled between
  // those two (FillBetween). One missing course fails Moodle's whole call
  // (MUST_EXIST): the caller then reads that batch course by course.
  Result<std::map<MoodleId, model::Participants>> ReadParticipantsOf(std::span<const MoodleId> courseids) {
    auto fields = [&](std::span<const MoodleId> ids, bool onlyactive) {
      FormFields f;
      for (std::size_t i = 0; i < ids.size(); ++i) {
        f.emplace_back("coursecapabilities[" + I(i) + "][courseid]", N(ids[i]));
        f.emplace_back("coursecapabilities[" + I(i) + "][capabilities][0]", "");
      }
      f.emplace_back("options[0][name]", "userfields");
      f.emplace_back("options[0][value]", onlyactive ? "id" : "id,roles");
      if (onlyactive) {
        f.emplace_back("options[1][name]", "onlyactive");
        f.emplace_back("options[1][value]", "1");
      }
      return f;
    };
    const std::string fn = kMultiCourseParticipants;
    auto check = [&](const json& doc) -> Status {
      if (!doc.is_array()) return Fail(ErrorCode::kIo, fn + ": expected a list of courses, got " + doc.dump().substr(0, 200));
      for (const auto& c : doc) {
        if (!c.is_object() || !c.contains("users") || !c["users"].is_array())
          return Fail(ErrorCode::kIo, fn + ": expected {courseid, users}, got " + c.dump().substr(0, 200));
      }
      return Ok();
    };
    auto a = CallJson(fn, fields(courseids, false));
    if (!a) return Fail(a.error());
    auto b = CallJson(fn, fields(courseids, true));
    if (!b) return Fail(b.error());
    for (const json* doc : {&*a, &*b})
      if (auto st = check(*doc); !st) return Fail(st.error());
    std::map<MoodleId, model::Participants> out;
    std::map<MoodleId, std::set<MoodleId>> active;
    for (MoodleId id : courseids) out[id];
    for (const auto& c : *b) {
      for (const auto& u : c["users"]) active[wire::JId(c, "courseid")].insert(wire::JId(u, "id"));
    }
    for (const auto& c : *a) {
      MoodleId courseid = wire::JId(c, "courseid");
      AddListed(c["users"], active[courseid], out[courseid]);
    }
    std::map<MoodleId, std::set<MoodleId>> between;
    std::vector<MoodleId> again_ids;
    for (const auto& [courseid, ids] : active) {
      auto b_ids = EnrolledBetween(ids, out[courseid]);
      if (b_ids.empty()) continue;
      between[courseid] = std::move(b_ids);
      again_ids.push_back(courseid);
    }
    if (between.empty()) return out;
    auto again = CallJson(fn, fields(again_ids, false));
    if (!again) return Fail(again.error());
    if (auto st = check(*again); !st) return Fail(st.error());
    std::map<MoodleId, const json*> again_of;
    for (const auto& c : *again) again_of[wire::JId(c, "courseid")] = &c["users"];
    for (const auto& [courseid, ids] : between) {
      auto it = again_of.find(courseid);
      FillBetween(it == again_of.end() ? nullptr : it->second, ids, out[courseid]);
    }
    return out;
  }

  Result<model::Participants> ReadParticipants(MoodleId courseid) {
    FormFields all = {{"courseid", N(courseid)},
                      {"options[0][name]", "userfields"},
                      {"options[0][value]", "id,roles"}};
    FormFields active = {{"courseid", N(courseid)},
                         {"options[0][name]", "onlyactive"},
                         {"options[0][value]", "1"},
                         {"options[1][name]", "userfields"},
                         {"options[1][value]", "id"}};
    const std::string fn = "core_enrol_get_enrolled_users";
    auto expect_list = [&](const json& doc) -> Status {
      if (doc.is_array()) return Ok();
      return Fail(ErrorCode::kIo,
                  "course " + N(courseid) + ": " + fn + ": expected a list of users, got " + doc.dump().substr(0, 200));
    };
    auto a = CallJson(fn, all);
    if (!a) return Fail(a.error().Wrap("course " + N(courseid)));
    auto b = CallJson(fn, active);
    if (!b) return Fail(b.error().Wrap("course " + N(courseid)));
    for (const json* doc : {&*a, &*b})
      if (auto st = expect_list(*doc); !st) return Fail(st.error());
    std::set<MoodleId> active_ids;
    for (const auto& u : *b) active_ids.insert(wire::JId(u, "id"));
    model::Participants out;
    AddListed(*a, active_ids, out);
    auto between = EnrolledBetween(active_ids, out);
    if (between.empty()) return out;
    auto again = CallJson(fn, all);
    if (!again) return Fail(again.error().Wrap("course " + N(courseid)));
    if (auto st = expect_list(*again); !st) return Fail(st.error());
    FillBetween(&*again, between, out);
    return out;
  }
};

Client::Client(ClientOptions options) : Client(options, MakeHttpTransport(options)) {}

Client::Client(ClientOptions options, std::unique_ptr<Transport> transport) : impl_(std::make_unique<Impl>()) {
  RegisterSecret(options.token);
  if (options.concurrency < 1) options.concurrency = 1;
  for (int* c : {&options.enrol_concurrency, &options.user_concurrency})
    if (*c < 1) *c = options.concurrency;
  if (options.create_course_concurrency < 1) options.create_course_concurrency = 1;
  if (options.max_retries < 0) options.max_retries = 0;
  impl_->opts = std::move(options);
  impl_->transport = std::move(transport);
}

Client::~Client() = default;

Result<std::string> Client::Call(std::string_view function, const FormFields& params) {
  auto r = impl_->Exchange(function, params);
  if (!r) return Fail(r.error());
  return std::move(r->body);
}

Result<SiteInfo> Client::GetSiteInfo() {
  const std::string fn = "core_webservice_get_site_info";
  auto r = impl_->CallJson(fn, {});
  if (!r) return Fail(r.error());
  const json& d = *r;
  if (!d.is_object()) return Fail(ErrorCode::kIo, fn + ": expected an object, got " + d.dump().substr(0, 200));
  SiteInfo info;
  info.sitename = wire::JStr(d, "sitename");
  info.release = wire::JStr(d, "release");
  info.version = wire::JStr(d, "version");
  info.userid = wire::JId(d, "userid");
  info.username = wire::JStr(d, "username");
  if (d.contains("functions") && d["functions"].is_array()) {
    for (const auto& f : d["functions"]) info.functions.push_back(wire::JStr(f, "name"));
    impl_->multi_course_participants =
        std::find(info.functions.begin(), info.functions.end(), kMultiCourseParticipants) != info.functions.end();
  }
  return info;
}

Result<std::vector<model::Category>> Client::GetCategories() {
  const std::string fn = "core_course_get_categories";
  auto r = impl_->CallJson(fn, {});
  if (!r) return Fail(r.error());
  if (!r->is_array()) return Fail(ErrorCode::kIo, fn + ": expected a list, got " + r->dump().substr(0, 200));
  std::vector<std::pair<MoodleId, model::Category>> sorted;
  for (const auto& c : *r) {
    // The name comes through format_string (HTML-escaped); idnumber is raw.
    sorted.emplace_back(wire::JId(c, "sortorder"),
                        model::Category{wire::JId(c, "id"), wire::JName(c, "name"), wire::JStr(c, "idnumber")});
  }
  std::stable_sort(sorted.begin(), sorted.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  std::vector<model::Category> out;
  for (auto& [_, c] : sorted) out.push_back(std::move(c));
  return out;
}

Result<std::vector<model::Course>> Client::GetAllCourses() { return impl_->GetCourses({}); }

Result<std::vector<model::Course>> Client::GetCoursesByIds(const std::vector<MoodleId>& ids) {
  // core_course_get_courses, not get_courses_by_field(ids): on Moodle 5.1
  // the latter fails the whole call for one id with no course.
  const std::string fn = "core_course_get_courses";
  std::vector<model::Course> out;
  constexpr std::size_t kPerCall = kValuesPerRead;
  for (std::size_t b = 0; b < ids.size(); b += kPerCall) {
    FormFields f;
    for (std::size_t i = b; i < std::min(ids.size(), b + kPerCall); ++i)
      f.emplace_back("options[ids][" + I(i - b) + "]", N(ids[i]));
    auto r = impl_->CallJson(fn, f);
    if (!r) return Fail(r.error());
    if (!r->is_array()) return Fail(ErrorCode::kIo, fn + ": expected a list of courses, got " + r->dump().substr(0, 200));
    for (const auto& c : *r) {
      model::Course course = ParseCourse(c);
      if (course.id > 1 && wire::JStr(c, "format") != "site") out.push_back(std::move(course));
    }
  }
  return out;
}

Result<std::vector<model::Course>> Client::Impl::GetCourses(const FormFields& params) {
  const std::string fn = "core_course_get_courses_by_field";
  auto r = CallJson(fn, params);
  if (!r) return Fail(r.error());
  if (!r->is_object() || !r->contains("courses") || !(*r)["courses"].is_array()) {
    return Fail(ErrorCode::kIo, fn + ": expected {\"courses\":[…]}, got " + r->dump().substr(0, 200));
  }
  std::vector<model::Course> out;
  for (const auto& c : (*r)["courses"]) {
    if (wire::JId(c, "id") == 1 || wire::JStr(c, "format") == "site") continue;  // the front page
    out.push_back(ParseCourse(c));
  }
  return out;
}

namespace {
// The profile fields enrolsync compares for the user sync.
constexpr const char* kProfileFields[] = {"firstname", "lastname", "email", "idnumber", "department",
                                          "institution", "phone1", "phone2", "address", "city", "country",
                                          "description", "middlename", "alternatename", "firstnamephonetic",
                                          "lastnamephonetic"};

// The users of several lookup calls, each once (by id), in call order; the
// first failed call's error if any failed.
Result<std::vector<model::User>> MergeUsers(std::vector<Result<std::vector<model::User>>>& parts) {
  std::vector<model::User> out;
  std::set<MoodleId> seen;
  for (auto& p : parts) {
    if (!p) return Fail(p.error());
    for (auto& u : *p) {
      if (seen.insert(u.id).second) out.push_back(std::move(u));
    }
  }
  return out;
}

model::User ParseUser(const json& u) {
  model::User user;
  user.id = wire::JId(u, "id");
  user.username = wire::JStr(u, "username");
  user.email = wire::JStr(u, "email");
  user.idnumber = wire::JStr(u, "idnumber");
  user.auth = wire::JStr(u, "auth");
  user.suspended = wire::JBool(u, "suspended", false);
  for (const char* f : kProfileFields) {
    if (u.contains(f) && u[f].is_string()) user.profile[f] = u[f].get<std::string>();
  }
  return user;
}
}  // namespace

Result<std::vector<model::User>> Client::GetUsersByAuth(const std::string& auth) {
  const std::string fn = "core_user_get_users";
  auto r = impl_->CallJson(fn, {{"criteria[0][key]", "auth"}, {"criteria[0][value]", auth}});
  if (!r) return Fail(r.error());
  if (!r->is_object() || !r->contains("users") || !(*r)["users"].is_array())
    return Fail(ErrorCode::kIo, fn + ": expected {\"users\": [...]}, got " + r->dump().substr(0, 200));
  std::vector<model::User> out;
  for (const auto& u : (*r)["users"]) out.push_back(ParseUser(u));
  return out;
}

std::vector<Result<MoodleId>> Client::CreateUsers(const std::vector<NewUser>& users, const Progress& progress,
      const BatchDone& batch_done) {
  WriteJob job;
  job.function = "core_user_create_users";
  job.concurrency = impl_->opts.user_concurrency;
  job.count = users.size();
  job.vars = [&](std::size_t i) { return 2 + users[i].fields.size(); };
  job.add = [&](std::size_t i, std::size_t pos, FormFields& f) {
    const NewUser& u = users[i];
    const std::string p = "users[" + I(pos) + "]";
    f.emplace_back(p + "[username]", u.username);
    f.emplace_back(p + "[auth]", u.auth);
    for (const auto& [k, v] : u.fields) f.emplace_back(p + "[" + k + "]", v);
  };
  job.parse = [&](const json& doc, std::span<const std::size_t> items, std::vector<MoodleId>& ids) -> Status {
    if (!doc.is_array())
      return Fail(ErrorCode::kIo, job.function + ": users were sent but the answer is not a list: " +
                                      doc.dump().substr(0, 200));
    std::map<std::string, MoodleId> by_username;
    for (const auto& u : doc) by_username[wire::JStr(u, "username")] = wire::JId(u, "id");
    for (std::size_t pos = 0; pos < items.size(); ++pos) {
      auto it = by_username.find(users[items[pos]].username);
      ids[pos] = it != by_username.end() && it->second > 0 ? it->second : -1;
    }
    return Ok();
  };
  return impl_->RunWrites(job, progress, batch_done);
}

std::vector<Status> Client::UpdateUsers(const std::vector<UserUpdate>& users, const Progress& progress,
      const BatchDone& batch_done) {
  WriteJob job;
  job.function = "core_user_update_users";
  job.concurrency = impl_->opts.user_concurrency;
  job.count = users.size();
  job.vars = [&](std::size_t i) { return 2 + users[i].fields.size(); };
  job.add = [&](std::size_t i, std::size_t pos, FormFields& f) {
    const UserUpdate& u = users[i];
    const std::string p = "users[" + I(pos) + "]";
    f.emplace_back(p + "[id]", N(u.id));
    for (const auto& [k, v] : u.fields) f.emplace_back(p + "[" + k + "]", v);
    if (u.suspended) f.emplace_back(p + "[suspended]", *u.suspended ? "1" : "0");
  };
  // Moodle 5.1 answers {"warnings": [{"item": "user", "itemid": id,
  // "warningcode": "usernotupdatedguest" | "useremailduplicate" | ...}]} for
  // users it did not update, and commits the others.
  job.refused = [&](const json& doc, std::span<const std::size_t> items) {
    std::map<std::size_t, std::pair<std::string, std::string>> out;
    if (!doc.is_object() || !doc.contains("warnings") || !doc["warnings"].is_array()) return out;
    for (const auto& w : doc["warnings"]) {
      const MoodleId id = wire::JId(w, "itemid");
      for (std::size_t pos = 0; pos < items.size(); ++pos) {
        if (users[items[pos]].id == id)
          out[pos] = {wire::JStr(w, "warningcode"), wire::JStr(w, "message")};
      }
    }
    return out;
  };
  return Impl::ToStatus(impl_->RunWrites(job, progress, batch_done));
}

std::vector<Status> Client::DeleteUsers(const std::vector<MoodleId>& userids, const Progress& progress,
      const BatchDone& batch_done) {
  WriteJob job;
  job.function = "core_user_delete_users";
  job.concurrency = impl_->opts.user_concurrency;
  job.count = userids.size();
  job.vars = [](std::size_t) -> std::size_t { return 1; };
  job.add = [&](std::size_t i, std::size_t pos, FormFields& f) {
    f.emplace_back("userids[" + I(pos) + "]", N(userids[i]));
  };
  return Impl::ToStatus(impl_->RunWrites(job, progress, batch_done));
}

Result<std::vector<model::User>> Client::GetUsersByField(const std::string& field,
                                                         const std::vector<std::string>& values) {
  const std::string fn = "core_user_get_users_by_field";
  std::vector<std::string> unique;
  {
    std::set<std::string> seen;
    for (const auto& v : values) {
      if (seen.insert(v).second) unique.push_back(v);
    }
  }
  // A read is bounded by max_input_vars and kValuesPerRead, not by the
  // write batches' max_batch_rows: a scan for new ids plus the rotation's
  // share go in one call.
  const std::size_t per_call =
      std::min<std::size_t>(kValuesPerRead, static_cast<std::size_t>(impl_->VarBudget(/*field=*/1)));
  const std::size_t calls = (unique.size() + per_call - 1) / per_call;
  std::vector<Result<std::vector<model::User>>> parts(calls, std::vector<model::User>{});
  RunPool(
      calls, impl_->opts.concurrency,
      [&](std::size_t k) {
        FormFields f = {{"field", field}};
        const std::size_t b = k * per_call, e = std::min(unique.size(), b + per_call);
        for (std::size_t i = b; i < e; ++i) f.emplace_back("values[" + I(i - b) + "]", unique[i]);
        auto r = impl_->CallJson(fn, f);
        if (!r) {
          parts[k] = Fail(r.error());
          return;
        }
        if (!r->is_array()) {
          parts[k] = Fail(ErrorCode::kIo, fn + ": expected a list of users, got " + r->dump().substr(0, 200));
          return;
        }
        std::vector<model::User> users;
        for (const auto& u : *r) users.push_back(ParseUser(u));
        parts[k] = std::move(users);
      },
      {});
  return MergeUsers(parts);
}

Result<std::vector<model::User>> Client::FindUsersByEmail(const std::vector<std::string>& emails) {
  const std::string fn = "core_user_get_users";
  std::vector<std::string> unique;
  {
    std::set<std::string> seen;
    for (const auto& e : emails) {
      if (!e.empty() && seen.insert(ToLower(e)).second) unique.push_back(e);
    }
  }
  std::vector<Result<std::vector<model::User>>> parts(unique.size(), std::vector<model::User>{});
  RunPool(
      unique.size(), impl_->opts.concurrency,
      [&](std::size_t k) {
        auto r = impl_->CallJson(fn, {{"criteria[0][key]", "email"}, {"criteria[0][value]", unique[k]}});
        if (!r) {
          parts[k] = Fail(r.error());
          return;
        }
        if (!r->is_object() || !r->contains("users") || !(*r)["users"].is_array()) {
          parts[k] = Fail(ErrorCode::kIo, fn + ": expected {\"users\": [...]}, got " + r->dump().substr(0, 200));
          return;
        }
        // Moodle's criterion is a LIKE: "_" matches any character. Keep
        // only the users whose email is the value, ignoring case.
        std::vector<model::User> users;
        const std::string want = ToLower(unique[k]);
        for (const auto& u : (*r)["users"]) {
          model::User user = ParseUser(u);
          if (ToLower(user.email) == want) users.push_back(std::move(user));
        }
        parts[k] = std::move(users);
      },
      {});
  return MergeUsers(parts);
}

std::map<MoodleId, Result<model::Participants>> Client::GetParticipants(const std::vector<MoodleId>& courseids,
                                                                        const Progress& progress,
                                                                        const std::map<MoodleId, int>& sizes) {
  std::vector<MoodleId> ids;
  {
    std::set<MoodleId> seen;
    for (MoodleId id : courseids) {
      if (seen.insert(id).second) ids.push_back(id);
    }
  }
  std::vector<Result<model::Participants>> results(ids.size(), model::Participants{});
  std::size_t done = 0;
  if (!impl_->multi_course_participants) {
    RunPool(
        ids.size(), impl_->opts.concurrency, [&](std::size_t k) { results[k] = impl_->ReadParticipants(ids[k]); },
        [&](std::size_t) {
          ++done;
          if (progress) progress(done, ids.size());
        });
  } else {
    // Batches of at most kCoursesPerParticipantCall courses (two variables
    // each, under max_input_vars) and about kParticipantsPerCall expected
    // participants (Moodle spends about 1 ms on each: a call stays a few
    // seconds). A failed batch is read course by course, so one deleted
    // course fails only itself.
    const std::size_t max_courses = std::max<std::size_t>(
        1, std::min<std::size_t>(kCoursesPerParticipantCall, static_cast<std::size_t>(impl_->VarBudget(4)) / 2));
    std::vector<std::pair<std::size_t, std::size_t>> batches;  // [begin, end) into ids
    for (std::size_t b = 0; b < ids.size();) {
      std::size_t e = b;
      long long people = 0;
      while (e < ids.size() && e - b < max_courses) {
        auto it = sizes.find(ids[e]);
        long long n = it == sizes.end() ? 0 : it->second;
        if (e > b && people + n > kParticipantsPerCall) break;
        people += n;
        ++e;
      }
      batches.emplace_back(b, e);
      b = e;
    }
    RunPool(
        batches.size(), impl_->opts.concurrency,
        [&](std::size_t k) {
          const auto [b, e] = batches[k];
          auto read = impl_->ReadParticipantsOf(std::span<const MoodleId>(ids).subspan(b, e - b));
          for (std::size_t i = b; i < e; ++i) {
            if (read) results[i] = std::move((*read)[ids[i]]);
            else results[i] = impl_->ReadParticipants(ids[i]);
          }
        },
        [&](std::size_t k) {
          done += batches[k].second - batches[k].first;
          if (progress) progress(done, ids.size());
        });
  }
  std::map<MoodleId, Result<model::Participants>> out;
  for (std::size_t k = 0; k < ids.size(); ++k) out.emplace(ids[k], std::move(results[k]));
  return out;
}

std::vector<Result<MoodleId>> Client::CreateCourses(const std::vector<NewCourse>& courses, const Progress& progress,
      const BatchDone& batch_done) {
  WriteJob job;
  job.function = "core_course_create_courses";
  job.concurrency = impl_->opts.create_course_concurrency;
  job.count = courses.size();
  job.vars = [&](std::size_t i) { return 4 + courses[i].fields.size() + 2 * courses[i].format_options.size(); };
  job.add = [&](std::size_t i, std::size_t pos, FormFields& f) {
    const NewCourse& c = courses[i];
    const std::string p = "courses[" + I(pos) + "]";
    f.emplace_back(p + "[fullname]", c.fullname);
    f.emplace_back(p + "[shortname]", c.shortname);
    f.emplace_back(p + "[categoryid]", N(c.categoryid));
    f.emplace_back(p + "[idnumber]", c.idnumber);
    for (const auto& [k, v] : c.fields) f.emplace_back(p + "[" + k + "]", v);
    for (std::size_t j = 0; j < c.format_options.size(); ++j) {
      f.emplace_back(p + "[courseformatoptions][" + I(j) + "][name]", c.format_options[j].first);
      f.emplace_back(p + "[courseformatoptions][" + I(j) + "][value]", c.format_options[j].second);
    }
  };
  job.parse = [&](const json& doc, std::span<const std::size_t> items, std::vector<MoodleId>& ids) -> Status {
    if (!doc.is_array()) {
      return Fail(ErrorCode::kIo, job.function + ": courses were sent but the answer is not a list: " +
                                      doc.dump().substr(0, 200));
    }
    // Moodle answers in request order; match by shortname to be sure.
    std::map<std::string, MoodleId> by_shortname;
    // The answer echoes the raw shortname (no format_string); a decoded copy
    // is kept too in case a site's answer is escaped.
    for (const auto& c : doc) {
      by_shortname[wire::JStr(c, "shortname")] = wire::JId(c, "id");
      by_shortname.emplace(wire::JName(c, "shortname"), wire::JId(c, "id"));
    }
    for (std::size_t pos = 0; pos < items.size(); ++pos) {
      auto it = by_shortname.find(courses[items[pos]].shortname);
      ids[pos] = it != by_shortname.end() && it->second > 0 ? it->second : -1;
    }
    return Ok();
  };
  return impl_->RunWrites(job, progress, batch_done);
}

std::vector<Status> Client::EnrolUsers(const std::vector<ManualEnrolment>& enrolments, const Progress& progress,
      const BatchDone& batch_done) {
  WriteJob job;
  job.function = "enrol_manual_enrol_users";
  job.concurrency = impl_->opts.enrol_concurrency;
  job.course = [&](std::size_t i) { return enrolments[i].courseid; };
  job.user = [&](std::size_t i) { return enrolments[i].userid; };
  job.count = enrolments.size();
  job.vars = [](std::size_t) -> std::size_t { return 6; };
  job.add = [&](std::size_t i, std::size_t pos, FormFields& f) {
    const ManualEnrolment& e = enrolments[i];
    const std::string p = "enrolments[" + I(pos) + "]";
    f.emplace_back(p + "[roleid]", N(e.roleid));
    f.emplace_back(p + "[userid]", N(e.userid));
    f.emplace_back(p + "[courseid]", N(e.courseid));
    f.emplace_back(p + "[timestart]", "0");
    f.emplace_back(p + "[timeend]", "0");
    f.emplace_back(p + "[suspend]", e.suspend ? "1" : "0");
  };
  return Impl::ToStatus(impl_->RunWrites(job, progress, batch_done));
}

std::vector<Status> Client::UnenrolUsers(const std::vector<CourseUserRef>& users, const Progress& progress,
      const BatchDone& batch_done) {
  WriteJob job;
  job.function = "enrol_manual_unenrol_users";
  job.concurrency = impl_->opts.enrol_concurrency;
  job.course = [&](std::size_t i) { return users[i].courseid; };
  job.user = [&](std::size_t i) { return users[i].userid; };
  job.count = users.size();
  job.vars = [](std::size_t) -> std::size_t { return 2; };
  job.add = [&](std::size_t i, std::size_t pos, FormFields& f) {
    const std::string p = "enrolments[" + I(pos) + "]";
    f.emplace_back(p + "[userid]", N(users[i].userid));
    f.emplace_back(p + "[courseid]", N(users[i].courseid));
  };
  return Impl::ToStatus(impl_->RunWrites(job, progress, batch_done));
}

namespace {
void AddRoleFields(const char* array, const RoleAssignment& a, std::size_t pos, FormFields& f) {
  const std::string p = std::string(array) + "[" + I(pos) + "]";
  f.emplace_back(p + "[roleid]", N(a.roleid));
  f.emplace_back(p + "[userid]", N(a.userid));
  f.emplace_back(p + "[contextlevel]", "course");
  f.emplace_back(p + "[instanceid]", N(a.courseid));
}
}  // namespace

std::vector<Status> Client::AssignRoles(const std::vector<RoleAssignment>& assignments, const Progress& progress,
      const BatchDone& batch_done) {
  WriteJob job;
  job.function = "core_role_assign_roles";
  job.concurrency = impl_->opts.enrol_concurrency;
  job.course = [&](std::size_t i) { return assignments[i].courseid; };
  job.user = [&](std::size_t i) { return assignments[i].userid; };
  job.count = assignments.size();
  job.vars = [](std::size_t) -> std::size_t { return 4; };
  job.add = [&](std::size_t i, std::size_t pos, FormFields& f) { AddRoleFields("assignments", assignments[i], pos, f); };
  return Impl::ToStatus(impl_->RunWrites(job, progress, batch_done));
}

std::vector<Status> Client::UnassignRoles(const std::vector<RoleAssignment>& assignments, const Progress& progress,
      const BatchDone& batch_done) {
  WriteJob job;
  job.function = "core_role_unassign_roles";
  job.concurrency = impl_->opts.enrol_concurrency;
  job.course = [&](std::size_t i) { return assignments[i].courseid; };
  job.user = [&](std::size_t i) { return assignments[i].userid; };
  job.count = assignments.size();
  job.vars = [](std::size_t) -> std::size_t { return 4; };
  job.add = [&](std::size_t i, std::size_t pos, FormFields& f) {
    AddRoleFields("unassignments", assignments[i], pos, f);
  };
  return Impl::ToStatus(impl_->RunWrites(job, progress, batch_done));
}

std::map<std::string, FunctionStats> Client::Stats() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->stats;
}

std::map<std::string, int> Client::Retries() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->retries;
}

double Client::WaitSeconds() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->waited;
}

void Client::SendAlone(std::set<ItemKey> items) {
  const std::size_t cap = static_cast<std::size_t>(std::max(0, impl_->opts.max_bisect_calls));
  while (items.size() > cap) items.erase(std::prev(items.end()));
  impl_->alone = std::move(items);
}

std::set<Client::ItemKey> Client::Refused() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->refused;
}

int Client::BisectCalls() const { return impl_->bisect_calls.load(); }

int Client::WriteCalls() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->write_calls;
}

}  // namespace enrolsync::moodle
