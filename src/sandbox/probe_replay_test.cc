// Replays every probe of shared/moodle/probes/ against a fresh sandbox: seed
// the recorded state_before, make the recorded call, and compare the state
// change with the recorded state_diff and the answer with the recorded one.
//
// Seeding. A probe's state_before holds only the rows that matter to the call
// (enrolments, role assignments, notifications...), not the users, courses
// and enrol instances they refer to. Those come from the recorded session up
// to that probe: users and courses made by earlier create calls (body plus
// answer), updated by earlier update/delete calls and by any users or
// enrol_instances rows recorded so far; course context ids from any recorded
// role assignment. Everything is seeded with its recorded id, so no id is
// mapped. Ids a request names that the session never showed being made
// (the throughput users and courses, made by unrecorded batches) get a
// placeholder object; ids >= 1,000,000 (the probes' "nonexistent" 99999999)
// never do.
//
// Comparing the state. Tables: those the probe recorded. Rows with an id
// (ueid, raid, enrolid, id, groupid, gmid, contextid) are matched by id, the
// others as multisets. Never compared: times (timecreated, timemodified,
// timeadded; a course's start/end dates, which are "today"), the ids of new
// rows, and the recorded columns the sandbox does not model (kUnmodelled). A
// reference to an object the call created becomes "new" on both sides.
// Count tables (probe_users_count...) compare the change of the count.
//
// Comparing the answer. Errors: same exception, errorcode and message (digits
// masked). Successes: same JSON, value for value, except volatile keys
// (times, image URLs) and the ids of objects a create call made. "Message
// was not sent." (probes 07-13, 23) was the lab's missing mail server; the
// change was committed, so the sandbox, which delivers welcome messages as
// notifications, must answer `null` there and write the recorded rows.
#include <gtest/gtest.h>
#include <httplib.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <tuple>

#include <nlohmann/json.hpp>

#include "sandbox/sandbox.h"
#include "util/strings.h"

namespace enrolsync::sandbox {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

const char* kToken = "probe-token";

fs::path ProbeDir() { return fs::path(ENROLSYNC_SHARED_MOODLE) / "probes"; }

int FileNumber(const std::string& name) { return std::atoi(name.c_str()); }

std::vector<std::string> ProbeFiles() {
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(ProbeDir(), ec)) {
    std::string n = e.path().filename().string();
    if (e.path().extension() == ".json" && !n.empty() && std::isdigit(static_cast<unsigned char>(n[0]))) {
      out.push_back(n);
    }
  }
  std::sort(out.begin(), out.end(), [](const std::string& a, const std::string& b) {
    return FileNumber(a) != FileNumber(b) ? FileNumber(a) < FileNumber(b) : a < b;
  });
  if (out.empty()) out.push_back("MISSING-probes-directory");
  return out;
}

struct Probe {
  std::string file;
  int number = 0;
  json j;
};

const std::vector<Probe>& AllProbes() {
  static const std::vector<Probe> all = [] {
    std::vector<Probe> v;
    for (const std::string& f : ProbeFiles()) {
      std::ifstream in(ProbeDir() / f);
      if (!in) continue;
      std::stringstream ss;
      ss << in.rdbuf();
      json j = json::parse(ss.str(), nullptr, false);
      // Reading a missing key of a const json is undefined behaviour (it
      // crashed the replay under load): give every probe each key read.
      if (j.is_object()) {
        for (const char* key : {"function", "http_status", "request_form_body", "response_body", "state_before",
                                "state_after", "state_diff"}) {
          if (!j.contains(key)) j[key] = nullptr;
        }
      }
      v.push_back({f, FileNumber(f), std::move(j)});
    }
    return v;
  }();
  return all;
}

using Form = std::vector<std::pair<std::string, std::string>>;

Form ParseForm(const std::string& body) {
  Form vars;
  for (const std::string& part : Split(body, '&')) {
    auto eq = part.find('=');
    vars.emplace_back(UrlDecode(part.substr(0, eq)), eq == std::string::npos ? "" : UrlDecode(part.substr(eq + 1)));
  }
  return vars;
}

std::string Encode(const Form& vars) {
  std::string out;
  for (const auto& [k, v] : vars) {
    if (!out.empty()) out += '&';
    out += UrlEncode(k) + "=" + UrlEncode(k == "wstoken" && v == "TOKEN" ? std::string(kToken) : v);
  }
  return out;
}

// "users[3][email]" -> {"users", "3", "email"}
std::vector<std::string> KeyParts(const std::string& key) {
  std::vector<std::string> parts;
  std::size_t lb = key.find('[');
  parts.push_back(key.substr(0, lb));
  while (lb != std::string::npos) {
    std::size_t rb = key.find(']', lb);
    if (rb == std::string::npos) break;
    parts.push_back(key.substr(lb + 1, rb - lb - 1));
    lb = key.find('[', rb);
  }
  return parts;
}

// items[index][field] of a form, by index.
std::map<int, std::map<std::string, std::string>> Items(const Form& form, const std::string& base) {
  std::map<int, std::map<std::string, std::string>> out;
  for (const auto& [k, v] : form) {
    auto p = KeyParts(k);
    if (p.size() == 3 && p[0] == base) out[std::atoi(p[1].c_str())][p[2]] = v;
  }
  return out;
}

bool IsError(const json& j) { return j.is_object() && j.contains("exception"); }

json Response(const Probe& p) {
  if (!p.j["response_body"].is_string()) return nullptr;
  return json::parse(p.j["response_body"].get<std::string>(), nullptr, false);
}

bool Succeeded(const Probe& p) {
  json r = Response(p);
  return p.j["http_status"].is_number() && p.j["http_status"].get<int>() == 200 && !r.is_discarded() && !IsError(r);
}

bool IsTable(const json& v) { return v.is_array(); }

// ---------------------------------------------------------------------------
// The world a probe starts from.

struct World {
  std::map<long long, json> users;    // id -> users row
  std::map<long long, json> courses;  // id -> course row
  std::map<long long, std::map<long long, json>> instances;  // courseid -> enrolid -> row
  // Every user_enrolments / role_assignments row recorded so far, by id:
  // upserted from each recorded state, dropped when a recorded diff removes it.
  std::map<long long, json> ue, ra;
};

void TrackRows(std::map<long long, json>& rows, const json& state, const char* table, const char* key) {
  if (!state.is_object() || !state.contains(table) || !IsTable(state[table])) return;
  for (const json& r : state[table]) rows[r[key].get<long long>()] = r;
}

void DropRemoved(World& w, const json& diff) {
  if (!diff.is_object()) return;
  for (auto [table, key, rows] : {std::tuple{"user_enrolments", "ueid", &w.ue}, std::tuple{"role_assignments", "raid", &w.ra}}) {
    if (!diff.contains(table) || !diff[table].is_object()) continue;
    for (const json& r : diff[table].value("removed", json::array())) rows->erase(r[key].get<long long>());
  }
}

void NoteUser(World& w, const json& row) {
  long long id = row["id"].get<long long>();
  json& u = w.users[id];
  if (u.is_null()) u = json::object();
  for (auto it = row.begin(); it != row.end(); ++it) u[it.key()] = it.value();
}

// Applies the rows of a recorded state (before or after a call).
void ApplySnapshot(World& w, const json& state) {
  if (!state.is_object()) return;
  TrackRows(w.ue, state, "user_enrolments", "ueid");
  TrackRows(w.ra, state, "role_assignments", "raid");
  if (state.contains("users") && IsTable(state["users"])) {
    for (const json& r : state["users"]) NoteUser(w, r);
  }
  if (state.contains("enrol_instances") && IsTable(state["enrol_instances"])) {
    std::map<long long, std::map<long long, json>> by_course;
    for (const json& r : state["enrol_instances"]) by_course[r["courseid"].get<long long>()][r["enrolid"].get<long long>()] = r;
    for (auto& [c, rows] : by_course) w.instances[c] = rows;  // the recorded set replaces the known one
  }
  if (state.contains("user_enrolments") && IsTable(state["user_enrolments"])) {
    for (const json& ue : state["user_enrolments"]) {
      long long c = ue["courseid"].get<long long>();
      long long e = ue["enrolid"].get<long long>();
      json& inst = w.instances[c][e];
      if (inst.is_null()) inst = {{"enrolid", e}, {"courseid", c}, {"enrol", ue["enrol"]}, {"roleid", 5}};
      inst["status"] = ue["enrol_status"];
      inst["customint1"] = ue["enrol_customint1"];
      if (!w.courses.count(c)) w.courses[c] = {{"id", c}, {"shortname", ue["course"]}, {"fullname", ue["course"]}};
    }
  }
}

// Global facts: the context id of every course any probe shows.
std::map<long long, long long> CourseContexts() {
  std::map<long long, long long> out;
  for (const Probe& p : AllProbes()) {
    for (const char* st : {"state_before", "state_after"}) {
      const json& s = p.j[st];
      if (!s.is_object()) continue;
      if (s.contains("role_assignments") && IsTable(s["role_assignments"])) {
        for (const json& r : s["role_assignments"]) out[r["courseid"].get<long long>()] = r["contextid"].get<long long>();
      }
      if (s.contains("course_context") && IsTable(s["course_context"])) {
        for (const json& r : s["course_context"]) out[r["courseid"].get<long long>()] = r["contextid"].get<long long>();
      }
    }
  }
  return out;
}

// The effects of a successful call on the world, from its request and answer.
void ApplyCall(World& w, const Probe& p) {
  if (!Succeeded(p) || !p.j["request_form_body"].is_string()) return;
  const std::string fn = p.j.value("function", "");
  Form form = ParseForm(p.j["request_form_body"].get<std::string>());
  json resp = Response(p);
  if (fn == "core_user_create_users" && resp.is_array()) {
    auto items = Items(form, "users");
    std::size_t i = 0;
    for (auto& [idx, f] : items) {
      if (i >= resp.size()) break;
      json u = {{"id", resp[i]["id"]}, {"username", f["username"]}, {"auth", f.count("auth") ? f["auth"] : "manual"},
                {"firstname", f["firstname"]}, {"lastname", f["lastname"]}, {"email", f["email"]},
                {"idnumber", f.count("idnumber") ? f["idnumber"] : ""}, {"suspended", 0}, {"deleted", 0},
                {"confirmed", 1}};
      NoteUser(w, u);
      ++i;
    }
  } else if (fn == "core_course_create_courses" && resp.is_array()) {
    auto items = Items(form, "courses");
    std::size_t i = 0;
    for (auto& [idx, f] : items) {
      if (i >= resp.size()) break;
      long long id = resp[i]["id"].get<long long>();
      long long cat = 1;
      ParseInt64(f["categoryid"], &cat);
      w.courses[id] = {{"id", id}, {"fullname", f["fullname"]}, {"shortname", f["shortname"]}, {"category", cat},
                       {"idnumber", f.count("idnumber") ? f["idnumber"] : ""}};
      ++i;
    }
  } else if (fn == "core_user_update_users") {
    for (auto& [idx, f] : Items(form, "users")) {
      long long id = 0;
      if (!ParseInt64(f["id"], &id) || !w.users.count(id)) continue;
      if (f.count("suspended")) w.users[id]["suspended"] = f["suspended"] == "1" ? 1 : 0;
    }
  } else if (fn == "core_user_delete_users") {
    for (const auto& [k, v] : form) {
      long long id = 0;
      if (KeyParts(k)[0] != "userids" || !ParseInt64(v, &id) || !w.users.count(id)) continue;
      json& u = w.users[id];
      if (u.value("deleted", 0) == 1) continue;
      u["deleted"] = 1;
      u["username"] = u.value("email", "") + ".1795644864";
      u["email"] = "9f4155b398edad331b40e51240b5f4c4";
    }
  }
}

// Ids a request names: (kind, id) with kind "user" or "course".
std::vector<std::pair<std::string, long long>> RequestIds(const Probe& p) {
  std::vector<std::pair<std::string, long long>> out;
  if (!p.j["request_form_body"].is_string()) return out;
  Form form = ParseForm(p.j["request_form_body"].get<std::string>());
  std::map<std::string, std::string> top;
  for (const auto& [k, v] : form) top[k] = v;
  for (const auto& [k, v] : form) {
    auto parts = KeyParts(k);
    const std::string& last = parts.back();
    std::string kind;
    if (last == "userid" || parts[0] == "userids") kind = "user";
    else if (last == "courseid" || last == "metacourseid") kind = "course";
    else if (last == "instanceid") kind = "course";
    else if (parts[0] == "values" && top["field"] == "id") kind = "user";
    long long n = 0;
    if (!kind.empty() && ParseInt64(v, &n) && n > 2 && n < 1000000) out.emplace_back(kind, n);
  }
  return out;
}

json Placeholder(const std::string& kind, long long id) {
  std::string n = std::to_string(id);
  if (kind == "user") {
    return {{"id", id}, {"username", "probe-x" + n}, {"auth", "ldap"}, {"firstname", "Probe"}, {"lastname", "X" + n},
            {"email", "probe-x" + n + "@probe.test"}, {"suspended", 0}, {"deleted", 0}, {"confirmed", 1}};
  }
  return {{"id", id}, {"fullname", "Probe course x" + n}, {"shortname", "probe-x" + n}, {"category", 1}};
}

// Moodle gave the three default instances (manual, guest, self) of each new
// course consecutive ids, courses in creation order; 02 records course 666's.
// So a course made by a recorded create call whose instances no probe shows
// gets those ids; others are left to the sandbox.
std::vector<json> DefaultInstances(long long courseid) {
  static const std::pair<long long, long long> anchor = [] {  // (courseid, manual enrolid)
    for (const Probe& p : AllProbes()) {
      const json& s = p.j["state_after"];
      if (p.j.value("function", "") != "core_course_create_courses" || !s.is_object() || !s.contains("enrol_instances")) continue;
      for (const json& r : s["enrol_instances"]) {
        if (r["enrol"] == "manual") return std::pair{r["courseid"].get<long long>(), r["enrolid"].get<long long>()};
      }
    }
    return std::pair{0LL, 0LL};
  }();
  static const std::set<long long> created = [] {
    std::set<long long> ids;
    for (const Probe& p : AllProbes()) {
      json r = Response(p);
      if (p.j.value("function", "") != "core_course_create_courses" || !r.is_array()) continue;
      for (const json& c : r) ids.insert(c["id"].get<long long>());
    }
    return ids;
  }();
  std::vector<json> out;
  if (anchor.first == 0 || !created.count(courseid) || courseid < anchor.first) return out;
  // Consecutive only as long as no other course was made in between.
  for (long long c = anchor.first; c < courseid; ++c) {
    if (!created.count(c)) return out;
  }
  long long base = anchor.second + 3 * (courseid - anchor.first);
  out.push_back({{"enrolid", base}, {"courseid", courseid}, {"enrol", "manual"}, {"status", 0}, {"sortorder", 0},
                 {"name", nullptr}, {"roleid", 5}, {"customint1", 1}, {"customint2", nullptr}});
  out.push_back({{"enrolid", base + 1}, {"courseid", courseid}, {"enrol", "guest"}, {"status", 1}, {"sortorder", 1},
                 {"name", nullptr}, {"roleid", 0}, {"customint1", nullptr}, {"customint2", nullptr}});
  out.push_back({{"enrolid", base + 2}, {"courseid", courseid}, {"enrol", "self"}, {"status", 1}, {"sortorder", 2},
                 {"name", nullptr}, {"roleid", 5}, {"customint1", 0}, {"customint2", 0}});
  return out;
}

// The seed for probe `index`: the world before it, plus its state_before rows.
json BuildSeed(std::size_t index) {
  const auto& all = AllProbes();
  World w;
  for (std::size_t k = 0; k < index; ++k) {
    ApplySnapshot(w, all[k].j["state_before"]);
    ApplyCall(w, all[k]);
    DropRemoved(w, all[k].j["state_diff"]);
    ApplySnapshot(w, all[k].j["state_after"]);
  }
  const Probe& p = all[index];
  World earlier = w;  // without this probe's own rows
  ApplySnapshot(w, p.j["state_before"]);
  for (const auto& [kind, id] : RequestIds(p)) {
    if (kind == "user" && !w.users.count(id)) w.users[id] = Placeholder(kind, id);
    if (kind == "course" && !w.courses.count(id)) w.courses[id] = Placeholder(kind, id);
  }
  static const std::map<long long, long long> contexts = CourseContexts();
  json seed = json::object();
  seed["users"] = json::array();
  for (auto& [id, u] : w.users) seed["users"].push_back(u);
  seed["course"] = json::array();
  seed["course_context"] = json::array();
  seed["enrol_instances"] = json::array();
  for (auto& [id, c] : w.courses) {
    seed["course"].push_back(c);
    if (auto it = contexts.find(id); it != contexts.end()) {
      seed["course_context"].push_back({{"contextid", it->second}, {"courseid", id},
                                        {"path", "/1/3/" + std::to_string(it->second)}, {"depth", 3}});
    }
    auto it = w.instances.find(id);
    if (it != w.instances.end()) {
      for (auto& [eid, row] : it->second) seed["enrol_instances"].push_back(row);
    } else if (auto d = DefaultInstances(id); !d.empty()) {
      for (const json& row : d) seed["enrol_instances"].push_back(row);
    }
  }
  const json& sb = p.j["state_before"];
  if (sb.is_object()) {
    for (const char* t : {"user_enrolments", "role_assignments", "groups", "groups_members", "notifications_to_users",
                          "user_preferences"}) {
      if (sb.contains(t) && IsTable(sb[t])) seed[t] = sb[t];
    }
    // A state_before may be cut down to the users of the call (e.g. 25 lists
    // u02 only, not the course's teacher). For the courses it shows, the
    // other users' rows recorded earlier are carried over.
    std::set<long long> courses;
    std::set<std::pair<long long, long long>> shown;  // (course, user)
    for (const char* t : {"user_enrolments", "role_assignments"}) {
      if (!seed.contains(t)) continue;
      for (const json& r : seed[t]) {
        courses.insert(r["courseid"].get<long long>());
        shown.insert({r["courseid"].get<long long>(), r["userid"].get<long long>()});
      }
    }
    for (auto [table, key, rows] : {std::tuple{"user_enrolments", "ueid", &earlier.ue},
                                    std::tuple{"role_assignments", "raid", &earlier.ra}}) {
      if (!seed.contains(table)) continue;
      std::set<long long> ids;
      for (const json& r : seed[table]) ids.insert(r[key].get<long long>());
      for (auto& [id, r] : *rows) {
        long long c = r["courseid"].get<long long>(), u = r["userid"].get<long long>();
        if (courses.count(c) && !shown.count({c, u}) && !ids.count(id) && w.users.count(u)) seed[table].push_back(r);
      }
    }
  }
  return seed;
}

// ---------------------------------------------------------------------------
// Comparing states.

// Row ids per table; tables without one are multisets.
const std::map<std::string, std::string> kKeys = {
    {"users", "id"},           {"course", "id"},          {"course_context", "contextid"},
    {"enrol_instances", "enrolid"}, {"user_enrolments", "ueid"}, {"role_assignments", "raid"},
    {"groups", "groupid"},     {"groups_members", "gmid"}};
// Recorded columns the sandbox does not model.
const std::map<std::string, std::set<std::string>> kUnmodelled = {
    {"course", {"relativedatesmode", "has_cacherev", "showactivitydates", "showcompletionconditions", "pdfexportfont",
                "summary", "originalcourseid"}},
    {"enrol_instances", {"enrolperiod", "enrolstartdate", "enrolenddate", "expirynotify"}},
    {"users", {"mnethostid", "policyagreed", "password_shape"}}};
// (nid: a notification's row id, recorded for some rows only.)
const std::set<std::string> kVolatile = {"timecreated", "timemodified", "timeadded", "startdate", "enddate", "nid"};
// Recorded tables the sandbox has no rows for; their recorded diff must be empty.
const std::set<std::string> kNotModelledTables = {"sessions", "task_adhoc", "course_blocks"};
const std::set<std::string> kCountTables = {"probe_users_count", "probe_t_users", "probe_users_deleted0"};

struct Existing {
  std::map<std::string, std::set<long long>> ids;  // kind -> ids present before the call
};

std::string RefKind(const std::string& table, const std::string& field, const json& row) {
  if (field == "userid" || field == "useridto" || field == "useridfrom") return "user";
  if (field == "courseid") return "course";
  if (field == "enrolid") return "enrol";
  if (field == "contextid" && table != "course_context") return "context";
  if (field == "groupid" && table != "groups") return "group";
  if (field == "itemid" && row.value("component", "").rfind("enrol_", 0) == 0) return "enrol";
  if (table == "enrol_instances" && row.value("enrol", "") == "meta") {
    if (field == "customint1") return "course";
    if (field == "customint2") return "group";
  }
  return "";
}

json NormValue(const std::string& table, const std::string& field, const json& v) {
  // A context path ends in the context's own id.
  if (table == "course_context" && field == "path" && v.is_string()) {
    return std::regex_replace(v.get<std::string>(), std::regex("/[0-9]+$"), "/<self>");
  }
  if (table == "users" && v.is_string()) {
    std::string s = v.get<std::string>();
    if (field == "username") return std::regex_replace(s, std::regex("^(.*@.*)\\.[0-9]{9,}$"), "$1.<time>");
    if (field == "email" && std::regex_match(s, std::regex("^[0-9a-f]{32}$"))) return "<hash>";
  }
  return v;
}

// A row without its volatile and unmodelled columns, new references as "new";
// `drop_key` also drops the row's own id.
json NormRow(const std::string& table, const json& row, const Existing& ex, bool drop_key, std::string* unknown) {
  json out = json::object();
  auto key = kKeys.find(table);
  auto unmodelled = kUnmodelled.find(table);
  for (auto it = row.begin(); it != row.end(); ++it) {
    const std::string& f = it.key();
    if (kVolatile.count(f)) continue;
    if (unmodelled != kUnmodelled.end() && unmodelled->second.count(f)) continue;
    if (drop_key && key != kKeys.end() && key->second == f) continue;
    json v = NormValue(table, f, it.value());
    std::string kind = RefKind(table, f, row);
    if (!kind.empty() && v.is_number_integer() && v.get<long long>() != 0) {
      auto k = ex.ids.find(kind);
      if (k == ex.ids.end() || !k->second.count(v.get<long long>())) v = "new";
    }
    out[f] = v;
  }
  (void)unknown;
  return out;
}

Existing ExistingIds(const json& before) {
  Existing ex;
  auto add = [&](const char* table, const char* field, const char* kind) {
    if (!before.contains(table)) return;
    for (const json& r : before[table]) ex.ids[kind].insert(r[field].get<long long>());
  };
  add("users", "id", "user");
  add("course", "id", "course");
  add("enrol_instances", "enrolid", "enrol");
  add("course_context", "contextid", "context");
  add("groups", "groupid", "group");
  ex.ids["course"].insert(1);
  ex.ids["user"].insert({1, 2});
  return ex;
}

std::vector<std::string> SortedDumps(const std::vector<json>& rows) {
  std::vector<std::string> out;
  for (const json& r : rows) out.push_back(r.dump());
  std::sort(out.begin(), out.end());
  return out;
}

// The sandbox's rows of a count table.
long long Count(const std::string& table, const json& state) {
  long long n = 0;
  for (const json& u : state["users"]) {
    if (u["deleted"].get<long long>() != 0) continue;
    std::string name = u["username"].get<std::string>();
    if (table == "probe_users_count" && name.rfind("probe-u", 0) == 0) ++n;
    if (table == "probe_t_users" && name.rfind("probe-t", 0) == 0) ++n;
    if (table == "probe_users_deleted0") ++n;
  }
  return n;
}

// Compares the sandbox's change of one table with the recorded diff; returns
// the differences, one a line ("" when they agree).
// `failed_mail_items` > 0: the lab's mail failed in this call ("Message was
// not sent."), which lost some of the welcome notifications Moodle writes
// when mail works (probe 25): the recorded ones must be there, plus at most
// one per item of the call.
std::string CompareTable(const std::string& table, const json& recorded_diff, const json& before, const json& after,
                         const Existing& ex, const Existing& rex, std::size_t failed_mail_items) {
  std::ostringstream err;
  json rd = recorded_diff.is_object() ? recorded_diff : json{{"added", json::array()}, {"removed", json::array()},
                                                            {"changed", json::array()}};
  if (kCountTables.count(table)) {
    long long want = 0;
    for (const json& r : rd["added"]) want += r["n"].get<long long>();
    for (const json& r : rd["removed"]) want -= r["n"].get<long long>();
    long long got = Count(table, after) - Count(table, before);
    if (want != got) err << table << ": count changed by " << got << ", recorded " << want << "\n";
    return err.str();
  }
  if (kNotModelledTables.count(table)) {
    if (!rd["added"].empty() || !rd["removed"].empty() || !rd["changed"].empty()) {
      err << table << ": recorded a change in a table the sandbox does not model\n";
    }
    return err.str();
  }
  if (!before.contains(table)) return table + ": the sandbox has no such table\n";
  std::string unknown;
  auto key = kKeys.find(table);
  if (key != kKeys.end()) {
    const std::string& k = key->second;
    std::map<long long, json> b, a;
    for (const json& r : before[table]) b[r[k].get<long long>()] = r;
    for (const json& r : after[table]) a[r[k].get<long long>()] = r;
    // removed
    std::set<long long> want_removed, got_removed;
    for (const json& r : rd["removed"]) want_removed.insert(r[k].get<long long>());
    for (auto& [id, r] : b) if (!a.count(id)) got_removed.insert(id);
    if (want_removed != got_removed) {
      err << table << ": removed ids differ: recorded";
      for (long long id : want_removed) err << " " << id;
      err << "; sandbox";
      for (long long id : got_removed) err << " " << id;
      err << "\n";
    }
    // changed: key -> field -> [old, new], volatile/unmodelled fields left out
    std::map<long long, json> want_changed, got_changed;
    for (const json& c : rd["changed"]) {
      json ch = json::object();
      for (auto it = c["changes"].begin(); it != c["changes"].end(); ++it) {
        if (kVolatile.count(it.key())) continue;
        auto um = kUnmodelled.find(table);
        if (um != kUnmodelled.end() && um->second.count(it.key())) continue;
        ch[it.key()] = json::array({NormValue(table, it.key(), it.value()[0]), NormValue(table, it.key(), it.value()[1])});
      }
      if (!ch.empty()) want_changed[c["key"].get<long long>()] = ch;
    }
    for (auto& [id, rb] : b) {
      auto it = a.find(id);
      if (it == a.end()) continue;
      json nb = NormRow(table, rb, ex, false, &unknown), na = NormRow(table, it->second, ex, false, &unknown);
      json ch = json::object();
      for (auto f = na.begin(); f != na.end(); ++f) {
        if (!nb.contains(f.key()) || nb[f.key()] != f.value()) ch[f.key()] = json::array({nb.value(f.key(), json()), f.value()});
      }
      if (!ch.empty()) got_changed[id] = ch;
    }
    for (auto& [id, ch] : want_changed) {
      auto it = got_changed.find(id);
      if (it == got_changed.end()) err << table << " " << id << ": recorded change " << ch.dump() << " not made\n";
      else if (it->second != ch) err << table << " " << id << ": changed " << it->second.dump() << ", recorded " << ch.dump() << "\n";
    }
    for (auto& [id, ch] : got_changed) {
      if (!want_changed.count(id)) err << table << " " << id << ": unexpected change " << ch.dump() << "\n";
    }
    // added
    std::vector<json> want_added, got_added;
    for (const json& r : rd["added"]) want_added.push_back(NormRow(table, r, rex, true, &unknown));
    for (auto& [id, r] : a) if (!b.count(id)) got_added.push_back(NormRow(table, r, ex, true, &unknown));
    auto wa = SortedDumps(want_added), ga = SortedDumps(got_added);
    if (wa != ga) {
      err << table << ": added rows differ\n  recorded:";
      for (auto& s : wa) err << "\n    " << s;
      err << "\n  sandbox:";
      for (auto& s : ga) err << "\n    " << s;
      err << "\n";
    }
    return err.str();
  }
  // Multisets.
  std::multiset<std::string> b, a;
  for (const json& r : before[table]) b.insert(NormRow(table, r, ex, false, &unknown).dump());
  for (const json& r : after[table]) a.insert(NormRow(table, r, ex, false, &unknown).dump());
  std::vector<std::string> got_added, got_removed, want_added, want_removed;
  std::set_difference(a.begin(), a.end(), b.begin(), b.end(), std::back_inserter(got_added));
  std::set_difference(b.begin(), b.end(), a.begin(), a.end(), std::back_inserter(got_removed));
  for (const json& r : rd["added"]) want_added.push_back(NormRow(table, r, rex, false, &unknown).dump());
  for (const json& r : rd["removed"]) want_removed.push_back(NormRow(table, r, rex, false, &unknown).dump());
  std::sort(want_added.begin(), want_added.end());
  std::sort(want_removed.begin(), want_removed.end());
  auto show = [&](const char* what, const std::vector<std::string>& want, const std::vector<std::string>& got) {
    if (want == got) return;
    err << table << ": " << what << " rows differ\n  recorded:";
    for (auto& s : want) err << "\n    " << s;
    err << "\n  sandbox:";
    for (auto& s : got) err << "\n    " << s;
    err << "\n";
  };
  if (table == "notifications_to_users" && failed_mail_items > 0) {
    std::vector<std::string> missing;
    std::set_difference(want_added.begin(), want_added.end(), got_added.begin(), got_added.end(),
                        std::back_inserter(missing));
    if (!missing.empty() || got_added.size() > failed_mail_items) show("added", want_added, got_added);
  } else {
    show("added", want_added, got_added);
  }
  show("removed", want_removed, got_removed);
  return err.str();
}

// ---------------------------------------------------------------------------
// Comparing answers.

const std::set<std::string> kVolatileKeys = {"timecreated", "timemodified", "firstaccess", "lastaccess",
                                             "lastcourseaccess", "profileimageurl", "profileimageurlsmall",
                                             "courseimage", "startdate", "enddate", "cacherev"};

std::string MaskDigits(const std::string& s) { return std::regex_replace(s, std::regex("[0-9]+"), "#"); }

bool IsCreateFunction(const std::string& fn) {
  return fn == "core_user_create_users" || fn == "core_course_create_courses" ||
         fn == "core_course_create_categories" || fn == "core_group_create_groups" || fn == "core_cohort_create_cohorts";
}

// "" when `actual` equals `expected` but for volatile keys.
std::string ValueDiff(const json& expected, const json& actual, const std::string& path, bool created_ids) {
  if (expected.type() != actual.type() &&
      !(expected.is_number_integer() && actual.is_number_integer())) {
    return path + ": expected " + expected.dump().substr(0, 200) + ", got " + actual.dump().substr(0, 200);
  }
  if (expected.is_object()) {
    for (auto it = expected.begin(); it != expected.end(); ++it) {
      if (!actual.contains(it.key())) return path + "." + it.key() + ": missing";
      if (kVolatileKeys.count(it.key()) || (created_ids && it.key() == "id")) continue;
      std::string d = ValueDiff(it.value(), actual[it.key()], path + "." + it.key(), created_ids);
      if (!d.empty()) return d;
    }
    for (auto it = actual.begin(); it != actual.end(); ++it) {
      if (!expected.contains(it.key())) return path + "." + it.key() + ": unexpected key";
    }
    return "";
  }
  if (expected.is_array()) {
    if (expected.size() != actual.size()) {
      return path + ": expected " + std::to_string(expected.size()) + " elements, got " +
             std::to_string(actual.size()) + ": " + actual.dump().substr(0, 300);
    }
    for (std::size_t i = 0; i < expected.size(); ++i) {
      std::string d = ValueDiff(expected[i], actual[i], path + "[" + std::to_string(i) + "]", created_ids);
      if (!d.empty()) return d;
    }
    return "";
  }
  if (expected != actual) return path + ": expected " + expected.dump() + ", got " + actual.dump();
  return "";
}

// ---------------------------------------------------------------------------

struct Lab {
  std::unique_ptr<Sandbox> sandbox;
  std::unique_ptr<httplib::Client> client;
  fs::path dir;

  ~Lab() {
    if (sandbox) sandbox->Stop();
    std::error_code ec;
    if (!dir.empty()) fs::remove_all(dir, ec);
  }
  void Start(const std::string& name) {
    dir = fs::temp_directory_path() / ("enrolsync-probe-" + name + "-" + std::to_string(::getpid()));
    fs::remove_all(dir);
    Options o;
    o.state_dir = dir.string();
    o.token = kToken;
    auto s = Sandbox::Start(o);
    ASSERT_TRUE(s) << s.error().message;
    sandbox = std::move(*s);
    client = std::make_unique<httplib::Client>("127.0.0.1", sandbox->port());
    client->set_read_timeout(120, 0);
  }
  json State() {
    auto s = sandbox->ProbeState();
    EXPECT_TRUE(s) << s.error().message;
    return s ? json::parse(*s) : json::object();
  }
  std::pair<int, std::string> Post(const std::string& body) {
    auto res = client->Post("/webservice/rest/server.php?moodlewsrestformat=json", body,
                            "application/x-www-form-urlencoded");
    if (!res) return {-1, "no response: " + httplib::to_string(res.error())};
    return {res->status, res->body};
  }
};

class ProbeReplay : public ::testing::TestWithParam<std::string> {};

TEST_P(ProbeReplay, ReproducesTheRecordedStateDiffAndAnswer) {
  ASSERT_TRUE(fs::is_directory(ProbeDir())) << "ENROLSYNC_SHARED_MOODLE probes are missing: " << ProbeDir();
  const auto& all = AllProbes();
  std::size_t index = 0;
  while (index < all.size() && all[index].file != GetParam()) ++index;
  ASSERT_LT(index, all.size());
  const Probe& p = all[index];
  ASSERT_FALSE(p.j.is_discarded()) << "not JSON: " << p.file;
  // CLI probes ("(CLI) ...") are named by their file: NN-CLI-<what>-...
  std::string fn = p.j.value("function", "");
  if (p.file.find("-CLI-") != std::string::npos) fn = "CLI-" + Split(p.file, '-')[2];
  // The throughput probes end their body with a note ("   [first of the 20
  // batch bodies; ...]"), which is not part of what was sent.
  const std::string body = p.j["request_form_body"].is_string()
      ? std::regex_replace(p.j["request_form_body"].get<std::string>(), std::regex("\\s+\\[[^=&]*\\]$"), "")
      : "";
  const std::string response_text = p.j["response_body"].is_string() ? p.j["response_body"].get<std::string>() : "";

  if (body.empty() && fn.rfind("CLI-", 0) != 0) {
    GTEST_SKIP() << "no single call recorded: an aggregate throughput measurement";
  }

  Lab lab;
  ASSERT_NO_FATAL_FAILURE(lab.Start(std::to_string(p.number)));
  json seed = BuildSeed(index);
  // Replay at the time of the recording: the latest time the recorded rows
  // carry (a "future" timestart of the recording is in the past by now).
  long long recorded = 0;
  std::function<void(const json&)> latest = [&](const json& j) {
    if (j.is_object()) {
      for (const char* k : {"timecreated", "timemodified"})
        if (j.contains(k) && j[k].is_number_integer()) recorded = std::max(recorded, j[k].get<long long>());
      for (const auto& [key, v] : j.items()) latest(v);
    } else if (j.is_array()) {
      for (const auto& v : j) latest(v);
    }
  };
  latest(p.j["state_before"]);
  Sandbox::SetFixedTime(recorded);
  struct RealClockAgain {
    ~RealClockAgain() { Sandbox::SetFixedTime(0); }
  } real_clock_again;
  Status seeded = lab.sandbox->SeedProbeState(seed.dump());
  ASSERT_TRUE(seeded) << seeded.error().message;
  json before = lab.State();

  int status = 200;
  std::string answer;
  if (fn == "CLI-set_instance_status") {
    std::smatch m;
    ASSERT_TRUE(std::regex_search(response_text, m, std::regex("course (\\S+) enrol (\\w+) instance (\\d+) status -> (\\d)")))
        << response_text;
    long long courseid = 0;
    for (const json& c : before["course"]) if (c["shortname"] == m[1].str()) courseid = c["id"].get<long long>();
    ASSERT_NE(courseid, 0) << "course " << m[1].str() << " not seeded";
    Status st = lab.sandbox->SetInstanceStatus(courseid, m[2].str(), std::stoi(m[4].str()));
    ASSERT_TRUE(st) << st.error().message;
  } else if (fn == "CLI-adhoc_task") {
    // Moodle found no queued task (meta sync happens inside the calls); the
    // sandbox has no queue, so running it does nothing, and the recorded
    // state diff (empty) must hold.
    ASSERT_NE(response_text.find("Ran 0 adhoc tasks"), std::string::npos) << response_text;
  } else if (fn == "CLI-scheduled_task") {
    ASSERT_NE(response_text.find("enrol_meta\\task\\enrol_meta_sync"), std::string::npos) << response_text;
    Status st = lab.sandbox->RunMetaSyncTask();
    ASSERT_TRUE(st) << st.error().message;
  } else {
    auto [s, b] = lab.Post(Encode(ParseForm(body)));
    status = s;
    answer = b;
  }
  json after = lab.State();
  SCOPED_TRACE(p.file + " -> " + answer.substr(0, 300));

  // The answer.
  if (fn.rfind("CLI-", 0) != 0) {
    EXPECT_EQ(status, p.j["http_status"].is_number() ? p.j["http_status"].get<int>() : 200);
    json actual = json::parse(answer, nullptr, false);
    ASSERT_FALSE(actual.is_discarded()) << "not JSON: " << answer.substr(0, 200);
    if (!p.j["response_body"].is_string()) {
      // Recorded as aggregate results only; every call there succeeded.
      EXPECT_FALSE(IsError(actual)) << answer.substr(0, 300);
    } else {
      json expected = json::parse(response_text);
      if (IsError(expected) && expected["errorcode"] == "Message was not sent.") expected = nullptr;
      if (IsError(expected)) {
        ASSERT_TRUE(IsError(actual)) << "expected an error, got " << answer.substr(0, 300);
        EXPECT_EQ(actual["exception"], expected["exception"]);
        EXPECT_EQ(actual["errorcode"], expected["errorcode"]);
        EXPECT_EQ(MaskDigits(actual.value("message", "")), MaskDigits(expected.value("message", "")));
      } else {
        EXPECT_EQ(ValueDiff(expected, actual, "$", IsCreateFunction(fn)), "");
      }
    }
  }

  // The state.
  const json& diff = p.j["state_diff"];
  if (!diff.is_object()) return;  // no state recorded: the answer is all there is
  std::set<std::string> tables;
  for (const char* st : {"state_before", "state_after", "state_diff"}) {
    const json& s = p.j[st];
    if (!s.is_object()) continue;
    for (auto it = s.begin(); it != s.end(); ++it) {
      if (std::string(st) == "state_diff" || IsTable(it.value())) tables.insert(it.key());
    }
  }
  // A reference is "new" when it names no object seeded (recorded side) or
  // present before the call (sandbox side, which adds default instances).
  Existing ex_sandbox = ExistingIds(before);
  Existing ex_recorded = ExistingIds(seed);
  std::size_t failed_mail_items = 0;
  if (response_text.find("\"errorcode\":\"Message was not sent.\"") != std::string::npos) {
    for (const auto& [k, v] : ParseForm(body)) failed_mail_items += KeyParts(k).back() == "userid";
  }
  std::string problems;
  for (const std::string& t : tables) {
    problems += CompareTable(t, diff.contains(t) ? diff[t] : json(), before, after, ex_sandbox, ex_recorded,
                             failed_mail_items);
  }
  EXPECT_EQ(problems, "");
}

std::string CaseName(const ::testing::TestParamInfo<std::string>& info) {
  std::string n = info.param;
  if (n.size() > 5 && n.substr(n.size() - 5) == ".json") n = n.substr(0, n.size() - 5);
  for (char& c : n) {
    if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
  }
  return "p" + n;
}

INSTANTIATE_TEST_SUITE_P(Recorded, ProbeReplay, ::testing::ValuesIn(ProbeFiles()), CaseName);

TEST(ProbeFiles, AllRecordedProbesArePresent) {
  ASSERT_TRUE(fs::is_directory(ProbeDir())) << ProbeDir();
  EXPECT_EQ(ProbeFiles().size(), 137u);
}

}  // namespace
}  // namespace enrolsync::sandbox
