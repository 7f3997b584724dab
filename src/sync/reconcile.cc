#include "sync/reconcile.h"

#include <map>
#include <set>

namespace enrolsync::sync {

Result<ReconcileResult> ReconcileIntents(state::StateDb& db, moodle::Client& client, model::Ownership& owned,
                                         long long now) {
  auto intents = db.LoadIntents();
  if (!intents) return Fail(intents.error());
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

  auto participant = [&](const state::Intent& i) -> const model::Participant* {
    auto c = read.find(i.courseid);
    if (c == read.end() || !c->second) return nullptr;
    auto p = c->second->find(i.userid);
    return p == c->second->end() ? nullptr : &p->second;
  };
  auto entry = [&](const state::Intent& i, bool owns_enrolment) -> model::OwnedEnrolment& {
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

  if (auto st = db.Begin(); !st) return Fail(st.error());
  std::vector<long long> ids;
  Status st = Ok();
  for (const auto& i : *intents) {
    ids.push_back(i.id);
    if (!st) break;
    if (i.action == "create_course") {
      const model::Course* made = nullptr;
      for (const auto& c : courses)
        if (c.shortname == i.shortname && c.idnumber == i.idnumber) made = &c;
      if (made) {
        st = db.RecordCreatedCourse(made->id, made->shortname, now);
        owned.created_courses.insert(made->id);
        ++out.applied;
      } else {
        ++out.not_applied;
      }
      continue;
    }
    if (gone.count(i.courseid)) {
      ++out.moot;
      continue;
    }
    const model::Participant* p = participant(i);
    bool applied = false;
    if (i.action == "enrol" || i.action == "unsuspend") {
      if (p && p->active && p->roles.count(i.roleid)) {
        auto& e = entry(i, true);
        e.owns_enrolment = true;
        e.status = model::EnrolStatus::kActive;
        e.roles.insert(i.roleid);
        st = db.UpsertEnrolment(e);
        applied = true;
      }
    } else if (i.action == "suspend") {
      if (p && !p->active) {
        auto& e = entry(i, true);
        e.status = model::EnrolStatus::kSuspended;
        st = db.UpsertEnrolment(e);
        applied = true;
      }
    } else if (i.action == "role_assign") {
      if (p && p->roles.count(i.roleid)) {
        auto& e = entry(i, i.owns_enrolment);
        e.roles.insert(i.roleid);
        st = db.UpsertEnrolment(e);
        applied = true;
      }
    } else if (i.action == "role_unassign") {
      auto it = owned.enrolments.find({i.courseid, i.userid});
      if ((!p || !p->roles.count(i.roleid)) && it != owned.enrolments.end()) {
        it->second.roles.erase(i.roleid);
        st = db.UpsertEnrolment(it->second);
        applied = true;
      }
    } else if (i.action == "unenrol") {
      if (!p) {
        owned.enrolments.erase({i.courseid, i.userid});
        st = db.DeleteEnrolment({i.courseid, i.userid});
        applied = true;
      }
    }
    ++(applied ? out.applied : out.not_applied);
  }
  if (st) st = db.DropIntents(ids);
  if (!st) {
    (void)db.Rollback();
    return Fail(st.error());
  }
  if (auto c = db.Commit(); !c) return Fail(c.error());
  return out;
}

}  // namespace enrolsync::sync
