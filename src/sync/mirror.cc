#include "sync/mirror.h"

#include <algorithm>
#include <functional>

namespace enrolsync::sync {
namespace {

// Ids asked for in one scan call; a scan goes on past a page that found
// someone (ids skipped by failed creations leave gaps shorter than this).
constexpr model::MoodleId kUserScanPage = 500;
constexpr model::MoodleId kCourseScanPage = 200;
constexpr int kMaxScanPages = 200;

}  // namespace

MoodleMirror::MoodleMirror(moodle::Client& client, state::StateDb& db, long long now)
    : client_(client), db_(db), now_(now) {}

Status MoodleMirror::Load() {
  auto m = db_.LoadMirror();
  if (!m) return Fail(m.error());
  m_ = std::move(*m);
  return Ok();
}

std::vector<model::User> MoodleMirror::Users() const {
  std::vector<model::User> out;
  out.reserve(m_.users.size());
  for (const auto& [_, u] : m_.users) out.push_back(u);
  return out;
}

std::vector<model::Course> MoodleMirror::Courses() const {
  std::vector<model::Course> out;
  out.reserve(m_.courses.size());
  for (const auto& [_, c] : m_.courses) out.push_back(c);
  return out;
}

void MoodleMirror::SaveUser(const model::User& u, bool read) {
  m_.users[u.id] = u;
  m_.user_checked[u.id] = now_;
  m_.max_userid = std::max(m_.max_userid, u.id);
  if (read) read_.insert(u.id);
}

void MoodleMirror::ReplaceUsers(const std::vector<model::User>& users) {
  std::vector<model::MoodleId> gone;
  for (const auto& [id, _] : m_.users) gone.push_back(id);
  m_.users.clear();
  m_.user_checked.clear();
  for (const auto& u : users) SaveUser(u, true);
  Persist(db_.Begin());
  Persist(db_.DropMirrorUsers(gone));
  Persist(db_.SaveMirrorUsers(users, now_));
  Persist(db_.SetMirrorMeta("max_userid", m_.max_userid));
  Persist(db_.Commit());
}

void MoodleMirror::MarkUsersComplete() {
  Persist(db_.SetMirrorMeta("users_complete", 1));
  m_.users_complete = true;
}

void MoodleMirror::ReplaceCourses(const std::vector<model::Course>& courses) {
  std::vector<model::MoodleId> gone;
  for (const auto& [id, _] : m_.courses) gone.push_back(id);
  m_.courses.clear();
  m_.course_checked.clear();
  for (const auto& c : courses) {
    m_.courses[c.id] = c;
    m_.course_checked[c.id] = now_;
    m_.max_courseid = std::max(m_.max_courseid, c.id);
  }
  Persist(db_.Begin());
  Persist(db_.DropMirrorCourses(gone));
  Persist(db_.SaveMirrorCourses(courses, now_));
  Persist(db_.SetMirrorMeta("courses_complete", 1));
  Persist(db_.SetMirrorMeta("max_courseid", m_.max_courseid));
  Persist(db_.Commit());
  m_.courses_complete = true;
}

Result<int> MoodleMirror::ScanNewUsers(const std::vector<model::MoodleId>& refresh, std::vector<model::MoodleId>* gone) {
  int found = 0;
  for (int page = 0; page < kMaxScanPages; ++page) {
    const model::MoodleId from = m_.max_userid;
    std::vector<std::string> ids;
    if (page == 0)
      for (auto id : refresh) ids.push_back(std::to_string(id));
    for (model::MoodleId id = from + 1; id <= from + kUserScanPage; ++id) ids.push_back(std::to_string(id));
    auto users = client_.GetUsersByField("id", ids);
    if (!users) return Fail(users.error());
    Saw(*users);
    int fresh = 0;
    std::set<model::MoodleId> seen;
    for (const auto& u : *users) {
      seen.insert(u.id);
      if (u.id > from) ++fresh;
    }
    if (page == 0) {
      for (auto id : refresh) {
        if (seen.count(id) || !m_.users.count(id)) continue;
        Forget(id);
        if (gone) gone->push_back(id);
      }
    }
    found += fresh;
    if (fresh == 0) break;
  }
  return found;
}

Result<int> MoodleMirror::ScanNewCourses(const std::vector<model::MoodleId>& refresh, std::vector<model::MoodleId>* gone) {
  int found = 0;
  for (int page = 0; page < kMaxScanPages; ++page) {
    const model::MoodleId from = m_.max_courseid;
    std::vector<model::MoodleId> ids;
    if (page == 0) ids = refresh;
    for (model::MoodleId id = from + 1; id <= from + kCourseScanPage; ++id) ids.push_back(id);
    auto courses = client_.GetCoursesByIds(ids);
    if (!courses) return Fail(courses.error());
    int fresh = 0;
    std::set<model::MoodleId> seen;
    Persist(db_.Begin());  // one transaction for the page
    for (const auto& c : *courses) {
      seen.insert(c.id);
      if (c.id > from) ++fresh;
      Wrote(c);
    }
    Persist(db_.Commit());
    if (page == 0) {
      std::vector<model::MoodleId> dropped;
      for (auto id : refresh) {
        if (seen.count(id) || !m_.courses.count(id)) continue;
        m_.courses.erase(id);
        m_.course_checked.erase(id);
        dropped.push_back(id);
        if (gone) gone->push_back(id);
      }
      Persist(db_.DropMirrorCourses(dropped));
    }
    found += fresh;
    if (fresh == 0) break;
  }
  return found;
}

Result<std::vector<model::MoodleId>> MoodleMirror::RefreshUsers(const std::vector<model::MoodleId>& ids) {
  if (ids.empty()) return std::vector<model::MoodleId>{};
  std::vector<std::string> values;
  for (auto id : ids) values.push_back(std::to_string(id));
  auto users = client_.GetUsersByField("id", values);
  if (!users) return Fail(users.error());
  Saw(*users);
  std::set<model::MoodleId> seen;
  for (const auto& u : *users) seen.insert(u.id);
  std::vector<model::MoodleId> gone;
  for (auto id : ids)
    if (!seen.count(id) && m_.users.count(id)) gone.push_back(id);
  for (auto id : gone) Forget(id);
  return gone;
}

Result<std::vector<model::MoodleId>> MoodleMirror::RefreshCourses(const std::vector<model::MoodleId>& ids) {
  if (ids.empty()) return std::vector<model::MoodleId>{};
  auto courses = client_.GetCoursesByIds(ids);
  if (!courses) return Fail(courses.error());
  std::set<model::MoodleId> seen;
  for (const auto& c : *courses) {
    Wrote(c);
    seen.insert(c.id);
  }
  std::vector<model::MoodleId> gone;
  for (auto id : ids) {
    if (seen.count(id) || !m_.courses.count(id)) continue;
    gone.push_back(id);
    m_.courses.erase(id);
    m_.course_checked.erase(id);
  }
  Persist(db_.DropMirrorCourses(gone));
  return gone;
}

void MoodleMirror::Saw(const std::vector<model::User>& users) {
  if (users.empty()) return;
  for (const auto& u : users) SaveUser(u, true);
  Persist(db_.Begin());
  Persist(db_.SaveMirrorUsers(users, now_));
  Persist(db_.SetMirrorMeta("max_userid", m_.max_userid));
  Persist(db_.Commit());
}

void MoodleMirror::Wrote(const model::User& user) {
  SaveUser(user, false);
  Persist(db_.SaveMirrorUsers({user}, now_));
  Persist(db_.SetMirrorMeta("max_userid", m_.max_userid));
}

void MoodleMirror::Wrote(const model::Course& course) {
  m_.courses[course.id] = course;
  m_.course_checked[course.id] = now_;
  m_.max_courseid = std::max(m_.max_courseid, course.id);
  Persist(db_.SaveMirrorCourses({course}, now_));
  Persist(db_.SetMirrorMeta("max_courseid", m_.max_courseid));
}

void MoodleMirror::Forget(model::MoodleId userid) {
  m_.users.erase(userid);
  m_.user_checked.erase(userid);
  Persist(db_.DropMirrorUsers({userid}));
}

bool MoodleMirror::MissingIsFresh(const std::string& value, long long max_age) const {
  auto it = m_.missing.find(value);
  if (it == m_.missing.end()) return false;
  const long long spread = max_age / 2 + static_cast<long long>(std::hash<std::string>{}(value) % 1000) * (max_age / 2) / 1000;
  return now_ - it->second < spread;
}

void MoodleMirror::Missing(const std::vector<std::string>& values) {
  for (const auto& v : values) m_.missing[v] = now_;
  Persist(db_.SaveMirrorMissing(values, now_));
}

void MoodleMirror::Found(const std::vector<std::string>& values) {
  std::vector<std::string> known;
  for (const auto& v : values)
    if (m_.missing.erase(v)) known.push_back(v);
  Persist(db_.DropMirrorMissing(known));
}

bool MoodleMirror::ReadThisRun(model::MoodleId userid) const { return read_.count(userid) > 0; }

}  // namespace enrolsync::sync
