#include "sandbox/ws_functions.h"

#include <algorithm>
#include <map>
#include <set>

#include "sandbox/ws_error.h"
#include "util/strings.h"

namespace enrolsync::sandbox {

namespace {

constexpr const char* kCoreVersion = "2025100600.02";
constexpr const char* kPluginVersion = "2025100600";

// ---------------------------------------------------------------------------
// Helpers

std::string Str(const Json& j, const char* key, const std::string& def = "") {
  auto it = j.find(key);
  return it == j.end() || it->is_null() ? def : it->get<std::string>();
}
long long IntOr(const Json& j, const char* key, long long def) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return def;
  if (it->is_boolean()) return it->get<bool>() ? 1 : 0;
  return it->get<long long>();
}
bool Has(const Json& j, const char* key) { return j.find(key) != j.end(); }

std::string ImageUrl(const CallEnv& env, bool small) {
  return env.siteurl + "/theme/image.php/boost/core/1/u/" + (small ? "f2" : "f1");
}

const char* kUserCols =
    "id, username, firstname, lastname, email, department, idnumber, institution, auth, suspended, confirmed, "
    "lang, timezone, mailformat, description, city, country, firstaccess, lastaccess";

// core_user's user_get_user_details for an admin caller.
Json UserDetails(const Row& r, const CallEnv& env) {
  Json u = Json::object();
  u["id"] = r[0].i;
  u["username"] = r[1].s;
  u["firstname"] = r[2].s;
  u["lastname"] = r[3].s;
  u["fullname"] = r[2].s + " " + r[3].s;
  u["email"] = r[4].s;
  u["department"] = r[5].s;
  if (!r[6].s.empty()) u["idnumber"] = r[6].s;
  if (!r[7].s.empty()) u["institution"] = r[7].s;
  u["firstaccess"] = r[17].i;
  u["lastaccess"] = r[18].i;
  u["auth"] = r[8].s;
  u["suspended"] = r[9].i != 0;
  u["confirmed"] = r[10].i != 0;
  u["lang"] = r[11].s;
  u["theme"] = "";
  u["timezone"] = r[12].s;
  u["mailformat"] = r[13].i;
  if (!r[14].s.empty()) {
    u["description"] = r[14].s;
    u["descriptionformat"] = 1;
  }
  if (!r[15].s.empty()) u["city"] = r[15].s;
  if (!r[16].s.empty()) u["country"] = r[16].s;
  u["trackforums"] = 0;
  u["profileimageurlsmall"] = ImageUrl(env, true);
  u["profileimageurl"] = ImageUrl(env, false);
  return u;
}

std::optional<Row> UserRow(SiteStore& s, MoodleId id) {
  return s.db().One(std::string("SELECT ") + kUserCols + " FROM users WHERE id = ?", id);
}

// Throws as Moodle's MUST_EXIST user lookups and deleted checks do.
void RequireLiveUser(SiteStore& s, MoodleId userid) {
  auto r = s.db().One("SELECT deleted FROM users WHERE id = ?", userid);
  if (!r) Throw(MissingRecord());
  if ((*r)[0].i != 0) Throw(MoodleError("userdeleted"));
}

// external_api::get_context_from_params + validate_context.
MoodleId ContextFromParams(SiteStore& s, const Json& p) {
  if (IntOr(p, "contextid", 0) != 0) {
    if (auto c = s.ContextById(IntOr(p, "contextid", 0))) return c->id;
    Throw(InvalidParameter());
  }
  if (Has(p, "contextlevel") && !Str(p, "contextlevel").empty() && Has(p, "instanceid")) {
    std::string level = Str(p, "contextlevel");
    MoodleId inst = IntOr(p, "instanceid", 0);
    std::optional<MoodleId> id;
    if (level == "system") id = 1;
    else if (level == "course") id = s.CourseExists(inst) ? std::optional(s.EnsureContext(kContextCourse, inst)) : std::nullopt;
    else if (level == "coursecat") id = s.CategoryExists(inst) ? std::optional(s.EnsureContext(kContextCategory, inst)) : std::nullopt;
    else if (level == "user") {
      if (s.db().One("SELECT 1 FROM users WHERE id = ? AND deleted = 0", inst)) id = s.EnsureContext(kContextUser, inst);
    }
    if (id) return *id;
  }
  Throw(InvalidParameter());
}

// ---------------------------------------------------------------------------
// core_webservice

Json GetSiteInfo(SiteStore& s, const Json&, const CallEnv& env) {
  Json o = Json::object();
  auto admin = UserRow(s, kAdminUserId);
  o["sitename"] = "enrolsync sandbox";
  o["username"] = admin ? (*admin)[1].s : "admin";
  o["firstname"] = admin ? (*admin)[2].s : "Admin";
  o["lastname"] = admin ? (*admin)[3].s : "User";
  o["fullname"] = o["firstname"].get<std::string>() + " " + o["lastname"].get<std::string>();
  o["lang"] = "en";
  o["userid"] = kAdminUserId;
  o["siteurl"] = env.siteurl;
  o["userpictureurl"] = ImageUrl(env, false);
  Json fns = Json::array();
  for (const FunctionDef& f : ServiceFunctions()) fns.push_back({{"name", f.name}, {"version", f.version}});
  o["functions"] = fns;
  o["downloadfiles"] = 0;
  o["uploadfiles"] = 0;
  o["release"] = "5.1+ (Build: 20251017)";
  o["version"] = kCoreVersion;
  o["mobilecssurl"] = "";
  Json adv = Json::array();
  for (auto [n, v] : std::vector<std::pair<const char*, int>>{
           {"usecomments", 1}, {"usetags", 1}, {"enablenotes", 1}, {"messaging", 1}, {"enableblogs", 1},
           {"enablecompletion", 1}, {"enablebadges", 1}, {"messagingallusers", 0}, {"enablecustomreports", 1},
           {"enableglobalsearch", 0}, {"mnet_dispatcher_mode", 0}, {"enablecompetencies", 1}}) {
    adv.push_back({{"name", n}, {"value", v}});
  }
  o["advancedfeatures"] = adv;
  o["usercanmanageownfiles"] = true;
  o["userquota"] = 0;
  o["usermaxuploadfilesize"] = -1;
  o["userhomepage"] = 1;
  o["userprivateaccesskey"] = "0123456789abcdef0123456789abcdef";
  o["siteid"] = kSiteCourseId;
  o["sitecalendartype"] = "gregorian";
  o["usercalendartype"] = "gregorian";
  o["userissiteadmin"] = true;
  o["theme"] = "boost";
  o["limitconcurrentlogins"] = 0;
  o["policyagreed"] = 0;
  return o;
}

// ---------------------------------------------------------------------------
// core_course: categories

Json CategoryJson(SiteStore& s, const Row& r) {
  Json c = Json::object();
  c["id"] = r[0].i;
  c["name"] = r[1].s;
  c["idnumber"] = r[2].s;
  c["description"] = r[3].s;
  c["descriptionformat"] = r[4].i;
  c["parent"] = r[5].i;
  c["sortorder"] = r[6].i;
  c["coursecount"] = s.db().Int("SELECT COUNT(*) FROM course WHERE category = ?", r[0].i);
  c["visible"] = r[7].i;
  c["visibleold"] = r[8].i;
  c["timemodified"] = r[9].i;
  c["depth"] = r[10].i;
  c["path"] = r[11].s;
  c["theme"] = r[12].s;
  return c;
}

Json GetCategories(SiteStore& s, const Json& p, const CallEnv&) {
  const char* cols = "SELECT id, name, idnumber, description, descriptionformat, parent, sortorder, visible, "
                     "visibleold, timemodified, depth, path, theme FROM course_categories";
  std::vector<Row> rows = s.db().All(std::string(cols) + " ORDER BY sortorder, id");
  std::vector<Row> matched;
  for (const Row& r : rows) {
    bool ok = true;
    for (const Json& c : p["criteria"]) {
      std::string key = c["key"].get<std::string>();
      std::string v = c["value"].get<std::string>();
      long long n = 0;
      bool isnum = ParseInt64(v, &n);
      if (key == "id") ok = ok && isnum && r[0].i == n;
      else if (key == "ids") {
        bool any = false;
        for (const std::string& part : Split(v, ',')) {
          long long m = 0;
          if (ParseInt64(Trim(part), &m) && m == r[0].i) any = true;
        }
        ok = ok && any;
      } else if (key == "name") ok = ok && r[1].s == v;
      else if (key == "idnumber") ok = ok && r[2].s == v;
      else if (key == "parent") ok = ok && isnum && r[5].i == n;
      else if (key == "visible") ok = ok && isnum && r[7].i == n;
      else if (key == "theme") ok = ok && r[12].s == v;
      else Throw(InvalidParameter());
    }
    if (ok) matched.push_back(r);
  }
  std::set<MoodleId> ids;
  for (const Row& r : matched) ids.insert(r[0].i);
  if (p["addsubcategories"].get<bool>() && !p["criteria"].empty()) {
    bool grew = true;
    while (grew) {
      grew = false;
      for (const Row& r : rows) {
        if (!ids.count(r[0].i) && ids.count(r[5].i)) {
          ids.insert(r[0].i);
          grew = true;
        }
      }
    }
  }
  Json out = Json::array();
  for (const Row& r : rows) {
    if (ids.count(r[0].i)) out.push_back(CategoryJson(s, r));
  }
  return out;
}

Json CreateCategories(SiteStore& s, const Json& p, const CallEnv&) {
  Json out = Json::array();
  for (const Json& c : p["categories"]) {
    MoodleId id = s.CreateCategory(Str(c, "name"), IntOr(c, "parent", 0), Str(c, "idnumber"),
                                   Str(c, "description"), static_cast<int>(IntOr(c, "descriptionformat", 1)));
    out.push_back({{"id", id}, {"name", Str(c, "name")}});
  }
  return out;
}

// ---------------------------------------------------------------------------
// core_course: courses

const char* kCourseCols =
    "SELECT id, category, sortorder, fullname, shortname, idnumber, summary, summaryformat, format, showgrades, "
    "newsitems, startdate, enddate, marker, maxbytes, legacyfiles, showreports, visible, groupmode, groupmodeforce, "
    "defaultgroupingid, lang, calendartype, theme, timecreated, timemodified, requested, enablecompletion, "
    "completionnotify, cacherev FROM course";

Json CourseJson(SiteStore& s, const Row& r, const CallEnv& env) {
  MoodleId id = r[0].i;
  Json c = Json::object();
  c["id"] = id;
  c["fullname"] = r[3].s;
  c["displayname"] = r[3].s;
  c["shortname"] = r[4].s;
  c["courseimage"] = env.siteurl + "/pluginfile.php/1/course/generated/course.svg";
  c["categoryid"] = r[1].i;
  std::string catname;
  if (auto cat = s.db().One("SELECT name FROM course_categories WHERE id = ?", r[1].i)) catname = (*cat)[0].s;
  c["categoryname"] = catname;
  c["sortorder"] = r[2].i;
  c["summary"] = r[6].s;
  c["summaryformat"] = r[7].i;
  c["summaryfiles"] = Json::array();
  c["overviewfiles"] = Json::array();
  c["showactivitydates"] = false;
  c["showcompletionconditions"] = true;
  Json contacts = Json::array();
  if (auto ctx = s.ContextId(kContextCourse, id)) {
    for (const Row& u : s.db().All("SELECT DISTINCT u.id, u.firstname, u.lastname FROM role_assignments ra "
                                   "JOIN users u ON u.id = ra.userid WHERE ra.contextid = ? AND ra.roleid = ? "
                                   "AND u.deleted = 0 ORDER BY u.id", *ctx, kEditingTeacherRole)) {
      contacts.push_back({{"id", u[0].i}, {"fullname", u[1].s + " " + u[2].s}});
    }
  }
  c["contacts"] = contacts;
  Json methods = Json::array();
  for (const Row& m : s.db().All("SELECT DISTINCT enrol FROM enrol WHERE courseid = ? AND status = 0 ORDER BY sortorder",
                                 id)) {
    methods.push_back(m[0].s);
  }
  c["enrollmentmethods"] = methods;
  c["idnumber"] = r[5].s;
  c["format"] = r[8].s;
  c["showgrades"] = r[9].i;
  c["newsitems"] = r[10].i;
  c["startdate"] = r[11].i;
  c["enddate"] = r[12].i;
  c["maxbytes"] = r[14].i;
  c["showreports"] = r[16].i;
  c["visible"] = r[17].i;
  c["groupmode"] = r[18].i;
  c["groupmodeforce"] = r[19].i;
  c["defaultgroupingid"] = r[20].i;
  c["enablecompletion"] = r[27].i;
  c["completionnotify"] = r[28].i;
  c["lang"] = r[21].s;
  c["theme"] = r[23].s;
  c["marker"] = r[13].i;
  c["legacyfiles"] = r[15].i;
  c["calendartype"] = r[22].s;
  c["timecreated"] = r[24].i;
  c["timemodified"] = r[25].i;
  c["requested"] = r[26].i;
  c["cacherev"] = r[29].i;
  Json filters = Json::array();
  for (const char* f : {"displayh5p", "activitynames", "mathjaxloader", "emoticon", "urltolink", "mediaplugin"}) {
    filters.push_back({{"filter", f}, {"localstate", 0}, {"inheritedstate", 1}});
  }
  c["filters"] = filters;
  if (r[8].s == "topics" || r[8].s == "weeks") {
    Json opts = Json::array();
    for (const char* name : {"hiddensections", "coursedisplay"}) {
      long long v = 0;
      if (auto o = s.db().One("SELECT value FROM course_format_options WHERE courseid = ? AND name = ?", id,
                              std::string(name))) {
        ParseInt64((*o)[0].s, &v);
      }
      opts.push_back({{"name", name}, {"value", v}});
    }
    opts.push_back({{"name", "indentation"}, {"value", "1"}});
    c["courseformatoptions"] = opts;
  }
  return c;
}

Json GetCoursesByField(SiteStore& s, const Json& p, const CallEnv& env) {
  std::string field = p["field"].get<std::string>();
  std::string value = p["value"].get<std::string>();
  std::vector<Row> rows;
  auto as_int = [](const std::string& v) {  // PHP's clean_param(PARAM_INT)
    long long n = 0;
    std::string t = Trim(v);
    std::size_t i = 0;
    while (i < t.size() && t[i] >= '0' && t[i] <= '9') ++i;
    ParseInt64(t.substr(0, i), &n);
    return n;
  };
  if (field.empty()) {
    rows = s.db().All(std::string(kCourseCols) + " ORDER BY id");
  } else if (field == "id") {
    rows = s.db().All(std::string(kCourseCols) + " WHERE id = ?", as_int(value));
  } else if (field == "category") {
    rows = s.db().All(std::string(kCourseCols) + " WHERE category = ? ORDER BY id", as_int(value));
  } else if (field == "ids") {
    for (const std::string& part : Split(value, ',')) {
      long long n = 0;
      if (!ParseInt64(Trim(part), &n)) Throw(InvalidParameter());
      if (auto r = s.db().One(std::string(kCourseCols) + " WHERE id = ?", n)) rows.push_back(*r);
    }
    std::sort(rows.begin(), rows.end(), [](const Row& a, const Row& b) { return a[0].i < b[0].i; });
  } else if (field == "shortname") {
    rows = s.db().All(std::string(kCourseCols) + " WHERE shortname = ? ORDER BY id", value);
  } else if (field == "idnumber") {
    rows = s.db().All(std::string(kCourseCols) + " WHERE idnumber = ? ORDER BY id", value);
  } else {
    Throw(InvalidParameter());
  }
  Json courses = Json::array();
  for (const Row& r : rows) courses.push_back(CourseJson(s, r, env));
  Json out = Json::object();
  out["courses"] = courses;
  out["warnings"] = Json::array();
  return out;
}

Desc CourseFields(bool create) {
  auto need = [&](PType t) { return create ? Req(t) : Opt(t); };
  std::vector<std::pair<std::string, Desc>> f;
  if (!create) f.push_back({"id", Req(PType::kInt)});
  f.push_back({"fullname", need(PType::kText)});
  f.push_back({"shortname", need(PType::kText)});
  f.push_back({"categoryid", need(PType::kInt)});
  for (const char* k : {"idnumber", "summary", "lang"}) f.push_back({k, Opt(PType::kRaw)});
  for (const char* k : {"summaryformat", "showgrades", "newsitems", "startdate", "enddate", "numsections",
                        "maxbytes", "showreports", "visible", "hiddensections", "groupmode", "groupmodeforce",
                        "defaultgroupingid", "enablecompletion", "completionnotify"}) {
    f.push_back({k, Opt(PType::kInt)});
  }
  f.push_back({"format", Opt(PType::kPlugin)});
  f.push_back({"forcetheme", Opt(PType::kPlugin)});
  f.push_back({"courseformatoptions",
               Multi(Single({{"name", Req(PType::kAlpha)}, {"value", Req(PType::kRaw)}}), Need::kOptional)});
  f.push_back({"customfields",
               Multi(Single({{"shortname", Req(PType::kAlphanumext)}, {"value", Req(PType::kRaw)}}),
                     Need::kOptional)});
  return Single(f);
}

// Applies courseformatoptions: numsections -> sections 0..n, others stored.
void ApplyFormatOptions(const Json& c, NewCourse* nc, std::vector<std::pair<std::string, std::string>>* other) {
  if (Has(c, "numsections")) nc->numsections = static_cast<int>(IntOr(c, "numsections", 0));
  if (Has(c, "hiddensections")) nc->hiddensections = static_cast<int>(IntOr(c, "hiddensections", 1));
  if (!Has(c, "courseformatoptions")) return;
  for (const Json& o : c["courseformatoptions"]) {
    std::string name = o["name"].get<std::string>();
    std::string value = o["value"].get<std::string>();
    long long n = 0;
    bool isnum = ParseInt64(Trim(value), &n);
    if (name == "numsections" && isnum) nc->numsections = static_cast<int>(n);
    else if (name == "coursedisplay" && isnum) nc->coursedisplay = static_cast<int>(n);
    else if (name == "hiddensections" && isnum) nc->hiddensections = static_cast<int>(n);
    else other->emplace_back(name, value);
  }
}

Json CreateCourses(SiteStore& s, const Json& p, const CallEnv&) {
  Json out = Json::array();
  for (const Json& c : p["courses"]) {
    MoodleId cat = IntOr(c, "categoryid", 0);
    if (!s.CategoryExists(cat)) {
      Throw(MoodleError("errorcatcontextnotvalid",
                        "You cannot execute functions in the category context (category id:" + std::to_string(cat) +
                            "). The context error message was: Invalid parameter value detected"));
    }
    NewCourse nc;
    nc.fullname = Str(c, "fullname");
    nc.shortname = Str(c, "shortname");
    nc.category = cat;
    nc.idnumber = Str(c, "idnumber");
    nc.summary = Str(c, "summary");
    nc.summaryformat = static_cast<int>(IntOr(c, "summaryformat", 1));
    nc.format = Str(c, "format", "topics");
    nc.showgrades = static_cast<int>(IntOr(c, "showgrades", 1));
    nc.newsitems = static_cast<int>(IntOr(c, "newsitems", 5));
    nc.startdate = IntOr(c, "startdate", -1);
    nc.enddate = IntOr(c, "enddate", -1);
    nc.showreports = static_cast<int>(IntOr(c, "showreports", 1));
    nc.visible = static_cast<int>(IntOr(c, "visible", 0));
    nc.groupmode = static_cast<int>(IntOr(c, "groupmode", 0));
    nc.groupmodeforce = static_cast<int>(IntOr(c, "groupmodeforce", 0));
    nc.enablecompletion = static_cast<int>(IntOr(c, "enablecompletion", 1));
    nc.completionnotify = static_cast<int>(IntOr(c, "completionnotify", 0));
    nc.lang = Str(c, "lang");
    std::vector<std::pair<std::string, std::string>> other;
    ApplyFormatOptions(c, &nc, &other);
    MoodleId id = s.CreateCourse(nc);
    for (const auto& [name, value] : other) {
      s.db().Run("INSERT OR REPLACE INTO course_format_options(courseid, format, name, value) VALUES (?, ?, ?, ?)",
                 id, nc.format, name, value);
    }
    out.push_back({{"id", id}, {"shortname", nc.shortname}});
  }
  return out;
}

Json UpdateCourses(SiteStore& s, const Json& p, const CallEnv&) {
  Json warnings = Json::array();
  Db& db = s.db();
  for (const Json& c : p["courses"]) {
    MoodleId id = IntOr(c, "id", 0);
    db.Exec("SAVEPOINT upd");
    try {
      if (!s.CourseExists(id)) Throw(MissingRecord());
      if (Has(c, "categoryid") && !s.CategoryExists(IntOr(c, "categoryid", 0))) {
        Throw(MoodleError("invalidcategoryid", "Invalid category ID"));
      }
      if (Has(c, "shortname") &&
          db.One("SELECT 1 FROM course WHERE shortname = ? AND id <> ?", Str(c, "shortname"), id)) {
        Throw(MoodleError("shortnametaken", "Short name is already used for another course (" +
                                                Str(c, "shortname") + ")"));
      }
      if (Has(c, "idnumber") && !Str(c, "idnumber").empty() &&
          db.One("SELECT 1 FROM course WHERE idnumber = ? AND id <> ?", Str(c, "idnumber"), id)) {
        Throw(MoodleError("courseidnumbertaken", "ID number is already used for another course (" +
                                                     Str(c, "idnumber") + ")"));
      }
      for (const char* k : {"fullname", "shortname", "idnumber", "summary", "format", "lang"}) {
        if (Has(c, k)) db.Run(std::string("UPDATE course SET ") + k + " = ? WHERE id = ?", Str(c, k), id);
      }
      if (Has(c, "categoryid")) db.Run("UPDATE course SET category = ? WHERE id = ?", IntOr(c, "categoryid", 0), id);
      for (const char* k : {"summaryformat", "showgrades", "newsitems", "startdate", "enddate", "maxbytes",
                            "showreports", "visible", "groupmode", "groupmodeforce", "defaultgroupingid",
                            "enablecompletion", "completionnotify"}) {
        if (Has(c, k)) db.Run(std::string("UPDATE course SET ") + k + " = ? WHERE id = ?", IntOr(c, k, 0), id);
      }
      NewCourse nc;
      nc.numsections = -1;
      std::vector<std::pair<std::string, std::string>> other;
      std::string format = db.One("SELECT format FROM course WHERE id = ?", id)->at(0).s;
      ApplyFormatOptions(c, &nc, &other);
      if (nc.numsections >= 0) {
        for (int sct = 0; sct <= nc.numsections; ++sct) {
          db.Run("INSERT OR IGNORE INTO course_sections(course, section) VALUES (?, ?)", id, sct);
        }
      }
      if (Has(c, "courseformatoptions") || Has(c, "hiddensections")) {
        if (Has(c, "hiddensections") || nc.hiddensections != 1) {
          other.emplace_back("hiddensections", std::to_string(nc.hiddensections));
        }
        for (const Json& o : c.value("courseformatoptions", Json::array())) {
          if (o["name"] == "coursedisplay") other.emplace_back("coursedisplay", std::to_string(nc.coursedisplay));
        }
      }
      for (const auto& [name, value] : other) {
        db.Run("INSERT OR REPLACE INTO course_format_options(courseid, format, name, value) VALUES (?, ?, ?, ?)",
               id, format, name, value);
      }
      db.Run("UPDATE course SET timemodified = ?, visibleold = visible WHERE id = ?", SiteStore::Now(), id);
      db.Exec("RELEASE upd");
    } catch (const WsException& e) {
      db.Exec("ROLLBACK TO upd");
      db.Exec("RELEASE upd");
      warnings.push_back(
          {{"item", "course"}, {"itemid", id}, {"warningcode", e.error.errorcode}, {"message", e.error.message}});
    }
  }
  Json out = Json::object();
  out["warnings"] = warnings;
  return out;
}

// ---------------------------------------------------------------------------
// core_user

const std::set<std::string> kAuthPlugins = {"manual", "ldap", "nologin", "email", "db", "oauth2", "cas",
                                            "shibboleth", "lti", "webservice", "mnet", "none"};

std::string PasswordPolicyErrors(const std::string& pw) {
  int digits = 0, lower = 0, upper = 0, special = 0;
  for (unsigned char ch : pw) {
    if (std::isdigit(ch)) ++digits;
    else if (std::islower(ch)) ++lower;
    else if (std::isupper(ch)) ++upper;
    else ++special;
  }
  std::string err;
  if (pw.size() < 8) err += "<div>Passwords must be at least 8 characters long.</div>";
  if (digits < 1) err += "<div>Passwords must have at least 1 digit(s).</div>";
  if (lower < 1) err += "<div>Passwords must have at least 1 lower case letter(s).</div>";
  if (upper < 1) err += "<div>Passwords must have at least 1 upper case letter(s).</div>";
  if (special < 1) err += "<div>The password must have at least 1 special character(s) such as *, -, or #.</div>";
  return err;
}

Desc UserFields(bool create) {
  std::vector<std::pair<std::string, Desc>> f;
  if (create) {
    f.push_back({"createpassword", Opt(PType::kBool)});
    f.push_back({"username", Req(PType::kUsername)});
    f.push_back({"auth", Def(PType::kPlugin, "manual")});
    f.push_back({"password", Opt(PType::kRaw)});
    f.push_back({"firstname", Req(PType::kText)});
    f.push_back({"lastname", Req(PType::kText)});
    f.push_back({"email", Req(PType::kEmail)});
    f.push_back({"idnumber", Def(PType::kRaw, "")});
  } else {
    f.push_back({"id", Req(PType::kInt)});
    f.push_back({"username", Opt(PType::kUsername)});
    f.push_back({"auth", Opt(PType::kPlugin)});
    f.push_back({"suspended", Opt(PType::kBool)});
    f.push_back({"password", Opt(PType::kRaw)});
    f.push_back({"firstname", Opt(PType::kText)});
    f.push_back({"lastname", Opt(PType::kText)});
    f.push_back({"email", Opt(PType::kEmail)});
    f.push_back({"idnumber", Opt(PType::kRaw)});
    f.push_back({"userpicture", Opt(PType::kInt)});
  }
  for (const char* k : {"city", "timezone", "description", "firstnamephonetic", "lastnamephonetic", "middlename",
                        "alternatename", "interests", "institution", "department", "phone1", "phone2", "address",
                        "lang", "calendartype", "theme"}) {
    f.push_back({k, Opt(PType::kRaw)});
  }
  f.push_back({"country", Opt(PType::kAlpha)});
  f.push_back({"maildisplay", Opt(PType::kInt)});
  f.push_back({"mailformat", Opt(PType::kInt)});
  f.push_back({"customfields",
               Multi(Single({{"type", Req(PType::kAlphanumext)}, {"value", Req(PType::kRaw)}}), Need::kOptional)});
  f.push_back({"preferences",
               Multi(Single({{"type", Req(PType::kRaw)}, {"value", Req(PType::kRaw)}}), Need::kOptional)});
  return Single(f);
}

void SavePreferences(SiteStore& s, MoodleId userid, const Json& u) {
  if (!Has(u, "preferences")) return;
  for (const Json& pref : u["preferences"]) {
    s.db().Run("INSERT OR REPLACE INTO user_preferences(userid, name, value) VALUES (?, ?, ?)", userid,
               pref["type"].get<std::string>(), pref["value"].get<std::string>());
  }
}

bool EmailTaken(SiteStore& s, const std::string& email, MoodleId except) {
  return s.db()
      .One("SELECT 1 FROM users WHERE lower(email) = lower(?) AND deleted = 0 AND id <> ?", email, except)
      .has_value();
}

Json CreateUsers(SiteStore& s, const Json& p, const CallEnv&) {
  Json out = Json::array();
  for (const Json& u : p["users"]) {
    std::string auth = Str(u, "auth", "manual");
    if (!kAuthPlugins.count(auth)) Throw(InvalidParameter());
    std::string username = Str(u, "username");
    if (s.db().One("SELECT 1 FROM users WHERE username = ? AND deleted = 0", username)) Throw(InvalidParameter());
    std::string email = Str(u, "email");
    if (!IsValidEmail(email)) Throw(InvalidParameter());
    if (EmailTaken(s, email, 0)) Throw(InvalidParameter());
    bool createpassword = Has(u, "createpassword") && u["createpassword"].get<bool>();
    std::string password = Str(u, "password");
    if (!createpassword) {
      if (password.empty() && auth == "manual") Throw(InvalidParameter());
      if (!password.empty()) {
        std::string err = PasswordPolicyErrors(password);
        if (!err.empty()) Throw(MoodleError(err));
      }
    }
    NewUser nu;
    nu.username = username;
    nu.auth = auth;
    nu.password = createpassword ? "generated" : password;
    nu.firstname = Str(u, "firstname");
    nu.lastname = Str(u, "lastname");
    nu.email = email;
    nu.idnumber = Str(u, "idnumber");
    nu.department = Str(u, "department");
    nu.institution = Str(u, "institution");
    nu.city = Str(u, "city");
    nu.country = Str(u, "country");
    nu.lang = Str(u, "lang", "en");
    nu.timezone = Str(u, "timezone", "99");
    nu.description = Str(u, "description");
    nu.mailformat = static_cast<int>(IntOr(u, "mailformat", 1));
    MoodleId id = s.CreateUser(nu);
    SavePreferences(s, id, u);
    if (createpassword) {
      s.db().Run("INSERT OR REPLACE INTO user_preferences(userid, name, value) VALUES (?, 'create_password', '1')", id);
    }
    out.push_back({{"id", id}, {"username", username}});
  }
  return out;
}

Json UpdateUsers(SiteStore& s, const Json& p, const CallEnv&) {
  Json warnings = Json::array();
  Db& db = s.db();
  for (const Json& u : p["users"]) {
    MoodleId id = IntOr(u, "id", 0);
    auto existing = db.One("SELECT deleted FROM users WHERE id = ?", id);
    if (!existing || (*existing)[0].i != 0 || id == 1) {
      warnings.push_back({{"item", "user"}, {"itemid", id}, {"warningcode", "invaliduserid"},
                          {"message", "Invalid user ID"}});
      continue;
    }
    if (Has(u, "username") &&
        db.One("SELECT 1 FROM users WHERE username = ? AND id <> ? AND deleted = 0", Str(u, "username"), id)) {
      warnings.push_back({{"item", "user"}, {"itemid", id}, {"warningcode", "usernameexists"},
                          {"message", "Username already exists: " + Str(u, "username")}});
      continue;
    }
    if (Has(u, "email") && EmailTaken(s, Str(u, "email"), id)) {
      warnings.push_back({{"item", "user"}, {"itemid", id}, {"warningcode", "useremailduplicate"},
                          {"message", "Duplicate email address: " + Str(u, "email")}});
      continue;
    }
    if (Has(u, "auth") && !kAuthPlugins.count(Str(u, "auth"))) Throw(InvalidParameter());
    if (Has(u, "password") && !Str(u, "password").empty()) {
      std::string err = PasswordPolicyErrors(Str(u, "password"));
      if (!err.empty()) Throw(MoodleError(err));
    }
    for (const char* k : {"username", "auth", "firstname", "lastname", "email", "idnumber", "department",
                          "institution", "city", "country", "lang", "timezone", "description"}) {
      if (Has(u, k)) db.Run(std::string("UPDATE users SET ") + k + " = ? WHERE id = ?", Str(u, k), id);
    }
    if (Has(u, "suspended")) db.Run("UPDATE users SET suspended = ? WHERE id = ?", u["suspended"].get<bool>(), id);
    if (Has(u, "mailformat")) db.Run("UPDATE users SET mailformat = ? WHERE id = ?", IntOr(u, "mailformat", 1), id);
    db.Run("UPDATE users SET timemodified = ? WHERE id = ?", SiteStore::Now(), id);
    SavePreferences(s, id, u);
  }
  Json out = Json::object();
  out["warnings"] = warnings;
  return out;
}

Json GetUsersByField(SiteStore& s, const Json& p, const CallEnv& env) {
  std::string field = p["field"].get<std::string>();
  std::string col;
  if (field == "id") col = "id";
  else if (field == "idnumber") col = "idnumber";
  else if (field == "username") col = "username";
  else if (field == "email") col = "email";
  else Throw(InvalidParameter());
  std::set<MoodleId> seen;
  std::vector<Row> rows;
  for (const Json& v : p["values"]) {
    std::string value = v.get<std::string>();
    if (field == "id") {
      long long n = 0;
      if (!ParseInt64(Trim(value), &n)) Throw(InvalidParameter());
      if (auto r = UserRow(s, n)) rows.push_back(*r);
    } else {
      if (field == "username" && CleanUsername(value) != value) Throw(InvalidParameter());
      if (field == "email" && !IsValidEmail(value)) Throw(InvalidParameter());
      // Exact, case-sensitive match, as on PostgreSQL.
      for (const Row& r : s.db().All(std::string("SELECT ") + kUserCols + " FROM users WHERE " + col + " = ?",
                                     value)) {
        rows.push_back(r);
      }
    }
  }
  std::sort(rows.begin(), rows.end(), [](const Row& a, const Row& b) { return a[0].i < b[0].i; });
  Json out = Json::array();
  for (const Row& r : rows) {
    if (seen.insert(r[0].i).second) out.push_back(UserDetails(r, env));
  }
  return out;
}

Json GetUsers(SiteStore& s, const Json& p, const CallEnv& env) {
  Json warnings = Json::array();
  std::string where = "deleted = 0";
  std::vector<std::string> args;
  const std::set<std::string> allowed = {"id", "lastname", "firstname", "idnumber", "username", "email", "auth"};
  for (const Json& c : p["criteria"]) {
    std::string key = c["key"].get<std::string>();
    std::string value = c["value"].get<std::string>();
    if (!allowed.count(key)) {
      warnings.push_back({{"item", key}, {"warningcode", "invalidfieldparameter"},
                          {"message", "The search key '" + key + "' is not supported, look at the web service documentation"}});
      continue;
    }
    if (key == "id" || key == "idnumber" || key == "username" || key == "auth") {
      where += " AND " + key + " = ?";
    } else {
      // email, firstname, lastname: case-insensitive LIKE with % wildcards.
      where += " AND lower(" + key + ") LIKE lower(?)";
    }
    args.push_back(value);
  }
  Json users = Json::array();
  if (warnings.empty() || !args.empty()) {
    std::string sql = std::string("SELECT ") + kUserCols + " FROM users WHERE " + where + " ORDER BY id";
    std::vector<Row> rows;
    switch (args.size()) {
      case 0: rows = s.db().All(sql); break;
      case 1: rows = s.db().All(sql, args[0]); break;
      case 2: rows = s.db().All(sql, args[0], args[1]); break;
      case 3: rows = s.db().All(sql, args[0], args[1], args[2]); break;
      default: Throw(InvalidParameter());
    }
    for (const Row& r : rows) users.push_back(UserDetails(r, env));
  }
  Json out = Json::object();
  out["users"] = users;
  out["warnings"] = warnings;
  return out;
}

Json DeleteUsers(SiteStore& s, const Json& p, const CallEnv&) {
  for (const Json& id : p["userids"]) {
    MoodleId uid = id.get<long long>();
    if (uid == kAdminUserId) Throw(MoodleError("useradminodelete", "You can not delete the admin account"));
    if (uid == 1) Throw(MoodleError("guestnodeleted", "You can not delete the guest account"));
    s.DeleteUser(uid);
  }
  return nullptr;
}

// ---------------------------------------------------------------------------
// core_enrol

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
    if (show("groups")) {
      Json groups = Json::array();
      for (const Row& g : s.db().All("SELECT g.id, g.name, g.description, g.descriptionformat FROM groups_members gm "
                                     "JOIN course_groups g ON g.id = gm.groupid WHERE g.courseid = ? AND gm.userid = ? "
                                     "ORDER BY g.id", courseid, r[0].i)) {
        groups.push_back({{"id", g[0].i}, {"name", g[1].s}, {"description", g[2].s}, {"descriptionformat", g[3].i}});
      }
      if (!groups.empty()) u["groups"] = groups;
    }
    out.push_back(u);
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

// ---------------------------------------------------------------------------
// enrol_manual

Json ManualEnrolUsers(SiteStore& s, const Json& p, const CallEnv&) {
  std::set<std::pair<MoodleId, MoodleId>> welcome;  // (course, user) to notify
  for (const Json& e : p["enrolments"]) {
    MoodleId courseid = IntOr(e, "courseid", 0);
    MoodleId userid = IntOr(e, "userid", 0);
    MoodleId roleid = IntOr(e, "roleid", 0);
    if (!s.CourseExists(courseid)) Throw(InvalidParameter());  // "Context does not exist"
    std::set<MoodleId> assignable = s.AssignableRoles(kContextCourse);
    if (!assignable.count(roleid)) {
      Throw(MoodleError("wsusercannotassign",
                        "You don't have the permission to assign this role (" + std::to_string(roleid) +
                            ") to this user (" + std::to_string(userid) + ") in this course (" +
                            std::to_string(courseid) + ")."));
    }
    auto inst = s.db().One("SELECT id, customint1 FROM enrol WHERE courseid = ? AND enrol = 'manual' AND status = 0 "
                           "ORDER BY id", courseid);
    if (!inst) {
      Throw(MoodleError("wsnoinstance", "Manual enrolment plugin instance doesn't exist or is disabled for the "
                                        "course (id = " + std::to_string(courseid) + ")"));
    }
    RequireLiveUser(s, userid);
    bool send = !(*inst)[1].null && (*inst)[1].i != 0 && s.HasContact(courseid);
    int status = IntOr(e, "suspend", 0) != 0 ? 1 : 0;
    s.EnrolUser((*inst)[0].i, userid, roleid, IntOr(e, "timestart", 0), IntOr(e, "timeend", 0), status);
    if (send) welcome.insert({courseid, userid});
  }
  // Messages go out after the commit, one per user and course.
  for (const auto& [courseid, userid] : welcome) s.AddWelcomeNotification(courseid, userid);
  return nullptr;
}

Json ManualUnenrolUsers(SiteStore& s, const Json& p, const CallEnv&) {
  for (const Json& e : p["enrolments"]) {
    MoodleId courseid = IntOr(e, "courseid", 0);
    MoodleId userid = IntOr(e, "userid", 0);
    if (!s.CourseExists(courseid)) Throw(MissingRecord());
    auto inst = s.Instance(courseid, "manual");
    if (!inst) {
      Throw(MoodleError("wsnoinstance", "Manual enrolment plugin instance doesn't exist or is disabled for the "
                                        "course (id = " + std::to_string(courseid) + ")"));
    }
    RequireLiveUser(s, userid);
    s.UnenrolUser(*inst, userid);  // roleid is ignored, as in Moodle
  }
  return nullptr;
}

// ---------------------------------------------------------------------------
// core_role

Desc RoleAssignmentDesc() {
  return Single({{"roleid", Req(PType::kInt)},
                 {"userid", Req(PType::kInt)},
                 {"contextid", Opt(PType::kInt)},
                 {"contextlevel", Opt(PType::kAlpha)},
                 {"instanceid", Opt(PType::kInt)}});
}

Json AssignRoles(SiteStore& s, const Json& p, const CallEnv&) {
  for (const Json& a : p["assignments"]) {
    MoodleId ctx = ContextFromParams(s, a);
    auto c = s.ContextById(ctx);
    if (!s.AssignableRoles(c->level).count(IntOr(a, "roleid", 0))) Throw(InvalidParameter());
    s.RoleAssign(IntOr(a, "roleid", 0), IntOr(a, "userid", 0), ctx);
  }
  return nullptr;
}

Json UnassignRoles(SiteStore& s, const Json& p, const CallEnv&) {
  for (const Json& a : p["unassignments"]) {
    MoodleId ctx = ContextFromParams(s, a);
    auto c = s.ContextById(ctx);
    if (!s.AssignableRoles(c->level).count(IntOr(a, "roleid", 0))) Throw(InvalidParameter());
    // Only manual assignments (component "") can be removed this way.
    s.RoleUnassign(IntOr(a, "roleid", 0), IntOr(a, "userid", 0), ctx);
  }
  return nullptr;
}

// ---------------------------------------------------------------------------
// enrol_meta

MoodleId ResolveCourse(SiteStore& s, const std::string& raw) {
  long long n = 0;
  if (ParseInt64(Trim(raw), &n) && s.CourseExists(n)) return n;
  Throw(MissingRecord());
}

Json MetaAddInstances(SiteStore& s, const Json& p, const CallEnv&) {
  Json out = Json::array();
  for (const Json& i : p["instances"]) {
    MoodleId parent = IntOr(i, "metacourseid", 0);
    if (!s.CourseExists(parent) || parent == kSiteCourseId) Throw(MissingRecord());
    std::string raw = Str(i, "courseid");
    MoodleId child = ResolveCourse(s, raw);
    bool status = false;
    if (!s.db().One("SELECT 1 FROM enrol WHERE enrol = 'meta' AND courseid = ? AND customint1 = ?", parent, child)) {
      std::optional<long long> group;
      if (Has(i, "creategroup") && i["creategroup"].get<bool>()) {
        std::string fullname = s.db().One("SELECT fullname FROM course WHERE id = ?", child)->at(0).s;
        s.db().Run("INSERT INTO course_groups(courseid, name, timecreated) VALUES (?, ?, ?)", parent,
                   fullname + " course", SiteStore::Now());
        group = s.db().LastId();
      }
      MoodleId inst = s.AddInstance(parent, "meta", 0, 0, child, group);
      s.SyncMetaInstance(inst);
      status = true;
    }
    out.push_back({{"metacourseid", parent}, {"courseid", raw}, {"status", status}});
  }
  return out;
}

Json MetaDeleteInstances(SiteStore& s, const Json& p, const CallEnv&) {
  Json out = Json::array();
  for (const Json& i : p["instances"]) {
    MoodleId parent = IntOr(i, "metacourseid", 0);
    if (!s.CourseExists(parent)) Throw(MissingRecord());
    std::string raw = Str(i, "courseid");
    MoodleId child = ResolveCourse(s, raw);
    bool status = false;
    for (const Row& r : s.db().All("SELECT id FROM enrol WHERE enrol = 'meta' AND courseid = ? AND customint1 = ?",
                                   parent, child)) {
      MoodleId inst = r[0].i;
      for (const Row& ue : s.db().All("SELECT userid FROM user_enrolments WHERE enrolid = ?", inst)) {
        s.UnenrolUser(inst, ue[0].i);
      }
      s.db().Run("DELETE FROM groups_members WHERE component = 'enrol_meta' AND itemid = ?", inst);
      s.db().Run("DELETE FROM role_assignments WHERE component = 'enrol_meta' AND itemid = ?", inst);
      s.db().Run("DELETE FROM enrol WHERE id = ?", inst);
      status = true;
    }
    out.push_back({{"metacourseid", parent}, {"courseid", raw}, {"status", status}});
  }
  return out;
}

// ---------------------------------------------------------------------------
// core_cohort, core_group

Json CohortJson(const Row& r) {
  Json c = Json::object();
  c["id"] = r[0].i;
  c["name"] = r[1].s;
  c["idnumber"] = r[2].s;
  c["description"] = r[3].s;
  c["descriptionformat"] = r[4].i;
  c["visible"] = r[5].i != 0;
  c["theme"] = r[6].s;
  return c;
}

Json CreateCohorts(SiteStore& s, const Json& p, const CallEnv&) {
  Json out = Json::array();
  for (const Json& c : p["cohorts"]) {
    std::string type = c["categorytype"]["type"].get<std::string>();
    std::string value = c["categorytype"]["value"].get<std::string>();
    MoodleId ctx = 1;
    if (type == "id" || type == "idnumber") {
      auto cat = type == "id" ? s.db().One("SELECT id FROM course_categories WHERE id = ?", value)
                              : s.db().One("SELECT id FROM course_categories WHERE idnumber = ?", value);
      if (!cat) Throw(MissingRecord());
      ctx = s.EnsureContext(kContextCategory, (*cat)[0].i);
    } else if (type != "system") {
      Throw(InvalidParameter());
    }
    if (!Str(c, "idnumber").empty() && s.db().One("SELECT 1 FROM cohort WHERE idnumber = ?", Str(c, "idnumber"))) {
      Throw(MoodleError("duplicateidnumber", "Cohort with the same ID number already exists"));
    }
    s.db().Run("INSERT INTO cohort(contextid, name, idnumber, description, descriptionformat, visible, theme, "
               "timecreated) VALUES (?, ?, ?, ?, ?, ?, ?, ?)", ctx, Str(c, "name"), Str(c, "idnumber"),
               Str(c, "description"), IntOr(c, "descriptionformat", 1), IntOr(c, "visible", 1), Str(c, "theme"),
               SiteStore::Now());
    MoodleId id = s.db().LastId();
    out.push_back(CohortJson(*s.db().One(
        "SELECT id, name, idnumber, description, descriptionformat, visible, theme FROM cohort WHERE id = ?", id)));
  }
  return out;
}

Json AddCohortMembers(SiteStore& s, const Json& p, const CallEnv&) {
  Json warnings = Json::array();
  for (const Json& m : p["members"]) {
    std::string ctype = m["cohorttype"]["type"].get<std::string>();
    std::string cval = m["cohorttype"]["value"].get<std::string>();
    std::string utype = m["usertype"]["type"].get<std::string>();
    std::string uval = m["usertype"]["value"].get<std::string>();
    std::optional<Row> cohort;
    if (ctype == "id") cohort = s.db().One("SELECT id FROM cohort WHERE id = ?", cval);
    else if (ctype == "idnumber") cohort = s.db().One("SELECT id FROM cohort WHERE idnumber = ?", cval);
    else Throw(InvalidParameter());
    std::optional<Row> user;
    if (utype == "id") user = s.db().One("SELECT id FROM users WHERE id = ? AND deleted = 0", uval);
    else if (utype == "username") user = s.db().One("SELECT id FROM users WHERE username = ? AND deleted = 0", uval);
    else if (utype == "idnumber") user = s.db().One("SELECT id FROM users WHERE idnumber = ? AND deleted = 0", uval);
    else Throw(InvalidParameter());
    if (!cohort || !user) {
      warnings.push_back({{"item", cohort ? "user" : "cohort"}, {"itemid", 0}, {"warningcode", "1"},
                          {"message", "Invalid parameters"}});
      continue;
    }
    s.db().Run("INSERT OR IGNORE INTO cohort_members(cohortid, userid, timeadded) VALUES (?, ?, ?)", (*cohort)[0].i,
               (*user)[0].i, SiteStore::Now());
  }
  Json out = Json::object();
  out["warnings"] = warnings;
  return out;
}

Json GetCohorts(SiteStore& s, const Json& p, const CallEnv&) {
  Json out = Json::array();
  std::vector<Row> rows;
  const char* cols = "SELECT id, name, idnumber, description, descriptionformat, visible, theme FROM cohort";
  if (p["cohortids"].empty()) {
    rows = s.db().All(std::string(cols) + " ORDER BY id");
  } else {
    for (const Json& id : p["cohortids"]) {
      auto r = s.db().One(std::string(cols) + " WHERE id = ?", id.get<long long>());
      if (!r) Throw(MissingRecord());
      rows.push_back(*r);
    }
  }
  for (const Row& r : rows) {
    Json c = CohortJson(r);
    c["customfields"] = Json::array();
    out.push_back(c);
  }
  return out;
}

Json CreateGroups(SiteStore& s, const Json& p, const CallEnv&) {
  Json out = Json::array();
  for (const Json& g : p["groups"]) {
    MoodleId courseid = IntOr(g, "courseid", 0);
    if (!s.CourseExists(courseid)) Throw(MissingRecord());
    if (s.db().One("SELECT 1 FROM course_groups WHERE courseid = ? AND name = ?", courseid, Str(g, "name"))) {
      Throw(InvalidParameter());  // "Group with the same name already exists in the course"
    }
    s.db().Run("INSERT INTO course_groups(courseid, idnumber, name, description, descriptionformat, enrolmentkey, "
               "visibility, participation, timecreated) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
               courseid, Str(g, "idnumber"), Str(g, "name"), Str(g, "description"), IntOr(g, "descriptionformat", 1),
               Str(g, "enrolmentkey"), IntOr(g, "visibility", 0), IntOr(g, "participation", 1), SiteStore::Now());
    Json o = Json::object();
    o["id"] = s.db().LastId();
    o["courseid"] = courseid;
    o["name"] = Str(g, "name");
    o["description"] = Str(g, "description");
    o["descriptionformat"] = IntOr(g, "descriptionformat", 1);
    o["enrolmentkey"] = Str(g, "enrolmentkey");
    o["idnumber"] = Str(g, "idnumber");
    o["visibility"] = IntOr(g, "visibility", 0);
    o["participation"] = IntOr(g, "participation", 1) != 0;
    out.push_back(o);
  }
  return out;
}

Json AddGroupMembers(SiteStore& s, const Json& p, const CallEnv&) {
  for (const Json& m : p["members"]) {
    MoodleId groupid = IntOr(m, "groupid", 0);
    MoodleId userid = IntOr(m, "userid", 0);
    auto g = s.db().One("SELECT courseid FROM course_groups WHERE id = ?", groupid);
    if (!g) Throw(MissingRecord());
    auto u = s.db().One("SELECT 1 FROM users WHERE id = ? AND deleted = 0", userid);
    if (!u) Throw(MissingRecord());
    if (!s.db().One("SELECT 1 FROM user_enrolments ue JOIN enrol e ON e.id = ue.enrolid WHERE e.courseid = ? "
                    "AND ue.userid = ?", (*g)[0].i, userid)) {
      Throw(InvalidParameter());  // "Only enrolled users may be members of groups"
    }
    s.db().Run("INSERT OR IGNORE INTO groups_members(groupid, userid, timeadded) VALUES (?, ?, ?)", groupid, userid,
               SiteStore::Now());
  }
  return nullptr;
}

// ---------------------------------------------------------------------------

std::vector<FunctionDef> BuildFunctions() {
  using P = PType;
  auto kv = [](PType k) { return Single({{"key", Req(k)}, {"value", Req(PType::kRaw)}}); };
  std::vector<FunctionDef> f;
  f.push_back({"core_webservice_get_site_info", kCoreVersion,
               Single({{"serviceshortnames", Multi(Req(P::kAlphanumext), Need::kDefault, Json::array())}}),
               GetSiteInfo});
  f.push_back({"core_course_get_categories", kCoreVersion,
               Single({{"criteria", Multi(kv(P::kAlpha), Need::kDefault, Json::array())},
                       {"addsubcategories", Def(P::kBool, true)}}),
               GetCategories});
  f.push_back({"core_course_create_categories", kCoreVersion,
               Single({{"categories", Multi(Single({{"name", Req(P::kText)},
                                                    {"parent", Def(P::kInt, 0)},
                                                    {"idnumber", Opt(P::kRaw)},
                                                    {"description", Opt(P::kRaw)},
                                                    {"descriptionformat", Def(P::kInt, 1)},
                                                    {"theme", Opt(P::kPlugin)}}))}}),
               CreateCategories});
  f.push_back({"core_course_get_courses_by_field", kCoreVersion,
               Single({{"field", Def(P::kAlpha, "")}, {"value", Def(P::kRaw, "")}}), GetCoursesByField});
  f.push_back({"core_course_create_courses", kCoreVersion, Single({{"courses", Multi(CourseFields(true))}}),
               CreateCourses});
  f.push_back({"core_course_update_courses", kCoreVersion, Single({{"courses", Multi(CourseFields(false))}}),
               UpdateCourses});
  f.push_back({"core_user_get_users_by_field", kCoreVersion,
               Single({{"field", Req(P::kAlpha)}, {"values", Multi(Req(P::kRaw))}}), GetUsersByField});
  f.push_back({"core_user_get_users", kCoreVersion, Single({{"criteria", Multi(kv(P::kAlpha))}}), GetUsers});
  f.push_back({"core_user_create_users", kCoreVersion, Single({{"users", Multi(UserFields(true))}}), CreateUsers});
  f.push_back({"core_user_update_users", kCoreVersion, Single({{"users", Multi(UserFields(false))}}), UpdateUsers});
  f.push_back({"core_user_delete_users", kCoreVersion, Single({{"userids", Multi(Req(P::kInt))}}), DeleteUsers});
  f.push_back({"core_enrol_get_enrolled_users", kCoreVersion,
               Single({{"courseid", Req(P::kInt)},
                       {"options", Multi(Single({{"name", Req(P::kAlphanumext)}, {"value", Req(P::kRaw)}}),
                                         Need::kDefault, Json::array())}}),
               GetEnrolledUsers});
  f.push_back({"core_enrol_get_course_enrolment_methods", kCoreVersion, Single({{"courseid", Req(P::kInt)}}),
               GetCourseEnrolmentMethods});
  f.push_back({"enrol_manual_enrol_users", kPluginVersion,
               Single({{"enrolments", Multi(Single({{"roleid", Req(P::kInt)},
                                                    {"userid", Req(P::kInt)},
                                                    {"courseid", Req(P::kInt)},
                                                    {"timestart", Opt(P::kInt)},
                                                    {"timeend", Opt(P::kInt)},
                                                    {"suspend", Opt(P::kInt)}}))}}),
               ManualEnrolUsers});
  f.push_back({"enrol_manual_unenrol_users", kPluginVersion,
               Single({{"enrolments", Multi(Single({{"userid", Req(P::kInt)},
                                                    {"courseid", Req(P::kInt)},
                                                    {"roleid", Opt(P::kInt)}}))}}),
               ManualUnenrolUsers});
  f.push_back({"core_role_assign_roles", kCoreVersion, Single({{"assignments", Multi(RoleAssignmentDesc())}}),
               AssignRoles});
  f.push_back({"core_role_unassign_roles", kCoreVersion, Single({{"unassignments", Multi(RoleAssignmentDesc())}}),
               UnassignRoles});
  f.push_back({"enrol_meta_add_instances", kPluginVersion,
               Single({{"instances", Multi(Single({{"metacourseid", Req(P::kInt)},
                                                   {"courseid", Req(P::kRaw)},
                                                   {"creategroup", Def(P::kBool, false)}}))}}),
               MetaAddInstances});
  f.push_back({"enrol_meta_delete_instances", kPluginVersion,
               Single({{"instances", Multi(Single({{"metacourseid", Req(P::kInt)}, {"courseid", Req(P::kRaw)}}))}}),
               MetaDeleteInstances});
  auto typed = [] {
    return Single({{"type", Req(PType::kAlpha)}, {"value", Req(PType::kRaw)}});
  };
  f.push_back({"core_cohort_create_cohorts", kCoreVersion,
               Single({{"cohorts", Multi(Single({{"categorytype", typed()},
                                                 {"name", Req(P::kRaw)},
                                                 {"idnumber", Req(P::kRaw)},
                                                 {"description", Opt(P::kRaw)},
                                                 {"descriptionformat", Def(P::kInt, 1)},
                                                 {"visible", Opt(P::kBool)},
                                                 {"theme", Opt(P::kPlugin)},
                                                 {"customfields", Multi(Single({{"shortname", Req(P::kAlphanumext)},
                                                                                {"value", Req(P::kRaw)}}),
                                                                        Need::kOptional)}}))}}),
               CreateCohorts});
  f.push_back({"core_cohort_add_cohort_members", kCoreVersion,
               Single({{"members", Multi(Single({{"cohorttype", typed()}, {"usertype", typed()}}))}}),
               AddCohortMembers});
  f.push_back({"core_cohort_get_cohorts", kCoreVersion,
               Single({{"cohortids", Multi(Req(P::kInt), Need::kDefault, Json::array())}}), GetCohorts});
  f.push_back({"core_group_create_groups", kCoreVersion,
               Single({{"groups", Multi(Single({{"courseid", Req(P::kInt)},
                                                {"name", Req(P::kText)},
                                                {"description", Req(P::kRaw)},
                                                {"descriptionformat", Def(P::kInt, 1)},
                                                {"enrolmentkey", Opt(P::kRaw)},
                                                {"idnumber", Opt(P::kRaw)},
                                                {"visibility", Opt(P::kInt)},
                                                {"participation", Opt(P::kBool)},
                                                {"customfields", Multi(Single({{"shortname", Req(P::kAlphanumext)},
                                                                               {"value", Req(P::kRaw)}}),
                                                                       Need::kOptional)}}))}}),
               CreateGroups});
  f.push_back({"core_group_add_group_members", kCoreVersion,
               Single({{"members", Multi(Single({{"groupid", Req(P::kInt)}, {"userid", Req(P::kInt)}}))}}),
               AddGroupMembers});
  return f;
}

}  // namespace

const std::vector<FunctionDef>& ServiceFunctions() {
  static const std::vector<FunctionDef> fns = BuildFunctions();
  return fns;
}

const FunctionDef* FindServiceFunction(const std::string& name) {
  for (const FunctionDef& f : ServiceFunctions()) {
    if (f.name == name) return &f;
  }
  return nullptr;
}

bool IsOtherMoodleFunction(const std::string& name) {
  // A sample of real Moodle 5.1 functions that the enrolsync service lacks.
  static const std::set<std::string> kOthers = {
      "core_course_delete_courses", "core_course_get_courses", "core_course_delete_categories",
      "core_course_update_categories", "core_course_get_contents", "core_course_duplicate_course",
      "core_course_search_courses", "core_enrol_get_users_courses", "core_enrol_get_enrolled_users_with_capability",
      "core_enrol_search_users", "core_group_get_course_groups", "core_group_delete_groups",
      "core_group_delete_group_members", "core_group_get_group_members", "core_cohort_delete_cohorts",
      "core_cohort_delete_cohort_members", "core_cohort_update_cohorts", "core_cohort_search_cohorts",
      "core_user_get_course_user_profiles", "core_user_update_user_preferences", "core_role_get_roles",
      "enrol_self_enrol_user", "enrol_guest_get_instance_info", "enrol_self_get_instance_info",
      "core_webservice_get_site_info_v2", "core_message_send_instant_messages", "core_course_get_course_module",
      "core_calendar_get_calendar_events", "core_grades_get_grades", "gradereport_user_get_grade_items",
      "core_completion_get_course_completion_status", "core_enrol_unenrol_user_enrolment",
      "core_enrol_edit_user_enrolment", "core_enrol_submit_user_enrolment_form", "tool_mobile_get_config"};
  return kOthers.count(name) > 0;
}

}  // namespace enrolsync::sandbox
