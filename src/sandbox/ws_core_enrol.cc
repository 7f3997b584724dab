// core_enrol: enrolled users and enrolment methods.
#include "sandbox/ws_common.h"

#include <algorithm>
#include <set>

#include "sandbox/ws_error.h"
#include "util/strings.h"

namespace enrolsync::sandbox {

namespace {

Json RolesJson(SiteStore& s, MoodleId ctx, MoodleId userid) {
  Json roles = Json::array();
  for (const Row& r : s.db().All("SELECT ra.roleid, ro.name, ro.shortname FROM role_assignments ra "
                                 "JOIN role ro ON ro.id = ra.roleid WHERE ra.contextid = ? AND ra.userid = ? "
                                 "ORDER BY ro.sortorder, ra.id", ctx, userid)) {
    roles.push_back({{"roleid", r[0].i}, {"name", r[1].s}, {"shortname", r[2].s}, {"sortorder", 0}});
  }
  return roles;
}

Json GetEnrolledUsers(SiteStore& s, const Json& p, const CallEnv& env) {
  MoodleId courseid = p["courseid"].get<long long>();
  bool onlyactive = false, onlysuspended = false;
  std::string withcapability, sortby = "id", sortdirection = "ASC";
  long long groupid = 0, limitfrom = 0, limitnumber = 0;
  std::vector<std::string> userfields;
  bool have_userfields = false;
  for (const Json& o : p["options"]) {
    std::string name = ToLower(o["name"].get<std::string>());
    std::string value = o["value"].get<std::string>();
    long long n = 0;
    ParseInt64(Trim(value), &n);
    if (name == "onlyactive") onlyactive = n != 0;
    else if (name == "onlysuspended") onlysuspended = n != 0;
    else if (name == "withcapability") withcapability = value;
    else if (name == "groupid") groupid = n;
    else if (name == "limitfrom") limitfrom = n;
    else if (name == "limitnumber") limitnumber = n;
    else if (name == "sortby") sortby = value;
    else if (name == "sortdirection") sortdirection = ToLower(value) == "desc" ? "DESC" : "ASC";
    else if (name == "userfields") {
      have_userfields = true;
      for (const std::string& f : Split(value, ',')) userfields.push_back(Trim(f));
    }
  }
  if (!s.CourseExists(courseid)) {
    Throw(MoodleError("errorcoursecontextnotvalid",
                      "You cannot execute functions in the course context (course id:" + std::to_string(courseid) +
                          "). The context error message was: Invalid parameter value detected"));
  }
  if (onlyactive && onlysuspended) {
    Throw(CodingError("Both onlyactive and onlysuspended are set, this is probably not what you want!"));
  }
  static const std::set<std::string> kKnown = {
      "id", "username", "fullname", "firstname", "lastname", "email", "address", "phone1", "phone2",
      "department", "institution", "interests", "idnumber", "firstaccess", "lastaccess", "lastcourseaccess",
      "auth", "suspended", "confirmed", "lang", "theme", "timezone", "mailformat", "description", "city",
      "country", "profileimageurlsmall", "profileimageurl", "customfields", "groups", "roles", "preferences",
      "enrolledcourses", "trackforums"};
  for (const std::string& f : userfields) {
    if (!kKnown.count(f)) Throw(MoodleError("invaliduserfield", "Invalid user field: " + f));
  }
  std::set<std::string> want(userfields.begin(), userfields.end());
  auto show = [&](const char* f) { return !have_userfields || want.count(f); };

  MoodleId ctx = s.EnsureContext(kContextCourse, courseid);
  long long now = SiteStore::Now();
  const char* active_cond =
      "ue.status = 0 AND e.status = 0 AND ue.timestart <= ? AND (ue.timeend = 0 OR ue.timeend > ?)";
  std::string sql =
      "SELECT u.id, u.username, u.firstname, u.lastname, u.email, u.department, u.idnumber, u.institution, "
      "u.auth, u.suspended, u.confirmed, u.lang, u.timezone, u.mailformat, u.description, u.city, u.country, "
      "u.firstaccess, u.lastaccess, "
      "MAX(CASE WHEN " + std::string(active_cond) + " THEN 1 ELSE 0 END) AS active "
      "FROM user_enrolments ue JOIN enrol e ON e.id = ue.enrolid JOIN users u ON u.id = ue.userid "
      "WHERE e.courseid = ? AND u.deleted = 0 GROUP BY u.id";
  std::vector<Row> rows = s.db().All(sql, now, now, courseid);
  std::vector<Row> kept;
  std::set<MoodleId> capable;
  if (!withcapability.empty()) {
    // The capabilities a sync tool asks about, by the standard roles holding them.
    std::set<MoodleId> roles;
    if (withcapability == "moodle/course:manageactivities" || withcapability == "moodle/course:update") roles = {1, 3};
    else if (withcapability == "moodle/grade:viewall" || withcapability == "moodle/course:viewhiddenactivities") roles = {1, 3, 4};
    else if (withcapability == "mod/assign:submit" || withcapability == "moodle/course:isincompletionreports") roles = {5};
    for (const Row& r : s.db().All("SELECT userid, roleid FROM role_assignments WHERE contextid = ?", ctx)) {
      if (roles.count(r[1].i)) capable.insert(r[0].i);
    }
  }
  for (const Row& r : rows) {
    bool active = r[19].i != 0;
    if (onlyactive && !active) continue;
    if (onlysuspended && active) continue;
    if (!withcapability.empty() && !capable.count(r[0].i)) continue;
    if (groupid != 0 && !s.db().One("SELECT 1 FROM groups_members WHERE groupid = ? AND userid = ?", groupid, r[0].i))
      continue;
    kept.push_back(r);
  }
  auto key = [&](const Row& r) -> std::pair<std::string, long long> {
    if (sortby == "firstname") return {r[2].s, r[0].i};
    if (sortby == "lastname") return {r[3].s, r[0].i};
    return {"", r[0].i};
  };
  std::stable_sort(kept.begin(), kept.end(), [&](const Row& a, const Row& b) {
    return sortdirection == "DESC" ? key(b) < key(a) : key(a) < key(b);
  });
  Json out = Json::array();
  long long index = 0;
  for (const Row& r : kept) {
    if (index++ < limitfrom) continue;
    if (limitnumber > 0 && static_cast<long long>(out.size()) >= limitnumber) break;
    Json u = Json::object();
    u["id"] = r[0].i;
    if (show("username")) u["username"] = r[1].s;
    if (show("firstname")) u["firstname"] = r[2].s;
    if (show("lastname")) u["lastname"] = r[3].s;
    u["fullname"] = r[2].s + " " + r[3].s;
    if (show("email")) u["email"] = r[4].s;
    if (show("department")) u["department"] = r[5].s;
    if (show("idnumber") && !r[6].s.empty()) u["idnumber"] = r[6].s;
    if (show("institution") && !r[7].s.empty()) u["institution"] = r[7].s;
    if (show("firstaccess")) u["firstaccess"] = r[17].i;
    if (show("lastaccess")) u["lastaccess"] = r[18].i;
    if (show("lastcourseaccess")) u["lastcourseaccess"] = 0;
    if (have_userfields && want.count("auth")) u["auth"] = r[8].s;
    if (have_userfields && want.count("suspended")) u["suspended"] = r[9].i != 0;
    if (have_userfields && want.count("confirmed")) u["confirmed"] = r[10].i != 0;
    if (have_userfields && want.count("lang")) u["lang"] = r[11].s;
    if (have_userfields && want.count("timezone")) u["timezone"] = r[12].s;
    if (have_userfields && want.count("mailformat")) u["mailformat"] = r[13].i;
    if (show("description") && !r[14].s.empty()) {
      u["description"] = r[14].s;
      u["descriptionformat"] = 1;
    }
    if (show("city") && !r[15].s.empty()) u["city"] = r[15].s;
    if (show("country") && !r[16].s.empty()) u["country"] = r[16].s;
    if (show("profileimageurlsmall")) u["profileimageurlsmall"] = ImageUrl(env, true);
    if (show("profileimageurl")) u["profileimageurl"] = ImageUrl(env, false);
    if (show("roles")) u["roles"] = RolesJson(s, ctx, r[0].i);
    if (show("enrolledcourses")) {
      // enrol_get_users_courses($userid, onlyactive): the user's active
      // enrolments, in courses that are visible or that they may see hidden
      // (a manager/editingteacher/teacher role there); visible first, then
      // by sortorder. Names through format_string.
      Json courses = Json::array();
      for (const Row& c : s.db().All(
               "SELECT DISTINCT c.id, c.fullname, c.shortname, c.visible, c.sortorder FROM user_enrolments ue "
               "JOIN enrol e ON e.id = ue.enrolid JOIN course c ON c.id = e.courseid WHERE ue.userid = ? AND " +
                   std::string(active_cond) +
                   " AND (c.visible = 1 OR EXISTS (SELECT 1 FROM role_assignments ra JOIN context x ON "
                   "x.id = ra.contextid AND x.contextlevel = 50 AND x.instanceid = c.id WHERE ra.userid = ue.userid "
                   "AND ra.roleid IN (1, 3, 4))) ORDER BY c.visible DESC, c.sortorder ASC",
               r[0].i, now, now)) {
        courses.push_back({{"id", c[0].i}, {"fullname", FormatString(c[1].s)}, {"shortname", FormatString(c[2].s)}});
      }
      if (!courses.empty()) u["enrolledcourses"] = courses;
    }
    if (show("groups")) {
      Json groups = Json::array();
      for (const Row& g : s.db().All("SELECT g.id, g.name, g.description, g.descriptionformat FROM groups_members gm "
                                     "JOIN course_groups g ON g.id = gm.groupid WHERE g.courseid = ? AND gm.userid = ? "
                                     "ORDER BY g.id", courseid, r[0].i)) {
        groups.push_back({{"id", g[0].i}, {"name", FormatString(g[1].s)}, {"description", g[2].s}, {"descriptionformat", g[3].i}});
      }
      if (!groups.empty()) u["groups"] = groups;
    }
    out.push_back(u);
  }
  return out;
}

// core_enrol_get_enrolled_users_with_capability: for each course and each
// capability, the enrolled users holding it ("" = every enrolled user), built
// as core_enrol_get_enrolled_users builds them. The options are the same
// (groupid, onlyactive, userfields, limitfrom, limitnumber). A missing course
// fails the whole call, as Moodle's MUST_EXIST does.
Json GetEnrolledUsersWithCapability(SiteStore& s, const Json& p, const CallEnv& env) {
  if (p["coursecapabilities"].empty()) Throw(InvalidParameter());
  Json options = Json::array();
  for (const Json& o : p["options"]) {
    std::string name = ToLower(o["name"].get<std::string>());
    if (name == "groupid" || name == "onlyactive" || name == "userfields" || name == "limitfrom" ||
        name == "limitnumber")
      options.push_back(o);
  }
  Json out = Json::array();
  for (const Json& cc : p["coursecapabilities"]) {
    MoodleId courseid = cc["courseid"].get<long long>();
    if (!s.CourseExists(courseid)) Throw(MissingRecord());
    for (const Json& cap : cc["capabilities"]) {
      Json one = {{"courseid", courseid}, {"options", options}};
      const std::string capability = cap.get<std::string>();
      if (!capability.empty()) one["options"].push_back({{"name", "withcapability"}, {"value", capability}});
      out.push_back({{"courseid", courseid}, {"capability", capability}, {"users", GetEnrolledUsers(s, one, env)}});
    }
  }
  return out;
}

Json GetCourseEnrolmentMethods(SiteStore& s, const Json& p, const CallEnv&) {
  MoodleId courseid = p["courseid"].get<long long>();
  if (!s.CourseExists(courseid)) Throw(MissingRecord());
  Json out = Json::array();
  for (const Row& r : s.db().All("SELECT id, enrol, roleid, name FROM enrol WHERE courseid = ? AND status = 0 "
                                 "AND enrol IN ('self', 'guest') ORDER BY sortorder, id", courseid)) {
    Json m = Json::object();
    m["id"] = r[0].i;
    m["courseid"] = courseid;
    m["type"] = r[1].s;
    if (r[1].s == "guest") {
      m["name"] = r[3].null || r[3].s.empty() ? "Guest access" : r[3].s;
      m["status"] = true;
      m["wsfunction"] = "enrol_guest_get_instance_info";
    } else {
      std::string role = "Student";
      if (r[2].i == 3) role = "Teacher";
      else if (r[2].i == 4) role = "Non-editing teacher";
      m["name"] = r[3].null || r[3].s.empty() ? "Self enrolment (" + role + ")" : r[3].s;
      m["status"] = true;
    }
    out.push_back(m);
  }
  return out;
}

}  // namespace

void RegisterCoreEnrol(std::vector<FunctionDef>& f) {
  using P = PType;
  f.push_back({"core_enrol_get_enrolled_users", kCoreVersion,
               Single({{"courseid", Req(P::kInt)},
                       {"options", Multi(Single({{"name", Req(P::kAlphanumext)}, {"value", Req(P::kRaw)}}),
                                         Need::kDefault, Json::array())}}),
               GetEnrolledUsers});
  f.push_back({"core_enrol_get_enrolled_users_with_capability", kCoreVersion,
               Single({{"coursecapabilities",
                        Multi(Single({{"courseid", Req(P::kInt)}, {"capabilities", Multi(Req(P::kText))}}))},
                       {"options", Multi(Single({{"name", Req(P::kAlphanumext)}, {"value", Req(P::kRaw)}}),
                                         Need::kDefault, Json::array())}}),
               GetEnrolledUsersWithCapability});
  f.push_back({"core_enrol_get_course_enrolment_methods", kCoreVersion, Single({{"courseid", Req(P::kInt)}}),
               GetCourseEnrolmentMethods});
}

}  // namespace enrolsync::sandbox
