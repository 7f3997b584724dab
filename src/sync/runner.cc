#include "sync/runner.h"

#include <algorithm>
#include <chrono>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "log/log.h"
#include "plan/first_run.h"
#include "plan/verify_policy.h"
#include "state/state_db.h"
#include "sync/report.h"
#include "sync/desired.h"
#include "sync/mirror.h"
#include "sync/reconcile.h"
#include "util/secrets.h"
#include "util/strings.h"

namespace enrolsync::sync {
namespace {

using Clock = std::chrono::steady_clock;

double Since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }


const char* UserField(plan::LocalUserField f) {
  switch (f) {
    case plan::LocalUserField::kId: return "id";
    case plan::LocalUserField::kIdnumber: return "idnumber";
    case plan::LocalUserField::kEmail: return "email";
    case plan::LocalUserField::kUsername: return "username";
  }
  return "email";
}

class Runner {
 public:
  Runner(const config::Config& cfg, const RunOptions& opt) : cfg_(cfg), opt_(opt) {}

  RunReport Run() {
    long long now = static_cast<long long>(std::time(nullptr));
    const std::string command = opt_.adopt ? (opt_.apply ? "adopt --apply" : "adopt") : opt_.apply ? "sync" : "plan";
    // Every trace line also goes to the log.
    trace_ = [this](const std::string& line) {
      LogInfo(line);
      if (opt_.trace) opt_.trace(line);
    };
    auto lock = state::RunLock::Acquire(cfg_.state_dir);
    if (!lock) {
      LogError(lock.error().message);
      return Error(lock.error().message);
    }
    auto db = state::StateDb::Open(cfg_.state_dir);
    if (!db && opt_.adopt && db.error().code == ErrorCode::kIo && state::StateDb::IsLostLedger(cfg_.state_dir)) {
      // adopt is how a lost ledger is rebuilt. It works on a scratch copy in
      // memory, so the refusal stays for sync until the adoption is recorded:
      // only --apply, once everything is read, starts a new state.db
      // (Adopt). A failed adopt leaves no half-made ledger behind.
      db = state::StateDb::OpenScratch();
      scratch_ = true;
    }
    if (!db) {
      LogError(db.error().message);
      return Error(db.error().message);
    }
    db_ = std::move(*db);
    // A copy of the ledger as it was before this run writes anything (the
    // three newest are kept): what a lost or damaged state.db is restored
    // from.
    if (opt_.apply && !scratch_) {
      char stamp[32];
      std::tm tm{};
      std::time_t t = static_cast<std::time_t>(now);
      gmtime_r(&t, &tm);
      std::strftime(stamp, sizeof stamp, "%Y%m%dT%H%M%SZ", &tm);
      if (auto copy = db_->Backup(stamp, 3); !copy) Warn("could not copy the state database: " + copy.error().message);
    }
    auto run_id = db_->BeginRun(opt_.trigger, command, now);
    if (run_id) report_.run_id = *run_id;
    SetRunId(run_id ? "r" + std::to_string(*run_id) : "");
    LogInfo(command + " started (" + opt_.trigger + ", job " + opt_.job + ", config " + cfg_.path + ")");

    if (opt_.adopt) Adopt(now);
    else Execute(now);
    if (opt_.apply && !opt_.adopt && report_.exit_code != kExitError && report_.exit_code != kExitRemovalGuard) RunHooks();

    report_.calls = client_ ? client_->Stats() : decltype(report_.calls){};
    report_.write_calls = client_ ? client_->WriteCalls() : 0;
    report_.retries = client_ ? client_->Retries() : decltype(report_.retries){};
    report_.moodle_wait_seconds = client_ ? client_->WaitSeconds() : 0;
    if (report_.exit_code == kExitError) LogError(report_.error);
    for (const auto& w : report_.warnings) LogWarn(w);
    for (const auto& [reason, n] : report_.retries)
      LogWarn(std::to_string(n) + " call(s) retried: " + reason +
              (reason == "deadlock" || reason == "database error" ? " (Moodle rolled them back; each was sent again)"
                                                                  : " (each was sent again)"));
    LogInfo(command + " finished: " + SummaryLine() + " exit=" + std::to_string(report_.exit_code));
    if (run_id && !scratch_) {
      // state.db keeps every run's summary (lists as counts); the whole
      // report is streamed to reports/run-N.json, the newest keep_runs kept.
      std::ostringstream summary;
      WriteReportJson(summary, report_, command, ReportScope::kSummary);
      if (auto st = db_->FinishRun(*run_id, static_cast<long long>(std::time(nullptr)), report_.exit_code,
                                   summary.str(), cfg_.state.keep_runs);
          !st)
        LogError("could not record the run's end in the state database: " + st.error().message);
      WriteReportFile(*run_id, command);
    }
    SetRunId("");
    return std::move(report_);
  }

  RunReport Error(const std::string& message) {
    report_.exit_code = kExitError;
    report_.error = Redact(message);
    return std::move(report_);
  }
  void SetError(const std::string& message) {
    report_.exit_code = kExitError;
    report_.error = Redact(message);
  }
  void Warn(const std::string& w) {
    report_.warnings.push_back(w);
    if (opt_.trace) opt_.trace("warning: " + w);
  }

  bool Stopping() const { return opt_.stop && opt_.stop->load(); }

  void WriteReportFile(long long id, const std::string& command) {
    namespace fs = std::filesystem;
    std::error_code ec;
    fs::path dir = fs::path(cfg_.state_dir) / "reports";
    fs::create_directories(dir, ec);
    fs::path file = dir / ("run-" + std::to_string(id) + ".json");
    std::ofstream out(file);
    WriteReportJson(out, report_, command, ReportScope::kFull);
    out << "\n";
    out.close();
    if (out) report_.report_file = file.string();
    else LogError("could not write the run's report " + file.string());
    // The newest [state] keep_runs reports are kept (the summaries of all
    // runs stay in state.db).
    for (const auto& e : fs::directory_iterator(dir, ec)) {
      const std::string name = e.path().filename().string();
      long long n = 0;
      if (name.rfind("run-", 0) != 0 || name.size() < 10 || name.substr(name.size() - 5) != ".json") continue;
      if (!ParseInt64(name.substr(4, name.size() - 9), &n)) continue;
      if (n <= id - cfg_.state.keep_runs) fs::remove(e.path(), ec);
    }
  }

  // [[hooks]] for this job, in config order. A failing hook makes the run
  // partial; nothing is rolled back (a cache purge failing loses nothing).
  void RunHooks() {
    std::map<std::string, std::string> env = {
        {"ENROLSYNC_RUN_ID", std::to_string(report_.run_id)},
        {"ENROLSYNC_JOB", opt_.job},
        {"ENROLSYNC_TRIGGER", opt_.trigger},
        {"ENROLSYNC_EXIT_CODE", std::to_string(report_.exit_code)},
        {"ENROLSYNC_COURSES_CREATED", std::to_string(report_.apply.applied.courses_create)},
        {"ENROLSYNC_ENROLLED", std::to_string(report_.apply.applied.enrol)},
        {"ENROLSYNC_UNSUSPENDED", std::to_string(report_.apply.applied.unsuspend)},
        {"ENROLSYNC_SUSPENDED", std::to_string(report_.apply.applied.suspend)},
        {"ENROLSYNC_UNENROLLED", std::to_string(report_.apply.applied.unenrol)},
        {"ENROLSYNC_ROLES_ASSIGNED", std::to_string(report_.apply.applied.role_assign)},
        {"ENROLSYNC_ROLES_UNASSIGNED", std::to_string(report_.apply.applied.role_unassign)},
        {"ENROLSYNC_USERS_CREATED", std::to_string(report_.users.apply.applied.create)},
        {"ENROLSYNC_USERS_UPDATED", std::to_string(report_.users.apply.applied.update)},
        {"ENROLSYNC_USERS_SUSPENDED", std::to_string(report_.users.apply.applied.suspend)},
        {"ENROLSYNC_USERS_REVIVED", std::to_string(report_.users.apply.applied.revive)},
        {"ENROLSYNC_USERS_DELETED", std::to_string(report_.users.apply.applied.remove)},
        {"ENROLSYNC_PROBLEMS", std::to_string(report_.plan.problems.size())},
        {"ENROLSYNC_FAILURES", std::to_string(report_.apply.failures.size() + report_.users.apply.failures.size())},
    };
    for (const auto& h : cfg_.hooks) {
      if (h.after != opt_.job) continue;
      if (Stopping()) break;
      ops::Hook hook{h.after, h.command, std::chrono::seconds(h.timeout_seconds)};
      LogInfo("hook: running " + Join(h.command, " "));
      ops::HookResult r = ops::RunHook(hook, env);
      for (const auto& line : Split(r.output, '\n'))
        if (!line.empty()) LogInfo("hook: " + line);
      if (r.ok()) {
        LogInfo("hook: " + r.command + " exited 0");
      } else {
        Warn("hook " + r.command + " failed: " + r.error);
        if (report_.exit_code == kExitOk) report_.exit_code = kExitPartial;
      }
      report_.hooks.push_back(std::move(r));
    }
  }
  std::string SummaryLine() const {
    const auto& s = report_.plan.summary;
    return "create=" + std::to_string(s.courses_create) + " enrol=" + std::to_string(s.enrol) +
           " unsuspend=" + std::to_string(s.unsuspend) + " suspend=" + std::to_string(s.suspend) +
           " unenrol=" + std::to_string(s.unenrol) + " role_assign=" + std::to_string(s.role_assign) +
           " role_unassign=" + std::to_string(s.role_unassign) + " problems=" +
           std::to_string(report_.plan.problems.size());
  }

  // `enrolsync adopt` (RunOptions::adopt): sources, every course of the
  // site, the feed's users and the participants of the feed's courses; then
  // plan::PlanAdoption and, with apply, one transaction into the ledger.
  // Nothing is written to Moodle.
  void Adopt(long long now) {
    auto t0 = Clock::now();
    auto source = sources::OpenSource(cfg_.source);
    if (!source) return SetError(source.error().message);
    auto desired = ReadDesired(**source, cfg_);
    if (!desired) return SetError(desired.error().message);
    report_.timings.sources = Since(t0);
    auto t1 = Clock::now();
    client_ = opt_.transport_factory ? std::make_unique<moodle::Client>(cfg_.moodle, opt_.transport_factory(cfg_.moodle))
                                     : std::make_unique<moodle::Client>(cfg_.moodle);
    auto site = client_->GetSiteInfo();
    if (!site) return SetError(site.error().message);
    auto owned = db_->LoadOwnership();
    if (!owned) return SetError(owned.error().message);
    owned_ = std::move(*owned);
    mirror_ = std::make_unique<MoodleMirror>(*client_, *db_, now);
    if (auto st = mirror_->Load(); !st) return SetError(st.error().message);
    auto courses = client_->GetAllCourses();
    if (!courses) return SetError(courses.error().message);
    mirror_->ReplaceCourses(*courses);
    full_courses_ = true;
    plan::Policy policy = cfg_.policy;
    if (auto st = LookupUsers(*desired, policy, true); !st) return SetError(st.error().message);
    model::MoodleSnapshot snap;
    snap.roles = cfg_.roles;
    snap.courses = mirror_->Courses();
    snap.users = mirror_->Users();
    plan::Adoption a = plan::PlanAdoption(*desired, snap, owned_, policy);
    if (!a.unread_courses.empty()) {
      auto read = client_->GetParticipants(a.unread_courses, {}, ExpectedParticipants());
      for (auto& [courseid, participants] : read) {
        if (!participants) return SetError(participants.error().Wrap("adopt: reading the participants").message);
        snap.verified[courseid] = std::move(*participants);
      }
      a = plan::PlanAdoption(*desired, snap, owned_, policy);
    }
    report_.courses_verified = static_cast<int>(snap.verified.size());
    report_.timings.moodle_read = Since(t1);
    if (opt_.apply) {
      state::StateDb* ledger = db_.get();
      std::unique_ptr<state::StateDb> fresh;
      if (scratch_) {
        auto opened = state::StateDb::Open(cfg_.state_dir, state::StateDb::kAllowLostLedger);
        if (!opened) return SetError(opened.error().message);
        fresh = std::move(*opened);
        ledger = fresh.get();
      }
      Status st = ledger->Begin();
      // An adopted ledger has had its first sync's question answered.
      if (st) st = ledger->SetMeta(kFirstSyncKey, std::to_string(now));
      for (const auto& c : a.courses) {
        if (!st) break;
        st = ledger->RecordCreatedCourse(c.courseid, c.shortname, now);
        owned_.created_courses.insert(c.courseid);
      }
      for (const auto& e : a.enrolments) {
        if (!st) break;
        model::OwnedEnrolment o;
        if (auto it = owned_.enrolments.find({e.courseid, e.userid}); it != owned_.enrolments.end()) o = it->second;
        o.courseid = e.courseid;
        o.userid = e.userid;
        o.owns_enrolment = true;
        o.status = e.active ? model::EnrolStatus::kActive : model::EnrolStatus::kSuspended;
        o.roles.insert(e.roles.begin(), e.roles.end());
        o.source_course = e.course_key;
        o.source_user = e.user_key;
        st = ledger->UpsertEnrolment(o);
      }
      if (st) st = ledger->Commit();
      else (void)ledger->Rollback();
      if (!st && fresh) {
        // Back to the lost ledger it was: an empty file is still refused.
        const std::string path = ledger->path();
        fresh.reset();
        std::error_code ec;
        std::filesystem::resize_file(path, 0, ec);
        std::filesystem::remove(path + "-wal", ec);
        std::filesystem::remove(path + "-shm", ec);
      }
      if (!st) return SetError(st.error().Wrap("adopt: recording the ownership").message);
      report_.applied = true;
    }
    report_.adoption = std::move(a);
  }

  void Execute(long long now) {
    // 1. Sources. Unreadable -> stop before touching Moodle.
    auto t0 = Clock::now();
    Result<model::DesiredState> desired = model::DesiredState{};
    if (opt_.enrolments) {
      auto source = sources::OpenSource(cfg_.source);
      if (!source) return SetError(source.error().message);
      desired = ReadDesired(**source, cfg_);
      if (!desired) return SetError(desired.error().message);
    }
    report_.timings.sources = Since(t0);
    plan::Policy policy = cfg_.policy;
    policy.allow_removals = opt_.allow_removals;
    if (desired->enrolments.empty())
      policy.block_removals.push_back("the enrolment table '" + cfg_.enrolments.table + "' returned 0 rows");
    if (cfg_.courses.enabled && desired->courses.empty())
      policy.block_removals.push_back("the course table '" + cfg_.courses.table + "' returned 0 rows");

    // 2. Moodle: one call each for site info and courses, batched user lookups.
    auto t1 = Clock::now();
    moodle::ClientOptions mo = cfg_.moodle;
    mo.cancel = opt_.stop;
    client_ = opt_.transport_factory ? std::make_unique<moodle::Client>(mo, opt_.transport_factory(mo))
                                     : std::make_unique<moodle::Client>(mo);
    auto site = client_->GetSiteInfo();
    if (!site) return SetError(site.error().message);
    auto owned = db_->LoadOwnership();
    if (!owned) return SetError(owned.error().message);
    owned_ = std::move(*owned);
    // Changes the last run may have applied when it died (sync/reconcile.h).
    if (opt_.apply) {
      auto rec = ReconcileIntents(*db_, *client_, owned_, now);
      if (!rec) return SetError(rec.error().message);
      if (rec->pending > 0) {
        Warn("the last run stopped with " + std::to_string(rec->pending) +
             " change(s) in flight: read back from Moodle, " + std::to_string(rec->applied) +
             " had been applied and are recorded as enrolsync's, " + std::to_string(rec->not_applied) +
             " not yet (looked at again with this run's reads)" +
             (rec->moot ? ", " + std::to_string(rec->moot) + " were in courses deleted since" : ""));
      }
      unsettled_ = std::move(rec->unsettled);
    } else if (auto pending = db_->LoadIntents(); pending && !pending->empty()) {
      Warn("the last run stopped with " + std::to_string(pending->size()) +
           " change(s) in flight; the next sync reads them back from Moodle before it plans, so this plan may "
           "list some of them again");
    }

    // What enrolsync already knows of Moodle (sync/mirror.h): only the new,
    // the due and what the plan writes are read, unless the mirror is not
    // complete yet or --verify asks for everything.
    mirror_ = std::make_unique<MoodleMirror>(*client_, *db_, now);
    if (auto st = mirror_->Load(); !st) return SetError(st.error().message);
    if (opt_.apply)
      if (auto st = ReadBackUserIntents(*db_, *mirror_); !st) return SetError(st.error().message);
    if (auto st = CheckFirstSync(*desired, policy, now); !st) return SetError(st.error().message);
    const bool full_users = opt_.verify_all || !mirror_->data().users_complete;
    full_courses_ = opt_.verify_all || !mirror_->data().courses_complete;
    if (!full_users) {
      auto due = UsersDue(now);
      auto found = mirror_->ScanNewUsers(due);
      if (!found) return SetError(found.error().message);
      report_.users_verified = static_cast<int>(due.size());
    }

    // Users first, so a user created now is enrolled in this same run.
    std::vector<model::User> pending_users;
    if (cfg_.users.enabled && opt_.users) {
      report_.timings.moodle_read += Since(t1);
      auto tu = Clock::now();
      UserSyncOptions uo;
      uo.apply = opt_.apply;
      uo.allow_removals = opt_.allow_removals;
      uo.protected_users = {site->userid, 2};  // the token's user and Moodle's main admin
      uo.trace = trace_;
      uo.mirror = mirror_.get();
      uo.full_read = full_users;
      uo.missing_max_age = cfg_.state.verify_max_age_days * 86400LL;
      report_.users = SyncUsers(cfg_, *client_, *db_, owned_, uo);
      report_.users_ran = true;
      report_.timings.users = Since(tu);
      t1 = Clock::now();
      if (!report_.users.read_ok) {
        Warn("user sync skipped, nothing suspended or deleted: " + report_.users.read_error);
        users_incomplete_ = true;
      }
      if (report_.users.plan.guard_tripped) {
        report_.exit_code = kExitRemovalGuard;
        return;
      }
      if (!report_.users.apply.failures.empty() || report_.users.apply.state_error) users_incomplete_ = true;
      // A plan-only run: users about to be created stand in with ids < 0.
      if (!opt_.apply) {
        model::MoodleId fake = -1;
        for (const auto& item : report_.users.plan.items) {
          if (item.action != plan::UserAction::kCreate) continue;
          model::User u;
          u.id = fake--;
          u.username = item.username;
          if (auto e = item.fields.find("email"); e != item.fields.end()) u.email = e->second;
          if (auto n = item.fields.find("idnumber"); n != item.fields.end()) u.idnumber = n->second;
          u.auth = cfg_.users.policy.auth;
          pending_users.push_back(std::move(u));
        }
      }
    }
    if (!opt_.enrolments) {
      report_.timings.moodle_read += Since(t1);
      FinishExitCode();
      return;
    }

    model::MoodleSnapshot snap;
    snap.roles = cfg_.roles;
    if (cfg_.courses.enabled) {
      auto cats = client_->GetCategories();
      if (!cats) return SetError(cats.error().message);
      snap.categories = std::move(*cats);
    }
    if (full_courses_ && !courses_read_) {
      auto courses = client_->GetAllCourses();
      if (!courses) return SetError(courses.error().message);
      mirror_->ReplaceCourses(*courses);
    } else {
      // The rotation's courses are re-read with the scan (deleted or changed
      // by hand since?); the plan then adds the courses it touches.
      rotation_ = ChooseVerification(nullptr, now);
      std::vector<model::MoodleId> gone;
      auto found = mirror_->ScanNewCourses(rotation_, &gone);
      if (!found) return SetError(found.error().message);
      std::erase_if(rotation_, [&](model::MoodleId id) { return std::count(gone.begin(), gone.end(), id) > 0; });
    }
    if (auto st = LookupUsers(*desired, policy, full_users); !st) return SetError(st.error().message);
    if (auto st = CheckOwnedExist(); !st) return SetError(st.error().message);
    snap.courses = mirror_->Courses();
    if (full_users && !users_incomplete_) mirror_->MarkUsersComplete();
    snap.users = mirror_->Users();
    std::set<std::string> known;
    for (const auto& x : snap.users) known.insert(x.username);
    for (auto& u : pending_users)
      if (!known.count(u.username)) snap.users.push_back(std::move(u));

    // 3. Plan against what we believe, then read the courses that plan
    // touches (plus a rotating few, or all with --verify) and plan again.
    // Only the first plan's touched courses outlive it: one plan is alive at
    // a time (at district scale a plan is hundreds of MB).
    auto tp = Clock::now();
    std::vector<model::MoodleId> verify;
    std::vector<model::MoodleId> touched;
    {
      plan::Plan first = plan::BuildPlan(*desired, snap, owned_, policy);
      verify = full_courses_ ? ChooseVerification(&first, now) : rotation_;
      if (!full_courses_) touched = std::move(first.touched_courses);
    }
    double planning = Since(tp);
    {
      std::set<model::MoodleId> v(verify.begin(), verify.end());
      v.insert(touched.begin(), touched.end());
      std::set<model::MoodleId> exists;
      for (const auto& c : snap.courses) exists.insert(c.id);
      for (const auto& i : unsettled_)
        if (i.courseid > 0 && exists.count(i.courseid)) v.insert(i.courseid);
      verify.assign(v.begin(), v.end());
    }
    if (!verify.empty()) {
      auto read = client_->GetParticipants(verify, {}, ExpectedParticipants());
      // A course whose read failed may have been deleted by hand: then it is
      // gone from the mirror (its ownership is forgotten by the plan), not a
      // failed read that blocks removals.
      std::vector<model::MoodleId> failed;
      for (const auto& [courseid, participants] : read)
        if (!participants) failed.push_back(courseid);
      if (!failed.empty() && !full_courses_) {
        auto gone = mirror_->RefreshCourses(failed);
        if (!gone) return SetError(gone.error().message);
        for (auto id : *gone) read.erase(id);
        snap.courses = mirror_->Courses();
      }
      std::vector<model::MoodleId> ok;
      for (auto& [courseid, participants] : read) {
        if (participants) {
          snap.verified[courseid] = std::move(*participants);
          ok.push_back(courseid);
        } else {
          snap.read_failed.insert(courseid);
          policy.block_removals.push_back("reading the participants of course id " + std::to_string(courseid) +
                                          " failed: " + participants.error().message);
        }
      }
      report_.courses_verified = static_cast<int>(ok.size());
      if (opt_.apply) {
        if (auto st = db_->MarkVerified(ok, now); !st) {
          // The courses are read again sooner than needed; nothing is lost,
          // but a state database that refuses writes must be seen.
          Warn("could not record which courses were verified: " + st.error().message);
          state_trouble_ = true;
        }
      }
    }
    if (!unsettled_.empty()) {
      // The dead run's last batches may have finished inside Moodle after the
      // first read (sync/reconcile.h): this read is the one the plan uses.
      auto late = SettleUnsettled(*db_, unsettled_, snap.courses, snap.verified, owned_, now);
      if (!late) return SetError(late.error().message);
      if (*late > 0)
        Warn(std::to_string(*late) + " of the change(s) in flight were applied by Moodle after the last run died "
             "(its last batch finished without it): recorded as enrolsync's");
      unsettled_.clear();
    }
    report_.timings.moodle_read += Since(t1) - planning;
    tp = Clock::now();
    report_.plan = plan::BuildPlan(*desired, snap, owned_, policy);
    DropUnverified(snap);
    report_.timings.planning = planning + Since(tp);

    if (report_.plan.guard_tripped) {
      report_.exit_code = kExitRemovalGuard;
      return;
    }
    if (!opt_.apply) {
      FinishExitCode();
      return;
    }

    // 4. Apply. Problems first, in enrol_database's words, as it prints them.
    for (const auto& p : report_.plan.problems) trace_("error: " + p.reason);
    if (Stopping()) {
      report_.stopped = true;
      Warn("stopped (SIGTERM) before applying");
      report_.exit_code = kExitPartial;
      return;
    }
    auto ta = Clock::now();
    ApplyContext ctx;
    ctx.courses = &cfg_.courses;
    ctx.now = now;
    ctx.trace = trace_;
    ctx.progress = opt_.progress;
    report_.apply = Apply(report_.plan, *client_, *db_, owned_, ctx);
    report_.applied = true;
    if (Stopping()) {
      report_.stopped = true;
      Warn("stopped (SIGTERM): changes not yet sent were left for the next run");
    }
    // A course created this run holds exactly what we put in it.
    std::vector<model::MoodleId> created;
    Status recorded = db_->Begin();  // one transaction for every course created
    for (const auto& item : report_.plan.items) {
      if (item.action != plan::Action::kCreateCourse || !item.courseid) continue;
      created.push_back(item.courseid);
      mirror_->Wrote(model::Course{item.courseid, item.course_fullname, item.course_shortname, item.idnumber,
                                   item.categoryid, policy.new_courses_visible.value_or(true)});
    }
    if (recorded) recorded = db_->MarkVerified(created, now);
    if (recorded) recorded = db_->Commit();
    else (void)db_->Rollback();
    if (!recorded) Warn("could not record the created courses as verified: " + recorded.error().message);
    if (!recorded || mirror_->state_error()) report_.apply.state_error = true;
    report_.timings.apply = Since(ta);
    if (report_.apply.message_not_sent)
      Warn(std::to_string(report_.apply.message_not_sent) +
           " enrolment change(s) were committed but Moodle could not send the course welcome message. Switch "
           "\"Send course welcome message\" off in the manual enrolment plugin before syncing.");
    if (!report_.apply.failures.empty() || report_.apply.state_error) report_.exit_code = kExitPartial;
    FinishExitCode();
  }

  // A ledger's first sync on a site that already holds the feed is refused
  // before anything is sent (plan/first_run.h); `plan` only warns. Once a
  // sync has passed (or owns anything), never asked again.
  Status CheckFirstSync(const model::DesiredState& desired, const plan::Policy& policy, long long now) {
    if (!opt_.enrolments || desired.enrolments.empty()) return Ok();
    auto done = db_->GetMeta(kFirstSyncKey);
    if (!done) return Fail(done.error());
    if (!done->empty()) return Ok();
    auto passed = [&]() -> Status {
      return opt_.apply ? db_->SetMeta(kFirstSyncKey, std::to_string(now)) : Ok();
    };
    // Managed users do not count: a users-only job (the daemon's hourly
    // `users`) adopts them before the first full sync would ask.
    if (opt_.first_run || policy.take_over_existing || !owned_.enrolments.empty() || !owned_.created_courses.empty())
      return passed();
    auto courses = client_->GetAllCourses();
    if (!courses) return Fail(courses.error());
    mirror_->ReplaceCourses(*courses);
    courses_read_ = true;
    auto feed = plan::FeedCoursesInMoodle(desired, mirror_->Courses(), policy.local_course_field);
    std::map<model::MoodleId, std::size_t> participants;
    if (!feed.rows.empty()) {
      std::vector<model::MoodleId> ids;
      for (const auto& [id, n] : feed.rows) ids.push_back(id);
      for (auto& [id, read] : client_->GetParticipants(ids)) {
        if (!read) return Fail(read.error().Wrap("checking what the site holds before this ledger's first sync"));
        participants[id] = read->size();
      }
    }
    auto check = plan::CheckFirstRun(feed, participants);
    if (!check.refuse) return passed();
    if (opt_.apply) return Fail(ErrorCode::kInvalidArgument, check.message);
    Warn("sync will refuse: " + check.message);
    return Ok();
  }
  static constexpr const char* kFirstSyncKey = "first_sync";

  // A user sync that could not read or apply everything makes the run partial.
  void FinishExitCode() {
    if (report_.exit_code == kExitOk && (users_incomplete_ || state_trouble_)) report_.exit_code = kExitPartial;
  }

  // The enrolment rows' users: the mirror's, plus a lookup of each value it
  // does not know (on a full pass: not read in this run). A value Moodle has
  // no user for is asked again only when due (MoodleMirror::MissingIsFresh);
  // a user made since is found by the scan for new ids.
  Status LookupUsers(const model::DesiredState& d, const plan::Policy& policy, bool full) {
    const plan::LocalUserField field = policy.local_user_field;
    auto key_of = [&](const model::User& u) -> std::string {
      switch (field) {
        case plan::LocalUserField::kId: return std::to_string(u.id);
        case plan::LocalUserField::kIdnumber: return u.idnumber;
        case plan::LocalUserField::kEmail: return ToLower(u.email);
        case plan::LocalUserField::kUsername: return u.username;
      }
      return u.username;
    };
    std::set<std::string> known;
    for (const auto& [id, u] : mirror_->data().users)
      if (!full || mirror_->ReadThisRun(id)) known.insert(key_of(u));
    const long long max_age = cfg_.state.verify_max_age_days * 86400LL;
    const std::string prefix = std::string(UserField(field)) + ":";
    std::set<std::string> values;
    for (const auto& r : d.enrolments) {
      if (Trim(r.user).empty()) continue;
      // Only values Moodle accepts, in the form the planner matches: one it
      // refuses would fail the whole call (the planner reports that row).
      std::string why;
      auto v = plan::UserLookupValue(r.user, field, &why);
      if (!v) continue;
      const std::string key = field == plan::LocalUserField::kEmail ? ToLower(*v) : *v;
      if (known.count(key) || (!full && mirror_->MissingIsFresh(prefix + key, max_age))) continue;
      values.insert(*v);
      // Moodle's email lookup is case-sensitive: also ask for the lower-case
      // form, which is how most directories store it.
      if (field == plan::LocalUserField::kEmail) values.insert(ToLower(*v));
    }
    if (values.empty()) return Ok();
    auto found = client_->GetUsersByField(UserField(field), {values.begin(), values.end()});
    if (!found) return Fail(found.error());
    mirror_->Saw(*found);
    std::set<std::string> hit;
    for (const auto& u : *found) hit.insert(key_of(u));
    if (field == plan::LocalUserField::kEmail) {
      // An email stored with capitals (J.Smith@School.org from AD) matches
      // neither form: look those up ignoring case, one call each.
      std::vector<std::string> missing;
      for (const auto& v : values)
        if (!hit.count(ToLower(v))) missing.push_back(v);
      if (!missing.empty()) {
        auto more = client_->FindUsersByEmail(missing);
        if (!more) return Fail(more.error());
        mirror_->Saw(*more);
        for (const auto& u : *more) hit.insert(key_of(u));
      }
    }
    std::vector<std::string> absent, present;
    for (const auto& v : values) {
      const std::string key = field == plan::LocalUserField::kEmail ? ToLower(v) : v;
      (hit.count(key) ? present : absent).push_back(prefix + key);
    }
    mirror_->Missing(absent);
    mirror_->Found(present);
    return Ok();
  }

  // Users due in the rotation: every user the mirror holds comes round
  // within verify_max_age_days, an even share a run (plan/verify_policy.h).
  std::vector<model::MoodleId> UsersDue(long long now) {
    plan::VerifyInput in;
    in.managed = mirror_->data().user_checked;
    in.now = now;
    in.max_age_days = cfg_.state.verify_max_age_days;
    in.upcoming_runs = config::ExpectedEnrolmentRuns(cfg_, now, now + in.max_age_days * 86400LL + 3600);
    return plan::ChooseVerification(in).courses;
  }

  // Enrolments enrolsync owns in each course: the size of its participant
  // read, to keep each call within a time budget.
  std::map<model::MoodleId, int> ExpectedParticipants() const {
    std::map<model::MoodleId, int> n;
    for (const auto& [key, _] : owned_.enrolments) ++n[key.courseid];
    return n;
  }

  // Courses and users the state database owns something in but the mirror
  // does not hold are read, so that "not in the mirror" never reads as
  // "deleted in Moodle" (which would forget what we own).
  Status CheckOwnedExist() {
    std::set<model::MoodleId> courses, users;
    for (const auto& [key, _] : owned_.enrolments) {
      if (!mirror_->data().courses.count(key.courseid)) courses.insert(key.courseid);
      if (!mirror_->data().users.count(key.userid)) users.insert(key.userid);
    }
    for (const auto& [id, _] : owned_.users)
      if (!mirror_->data().users.count(id)) users.insert(id);
    if (!full_courses_ && !courses.empty()) {
      auto got = client_->GetCoursesByIds({courses.begin(), courses.end()});
      if (!got) return Fail(got.error());
      for (const auto& c : *got) mirror_->Wrote(c);
    }
    if (!users.empty()) {
      auto got = mirror_->RefreshUsers({users.begin(), users.end()});
      if (!got) return Fail(got.error());
    }
    return Ok();
  }

  // Courses the first plan touches, plus an even rotation of the courses we
  // manage (all with --verify): plan/verify_policy.h.
  // `first` = nullptr: the rotation alone, before any plan.
  std::vector<model::MoodleId> ChooseVerification(const plan::Plan* first, long long now) {
    plan::VerifyInput in;
    if (first) in.touched.insert(first->touched_courses.begin(), first->touched_courses.end());
    std::set<model::MoodleId> existing;
    for (const auto& [id, _] : mirror_->data().courses) existing.insert(id);
    auto last = db_->LastVerified();
    for (const auto& [key, _] : owned_.enrolments) {
      if (!existing.count(key.courseid)) continue;
      long long t = 0;
      if (last)
        if (auto it = last->find(key.courseid); it != last->end()) t = it->second;
      in.managed.emplace(key.courseid, t);
    }
    in.now = now;
    in.max_age_days = cfg_.state.verify_max_age_days;
    in.upcoming_runs = config::ExpectedEnrolmentRuns(cfg_, now, now + in.max_age_days * 86400LL + 3600);
    in.min_per_run = cfg_.state.verify_courses_per_run;
    in.verify_all = opt_.verify_all;
    return plan::ChooseVerification(in).courses;
  }

  // Items in courses whose participants could not be read are not applied.
  void DropUnverified(const model::MoodleSnapshot& snap) {
    if (snap.read_failed.empty()) return;
    auto& items = report_.plan.items;
    std::vector<plan::PlanItem> kept;
    for (auto& i : items) {
      if (i.courseid && snap.read_failed.count(i.courseid)) continue;
      kept.push_back(std::move(i));
    }
    items = std::move(kept);
    report_.plan.summary = plan::Summarize(report_.plan.items);
    report_.plan.problems.push_back(plan::Problem{"", 0, {}, "changes in courses whose participants could not be read were not applied", false});
  }

  const config::Config& cfg_;
  const RunOptions& opt_;
  std::unique_ptr<state::StateDb> db_;
  std::unique_ptr<moodle::Client> client_;
  std::unique_ptr<MoodleMirror> mirror_;
  bool full_courses_ = true;
  bool courses_read_ = false;
  bool state_trouble_ = false;  // a state write failed outside the apply step: exit 4  // every course read this run already (CheckFirstSync)
  bool scratch_ = false;  // adopt on a lost ledger: state in memory until --apply records it
  std::vector<model::MoodleId> rotation_;  // courses verified this run, before the plan adds its own
  model::Ownership owned_;
  // Intents of the last, dead run not yet seen applied (sync/reconcile.h).
  std::vector<state::Intent> unsettled_;
  RunReport report_;
  bool users_incomplete_ = false;
  std::function<void(const std::string&)> trace_;
};

}  // namespace

RunReport RunOnce(const config::Config& cfg, const RunOptions& options) { return Runner(cfg, options).Run(); }

}  // namespace enrolsync::sync
