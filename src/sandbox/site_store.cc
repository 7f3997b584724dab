#include "sandbox/site_store.h"

#include <atomic>

#include <ctime>
#include <functional>
#include <map>

#include "sandbox/ws_error.h"
#include "util/strings.h"

namespace enrolsync::sandbox {

namespace {

const char* kSchema = R"SQL(
CREATE TABLE IF NOT EXISTS config(name TEXT PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS context(id INTEGER PRIMARY KEY AUTOINCREMENT, contextlevel INTEGER NOT NULL,
  instanceid INTEGER NOT NULL, path TEXT NOT NULL DEFAULT '', depth INTEGER NOT NULL DEFAULT 1,
  UNIQUE(contextlevel, instanceid));
CREATE TABLE IF NOT EXISTS role(id INTEGER PRIMARY KEY, shortname TEXT NOT NULL, name TEXT NOT NULL DEFAULT '',
  sortorder INTEGER NOT NULL, archetype TEXT NOT NULL DEFAULT '');
CREATE TABLE IF NOT EXISTS role_context_levels(roleid INTEGER NOT NULL, contextlevel INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS course_categories(id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL,
  idnumber TEXT NOT NULL DEFAULT '', description TEXT NOT NULL DEFAULT '', descriptionformat INTEGER NOT NULL DEFAULT 0,
  parent INTEGER NOT NULL DEFAULT 0, sortorder INTEGER NOT NULL DEFAULT 0, visible INTEGER NOT NULL DEFAULT 1,
  visibleold INTEGER NOT NULL DEFAULT 1, timemodified INTEGER NOT NULL DEFAULT 0, depth INTEGER NOT NULL DEFAULT 1,
  path TEXT NOT NULL DEFAULT '', theme TEXT NOT NULL DEFAULT '');
CREATE TABLE IF NOT EXISTS course(id INTEGER PRIMARY KEY AUTOINCREMENT, category INTEGER NOT NULL,
  sortorder INTEGER NOT NULL DEFAULT 0, fullname TEXT NOT NULL, shortname TEXT NOT NULL, idnumber TEXT NOT NULL DEFAULT '',
  summary TEXT NOT NULL DEFAULT '', summaryformat INTEGER NOT NULL DEFAULT 1, format TEXT NOT NULL DEFAULT 'topics',
  showgrades INTEGER NOT NULL DEFAULT 1, newsitems INTEGER NOT NULL DEFAULT 5, startdate INTEGER NOT NULL DEFAULT 0,
  enddate INTEGER NOT NULL DEFAULT 0, marker INTEGER NOT NULL DEFAULT 0, maxbytes INTEGER NOT NULL DEFAULT 0,
  legacyfiles INTEGER NOT NULL DEFAULT 0, showreports INTEGER NOT NULL DEFAULT 1, visible INTEGER NOT NULL DEFAULT 1,
  visibleold INTEGER NOT NULL DEFAULT 1, groupmode INTEGER NOT NULL DEFAULT 0, groupmodeforce INTEGER NOT NULL DEFAULT 0,
  defaultgroupingid INTEGER NOT NULL DEFAULT 0, lang TEXT NOT NULL DEFAULT '', calendartype TEXT NOT NULL DEFAULT '',
  theme TEXT NOT NULL DEFAULT '', timecreated INTEGER NOT NULL DEFAULT 0, timemodified INTEGER NOT NULL DEFAULT 0,
  requested INTEGER NOT NULL DEFAULT 0, enablecompletion INTEGER NOT NULL DEFAULT 1,
  completionnotify INTEGER NOT NULL DEFAULT 0, cacherev INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS forum(id INTEGER PRIMARY KEY AUTOINCREMENT, course INTEGER NOT NULL,
  type TEXT NOT NULL, name TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS course_sections(id INTEGER PRIMARY KEY AUTOINCREMENT, course INTEGER NOT NULL,
  section INTEGER NOT NULL, name TEXT, UNIQUE(course, section));
CREATE TABLE IF NOT EXISTS course_format_options(id INTEGER PRIMARY KEY AUTOINCREMENT, courseid INTEGER NOT NULL,
  format TEXT NOT NULL, sectionid INTEGER NOT NULL DEFAULT 0, name TEXT NOT NULL, value TEXT NOT NULL,
  UNIQUE(courseid, format, sectionid, name));
CREATE TABLE IF NOT EXISTS enrol(id INTEGER PRIMARY KEY AUTOINCREMENT, enrol TEXT NOT NULL, status INTEGER NOT NULL,
  courseid INTEGER NOT NULL, sortorder INTEGER NOT NULL DEFAULT 0, name TEXT, roleid INTEGER NOT NULL DEFAULT 0,
  customint1 INTEGER, customint2 INTEGER, timecreated INTEGER NOT NULL DEFAULT 0);
CREATE INDEX IF NOT EXISTS enrol_course ON enrol(courseid);
CREATE INDEX IF NOT EXISTS enrol_meta_child ON enrol(enrol, customint1);
CREATE TABLE IF NOT EXISTS user_enrolments(id INTEGER PRIMARY KEY AUTOINCREMENT, status INTEGER NOT NULL DEFAULT 0,
  enrolid INTEGER NOT NULL, userid INTEGER NOT NULL, timestart INTEGER NOT NULL DEFAULT 0,
  timeend INTEGER NOT NULL DEFAULT 0, timecreated INTEGER NOT NULL DEFAULT 0, timemodified INTEGER NOT NULL DEFAULT 0,
  UNIQUE(enrolid, userid));
CREATE INDEX IF NOT EXISTS ue_user ON user_enrolments(userid);
CREATE TABLE IF NOT EXISTS role_assignments(id INTEGER PRIMARY KEY AUTOINCREMENT, roleid INTEGER NOT NULL,
  contextid INTEGER NOT NULL, userid INTEGER NOT NULL, component TEXT NOT NULL DEFAULT '',
  itemid INTEGER NOT NULL DEFAULT 0, timemodified INTEGER NOT NULL DEFAULT 0);
CREATE INDEX IF NOT EXISTS ra_ctx_user ON role_assignments(contextid, userid);
CREATE INDEX IF NOT EXISTS ra_user ON role_assignments(userid);
CREATE TABLE IF NOT EXISTS users(id INTEGER PRIMARY KEY AUTOINCREMENT, auth TEXT NOT NULL DEFAULT 'manual',
  confirmed INTEGER NOT NULL DEFAULT 1, deleted INTEGER NOT NULL DEFAULT 0, suspended INTEGER NOT NULL DEFAULT 0,
  username TEXT NOT NULL, password TEXT NOT NULL DEFAULT '', idnumber TEXT NOT NULL DEFAULT '',
  firstname TEXT NOT NULL DEFAULT '', lastname TEXT NOT NULL DEFAULT '', email TEXT NOT NULL DEFAULT '',
  department TEXT NOT NULL DEFAULT '', institution TEXT NOT NULL DEFAULT '', city TEXT NOT NULL DEFAULT '',
  country TEXT NOT NULL DEFAULT '', lang TEXT NOT NULL DEFAULT 'en', timezone TEXT NOT NULL DEFAULT '99',
  mailformat INTEGER NOT NULL DEFAULT 1, description TEXT NOT NULL DEFAULT '', firstaccess INTEGER NOT NULL DEFAULT 0,
  lastaccess INTEGER NOT NULL DEFAULT 0, timecreated INTEGER NOT NULL DEFAULT 0, timemodified INTEGER NOT NULL DEFAULT 0);
CREATE INDEX IF NOT EXISTS users_username ON users(username);
CREATE INDEX IF NOT EXISTS users_email ON users(email);
CREATE TABLE IF NOT EXISTS user_preferences(id INTEGER PRIMARY KEY AUTOINCREMENT, userid INTEGER NOT NULL,
  name TEXT NOT NULL, value TEXT NOT NULL, UNIQUE(userid, name));
CREATE TABLE IF NOT EXISTS notifications(id INTEGER PRIMARY KEY AUTOINCREMENT, useridfrom INTEGER NOT NULL,
  useridto INTEGER NOT NULL, subject TEXT NOT NULL, component TEXT NOT NULL, eventtype TEXT NOT NULL,
  courseid INTEGER NOT NULL DEFAULT 0, timecreated INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS course_groups(id INTEGER PRIMARY KEY AUTOINCREMENT, courseid INTEGER NOT NULL,
  idnumber TEXT NOT NULL DEFAULT '', name TEXT NOT NULL, description TEXT NOT NULL DEFAULT '',
  descriptionformat INTEGER NOT NULL DEFAULT 1, enrolmentkey TEXT NOT NULL DEFAULT '',
  visibility INTEGER NOT NULL DEFAULT 0, participation INTEGER NOT NULL DEFAULT 1, timecreated INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS groups_members(id INTEGER PRIMARY KEY AUTOINCREMENT, groupid INTEGER NOT NULL,
  userid INTEGER NOT NULL, component TEXT NOT NULL DEFAULT '', itemid INTEGER NOT NULL DEFAULT 0,
  timeadded INTEGER NOT NULL DEFAULT 0, UNIQUE(groupid, userid));
CREATE TABLE IF NOT EXISTS cohort(id INTEGER PRIMARY KEY AUTOINCREMENT, contextid INTEGER NOT NULL, name TEXT NOT NULL,
  idnumber TEXT NOT NULL DEFAULT '', description TEXT NOT NULL DEFAULT '', descriptionformat INTEGER NOT NULL DEFAULT 1,
  visible INTEGER NOT NULL DEFAULT 1, theme TEXT NOT NULL DEFAULT '', timecreated INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS cohort_members(id INTEGER PRIMARY KEY AUTOINCREMENT, cohortid INTEGER NOT NULL,
  userid INTEGER NOT NULL, timeadded INTEGER NOT NULL DEFAULT 0, UNIQUE(cohortid, userid));
)SQL";

std::string Component(const std::string& method) {
  // Manual, self and guest enrolments assign roles without a component.
  if (method == "manual" || method == "self" || method == "guest") return "";
  return "enrol_" + method;
}

std::string PseudoMd5(const std::string& s) {
  static const char* hex = "0123456789abcdef";
  std::size_t a = std::hash<std::string>{}(s);
  std::size_t b = std::hash<std::string>{}(s + "#");
  std::string out;
  for (std::size_t v : {a, b}) {
    for (int i = 0; i < 16; ++i) out += hex[(v >> (i * 4)) & 0xf];
  }
  return out;
}

}  // namespace

SiteStore::SiteStore(const std::string& db_path) : db_(db_path) {
  db_.Exec("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=OFF;");
  CreateSchema();
  if (!db_.One("SELECT value FROM config WHERE name='siteinitialised'")) {
    Begin();
    try {
      SeedSite();
      Commit();
    } catch (...) {
      Rollback();
      throw;
    }
  }
}

namespace {
std::atomic<long long> fixed_now{0};
}  // namespace

long long SiteStore::Now() {
  long long t = fixed_now.load();
  return t ? t : static_cast<long long>(std::time(nullptr));
}

void SiteStore::SetFixedNow(long long t) { fixed_now.store(t); }

void SiteStore::CreateSchema() { db_.Exec(kSchema); }

void SiteStore::SeedSite() {
  long long now = Now();
  // Contexts: system = 1, front page course = 2, category 1 = 3, as in Moodle.
  db_.Run("INSERT INTO context(id, contextlevel, instanceid, path, depth) VALUES (1, 10, 0, '/1', 1)");
  db_.Run("INSERT INTO context(id, contextlevel, instanceid, path, depth) VALUES (2, 50, 1, '/1/2', 2)");
  db_.Run("INSERT INTO context(id, contextlevel, instanceid, path, depth) VALUES (3, 40, 1, '/1/3', 2)");
  db_.Run("INSERT INTO course_categories(id, name, idnumber, parent, sortorder, timemodified, depth, path) "
          "VALUES (1, 'Category 1', '', 0, 10000, ?, 1, '/1')", now);
  db_.Run("INSERT INTO course(id, category, sortorder, fullname, shortname, summary, format, visible, "
          "startdate, timecreated, timemodified, enablecompletion, showreports, newsitems, cacherev) "
          "VALUES (1, 0, 1, 'Sandbox Moodle', 'sandbox', '', 'site', 1, 0, ?, ?, 0, 0, 3, ?)",
          now, now, now);
  db_.Run("INSERT INTO course_sections(course, section) VALUES (1, 0), (1, 1)");
  const struct { int id; const char* shortname; const char* archetype; } roles[] = {
      {1, "manager", "manager"}, {2, "coursecreator", "coursecreator"},
      {3, "editingteacher", "editingteacher"}, {4, "teacher", "teacher"},
      {5, "student", "student"}, {6, "guest", "guest"}, {7, "user", "user"},
      {8, "frontpage", "frontpage"}};
  for (const auto& r : roles) {
    db_.Run("INSERT INTO role(id, shortname, name, sortorder, archetype) VALUES (?, ?, '', ?, ?)",
            r.id, std::string(r.shortname), r.id, std::string(r.archetype));
  }
  // Moodle's default role_context_levels.
  const int levels[][2] = {{1, 10}, {1, 40}, {1, 50}, {2, 10}, {2, 40}, {3, 50}, {3, 70},
                           {4, 50}, {4, 70}, {5, 50}, {5, 70}};
  for (const auto& l : levels) {
    db_.Run("INSERT INTO role_context_levels(roleid, contextlevel) VALUES (?, ?)", l[0], l[1]);
  }
  db_.Run("INSERT INTO users(id, auth, username, firstname, lastname, email, timecreated) "
          "VALUES (1, 'manual', 'guest', 'Guest user', ' ', 'root@localhost', ?)", now);
  db_.Run("INSERT INTO users(id, auth, username, firstname, lastname, email, timecreated) "
          "VALUES (2, 'manual', 'admin', 'Admin', 'User', 'admin@sandbox.test', ?)", now);
  db_.Run("INSERT INTO config(name, value) VALUES ('siteinitialised', '1')");
}

// ---------------------------------------------------------------------------

std::optional<MoodleId> SiteStore::ContextId(int level, MoodleId instance) {
  auto r = db_.One("SELECT id FROM context WHERE contextlevel = ? AND instanceid = ?", level, instance);
  if (!r) return std::nullopt;
  return (*r)[0].i;
}

MoodleId SiteStore::EnsureContext(int level, MoodleId instance) {
  if (auto id = ContextId(level, instance)) return *id;
  std::string parent_path = "/1";
  int depth = 2;
  if (level == kContextCourse) {
    MoodleId cat = db_.Int("SELECT category FROM course WHERE id = ?", instance);
    if (auto r = db_.One("SELECT path, depth FROM context WHERE contextlevel = 40 AND instanceid = ?", cat)) {
      parent_path = (*r)[0].s;
      depth = static_cast<int>((*r)[1].i) + 1;
    }
  } else if (level == kContextCategory) {
    MoodleId parent = db_.Int("SELECT parent FROM course_categories WHERE id = ?", instance);
    if (auto r = db_.One("SELECT path, depth FROM context WHERE contextlevel = 40 AND instanceid = ?", parent)) {
      parent_path = (*r)[0].s;
      depth = static_cast<int>((*r)[1].i) + 1;
    }
  }
  db_.Run("INSERT INTO context(contextlevel, instanceid, depth) VALUES (?, ?, ?)", level, instance, depth);
  MoodleId id = db_.LastId();
  db_.Run("UPDATE context SET path = ? WHERE id = ?", parent_path + "/" + std::to_string(id), id);
  return id;
}

std::optional<SiteStore::Context> SiteStore::ContextById(MoodleId id) {
  auto r = db_.One("SELECT id, contextlevel, instanceid FROM context WHERE id = ?", id);
  if (!r) return std::nullopt;
  return Context{(*r)[0].i, static_cast<int>((*r)[1].i), (*r)[2].i};
}

std::set<MoodleId> SiteStore::AssignableRoles(int level) {
  std::set<MoodleId> out;
  for (const Row& r : db_.All("SELECT roleid FROM role_context_levels WHERE contextlevel = ?", level)) {
    out.insert(r[0].i);
  }
  return out;
}

bool SiteStore::CourseExists(MoodleId id) {
  return db_.One("SELECT 1 FROM course WHERE id = ?", id).has_value();
}
bool SiteStore::CategoryExists(MoodleId id) {
  return db_.One("SELECT 1 FROM course_categories WHERE id = ?", id).has_value();
}

MoodleId SiteStore::CreateCategory(const std::string& name, MoodleId parent, const std::string& idnumber,
                                   const std::string& description, int descriptionformat) {
  int depth = 1;
  std::string parent_path;
  if (parent != 0) {
    auto p = db_.One("SELECT depth, path FROM course_categories WHERE id = ?", parent);
    if (!p) Throw(MoodleError("unknowcategory", "Category not known!"));
    depth = static_cast<int>((*p)[0].i) + 1;
    parent_path = (*p)[1].s;
  }
  if (!idnumber.empty() &&
      db_.One("SELECT 1 FROM course_categories WHERE idnumber = ?", idnumber)) {
    Throw(MoodleError("categoryidnumbertaken", "ID number is already used for another category"));
  }
  long long sortorder = (db_.Int("SELECT COUNT(*) FROM course_categories") + 1) * 10000;
  db_.Run("INSERT INTO course_categories(name, idnumber, description, descriptionformat, parent, sortorder, "
          "timemodified, depth) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
          name, idnumber, description, descriptionformat, parent, sortorder, Now(), depth);
  MoodleId id = db_.LastId();
  db_.Run("UPDATE course_categories SET path = ? WHERE id = ?", parent_path + "/" + std::to_string(id), id);
  EnsureContext(kContextCategory, id);
  return id;
}

void SiteStore::InsertSections(MoodleId courseid, int numsections) {
  for (int s = 0; s <= numsections; ++s) {
    db_.Run("INSERT OR IGNORE INTO course_sections(course, section) VALUES (?, ?)", courseid, s);
  }
}

MoodleId SiteStore::CreateCourse(const NewCourse& c) {
  if (db_.One("SELECT 1 FROM course WHERE shortname = ?", c.shortname)) {
    Throw(MoodleError("shortnametaken",
                      "Short name is already used for another course (" + c.shortname + ")"));
  }
  if (!c.idnumber.empty() && db_.One("SELECT 1 FROM course WHERE idnumber = ?", c.idnumber)) {
    Throw(MoodleError("courseidnumbertaken",
                      "ID number is already used for another course (" + c.idnumber + ")"));
  }
  long long now = Now();
  long long today = now - now % 86400;
  long long start = c.startdate >= 0 ? c.startdate : today;
  long long end = c.enddate >= 0 ? c.enddate : start + 365LL * 86400;
  long long sortorder = db_.Int("SELECT COALESCE(MAX(sortorder), 10000) + 1 FROM course WHERE category = ?",
                                c.category);
  db_.Run("INSERT INTO course(category, sortorder, fullname, shortname, idnumber, summary, summaryformat, format, "
          "showgrades, newsitems, startdate, enddate, showreports, visible, visibleold, groupmode, groupmodeforce, "
          "lang, timecreated, timemodified, enablecompletion, completionnotify, cacherev) "
          "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
          c.category, sortorder, c.fullname, c.shortname, c.idnumber, c.summary, c.summaryformat, c.format,
          c.showgrades, c.newsitems, start, end, c.showreports, c.visible, c.visible, c.groupmode,
          c.groupmodeforce, c.lang, now, now, c.enablecompletion, c.completionnotify, now);
  MoodleId id = db_.LastId();
  EnsureContext(kContextCourse, id);
  InsertSections(id, c.numsections < 0 ? 0 : c.numsections);
  if (c.format == "topics" || c.format == "weeks") {
    db_.Run("INSERT INTO course_format_options(courseid, format, name, value) VALUES (?, ?, 'hiddensections', ?)",
            id, c.format, std::to_string(c.hiddensections));
    db_.Run("INSERT INTO course_format_options(courseid, format, name, value) VALUES (?, ?, 'coursedisplay', ?)",
            id, c.format, std::to_string(c.coursedisplay));
  }
  // The "Announcements" news forum every new course gets.
  db_.Run("INSERT INTO forum(course, type, name) VALUES (?, 'news', 'Announcements')", id);
  // Default instances: manual (enabled, student, welcome message on), guest
  // and self (both disabled).
  AddInstance(id, "manual", 0, kStudentRole, manual_welcome_default_ ? 1LL : 0LL, std::nullopt);
  AddInstance(id, "guest", 1, 0, std::nullopt, std::nullopt);
  AddInstance(id, "self", 1, kStudentRole, 0LL, 0LL);
  return id;
}

MoodleId SiteStore::AddInstance(MoodleId courseid, const std::string& method, int status, MoodleId roleid,
                                std::optional<long long> customint1, std::optional<long long> customint2) {
  long long sortorder = db_.Int("SELECT COUNT(*) FROM enrol WHERE courseid = ?", courseid);
  db_.Run("INSERT INTO enrol(enrol, status, courseid, sortorder, roleid, customint1, customint2, timecreated) "
          "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
          method, status, courseid, sortorder, roleid, customint1, customint2, Now());
  return db_.LastId();
}

std::optional<MoodleId> SiteStore::Instance(MoodleId courseid, const std::string& method) {
  auto r = db_.One("SELECT id FROM enrol WHERE courseid = ? AND enrol = ? ORDER BY id", courseid, method);
  if (!r) return std::nullopt;
  return (*r)[0].i;
}

MoodleId SiteStore::CreateUser(const NewUser& u) {
  long long now = Now();
  db_.Run("INSERT INTO users(auth, suspended, username, password, idnumber, firstname, lastname, email, department, "
          "institution, city, country, lang, timezone, mailformat, description, timecreated, timemodified) "
          "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
          u.auth, u.suspended, u.username, u.password.empty() ? std::string() : "hashed:" + PseudoMd5(u.password),
          u.idnumber, u.firstname, u.lastname, u.email, u.department, u.institution, u.city, u.country, u.lang,
          u.timezone, u.mailformat, u.description, now, now);
  MoodleId id = db_.LastId();
  EnsureContext(kContextUser, id);
  return id;
}

void SiteStore::DeleteUser(MoodleId userid) {
  auto u = db_.One("SELECT email FROM users WHERE id = ? AND deleted = 0", userid);
  if (!u) Throw(MissingRecord());
  std::set<MoodleId> courses;
  for (const Row& r : db_.All("SELECT DISTINCT e.courseid FROM user_enrolments ue JOIN enrol e ON e.id = ue.enrolid "
                              "WHERE ue.userid = ?", userid)) {
    courses.insert(r[0].i);
  }
  db_.Run("DELETE FROM user_enrolments WHERE userid = ?", userid);
  db_.Run("DELETE FROM role_assignments WHERE userid = ?", userid);
  db_.Run("DELETE FROM groups_members WHERE userid = ?", userid);
  db_.Run("DELETE FROM cohort_members WHERE userid = ?", userid);
  // Moodle keeps the row: username becomes "<email>.<time>", email an md5.
  std::string username = (*u)[0].s + "." + std::to_string(Now());
  db_.Run("UPDATE users SET deleted = 1, username = ?, email = ?, idnumber = '', timemodified = ? WHERE id = ?",
          username, PseudoMd5(username), Now(), userid);
  for (MoodleId c : courses) SyncMetaChild(c);
}

// ---------------------------------------------------------------------------

MoodleId SiteStore::CourseOfInstance(MoodleId instanceid) {
  return db_.Int("SELECT courseid FROM enrol WHERE id = ?", instanceid);
}

void SiteStore::EnrolUser(MoodleId instanceid, MoodleId userid, MoodleId roleid, long long timestart,
                          long long timeend, int status) {
  auto inst = db_.One("SELECT courseid, enrol FROM enrol WHERE id = ?", instanceid);
  if (!inst) Throw(MissingRecord());
  MoodleId courseid = (*inst)[0].i;
  std::string method = (*inst)[1].s;
  long long now = Now();
  auto ue = db_.One("SELECT id, status, timestart, timeend FROM user_enrolments WHERE enrolid = ? AND userid = ?",
                    instanceid, userid);
  if (ue) {
    if ((*ue)[1].i != status || (*ue)[2].i != timestart || (*ue)[3].i != timeend) {
      db_.Run("UPDATE user_enrolments SET status = ?, timestart = ?, timeend = ?, timemodified = ? WHERE id = ?",
              status, timestart, timeend, now, (*ue)[0].i);
    }
  } else {
    db_.Run("INSERT INTO user_enrolments(status, enrolid, userid, timestart, timeend, timecreated, timemodified) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)", status, instanceid, userid, timestart, timeend, now, now);
  }
  if (roleid != 0) {
    std::string comp = Component(method);
    RoleAssign(roleid, userid, EnsureContext(kContextCourse, courseid), comp, comp.empty() ? 0 : instanceid);
  }
  SyncMetaChild(courseid);
}

void SiteStore::UnenrolUser(MoodleId instanceid, MoodleId userid) {
  auto inst = db_.One("SELECT courseid, enrol FROM enrol WHERE id = ?", instanceid);
  if (!inst) return;
  MoodleId courseid = (*inst)[0].i;
  std::string method = (*inst)[1].s;
  auto ue = db_.One("SELECT id FROM user_enrolments WHERE enrolid = ? AND userid = ?", instanceid, userid);
  if (!ue) return;
  db_.Run("DELETE FROM user_enrolments WHERE id = ?", (*ue)[0].i);
  MoodleId ctx = EnsureContext(kContextCourse, courseid);
  long long others = db_.Int("SELECT COUNT(*) FROM user_enrolments ue JOIN enrol e ON e.id = ue.enrolid "
                             "WHERE e.courseid = ? AND ue.userid = ?", courseid, userid);
  if (others == 0) {
    db_.Run("DELETE FROM role_assignments WHERE contextid = ? AND userid = ?", ctx, userid);
    db_.Run("DELETE FROM groups_members WHERE userid = ? AND groupid IN "
            "(SELECT id FROM course_groups WHERE courseid = ?)", userid, courseid);
  } else {
    db_.Run("DELETE FROM role_assignments WHERE contextid = ? AND userid = ? AND component = ? AND itemid = ?",
            ctx, userid, "enrol_" + method, instanceid);
    db_.Run("DELETE FROM groups_members WHERE userid = ? AND component = ? AND itemid = ?", userid,
            "enrol_" + method, instanceid);
  }
  SyncMetaChild(courseid);
}

void SiteStore::RoleAssign(MoodleId roleid, MoodleId userid, MoodleId contextid, const std::string& component,
                           MoodleId itemid) {
  if (!db_.One("SELECT 1 FROM users WHERE id = ? AND deleted = 0", userid)) {
    Throw(CodingError("User ID does not exist or is deleted!"));
  }
  if (db_.One("SELECT 1 FROM role_assignments WHERE roleid = ? AND userid = ? AND contextid = ? AND component = ? "
              "AND itemid = ?", roleid, userid, contextid, component, itemid)) {
    return;
  }
  db_.Run("INSERT INTO role_assignments(roleid, contextid, userid, component, itemid, timemodified) "
          "VALUES (?, ?, ?, ?, ?, ?)", roleid, contextid, userid, component, itemid, Now());
  if (component != "enrol_meta") {
    if (auto c = ContextById(contextid); c && c->level == kContextCourse) SyncMetaChild(c->instance);
  }
}

void SiteStore::RoleUnassign(MoodleId roleid, MoodleId userid, MoodleId contextid, const std::string& component,
                             MoodleId itemid) {
  long long n = db_.Run("DELETE FROM role_assignments WHERE roleid = ? AND userid = ? AND contextid = ? "
                        "AND component = ? AND itemid = ?", roleid, userid, contextid, component, itemid);
  if (n > 0 && component != "enrol_meta") {
    if (auto c = ContextById(contextid); c && c->level == kContextCourse) SyncMetaChild(c->instance);
  }
}

void SiteStore::SyncMetaChild(MoodleId childcourseid) {
  for (const Row& r : db_.All("SELECT id FROM enrol WHERE enrol = 'meta' AND customint1 = ?", childcourseid)) {
    SyncMetaInstance(r[0].i);
  }
}

void SiteStore::SyncMetaInstance(MoodleId instanceid) {
  auto inst = db_.One("SELECT courseid, customint1, customint2 FROM enrol WHERE id = ? AND enrol = 'meta'",
                      instanceid);
  if (!inst) return;
  MoodleId parent = (*inst)[0].i;
  MoodleId child = (*inst)[1].i;
  MoodleId groupid = (*inst)[2].null ? 0 : (*inst)[2].i;
  MoodleId pctx = EnsureContext(kContextCourse, parent);
  MoodleId cctx = EnsureContext(kContextCourse, child);
  long long now = Now();
  // Every user enrolled in the child other than through meta: status 0 when
  // one of their enrolments there is active.
  // The parent enrolment spans the child ones: earliest timestart, latest
  // timeend (0 = open-ended wins), as enrol_meta's sync does.
  struct Want { int status; long long timestart, timeend; };
  std::map<MoodleId, Want> wanted;
  for (const Row& r : db_.All(
           "SELECT ue.userid, MIN(CASE WHEN ue.status = 0 AND e.status = 0 THEN 0 ELSE 1 END), MIN(ue.timestart), "
           "CASE WHEN MIN(ue.timeend) = 0 THEN 0 ELSE MAX(ue.timeend) END "
           "FROM user_enrolments ue JOIN enrol e ON e.id = ue.enrolid JOIN users u ON u.id = ue.userid "
           "WHERE e.courseid = ? AND e.enrol <> 'meta' AND u.deleted = 0 GROUP BY ue.userid", child)) {
    wanted[r[0].i] = {static_cast<int>(r[1].i), r[2].i, r[3].i};
  }
  struct Have { MoodleId id; int status; long long timestart, timeend; };
  std::map<MoodleId, Have> have;
  for (const Row& r : db_.All("SELECT userid, id, status, timestart, timeend FROM user_enrolments WHERE enrolid = ?",
                              instanceid)) {
    have[r[0].i] = {r[1].i, static_cast<int>(r[2].i), r[3].i, r[4].i};
  }
  auto sync_roles = [&](MoodleId userid, bool active) {
    std::set<MoodleId> want;
    if (active) {
      for (const Row& r : db_.All("SELECT DISTINCT roleid FROM role_assignments WHERE contextid = ? AND userid = ? "
                                  "AND component <> 'enrol_meta'", cctx, userid)) {
        want.insert(r[0].i);
      }
    }
    std::set<MoodleId> cur;
    for (const Row& r : db_.All("SELECT roleid FROM role_assignments WHERE contextid = ? AND userid = ? "
                                "AND component = 'enrol_meta' AND itemid = ?", pctx, userid, instanceid)) {
      cur.insert(r[0].i);
    }
    for (MoodleId r : want) {
      if (!cur.count(r)) {
        db_.Run("INSERT INTO role_assignments(roleid, contextid, userid, component, itemid, timemodified) "
                "VALUES (?, ?, ?, 'enrol_meta', ?, ?)", r, pctx, userid, instanceid, now);
      }
    }
    for (MoodleId r : cur) {
      if (!want.count(r)) {
        db_.Run("DELETE FROM role_assignments WHERE roleid = ? AND contextid = ? AND userid = ? "
                "AND component = 'enrol_meta' AND itemid = ?", r, pctx, userid, instanceid);
      }
    }
  };
  for (const auto& [userid, want] : wanted) {
    auto it = have.find(userid);
    if (it == have.end()) {
      db_.Run("INSERT INTO user_enrolments(status, enrolid, userid, timestart, timeend, timecreated, timemodified) "
              "VALUES (?, ?, ?, ?, ?, ?, ?)", want.status, instanceid, userid, want.timestart, want.timeend, now, now);
    } else if (it->second.status != want.status || it->second.timestart != want.timestart ||
               it->second.timeend != want.timeend) {
      db_.Run("UPDATE user_enrolments SET status = ?, timestart = ?, timeend = ?, timemodified = ? WHERE id = ?",
              want.status, want.timestart, want.timeend, now, it->second.id);
    }
    sync_roles(userid, want.status == 0);
    if (groupid != 0) {
      db_.Run("INSERT OR IGNORE INTO groups_members(groupid, userid, component, itemid, timeadded) "
              "VALUES (?, ?, 'enrol_meta', ?, ?)", groupid, userid, instanceid, now);
    }
  }
  // Gone from the child: suspended in the parent, roles removed, group kept.
  for (const auto& [userid, ue] : have) {
    if (wanted.count(userid)) continue;
    if (ue.status != 1) {
      db_.Run("UPDATE user_enrolments SET status = 1, timemodified = ? WHERE id = ?", now, ue.id);
    }
    sync_roles(userid, false);
  }
}

bool SiteStore::HasContact(MoodleId courseid) { return FirstContact(courseid).has_value(); }

std::optional<MoodleId> SiteStore::FirstContact(MoodleId courseid) {
  auto ctx = ContextId(kContextCourse, courseid);
  if (!ctx) return std::nullopt;
  auto r = db_.One("SELECT userid FROM role_assignments WHERE contextid = ? AND roleid = ? ORDER BY id",
                   *ctx, kEditingTeacherRole);
  if (!r) return std::nullopt;
  return (*r)[0].i;
}

void SiteStore::AddWelcomeNotification(MoodleId courseid, MoodleId userid) {
  auto from = FirstContact(courseid);
  std::string fullname;
  if (auto r = db_.One("SELECT fullname FROM course WHERE id = ?", courseid)) fullname = (*r)[0].s;
  db_.Run("INSERT INTO notifications(useridfrom, useridto, subject, component, eventtype, courseid, timecreated) "
          "VALUES (?, ?, ?, 'moodle', 'enrolcoursewelcomemessage', ?, ?)",
          from.value_or(kAdminUserId), userid, "Welcome to " + fullname, courseid, Now());
}

}  // namespace enrolsync::sandbox
