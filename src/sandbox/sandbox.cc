#include "sandbox/sandbox.h"

#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <mutex>
#include <thread>

#include <httplib.h>

#include "sandbox/cost_model.h"
#include "sandbox/form.h"
#include "sandbox/params.h"
#include "sandbox/probe_state.h"
#include "sandbox/site_store.h"
#include "sandbox/ws_error.h"
#include "sandbox/ws_functions.h"

namespace enrolsync::sandbox {

namespace {

constexpr const char* kEndpoint = "/webservice/rest/server.php";

// PHP's json_encode: non-ASCII as \uXXXX and "/" as "\/".
std::string PhpJson(const Json& j) {
  std::string s = j.dump(-1, ' ', true);
  std::string out;
  out.reserve(s.size() + s.size() / 16);
  for (char c : s) {
    if (c == '/') out += "\\/";
    else out += c;
  }
  return out;
}

Json ErrorJson(const WsError& e) {
  Json j = Json::object();
  j["exception"] = e.exception;
  j["errorcode"] = e.errorcode;
  j["message"] = e.message;
  return j;
}

WsError FaultError(const std::string& code) {
  if (code == "invalidparameter") return InvalidParameter();
  if (code == "invalidrecordunknown") return MissingRecord();
  if (code == "codingerror") return CodingError("injected fault");
  if (code == "invalidtoken") return MoodleError("invalidtoken", "Invalid token - token not found");
  // A PostgreSQL deadlock inside Moodle, as it answers with debugging off
  // (Moodle rolled the call back).
  if (code == "dmlwriteexception") return {"dml_write_exception", "dmlwriteexception", "Error writing to database"};
  return MoodleError(code);
}

}  // namespace

struct Sandbox::Impl {
  Options options;
  std::mutex mu;  // guards store, counts, faults
  std::unique_ptr<SiteStore> store;
  std::map<std::string, int> counts;
  std::vector<Fault> faults;
  httplib::Server server;
  std::thread thread;
  int port = 0;
  bool stopped = false;

  // The cost model's workers: calls in service, and a FIFO of tickets for
  // the ones waiting.
  std::optional<CostModel> cost;
  std::mutex worker_mu;
  std::condition_variable worker_cv;
  int busy = 0, peak_busy = 0;
  unsigned long long next_ticket = 0, serving_ticket = 0;
  double charged = 0;

  // Waits for a free worker (first come, first served).
  void AcquireWorker() {
    std::unique_lock<std::mutex> lock(worker_mu);
    unsigned long long ticket = next_ticket++;
    worker_cv.wait(lock, [&] { return ticket == serving_ticket && busy < cost->workers; });
    ++serving_ticket;
    peak_busy = std::max(peak_busy, ++busy);
    worker_cv.notify_all();
  }
  void ReleaseWorker(double seconds) {
    std::lock_guard<std::mutex> lock(worker_mu);
    --busy;
    charged += seconds;
    worker_cv.notify_all();
  }

  // Runs `fn` on the store inside one transaction; WsException and DbError
  // roll it back. Caller holds `mu`.
  template <class F>
  Json Transaction(F&& fn, std::optional<WsError>* error) {
    store->Begin();
    try {
      Json result = fn();
      store->Commit();
      return result;
    } catch (const WsException& e) {
      store->Rollback();
      *error = e.error;
    } catch (const std::exception& e) {
      store->Rollback();
      *error = WsError{"dml_write_exception", "dmlwriteexception", std::string("Error writing to database: ") + e.what()};
    }
    return nullptr;
  }

  std::optional<Fault> TakeFault(const std::string& fn) {
    for (auto it = faults.begin(); it != faults.end(); ++it) {
      if (it->function != fn) continue;
      if (it->skip > 0) {
        --it->skip;
        return std::nullopt;
      }
      Fault f = *it;
      if (--it->times <= 0) faults.erase(it);
      return f;
    }
    return std::nullopt;
  }

  // `body` is read by the caller: httplib refuses url-encoded bodies over
  // 8 KiB (HTTP 413) when it parses them itself, and Moodle takes megabytes.
  void Handle(const httplib::Request& req, httplib::Response& res, const std::string& body_text) {
    if (!cost) {
      Serve(req, res, body_text, nullptr);
      return;
    }
    // Served by one of the model's workers, for as long as the model says
    // the call costs (the sandbox's own work counts towards it).
    if (cost->workers > 0) AcquireWorker();
    auto start = std::chrono::steady_clock::now();
    double seconds = cost->bootstrap;
    Serve(req, res, body_text, &seconds);
    std::this_thread::sleep_until(start + std::chrono::duration<double>(seconds));
    if (cost->workers > 0) ReleaseWorker(seconds);
    else {
      std::lock_guard<std::mutex> lock(worker_mu);
      charged += seconds;
    }
  }

  // Answers one request. With a cost model, sets *seconds to what it costs.
  void Serve(const httplib::Request& req, httplib::Response& res, const std::string& body_text, double* seconds) {
    std::size_t limit = options.max_input_vars > 0 ? static_cast<std::size_t>(options.max_input_vars) : 0;
    std::string query;
    if (auto q = req.target.find('?'); q != std::string::npos) query = req.target.substr(q + 1);
    Json tree = BuildTree(ParseUrlEncoded(query, limit, false).vars);
    if (req.method == "POST") {
      Json body = BuildTree(ParseUrlEncoded(body_text, limit, true).vars);
      for (auto it = body.begin(); it != body.end(); ++it) tree[it.key()] = it.value();
    }
    auto take = [&](const char* key) {
      std::string v;
      auto it = tree.find(key);
      if (it != tree.end()) {
        if (it->is_string()) v = it->get<std::string>();
        tree.erase(it);
      }
      return v;
    };
    std::string token = take("wstoken");
    std::string function = take("wsfunction");
    take("moodlewsrestformat");  // only JSON is implemented
    take("moodlewssettingfilter");
    take("moodlewssettingfileurl");
    take("moodlewssettinglang");

    std::optional<Fault> fault;
    {
      std::lock_guard<std::mutex> lock(mu);
      ++counts[function];
      fault = TakeFault(function);
    }
    if (!options.webservices_enabled) {
      res.status = 403;
      res.set_content("", "text/html; charset=utf-8");
      return;
    }
    if (options.latency_ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(options.latency_ms));
    if (fault && fault->kind == Fault::kDelay && !fault->apply) {
      std::this_thread::sleep_for(std::chrono::milliseconds(fault->delay_ms));
    }
    if (fault && fault->kind == Fault::kException) {
      Reply(res, ErrorJson(FaultError(fault->errorcode)));
      return;
    }
    bool apply = !fault || fault->kind == Fault::kDelay || fault->kind == Fault::kMessageNotSent || fault->apply;
    Json clean;
    long long units = 0;
    Json result = apply ? Call(token, function, tree, &clean, seconds ? &units : nullptr) : Json(nullptr);
    if (seconds) *seconds = CallSeconds(*cost, function, clean, result, units);
    // Applied, and the answer held back: a client that dies now never
    // learns that Moodle committed the call.
    if (fault && fault->kind == Fault::kDelay && fault->apply) {
      std::this_thread::sleep_for(std::chrono::milliseconds(fault->delay_ms));
    }
    if (fault && fault->kind == Fault::kHttp500) {
      res.status = 500;
      res.set_content("", "text/html; charset=utf-8");
      return;
    }
    if (fault && fault->kind == Fault::kDropConnection) {
      res.set_chunked_content_provider("application/json",
                                       [](std::size_t, httplib::DataSink&) { return false; });
      return;
    }
    if (fault && fault->kind == Fault::kMessageNotSent && !result.contains("exception")) {
      result = ErrorJson(MoodleError("Message was not sent."));
    }
    Reply(res, result);
  }

  // Authenticates, finds and validates the function, runs it.
  // *clean receives the validated parameters; *units (may be null) the
  // handler's hidden work for the cost model.
  Json Call(const std::string& token, const std::string& function, const Json& params, Json* clean_out,
            long long* units) {
    if (token.empty() || token != options.token) {
      return ErrorJson(MoodleError("invalidtoken", "Invalid token - token not found"));
    }
    const FunctionDef* def = FindServiceFunction(function);
    if (!def) {
      if (IsOtherMoodleFunction(function)) {
        return ErrorJson({"webservice_access_exception", "accessexception", "Access control exception"});
      }
      return ErrorJson(MissingRecord());
    }
    Json& clean = *clean_out;
    try {
      clean = Validate(def->params, params);
    } catch (const WsException& e) {
      return ErrorJson(e.error);
    }
    CallEnv env{"http://" + options.host + ":" + std::to_string(port), units};
    std::lock_guard<std::mutex> lock(mu);
    std::optional<WsError> error;
    Json result = Transaction([&] { return def->handler(*store, clean, env); }, &error);
    if (error) return ErrorJson(*error);
    return result;
  }

  static void Reply(httplib::Response& res, const Json& body) {
    res.status = 200;
    res.set_content(PhpJson(body), "application/json");
  }
};

Sandbox::Sandbox(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Sandbox::~Sandbox() { Stop(); }

Result<std::unique_ptr<Sandbox>> Sandbox::Start(const Options& options) {
  if (options.state_dir.empty()) return Fail(ErrorCode::kInvalidArgument, "sandbox: state_dir is empty");
  if (options.token.empty()) return Fail(ErrorCode::kInvalidArgument, "sandbox: token is empty");
  auto impl = std::make_unique<Impl>();
  impl->options = options;
  if (!options.cost_model.empty()) {
    impl->cost = FindCostModel(options.cost_model);
    if (!impl->cost)
      return Fail(ErrorCode::kInvalidArgument, "sandbox: unknown cost model '" + options.cost_model +
                                                   "' (known: moodle-5.1)");
  }
  std::error_code ec;
  std::filesystem::create_directories(options.state_dir, ec);
  if (ec) return Fail(ErrorCode::kIo, "sandbox: cannot create " + options.state_dir + ": " + ec.message());
  try {
    impl->store = std::make_unique<SiteStore>((std::filesystem::path(options.state_dir) / "site.db").string());
  } catch (const std::exception& e) {
    return Fail(ErrorCode::kIo, std::string("sandbox: cannot open site state: ") + e.what());
  }
  impl->store->set_manual_welcome_default(options.manual_welcome_message);
  Impl* raw = impl.get();
  impl->server.Post(kEndpoint, [raw](const httplib::Request& req, httplib::Response& res,
                                    const httplib::ContentReader& reader) {
    std::string body;
    reader([&](const char* data, std::size_t len) {
      body.append(data, len);
      return true;
    });
    raw->Handle(req, res, body);
  });
  impl->server.Get(kEndpoint, [raw](const httplib::Request& req, httplib::Response& res) { raw->Handle(req, res, ""); });
  impl->server.set_payload_max_length(512ull * 1024 * 1024);
  if (options.port == 0) {
    impl->port = impl->server.bind_to_any_port(options.host);
  } else {
    impl->port = impl->server.bind_to_port(options.host, options.port) ? options.port : -1;
  }
  if (impl->port <= 0) {
    return Fail(ErrorCode::kIo, "sandbox: cannot listen on " + options.host + ":" + std::to_string(options.port));
  }
  impl->thread = std::thread([raw] { raw->server.listen_after_bind(); });
  // httplib's stop() does nothing until the accept loop runs, so a Stop()
  // right after Start() would hang: wait for the loop.
  for (int i = 0; i < 5000 && !impl->server.is_running(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return std::unique_ptr<Sandbox>(new Sandbox(std::move(impl)));
}

int Sandbox::port() const { return impl_->port; }
std::string Sandbox::url() const { return "http://" + impl_->options.host + ":" + std::to_string(impl_->port); }

void Sandbox::Stop() {
  if (!impl_ || impl_->stopped) return;
  impl_->stopped = true;
  impl_->server.stop();
  if (impl_->thread.joinable()) impl_->thread.join();
}

// --- introspection ----------------------------------------------------------

std::vector<Sandbox::Enrolment> Sandbox::Enrolments() {
  std::lock_guard<std::mutex> lock(impl_->mu);
  std::vector<Enrolment> out;
  for (const Row& r : impl_->store->db().All(
           "SELECT e.courseid, ue.userid, e.enrol, ue.status, ue.timestart, ue.timeend FROM user_enrolments ue "
           "JOIN enrol e ON e.id = ue.enrolid ORDER BY e.courseid, ue.userid, e.enrol, e.id")) {
    out.push_back({r[0].i, r[1].i, r[2].s, static_cast<int>(r[3].i), r[4].i, r[5].i});
  }
  return out;
}

std::vector<Sandbox::RoleAssignment> Sandbox::RoleAssignments() {
  std::lock_guard<std::mutex> lock(impl_->mu);
  std::vector<RoleAssignment> out;
  for (const Row& r : impl_->store->db().All(
           "SELECT c.instanceid, ra.userid, ra.roleid, ra.component FROM role_assignments ra "
           "JOIN context c ON c.id = ra.contextid WHERE c.contextlevel = 50 "
           "ORDER BY c.instanceid, ra.userid, ra.roleid, ra.component")) {
    out.push_back({r[0].i, r[1].i, r[2].i, r[3].s});
  }
  return out;
}

std::vector<model::Course> Sandbox::Courses() {
  std::lock_guard<std::mutex> lock(impl_->mu);
  std::vector<model::Course> out;
  for (const Row& r : impl_->store->db().All(
           "SELECT id, fullname, shortname, idnumber, category, visible FROM course WHERE id <> 1 ORDER BY id")) {
    model::Course c;
    c.id = r[0].i;
    c.fullname = r[1].s;
    c.shortname = r[2].s;
    c.idnumber = r[3].s;
    c.categoryid = r[4].i;
    c.visible = r[5].i != 0;
    out.push_back(std::move(c));
  }
  return out;
}

int Sandbox::SectionCount(MoodleId courseid) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return static_cast<int>(impl_->store->db().Int("SELECT COUNT(*) FROM course_sections WHERE course = ?", courseid));
}

MoodleId Sandbox::CourseContextId(MoodleId courseid) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->store->ContextId(kContextCourse, courseid).value_or(0);
}

std::vector<model::User> Sandbox::Users() {
  std::lock_guard<std::mutex> lock(impl_->mu);
  std::vector<model::User> out;
  for (const Row& r : impl_->store->db().All(
           "SELECT id, username, email, idnumber, auth, suspended, firstname, lastname, department, institution, "
           "city, country FROM users WHERE deleted = 0 AND id <> 1 ORDER BY id")) {
    model::User u;
    u.id = r[0].i;
    u.username = r[1].s;
    u.email = r[2].s;
    u.idnumber = r[3].s;
    u.auth = r[4].s;
    u.suspended = r[5].i != 0;
    u.profile = {{"firstname", r[6].s}, {"lastname", r[7].s}, {"email", r[2].s}, {"idnumber", r[3].s},
                 {"department", r[8].s}, {"institution", r[9].s}, {"city", r[10].s}, {"country", r[11].s}};
    out.push_back(std::move(u));
  }
  return out;
}

std::map<std::string, int> Sandbox::CallCounts() {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->counts;
}

void Sandbox::ResetCallCounts() {
  std::lock_guard<std::mutex> lock(impl_->mu);
  impl_->counts.clear();
}

int Sandbox::WelcomeMessagesSent() {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return static_cast<int>(impl_->store->db().Int(
      "SELECT COUNT(*) FROM notifications WHERE eventtype = 'enrolcoursewelcomemessage'"));
}

void Sandbox::SetFixedTime(long long t) { SiteStore::SetFixedNow(t); }

int Sandbox::PeakConcurrentCalls() {
  std::lock_guard<std::mutex> lock(impl_->worker_mu);
  return impl_->peak_busy;
}

double Sandbox::ChargedSeconds() {
  std::lock_guard<std::mutex> lock(impl_->worker_mu);
  return impl_->charged;
}

// --- acting as a human --------------------------------------------------------

namespace {

// Runs fn in a transaction and turns failures into Errors.
template <class F>
Status Guarded(SiteStore& store, F&& fn) {
  store.Begin();
  try {
    Status st = fn();
    if (st) store.Commit();
    else store.Rollback();
    return st;
  } catch (const WsException& e) {
    store.Rollback();
    return Fail(ErrorCode::kInvalidArgument, "sandbox: " + e.error.errorcode + ": " + e.error.message);
  } catch (const std::exception& e) {
    store.Rollback();
    return Fail(ErrorCode::kInternal, std::string("sandbox: ") + e.what());
  }
}

}  // namespace

Result<MoodleId> Sandbox::AddEnrolmentAs(std::string method, MoodleId courseid, MoodleId userid, MoodleId roleid) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  SiteStore& s = *impl_->store;
  MoodleId instance = 0;
  Status st = Guarded(s, [&]() -> Status {
    if (method.empty() || method == "meta") {
      return Fail(ErrorCode::kInvalidArgument, "sandbox: use enrol_meta_add_instances for meta links");
    }
    if (!s.CourseExists(courseid) || courseid == kSiteCourseId) {
      return Fail(ErrorCode::kNotFound, "sandbox: no course " + std::to_string(courseid));
    }
    if (!s.db().One("SELECT 1 FROM users WHERE id = ? AND deleted = 0", userid)) {
      return Fail(ErrorCode::kNotFound, "sandbox: no user " + std::to_string(userid));
    }
    auto inst = s.Instance(courseid, method);
    if (!inst) inst = s.AddInstance(courseid, method, 0, roleid, std::nullopt, std::nullopt);
    s.db().Run("UPDATE enrol SET status = 0 WHERE id = ?", *inst);
    s.EnrolUser(*inst, userid, roleid, 0, 0, 0);
    instance = *inst;
    return Ok();
  });
  if (!st) return Fail(st.error());
  return instance;
}

Status Sandbox::RemoveEnrolment(MoodleId courseid, MoodleId userid, std::string method) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  SiteStore& s = *impl_->store;
  return Guarded(s, [&]() -> Status {
    auto r = s.db().One("SELECT e.id FROM user_enrolments ue JOIN enrol e ON e.id = ue.enrolid "
                        "WHERE e.courseid = ? AND ue.userid = ? AND e.enrol = ?", courseid, userid, method);
    if (!r) return Fail(ErrorCode::kNotFound, "sandbox: user " + std::to_string(userid) + " has no " + method +
                                                  " enrolment in course " + std::to_string(courseid));
    s.UnenrolUser((*r)[0].i, userid);
    return Ok();
  });
}

Status Sandbox::SetEnrolmentStatus(MoodleId courseid, MoodleId userid, std::string method, int status) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  SiteStore& s = *impl_->store;
  return Guarded(s, [&]() -> Status {
    auto r = s.db().One("SELECT ue.id FROM user_enrolments ue JOIN enrol e ON e.id = ue.enrolid "
                        "WHERE e.courseid = ? AND ue.userid = ? AND e.enrol = ?", courseid, userid, method);
    if (!r) return Fail(ErrorCode::kNotFound, "sandbox: user " + std::to_string(userid) + " has no " + method +
                                                  " enrolment in course " + std::to_string(courseid));
    s.db().Run("UPDATE user_enrolments SET status = ?, timemodified = ? WHERE id = ?", status, SiteStore::Now(),
               (*r)[0].i);
    s.SyncMetaChild(courseid);
    return Ok();
  });
}

Status Sandbox::DeleteCourse(MoodleId courseid) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  SiteStore& s = *impl_->store;
  return Guarded(s, [&]() -> Status {
    if (!s.CourseExists(courseid) || courseid == kSiteCourseId) {
      return Fail(ErrorCode::kNotFound, "sandbox: no course " + std::to_string(courseid));
    }
    // Links where this course is the child: their parent enrolments go.
    for (const Row& inst : s.db().All("SELECT id FROM enrol WHERE enrol = 'meta' AND customint1 = ?", courseid)) {
      for (const Row& ue : s.db().All("SELECT userid FROM user_enrolments WHERE enrolid = ?", inst[0].i)) {
        s.UnenrolUser(inst[0].i, ue[0].i);
      }
      s.db().Run("DELETE FROM enrol WHERE id = ?", inst[0].i);
    }
    Db& db = s.db();
    MoodleId ctx = s.EnsureContext(kContextCourse, courseid);
    db.Run("DELETE FROM user_enrolments WHERE enrolid IN (SELECT id FROM enrol WHERE courseid = ?)", courseid);
    db.Run("DELETE FROM enrol WHERE courseid = ?", courseid);
    db.Run("DELETE FROM role_assignments WHERE contextid = ?", ctx);
    db.Run("DELETE FROM groups_members WHERE groupid IN (SELECT id FROM course_groups WHERE courseid = ?)", courseid);
    db.Run("DELETE FROM course_groups WHERE courseid = ?", courseid);
    db.Run("DELETE FROM course_sections WHERE course = ?", courseid);
    db.Run("DELETE FROM forum WHERE course = ?", courseid);
    db.Run("DELETE FROM course_format_options WHERE courseid = ?", courseid);
    db.Run("DELETE FROM context WHERE id = ?", ctx);
    db.Run("DELETE FROM course WHERE id = ?", courseid);
    return Ok();
  });
}

Status Sandbox::SetUserSuspended(MoodleId userid, bool suspended) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  SiteStore& s = *impl_->store;
  return Guarded(s, [&]() -> Status {
    if (s.db().Run("UPDATE users SET suspended = ?, timemodified = ? WHERE id = ? AND deleted = 0", suspended,
                   SiteStore::Now(), userid) == 0) {
      return Fail(ErrorCode::kNotFound, "sandbox: no user " + std::to_string(userid));
    }
    return Ok();
  });
}

Result<MoodleId> Sandbox::EnsureLdapUser(const std::string& username, const std::string& firstname,
                                         const std::string& lastname, const std::string& email,
                                         const std::string& idnumber) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  SiteStore& s = *impl_->store;
  MoodleId id = 0;
  Status st = Guarded(s, [&]() -> Status {
    if (username.empty() || CleanUsername(username) != username) {
      return Fail(ErrorCode::kInvalidArgument, "sandbox: invalid username '" + username + "'");
    }
    if (auto r = s.db().One("SELECT id FROM users WHERE username = ? AND deleted = 0", username)) {
      id = (*r)[0].i;
      return Ok();
    }
    NewUser u;
    u.username = username;
    u.auth = "ldap";
    u.firstname = firstname;
    u.lastname = lastname;
    u.email = email;
    u.idnumber = idnumber;
    id = s.CreateUser(u);
    return Ok();
  });
  if (!st) return Fail(st.error());
  return id;
}

Result<int> Sandbox::SeedLdapUsers(const std::vector<SeedUser>& users) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  SiteStore& s = *impl_->store;
  int created = 0;
  Status st = Guarded(s, [&]() -> Status {
    for (const SeedUser& in : users) {
      if (in.username.empty() || CleanUsername(in.username) != in.username) {
        return Fail(ErrorCode::kInvalidArgument, "sandbox: invalid username '" + in.username + "'");
      }
      if (s.db().One("SELECT id FROM users WHERE username = ? AND deleted = 0", in.username)) continue;
      NewUser u;
      u.username = in.username;
      u.auth = "ldap";
      u.firstname = in.firstname;
      u.lastname = in.lastname;
      u.email = in.email;
      u.idnumber = in.idnumber;
      s.CreateUser(u);
      ++created;
    }
    return Ok();
  });
  if (!st) return Fail(st.error());
  return created;
}

Status Sandbox::SeedCategories(const std::vector<std::pair<MoodleId, std::string>>& categories) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  SiteStore& s = *impl_->store;
  return Guarded(s, [&]() -> Status {
    for (const auto& [want, name] : categories) {
      if (s.CategoryExists(want)) continue;
      MoodleId got = s.CreateCategory(name, 0, "", "", 1);
      if (got != want) {
        return Fail(ErrorCode::kInvalidArgument, "sandbox: category '" + name + "' would get id " +
                                                     std::to_string(got) + ", not " + std::to_string(want));
      }
    }
    return Ok();
  });
}

Status Sandbox::SetInstanceStatus(MoodleId courseid, std::string method, int status) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  SiteStore& s = *impl_->store;
  return Guarded(s, [&]() -> Status {
    if (s.db().Run("UPDATE enrol SET status = ? WHERE courseid = ? AND enrol = ?", status, courseid, method) == 0) {
      return Fail(ErrorCode::kNotFound, "sandbox: course " + std::to_string(courseid) + " has no " + method +
                                            " instance");
    }
    s.SyncMetaChild(courseid);
    return Ok();
  });
}

Status Sandbox::SeedProbeState(const std::string& state_json) {
  Json state = Json::parse(state_json, nullptr, false);
  if (state.is_discarded() || !state.is_object()) {
    return Fail(ErrorCode::kInvalidArgument, "sandbox: probe state is not a JSON object");
  }
  std::lock_guard<std::mutex> lock(impl_->mu);
  SiteStore& s = *impl_->store;
  return Guarded(s, [&]() -> Status {
    sandbox::SeedProbeState(s, state);
    return Ok();
  });
}

Result<std::string> Sandbox::ProbeState() {
  std::lock_guard<std::mutex> lock(impl_->mu);
  try {
    return DumpProbeState(*impl_->store).dump();
  } catch (const std::exception& e) {
    return Fail(ErrorCode::kInternal, std::string("sandbox: ") + e.what());
  }
}

Status Sandbox::RunMetaSyncTask() {
  std::lock_guard<std::mutex> lock(impl_->mu);
  SiteStore& s = *impl_->store;
  return Guarded(s, [&]() -> Status {
    for (const Row& r : s.db().All("SELECT id FROM enrol WHERE enrol = 'meta' ORDER BY id")) s.SyncMetaInstance(r[0].i);
    return Ok();
  });
}

Status Sandbox::SetWelcomeMessage(MoodleId courseid, bool enabled) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  SiteStore& s = *impl_->store;
  return Guarded(s, [&]() -> Status {
    if (s.db().Run("UPDATE enrol SET customint1 = ? WHERE courseid = ? AND enrol = 'manual'", enabled ? 1 : 0,
                   courseid) == 0) {
      return Fail(ErrorCode::kNotFound, "sandbox: course " + std::to_string(courseid) + " has no manual instance");
    }
    return Ok();
  });
}

// --- faults -------------------------------------------------------------------

void Sandbox::InjectFault(Fault fault) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  impl_->faults.push_back(std::move(fault));
}

void Sandbox::ClearFaults() {
  std::lock_guard<std::mutex> lock(impl_->mu);
  impl_->faults.clear();
}

}  // namespace enrolsync::sandbox
