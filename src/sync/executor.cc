#include "sync/executor.h"

#include <map>
#include <set>

#include "util/secrets.h"

namespace enrolsync::sync {
namespace {

using plan::Action;
using plan::PlanItem;

class Executor {
 public:
  Executor(plan::Plan& plan, moodle::Client& client, state::StateDb& db, model::Ownership& owned,
           const ApplyContext& ctx)
      : plan_(plan), client_(client), db_(db), owned_(owned), ctx_(ctx) {}

  ApplyResult Run() {
    total_ = plan_.items.size() + plan_.forget.size();
    // What Moodle refused last run goes alone first (moodle::Client::SendAlone).
    if (auto last = db_.LoadFailedItems(); last) {
      std::set<moodle::Client::ItemKey> alone;
      for (const auto& f : *last) alone.insert({f.function, f.courseid, f.userid});
      client_.SendAlone(std::move(alone));
    } else {
      Persist(Fail(last.error()));
    }
    CreateCourses();
    ResolveNewCourseIds();
    RecheckNewCourseVisibility();
    Phase(Action::kEnrol);
    Phase(Action::kUnsuspend);
    Phase(Action::kRoleAssign);
    Phase(Action::kSuspend);
    Phase(Action::kRoleUnassign);
    Phase(Action::kUnenrol);
    Forget();
    std::vector<state::FailedItem> refused;
    for (const auto& k : client_.Refused()) refused.push_back({k.function, k.courseid, k.userid});
    Persist(db_.ReplaceFailedItems(refused));
    return std::move(result_);
  }

 private:
  void Trace(const std::string& line) {
    if (ctx_.trace) ctx_.trace(Redact(line));
  }
  void Progress(std::size_t n) {
    done_ += n;
    if (ctx_.progress) ctx_.progress(done_, total_);
  }
  void Failed(std::size_t index, const std::string& message) {
    result_.failures.push_back({index, Redact(message)});
    Trace("error: " + Redact(message) + " (" + plan::PlanLine(plan_.items[index]) + ")");
  }
  void Persist(Status st) {
    if (!st) {
      result_.state_error = true;
      Trace("error: " + st.error().message);
    }
  }
  model::OwnedEnrolment& Owned(const PlanItem& item, bool owns_enrolment) {
    auto [it, inserted] = owned_.enrolments.try_emplace(model::CourseUser{item.courseid, item.userid});
    auto& e = it->second;
    if (inserted) {
      e.courseid = item.courseid;
      e.userid = item.userid;
      e.owns_enrolment = owns_enrolment;
    }
    e.source_course = item.course_key;
    e.source_user = item.user_key;
    return e;
  }

  void CreateCourses() {
    std::vector<std::size_t> idx;
    std::vector<moodle::NewCourse> courses;
    for (std::size_t i = 0; i < plan_.items.size(); ++i) {
      const auto& item = plan_.items[i];
      if (item.action != Action::kCreateCourse) continue;
      moodle::NewCourse c;
      c.fullname = item.course_fullname;
      c.shortname = item.course_shortname;
      c.idnumber = item.idnumber;
      c.categoryid = item.categoryid;
      if (ctx_.courses) {
        c.fields = ctx_.courses->fields;
        c.format_options = ctx_.courses->format_options;
      }
      // The row's own dates win over [courses.defaults].
      auto set_field = [&c](const std::string& key, long long value) {
        for (auto& [k, v] : c.fields)
          if (k == key) {
            v = std::to_string(value);
            return;
          }
        c.fields.emplace_back(key, std::to_string(value));
      };
      if (item.startdate) set_field("startdate", *item.startdate);
      if (item.enddate) set_field("enddate", *item.enddate);
      idx.push_back(i);
      courses.push_back(std::move(c));
    }
    if (courses.empty()) return;
    std::vector<long long> intents = Intend(idx);
    // Each batch's courses are recorded as its answer arrives. A
    // "shortnametaken" (a retried create whose first attempt committed) is
    // settled after RecoverRetriedCreates.
    auto settle = [&](std::size_t k, const Result<model::MoodleId>& r, std::vector<long long>* drop) {
      auto& item = plan_.items[idx[k]];
      if (r) {
        item.courseid = *r;
        ++result_.applied.courses_create;
        Persist(db_.RecordCreatedCourse(item.courseid, item.course_shortname, ctx_.now));
        owned_.created_courses.insert(item.courseid);
        Trace(plan::MoodleTraceLine(item));
      } else {
        Failed(idx[k], r.error().message);
      }
      if (k < intents.size() && (r || Answered(r.error()))) drop->push_back(intents[k]);
    };
    auto deferred = [](const Result<model::MoodleId>& r) {
      return !r && r.error().moodle_errorcode == "shortnametaken";
    };
    auto results = client_.CreateCourses(
        courses, {}, [&](std::span<const std::size_t> ks, std::span<const Result<model::MoodleId>> rs) {
          std::vector<long long> drop;
          Persist(db_.Begin());
          for (std::size_t k : ks)
            if (!deferred(rs[k])) settle(k, rs[k], &drop);
          Persist(db_.DropIntents(drop));
          Persist(db_.Commit());
        });
    std::vector<bool> was_deferred(results.size());
    for (std::size_t k = 0; k < results.size(); ++k) was_deferred[k] = deferred(results[k]);
    RecoverRetriedCreates(idx, &results);
    std::vector<long long> drop;
    Persist(db_.Begin());
    for (std::size_t k = 0; k < idx.size(); ++k)
      if (was_deferred[k]) settle(k, results[k], &drop);
    Persist(db_.DropIntents(drop));
    Persist(db_.Commit());
    Progress(idx.size());
  }

  // A create whose answer was lost (read timeout) is retried by the client;
  // if the first attempt had committed, the retry says "shortnametaken".
  // A course with that shortname and the wanted idnumber is then ours.
  void RecoverRetriedCreates(const std::vector<std::size_t>& idx, std::vector<Result<model::MoodleId>>* results) {
    bool any = false;
    for (const auto& r : *results) any |= !r && r.error().moodle_errorcode == "shortnametaken";
    if (!any) return;
    auto courses = client_.GetAllCourses();
    if (!courses) return;
    for (std::size_t k = 0; k < idx.size(); ++k) {
      auto& r = (*results)[k];
      if (r || r.error().moodle_errorcode != "shortnametaken") continue;
      const auto& item = plan_.items[idx[k]];
      for (const auto& c : *courses) {
        if (c.shortname == item.course_shortname && c.idnumber == item.idnumber && c.categoryid == item.categoryid) {
          r = c.id;
          break;
        }
      }
    }
  }

  void ResolveNewCourseIds() {
    for (std::size_t i = 0; i < plan_.items.size(); ++i) {
      auto& item = plan_.items[i];
      if (item.action == Action::kCreateCourse || item.create_index < 0) continue;
      item.courseid = plan_.items[item.create_index].courseid;
    }
  }

  // ignore_hidden_courses, visibility left to Moodle: a course Moodle
  // created hidden gets no enrolments, as enrol_database skips hidden courses.
  // When the read fails nothing goes into the new courses this run.
  void RecheckNewCourseVisibility() {
    if (!plan_.recheck_new_course_visibility) return;
    std::set<model::MoodleId> created;
    for (const auto& item : plan_.items)
      if (item.action == Action::kCreateCourse && item.courseid) created.insert(item.courseid);
    if (created.empty()) return;
    auto courses = client_.GetAllCourses();
    if (!courses) {
      unknown_visibility_ = created;
      unknown_visibility_error_ = courses.error().message;
      return;
    }
    for (const auto& c : *courses) {
      if (!created.count(c.id) || c.visible) continue;
      hidden_created_.insert(c.id);
      std::string note = "new course '" + c.shortname + "' was created hidden (Moodle's default visibility): no "
                         "enrolments (ignore_hidden_courses)";
      plan_.notes.push_back(note);
      Trace(note);
    }
  }

  void Phase(Action action) {
    std::vector<std::size_t> idx;
    for (std::size_t i = 0; i < plan_.items.size(); ++i) {
      const auto& item = plan_.items[i];
      if (item.action != action) continue;
      if (item.courseid == 0) {
        Failed(i, "skipped: course '" + item.course_shortname + "' was not created");
        Progress(1);
        continue;
      }
      if (item.create_index >= 0 && hidden_created_.count(item.courseid)) {
        Progress(1);
        continue;
      }
      if (item.create_index >= 0 && unknown_visibility_.count(item.courseid)) {
        Failed(i, "skipped: could not read whether the new course is visible (ignore_hidden_courses): " +
                      unknown_visibility_error_);
        Progress(1);
        continue;
      }
      // A role change belongs with its enrolment change: when enrolling or
      // suspending that user in that course failed, leave the roles as they
      // are for the next run instead of half-applying.
      if ((action == Action::kRoleAssign || action == Action::kRoleUnassign) &&
          failed_.count({item.courseid, item.userid})) {
        Failed(i, "skipped: the enrolment change for this user failed");
        Progress(1);
        continue;
      }
      // An unenrol drops the ownership record: never before the roles
      // enrolsync assigned are gone, or they would outlive it (another
      // enrolment method keeps them in Moodle). The next run retries both.
      if (action == Action::kUnenrol && failed_.count({item.courseid, item.userid})) {
        Failed(i, "skipped: removing the roles enrolsync assigned failed");
        Progress(1);
        continue;
      }
      idx.push_back(i);
    }
    if (idx.empty()) return;

    std::vector<long long> intents = Intend(idx);
    // Each batch is recorded as its answer arrives (one transaction with
    // dropping its intents), so a crash loses nothing Moodle confirmed.
    // "Message was not sent." is settled after VerifyMessageNotSent.
    auto on_batch = [&](std::span<const std::size_t> ks, std::span<const Result<model::MoodleId>> rs) {
      std::vector<long long> drop;
      Persist(db_.Begin());
      for (std::size_t k : ks) {
        if (!rs[k] && rs[k].error().moodle_errorcode == moodle::kMessageNotSent) continue;
        Settle(idx, intents, k, rs[k] ? Status(Ok()) : Status(Fail(rs[k].error())), &drop);
      }
      Persist(db_.DropIntents(drop));
      Persist(db_.Commit());
    };
    std::vector<Status> results;
    switch (action) {
      case Action::kEnrol:
      case Action::kUnsuspend:
      case Action::kSuspend: {
        std::vector<moodle::ManualEnrolment> batch;
        for (auto i : idx) {
          const auto& it = plan_.items[i];
          batch.push_back({it.courseid, it.userid, it.roleid, action == Action::kSuspend});
        }
        results = client_.EnrolUsers(batch, {}, on_batch);
        break;
      }
      case Action::kRoleAssign:
      case Action::kRoleUnassign: {
        std::vector<moodle::RoleAssignment> batch;
        for (auto i : idx) batch.push_back({plan_.items[i].courseid, plan_.items[i].userid, plan_.items[i].roleid});
        results = action == Action::kRoleAssign ? client_.AssignRoles(batch, {}, on_batch)
                                                : client_.UnassignRoles(batch, {}, on_batch);
        break;
      }
      case Action::kUnenrol: {
        std::vector<moodle::CourseUserRef> batch;
        for (auto i : idx) batch.push_back({plan_.items[i].courseid, plan_.items[i].userid});
        results = client_.UnenrolUsers(batch, {}, on_batch);
        break;
      }
      case Action::kCreateCourse: return;
    }
    std::vector<bool> not_sent_message(results.size());
    for (std::size_t k = 0; k < results.size(); ++k)
      not_sent_message[k] = !results[k] && results[k].error().moodle_errorcode == moodle::kMessageNotSent;
    VerifyMessageNotSent(idx, &results);
    std::vector<long long> drop;
    Persist(db_.Begin());
    for (std::size_t k = 0; k < idx.size(); ++k)
      if (not_sent_message[k]) Settle(idx, intents, k, results[k], &drop);
    Persist(db_.DropIntents(drop));
    Persist(db_.Commit());
    Progress(idx.size());
  }

  // Records item idx[k]'s answer. Its intent is dropped when Moodle applied
  // it or answered that it did not; after a timeout or a lost connection
  // it stays, for the next run to reconcile.
  void Settle(const std::vector<std::size_t>& idx, const std::vector<long long>& intents, std::size_t k,
              const Status& r, std::vector<long long>* drop) {
    const auto& item = plan_.items[idx[k]];
    if (r) {
      Record(item);
      Trace(plan::MoodleTraceLine(item));
    } else {
      Failed(idx[k], r.error().message);
      failed_.insert({item.courseid, item.userid});
    }
    if (k < intents.size() && (r || Answered(r.error()))) drop->push_back(intents[k]);
  }

  // Moodle's own answer that it did not apply the call (a web-service
  // exception, all or nothing), or a refusal before sending, or a call
  // never sent (stopping, Moodle given up on).
  static bool Answered(const Error& e) {
    if (e.moodle_errorcode == moodle::kNotSent) return true;
    if (e.code == ErrorCode::kMoodle || e.code == ErrorCode::kAuth || e.code == ErrorCode::kInvalidArgument)
      return e.moodle_errorcode != moodle::kMessageNotSent;
    return false;
  }

  // Records the step's items as pending intents, in one transaction, before
  // anything is sent. Returns their ids in idx order (empty if the state
  // database failed: the run is then partial, see Persist).
  std::vector<long long> Intend(const std::vector<std::size_t>& idx) {
    std::vector<state::Intent> intents;
    intents.reserve(idx.size());
    for (std::size_t i : idx) {
      const auto& item = plan_.items[i];
      state::Intent in;
      in.action = plan::ActionName(item.action);
      in.courseid = item.courseid;
      in.userid = item.userid;
      in.roleid = item.roleid;
      in.shortname = item.course_shortname;
      in.idnumber = item.idnumber;
      in.source_course = item.course_key;
      in.source_user = item.user_key;
      auto it = owned_.enrolments.find({item.courseid, item.userid});
      in.owns_enrolment = item.action != Action::kRoleAssign || (it != owned_.enrolments.end() && it->second.owns_enrolment);
      intents.push_back(std::move(in));
    }
    Persist(db_.Begin());
    auto ids = db_.AddIntents(intents);
    if (!ids) Persist(Fail(ids.error()));
    Persist(db_.Commit());
    return ids ? *ids : std::vector<long long>{};
  }

  // Moodle commits an enrolment and then fails to send the welcome message
  // ("Message was not sent."). Read the courses back: where Moodle shows the
  // intended state, the item succeeded.
  void VerifyMessageNotSent(const std::vector<std::size_t>& idx, std::vector<Status>* results) {
    std::set<model::MoodleId> courses;
    for (std::size_t k = 0; k < idx.size(); ++k) {
      const auto& r = (*results)[k];
      if (!r && r.error().moodle_errorcode == moodle::kMessageNotSent) courses.insert(plan_.items[idx[k]].courseid);
    }
    if (courses.empty()) return;
    auto read = client_.GetParticipants({courses.begin(), courses.end()});
    for (std::size_t k = 0; k < idx.size(); ++k) {
      auto& r = (*results)[k];
      if (r || r.error().moodle_errorcode != moodle::kMessageNotSent) continue;
      const auto& item = plan_.items[idx[k]];
      auto c = read.find(item.courseid);
      if (c == read.end() || !c->second) continue;
      auto p = c->second->find(item.userid);
      if (p == c->second->end()) continue;
      bool want_active = item.action != Action::kSuspend;
      if (p->second.active == want_active && p->second.roles.count(item.roleid)) {
        r = Ok();
        ++result_.message_not_sent;
      }
    }
  }

  void Record(const PlanItem& item) {
    switch (item.action) {
      case Action::kEnrol: {
        auto& e = Owned(item, true);
        e.owns_enrolment = true;
        e.status = model::EnrolStatus::kActive;
        e.roles.insert(item.roleid);
        Persist(db_.UpsertEnrolment(e));
        ++result_.applied.enrol;
        break;
      }
      case Action::kUnsuspend: {
        auto& e = Owned(item, true);
        e.status = model::EnrolStatus::kActive;
        e.roles.insert(item.roleid);
        Persist(db_.UpsertEnrolment(e));
        ++result_.applied.unsuspend;
        break;
      }
      case Action::kRoleAssign: {
        auto& e = Owned(item, false);
        e.roles.insert(item.roleid);
        Persist(db_.UpsertEnrolment(e));
        ++result_.applied.role_assign;
        break;
      }
      case Action::kSuspend: {
        auto& e = Owned(item, true);
        e.status = model::EnrolStatus::kSuspended;
        Persist(db_.UpsertEnrolment(e));
        ++result_.applied.suspend;
        break;
      }
      case Action::kRoleUnassign: {
        auto& e = Owned(item, false);
        e.roles.erase(item.roleid);
        Persist(db_.UpsertEnrolment(e));
        ++result_.applied.role_unassign;
        break;
      }
      case Action::kUnenrol: {
        owned_.enrolments.erase({item.courseid, item.userid});
        Persist(db_.DeleteEnrolment({item.courseid, item.userid}));
        ++result_.applied.unenrol;
        break;
      }
      case Action::kCreateCourse: break;
    }
  }

  void Forget() {
    if (plan_.forget.empty()) return;
    Persist(db_.Begin());
    for (const auto& f : plan_.forget) {
      owned_.enrolments.erase(f.key);
      Persist(db_.DeleteEnrolment(f.key));
    }
    Persist(db_.Commit());
    Progress(plan_.forget.size());
  }

  plan::Plan& plan_;
  moodle::Client& client_;
  state::StateDb& db_;
  model::Ownership& owned_;
  const ApplyContext& ctx_;
  ApplyResult result_;
  std::size_t done_ = 0, total_ = 0;
  std::set<model::CourseUser> failed_;  // (course, user) whose change failed this run
  std::set<model::MoodleId> hidden_created_;       // created this run, hidden by Moodle's default
  std::set<model::MoodleId> unknown_visibility_;   // created this run, visibility could not be read
  std::string unknown_visibility_error_;
};

}  // namespace

ApplyResult Apply(plan::Plan& plan, moodle::Client& client, state::StateDb& db, model::Ownership& owned,
                  const ApplyContext& ctx) {
  return Executor(plan, client, db, owned, ctx).Run();
}

}  // namespace enrolsync::sync
