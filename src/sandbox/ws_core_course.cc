// core_course: categories and courses.
#include "sandbox/ws_common.h"

#include <algorithm>
#include <set>

#include "sandbox/ws_error.h"
#include "util/strings.h"

namespace enrolsync::sandbox {

namespace {

// core_course: categories

Json CategoryJson(SiteStore& s, const Row& r) {
  Json c = Json::object();
  c["id"] = r[0].i;
  c["name"] = FormatString(r[1].s);
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
    out.push_back({{"id", id}, {"name", FormatString(Str(c, "name"))}});
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
  // core_course_external::get_courses_by_field passes names through format_string.
  c["fullname"] = FormatString(r[3].s);
  c["displayname"] = FormatString(r[3].s);
  c["shortname"] = FormatString(r[4].s);
  c["courseimage"] = env.siteurl + "/pluginfile.php/1/course/generated/course.svg";
  c["categoryid"] = r[1].i;
  std::string catname;
  if (auto cat = s.db().One("SELECT name FROM course_categories WHERE id = ?", r[1].i)) catname = (*cat)[0].s;
  c["categoryname"] = FormatString(catname);
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
      if (auto r = s.db().One(std::string(kCourseCols) + " WHERE id = ?", n)) {
        rows.push_back(*r);
      } else {
        // Moodle 5.1: util::validate_courses(keepfails) sets a property on
        // the missing course, a PHP Error that fails the whole call.
        Throw({"Error", "generalexceptionmessage", "Attempt to assign property \"contextvalidated\" on null"});
      }
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

// core_course_get_courses: every course, or those of options[ids] that
// exist (get_records_list: a missing id is simply absent). A list, in id
// order, the same course records as get_courses_by_field.
Json GetCourses(SiteStore& s, const Json& p, const CallEnv& env) {
  std::vector<Row> rows;
  const Json options = p.contains("options") ? p["options"] : Json::object();
  if (!options.is_object() || !options.contains("ids") || options["ids"].empty()) {
    rows = s.db().All(std::string(kCourseCols) + " ORDER BY id");
  } else {
    for (const Json& id : options["ids"])
      if (auto r = s.db().One(std::string(kCourseCols) + " WHERE id = ?", id.get<long long>())) rows.push_back(*r);
    std::sort(rows.begin(), rows.end(), [](const Row& a, const Row& b) { return a[0].i < b[0].i; });
    rows.erase(std::unique(rows.begin(), rows.end(), [](const Row& a, const Row& b) { return a[0].i == b[0].i; }),
               rows.end());
  }
  Json out = Json::array();
  for (const Row& r : rows) out.push_back(CourseJson(s, r, env));
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

}  // namespace

void RegisterCoreCourse(std::vector<FunctionDef>& f) {
  using P = PType;
  auto kv = [](PType k) { return Single({{"key", Req(k)}, {"value", Req(PType::kRaw)}}); };
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
  f.push_back({"core_course_get_courses", kCoreVersion,
               Single({{"options", Single({{"ids", Multi(Req(P::kInt), Need::kOptional)}}, Need::kOptional)}}),
               GetCourses});
  f.push_back({"core_course_create_courses", kCoreVersion, Single({{"courses", Multi(CourseFields(true))}}),
               CreateCourses});
  f.push_back({"core_course_update_courses", kCoreVersion, Single({{"courses", Multi(CourseFields(false))}}),
               UpdateCourses});
}

}  // namespace enrolsync::sandbox
