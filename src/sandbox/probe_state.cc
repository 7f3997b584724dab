#include "sandbox/probe_state.h"

#include <set>

namespace enrolsync::sandbox {

namespace {

const Json& Rows(const Json& state, const char* table) {
  static const Json kEmpty = Json::array();
  auto it = state.find(table);
  return it == state.end() || !it->is_array() ? kEmpty : *it;
}
long long I(const Json& r, const char* k, long long def = 0) {
  auto it = r.find(k);
  if (it == r.end() || it->is_null()) return def;
  if (it->is_boolean()) return it->get<bool>() ? 1 : 0;
  return it->get<long long>();
}
std::optional<long long> OptI(const Json& r, const char* k) {
  auto it = r.find(k);
  if (it == r.end() || it->is_null()) return std::nullopt;
  return it->get<long long>();
}
std::string S(const Json& r, const char* k, const std::string& def = "") {
  auto it = r.find(k);
  return it == r.end() || it->is_null() ? def : it->get<std::string>();
}
Json Nullable(const Val& v) { return v.null ? Json(nullptr) : Json(v.i); }

}  // namespace

void SeedProbeState(SiteStore& s, const Json& state) {
  Db& db = s.db();
  for (const Json& u : Rows(state, "users")) {
    db.Run("INSERT OR REPLACE INTO users(id, auth, confirmed, deleted, suspended, username, password, idnumber, "
           "firstname, lastname, email, timecreated, timemodified) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
           I(u, "id"), S(u, "auth", "manual"), I(u, "confirmed", 1), I(u, "deleted"), I(u, "suspended"),
           S(u, "username"), S(u, "auth", "manual") == "manual" ? std::string("hashed:seeded") : std::string(),
           S(u, "idnumber"), S(u, "firstname"), S(u, "lastname"), S(u, "email"), I(u, "timecreated"),
           I(u, "timemodified"));
  }
  // Course contexts first, so that contexts made later get fresh ids.
  std::set<MoodleId> with_context;
  for (const Json& c : Rows(state, "course_context")) {
    db.Run("INSERT OR REPLACE INTO context(id, contextlevel, instanceid, path, depth) VALUES (?, 50, ?, ?, ?)",
           I(c, "contextid"), I(c, "courseid"), S(c, "path", "/1/3/" + std::to_string(I(c, "contextid"))),
           I(c, "depth", 3));
    with_context.insert(I(c, "courseid"));
  }
  for (const Json& c : Rows(state, "course")) {
    MoodleId id = I(c, "id");
    db.Run("INSERT OR REPLACE INTO course(id, category, sortorder, fullname, shortname, idnumber, format, visible, "
           "visibleold, startdate, enddate, timecreated, timemodified, cacherev) "
           "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
           id, I(c, "category", 1), I(c, "sortorder", 10000 + id), S(c, "fullname"), S(c, "shortname"),
           S(c, "idnumber"), S(c, "format", "topics"), I(c, "visible"), I(c, "visibleold", I(c, "visible")),
           I(c, "startdate"), I(c, "enddate"), I(c, "timecreated"), I(c, "timemodified"), I(c, "timecreated"));
    db.Run("INSERT OR IGNORE INTO course_sections(course, section) VALUES (?, 0)", id);
    for (const char* opt : {"hiddensections", "coursedisplay"}) {
      db.Run("INSERT OR IGNORE INTO course_format_options(courseid, format, name, value) VALUES (?, 'topics', ?, '1')",
             id, std::string(opt));
    }
    db.Run("INSERT INTO forum(course, type, name) VALUES (?, 'news', 'Announcements')", id);
  }
  for (const Json& e : Rows(state, "enrol_instances")) {
    db.Run("INSERT OR REPLACE INTO enrol(id, enrol, status, courseid, sortorder, name, roleid, customint1, customint2) "
           "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
           I(e, "enrolid"), S(e, "enrol"), I(e, "status"), I(e, "courseid"), I(e, "sortorder"),
           S(e, "name"), I(e, "roleid"), OptI(e, "customint1"), OptI(e, "customint2"));
    if (S(e, "name").empty()) db.Run("UPDATE enrol SET name = NULL WHERE id = ?", I(e, "enrolid"));
  }
  for (const Json& c : Rows(state, "course")) {
    MoodleId id = I(c, "id");
    if (!with_context.count(id)) s.EnsureContext(kContextCourse, id);
    // Moodle's default instances of a new course, for those not seeded.
    if (!s.Instance(id, "manual")) s.AddInstance(id, "manual", 0, kStudentRole, 1LL, std::nullopt);
    if (!s.Instance(id, "guest")) s.AddInstance(id, "guest", 1, 0, std::nullopt, std::nullopt);
    if (!s.Instance(id, "self")) s.AddInstance(id, "self", 1, kStudentRole, 0LL, 0LL);
  }
  for (const Json& ue : Rows(state, "user_enrolments")) {
    db.Run("INSERT OR REPLACE INTO user_enrolments(id, status, enrolid, userid, timestart, timeend, timecreated, "
           "timemodified) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
           I(ue, "ueid"), I(ue, "ue_status"), I(ue, "enrolid"), I(ue, "userid"), I(ue, "timestart"),
           I(ue, "timeend"), I(ue, "timecreated"), I(ue, "timemodified"));
  }
  for (const Json& ra : Rows(state, "role_assignments")) {
    db.Run("INSERT OR REPLACE INTO role_assignments(id, roleid, contextid, userid, component, itemid, timemodified) "
           "VALUES (?, ?, ?, ?, ?, ?, ?)",
           I(ra, "raid"), I(ra, "roleid"), I(ra, "contextid"), I(ra, "userid"), S(ra, "component"), I(ra, "itemid"),
           I(ra, "timemodified"));
  }
  for (const Json& g : Rows(state, "groups")) {
    db.Run("INSERT OR REPLACE INTO course_groups(id, courseid, idnumber, name) VALUES (?, ?, ?, ?)", I(g, "groupid"),
           I(g, "courseid"), S(g, "idnumber"), S(g, "name"));
  }
  for (const Json& m : Rows(state, "groups_members")) {
    db.Run("INSERT OR REPLACE INTO groups_members(id, groupid, userid, component, itemid) VALUES (?, ?, ?, ?, ?)",
           I(m, "gmid"), I(m, "groupid"), I(m, "userid"), S(m, "component"), I(m, "itemid"));
  }
  for (const Json& n : Rows(state, "notifications_to_users")) {
    db.Run("INSERT INTO notifications(useridfrom, useridto, subject, component, eventtype) VALUES (?, ?, ?, ?, ?)",
           I(n, "useridfrom"), I(n, "useridto"), S(n, "subject"), S(n, "component"), S(n, "eventtype"));
  }
  for (const Json& p : Rows(state, "user_preferences")) {
    db.Run("INSERT OR REPLACE INTO user_preferences(userid, name, value) VALUES (?, ?, ?)", I(p, "userid"),
           S(p, "name"), S(p, "value"));
  }
}

Json DumpProbeState(SiteStore& s) {
  Db& db = s.db();
  Json out = Json::object();
  Json users = Json::array();
  for (const Row& r : db.All("SELECT id, username, auth, suspended, deleted, confirmed, email, firstname, lastname, "
                             "idnumber, timecreated, timemodified FROM users WHERE id > 2 ORDER BY id")) {
    users.push_back({{"id", r[0].i}, {"username", r[1].s}, {"auth", r[2].s}, {"suspended", r[3].i},
                     {"deleted", r[4].i}, {"confirmed", r[5].i}, {"email", r[6].s}, {"firstname", r[7].s},
                     {"lastname", r[8].s}, {"idnumber", r[9].s}, {"timecreated", r[10].i}, {"timemodified", r[11].i}});
  }
  out["users"] = users;
  Json courses = Json::array();
  for (const Row& r : db.All("SELECT id, category, fullname, shortname, idnumber, format, visible, visibleold, "
                             "showgrades, newsitems, startdate, enddate, marker, maxbytes, legacyfiles, showreports, "
                             "groupmode, groupmodeforce, defaultgroupingid, lang, calendartype, theme, "
                             "enablecompletion, completionnotify, summaryformat, sortorder FROM course WHERE id > 1 "
                             "ORDER BY id")) {
    Json c = Json::object();
    const char* names[] = {"id", "category", "fullname", "shortname", "idnumber", "format", "visible", "visibleold",
                           "showgrades", "newsitems", "startdate", "enddate", "marker", "maxbytes", "legacyfiles",
                           "showreports", "groupmode", "groupmodeforce", "defaultgroupingid", "lang", "calendartype",
                           "theme", "enablecompletion", "completionnotify", "summaryformat", "sortorder"};
    const std::set<std::string> text = {"fullname", "shortname", "idnumber", "format", "lang", "calendartype", "theme"};
    for (std::size_t i = 0; i < r.size(); ++i) {
      if (text.count(names[i])) c[names[i]] = r[i].s;
      else c[names[i]] = r[i].i;
    }
    courses.push_back(c);
  }
  out["course"] = courses;
  Json ctx = Json::array();
  for (const Row& r : db.All("SELECT id, instanceid, path, depth FROM context WHERE contextlevel = 50 AND "
                             "instanceid > 1 ORDER BY id")) {
    ctx.push_back({{"contextid", r[0].i}, {"courseid", r[1].i}, {"path", r[2].s}, {"depth", r[3].i}});
  }
  out["course_context"] = ctx;
  Json cfo = Json::array();
  for (const Row& r : db.All("SELECT courseid, format, sectionid, name, value FROM course_format_options "
                             "WHERE courseid > 1 ORDER BY courseid, name")) {
    cfo.push_back({{"courseid", r[0].i}, {"format", r[1].s}, {"sectionid", r[2].i}, {"name", r[3].s}, {"value", r[4].s}});
  }
  out["course_format_options"] = cfo;
  Json sections = Json::array();
  for (const Row& r : db.All("SELECT course, COUNT(*), MAX(section) FROM course_sections WHERE course > 1 "
                             "GROUP BY course ORDER BY course")) {
    sections.push_back({{"courseid", r[0].i}, {"sections", r[1].i}, {"maxsection", r[2].i}});
  }
  out["course_sections"] = sections;
  Json forums = Json::array();
  for (const Row& r : db.All("SELECT course, type, name FROM forum WHERE course > 1 ORDER BY id")) {
    forums.push_back({{"courseid", r[0].i}, {"type", r[1].s}, {"name", r[2].s}});
  }
  out["forum_news"] = forums;
  Json inst = Json::array();
  for (const Row& r : db.All("SELECT id, courseid, enrol, status, sortorder, name, roleid, customint1, customint2 "
                             "FROM enrol ORDER BY id")) {
    inst.push_back({{"enrolid", r[0].i}, {"courseid", r[1].i}, {"enrol", r[2].s}, {"status", r[3].i},
                    {"sortorder", r[4].i}, {"name", r[5].null ? Json(nullptr) : Json(r[5].s)}, {"roleid", r[6].i},
                    {"customint1", Nullable(r[7])}, {"customint2", Nullable(r[8])}});
  }
  out["enrol_instances"] = inst;
  Json ues = Json::array();
  for (const Row& r : db.All("SELECT ue.id, ue.userid, u.username, e.courseid, c.shortname, e.id, e.enrol, e.status, "
                             "e.customint1, ue.status, ue.timestart, ue.timeend, ue.timecreated, ue.timemodified "
                             "FROM user_enrolments ue JOIN enrol e ON e.id = ue.enrolid "
                             "JOIN users u ON u.id = ue.userid JOIN course c ON c.id = e.courseid ORDER BY ue.id")) {
    ues.push_back({{"ueid", r[0].i}, {"userid", r[1].i}, {"username", r[2].s}, {"courseid", r[3].i},
                   {"course", r[4].s}, {"enrolid", r[5].i}, {"enrol", r[6].s}, {"enrol_status", r[7].i},
                   {"enrol_customint1", Nullable(r[8])}, {"ue_status", r[9].i}, {"timestart", r[10].i},
                   {"timeend", r[11].i}, {"timecreated", r[12].i}, {"timemodified", r[13].i}});
  }
  out["user_enrolments"] = ues;
  Json ras = Json::array();
  for (const Row& r : db.All("SELECT ra.id, ra.userid, u.username, x.instanceid, c.shortname, ra.contextid, "
                             "ra.roleid, ro.shortname, ra.component, ra.itemid, ra.timemodified "
                             "FROM role_assignments ra JOIN context x ON x.id = ra.contextid AND x.contextlevel = 50 "
                             "JOIN users u ON u.id = ra.userid JOIN course c ON c.id = x.instanceid "
                             "JOIN role ro ON ro.id = ra.roleid ORDER BY ra.id")) {
    ras.push_back({{"raid", r[0].i}, {"userid", r[1].i}, {"username", r[2].s}, {"courseid", r[3].i},
                   {"course", r[4].s}, {"contextid", r[5].i}, {"roleid", r[6].i}, {"role", r[7].s},
                   {"component", r[8].s}, {"itemid", r[9].i}, {"timemodified", r[10].i}});
  }
  out["role_assignments"] = ras;
  Json groups = Json::array();
  for (const Row& r : db.All("SELECT id, courseid, name, idnumber FROM course_groups ORDER BY id")) {
    groups.push_back({{"groupid", r[0].i}, {"courseid", r[1].i}, {"name", r[2].s}, {"idnumber", r[3].s}});
  }
  out["groups"] = groups;
  Json members = Json::array();
  for (const Row& r : db.All("SELECT gm.id, gm.groupid, g.name, g.courseid, gm.userid, u.username, gm.component, "
                             "gm.itemid FROM groups_members gm JOIN course_groups g ON g.id = gm.groupid "
                             "JOIN users u ON u.id = gm.userid ORDER BY gm.id")) {
    members.push_back({{"gmid", r[0].i}, {"groupid", r[1].i}, {"groupname", r[2].s}, {"courseid", r[3].i},
                       {"userid", r[4].i}, {"username", r[5].s}, {"component", r[6].s}, {"itemid", r[7].i}});
  }
  out["groups_members"] = members;
  Json notes = Json::array();
  for (const Row& r : db.All("SELECT useridto, useridfrom, component, eventtype, subject FROM notifications "
                             "ORDER BY id")) {
    notes.push_back({{"useridto", r[0].i}, {"useridfrom", r[1].i}, {"component", r[2].s}, {"eventtype", r[3].s},
                     {"subject", r[4].s}});
  }
  out["notifications_to_users"] = notes;
  Json prefs = Json::array();
  for (const Row& r : db.All("SELECT userid, name, value FROM user_preferences ORDER BY userid, name")) {
    prefs.push_back({{"userid", r[0].i}, {"name", r[1].s}, {"value", r[2].s}});
  }
  out["user_preferences"] = prefs;
  return out;
}

}  // namespace enrolsync::sandbox
