#include "sync/reconcile.h"

#include <map>
#include <set>

#include "sync/user_sync.h"

namespace enrolsync::sync {
namespace {

// Whether Moodle's read shows `i` applied (`p`: the user's participant
// record in the intent's course, nullptr when not a participant); when it
// does, records it in `owned` and the database (inside the caller's
// transaction). create_course intents are not handled here.
Result<bool> SettleOne(const state::Intent& i, const model::Participant* p, state::StateDb& db,
                       model::Ownership& owned) {
  auto entry = [&](bool owns_enrolment) -> model::OwnedEnrolment& {
    auto [it, inserted] = owned.enrolments.try_emplace(model::CourseUser{i.courseid, i.userid});
    if (inserted) {
      it->second.courseid = i.courseid;
      it->second.userid = i.userid;
      it->second.owns_enrolment = owns_enrolment;
    }
    it->second.source_course = i.source_course;
    it->second.source_user = i.source_user;
    return it->second;
  };
  if (p && !p->roles_known) return false;  // the read could not tell: looked at again next run
  Status st = Ok();
  if (i.action == "enrol" || i.action == "unsuspend") {
    if (!(p && p->active && p->roles.count(i.roleid))) return false;
    auto& e = entry(true);
    e.owns_enrolment = true;
    e.status = model::EnrolStatus::kActive;
    e.roles.insert(i.roleid);
    st = db.UpsertEnrolment(e);
  } else if (i.action == "suspend") {
    if (!(p && !p->active)) return false;
    auto& e = entry(true);
    e.status = model::EnrolStatus::kSuspended;
    st = db.UpsertEnrolment(e);
  } else if (i.action == "role_assign") {
    if (!(p && p->roles.count(i.roleid))) return false;
    auto& e = entry(i.owns_enrolment);
    e.roles.insert(i.roleid);
    st = db.UpsertEnrolment(e);
  } else if (i.action == "role_unassign") {
    auto it = owned.enrolments.find({i.courseid, i.userid});
    if ((p && p->roles.count(i.roleid)) || it == owned.enrolments.end()) return false;
    it->second.roles.erase(i.roleid);
    st = db.UpsertEnrolment(it->second);
  } else if (i.action == "unenrol") {
    if (p) return false;
    owned.enrolments.erase({i.courseid, i.userid});
    st = db.DeleteEnrolment({i.courseid, i.userid});
  } else {
    return false;
  }
  if (!st) return Fail(st.error());
  return true;
}

const model::Course* FindCreated(const state::Intent& i, const std::vector<model::Course>& courses) {
  for (const auto& c : courses)
    if (c.shortname == i.shortname && c.idnumber == i.idnumber) return &c;
  return nullptr;
}

// Runs `body` in one transaction; all or nothing.
template <typename Body>
Status InTransaction(state::StateDb& db, Body body) {
  if (auto st = db.Begin(); !st) return st;
  Status st = body();
  if (!st) {
    (void)db.Rollback();
    return st;
  }
  return db.Commit();
}

}  // namespace

Result<ReconcileResult> ReconcileIntents(state::StateDb& db, moodle::Client& client, model::Ownership& owned,
                                         long long now) {
  auto intents = db.LoadIntents();
  if (!intents) return Fail(intents.error());
  // User writes are read back by the user sync (ReadBackUserIntents).
  std::erase_if(*intents, [](const state::Intent& i) { return i.action == kUserWriteIntent; });

  ReconcileResult out;
  out.pending = static_cast<int>(intents->size());
  if (intents->empty()) return out;

  // What Moodle holds now.
  std::set<model::MoodleId> courseids;
  bool creates = false;
  for (const auto& i : *intents) {
    if (i.action == "create_course") creates = true;
    else courseids.insert(i.courseid);
  }
  auto read = client.GetParticipants({courseids.begin(), courseids.end()});
  std::set<model::MoodleId> gone;  // courses deleted since: their intents are moot
  std::vector<model::MoodleId> failed;
  for (const auto& [id, r] : read)
    if (!r) failed.push_back(id);
  if (!failed.empty()) {
    auto exist = client.GetCoursesByIds(failed);
    if (!exist) return Fail(exist.error().Wrap("reconciling the interrupted run's changes"));
    std::set<model::MoodleId> present;
    for (const auto& c : *exist) present.insert(c.id);
    for (model::MoodleId id : failed) {
      if (present.count(id))
        return Fail(read.at(id).error().Wrap("reconciling the interrupted run's changes in course " +
                                             std::to_string(id)));
      gone.insert(id);
    }
  }
  std::vector<model::Course> courses;
  if (creates) {
    auto all = client.GetAllCourses();
    if (!all) return Fail(all.error().Wrap("reconciling the interrupted run's course creation"));
    courses = std::move(*all);
  }

  std::vector<long long> settled;
  Status st = InTransaction(
      db,
      [&]() -> Status {
        for (const auto& i : *intents) {
          bool applied = false;
          if (i.action == "create_course") {
            if (const model::Course* made = FindCreated(i, courses)) {
              if (auto r = db.RecordCreatedCourse(made->id, made->shortname, now); !r) return r;
              owned.created_courses.insert(made->id);
              applied = true;
            }
          } else if (gone.count(i.courseid)) {
            ++out.moot;
            settled.push_back(i.id);
            continue;
          } else {
            const model::Participant* p = nullptr;
            if (auto c = read.find(i.courseid); c != read.end() && c->second)
              if (auto f = c->second->find(i.userid); f != c->second->end()) p = &f->second;
            auto r = SettleOne(i, p, db, owned);
            if (!r) return Fail(r.error());
            applied = *r;
          }
          if (applied) {
            ++out.applied;
            settled.push_back(i.id);
          } else {
            ++out.not_applied;
            out.unsettled.push_back(i);
          }
        }
        return settled.empty() ? Ok() : db.DropIntents(settled);
      });
  if (!st) return Fail(st.error());
  return out;
}

Result<int> SettleUnsettled(state::StateDb& db, const std::vector<state::Intent>& unsettled,
                            const std::vector<model::Course>& courses,
                            const std::map<model::MoodleId, model::Participants>& verified, model::Ownership& owned,
                            long long now) {
  int late = 0;
  std::vector<long long> drop;
  Status st = InTransaction(
      db,
      [&]() -> Status {
        for (const auto& i : unsettled) {
          if (i.action == "create_course") {
            drop.push_back(i.id);
            if (const model::Course* made = FindCreated(i, courses)) {
              if (auto r = db.RecordCreatedCourse(made->id, made->shortname, now); !r) return r;
              owned.created_courses.insert(made->id);
              ++late;
            }
            continue;
          }
          auto c = verified.find(i.courseid);
          if (c == verified.end()) continue;  // not read this run: the next run looks again
          auto f = c->second.find(i.userid);
          if (f != c->second.end() && !f->second.roles_known) continue;  // nor could it tell: likewise
          drop.push_back(i.id);
          auto r = SettleOne(i, f == c->second.end() ? nullptr : &f->second, db, owned);
          if (!r) return Fail(r.error());
          if (*r) ++late;
        }
        return drop.empty() ? Ok() : db.DropIntents(drop);
      });
  if (!st) return Fail(st.error());
  return late;
}

}  // namespace enrolsync::sync
