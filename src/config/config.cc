#include "config/config.h"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <algorithm>

#include <toml++/toml.h>

#include "ops/hooks.h"
#include "plan/verify_policy.h"
#include "schedule/cron.h"
#include "util/secrets.h"
#include "util/strings.h"

namespace enrolsync::config {
namespace fs = std::filesystem;

std::vector<model::Role> StandardRoles() {
  return {{1, "manager"}, {2, "coursecreator"}, {3, "editingteacher"}, {4, "teacher"},
          {5, "student"}, {6, "guest"},         {7, "user"},           {8, "frontpage"}};
}

EnvLookup RealEnv() {
  return [](const std::string& name) -> std::optional<std::string> {
    const char* v = std::getenv(name.c_str());
    if (!v) return std::nullopt;
    return std::string(v);
  };
}

namespace {

// Reads a TOML table with a fixed set of allowed keys; every error names the
// file, line, section and key.
class Section {
 public:
  Section(const std::string& file, std::string name, const toml::table* table)
      : file_(file), name_(std::move(name)), table_(table) {}

  bool present() const { return table_ != nullptr; }

  Status CheckKeys(const std::set<std::string>& allowed) const {
    if (!table_) return Ok();
    for (const auto& [k, v] : *table_) {
      std::string key(k.str());
      if (!allowed.count(key)) {
        return Fail(ErrorCode::kConfig, Where(v) + "unknown key '" + key + "' in " + Label() +
                                            " (allowed: " + Join({allowed.begin(), allowed.end()}, ", ") + ")");
      }
    }
    return Ok();
  }

  Result<std::optional<std::string>> String(const std::string& key) const {
    const toml::node* n = Node(key);
    if (!n) return std::optional<std::string>();
    if (auto s = n->value<std::string>()) return std::optional<std::string>(*s);
    return Fail(ErrorCode::kConfig, Where(*n) + Label() + " " + key + " must be a string");
  }
  Result<std::string> RequiredString(const std::string& key) const {
    auto v = String(key);
    if (!v) return Fail(v.error());
    if (!*v || Trim(**v).empty())
      return Fail(ErrorCode::kConfig, file_ + ": " + Label() + " " + key + " is required");
    return **v;
  }
  Result<std::optional<long long>> Int(const std::string& key) const {
    const toml::node* n = Node(key);
    if (!n) return std::optional<long long>();
    if (auto i = n->value<int64_t>()) return std::optional<long long>(*i);
    return Fail(ErrorCode::kConfig, Where(*n) + Label() + " " + key + " must be an integer");
  }
  Result<std::optional<bool>> Bool(const std::string& key) const {
    const toml::node* n = Node(key);
    if (!n) return std::optional<bool>();
    if (auto b = n->value<bool>()) return std::optional<bool>(*b);
    return Fail(ErrorCode::kConfig, Where(*n) + Label() + " " + key + " must be true or false");
  }
  // A string, or an integer written as a number (default_category = 2).
  Result<std::optional<std::string>> StringOrInt(const std::string& key) const {
    const toml::node* n = Node(key);
    if (!n) return std::optional<std::string>();
    if (auto s = n->value<std::string>()) return std::optional<std::string>(*s);
    if (auto i = n->value<int64_t>()) return std::optional<std::string>(std::to_string(*i));
    return Fail(ErrorCode::kConfig, Where(*n) + Label() + " " + key + " must be a string or an integer");
  }
  template <class E>
  Result<E> Enum(const std::string& key, const std::map<std::string, E>& choices, E fallback) const {
    auto v = String(key);
    if (!v) return Fail(v.error());
    if (!*v) return fallback;
    auto it = choices.find(**v);
    if (it == choices.end()) {
      std::vector<std::string> names;
      for (const auto& [k, _] : choices) names.push_back(k);
      return Fail(ErrorCode::kConfig, Where(*Node(key)) + Label() + " " + key + " = \"" + **v +
                                          "\" is not one of: " + Join(names, " | "));
    }
    return it->second;
  }

  const toml::node* Node(const std::string& key) const { return table_ ? table_->get(key) : nullptr; }
  std::string Where(const toml::node& n) const {
    return file_ + ":" + std::to_string(n.source().begin.line) + ": ";
  }
  std::string Label() const { return name_.empty() ? "top level" : "[" + name_ + "]"; }
  const std::string& file() const { return file_; }

 private:
  std::string file_;
  std::string name_;
  const toml::table* table_;
};

std::string Resolve(const fs::path& base, const std::string& p) {
  if (p.empty()) return p;
  fs::path path(p);
  if (path.is_absolute()) return path.string();
  return (base / path).lexically_normal().string();
}

// `<key>_file` or `<key>_env`; an inline `<key>` is refused.
Result<std::string> Secret(const Section& s, const std::string& key, const fs::path& base, const EnvLookup& env,
                           bool required) {
  if (s.Node(key)) {
    return Fail(ErrorCode::kConfig, s.Where(*s.Node(key)) + s.Label() + " " + key +
                                        " must not be written in the config file; use " + key + "_file or " +
                                        key + "_env");
  }
  auto file = s.String(key + "_file");
  if (!file) return Fail(file.error());
  auto var = s.String(key + "_env");
  if (!var) return Fail(var.error());
  if (*file && *var)
    return Fail(ErrorCode::kConfig, s.file() + ": " + s.Label() + " give " + key + "_file or " + key + "_env, not both");
  std::string value;
  if (*file) {
    std::string path = Resolve(base, **file);
    std::ifstream in(path, std::ios::binary);
    if (!in)
      return Fail(ErrorCode::kConfig, s.file() + ": " + s.Label() + " " + key + "_file: cannot read '" + path + "'");
    std::stringstream ss;
    ss << in.rdbuf();
    value = Trim(ss.str());
    if (value.empty())
      return Fail(ErrorCode::kConfig, s.file() + ": " + s.Label() + " " + key + "_file: '" + path + "' is empty");
  } else if (*var) {
    auto v = env(**var);
    if (!v || v->empty())
      return Fail(ErrorCode::kConfig, s.file() + ": " + s.Label() + " " + key + "_env: environment variable " + **var +
                                          " is not set");
    value = Trim(*v);
  } else if (required) {
    return Fail(ErrorCode::kConfig, s.file() + ": " + s.Label() + " needs " + key + "_file or " + key + "_env");
  }
  RegisterSecret(value);
  return value;
}

#define TRY_ASSIGN(lhs, expr)            \
  do {                                   \
    auto _r = (expr);                    \
    if (!_r) return Fail(_r.error());    \
    lhs = std::move(*_r);                \
  } while (0)

#define TRY(expr)                        \
  do {                                   \
    auto _r = (expr);                    \
    if (!_r) return Fail(_r.error());    \
  } while (0)

Status LoadMoodle(const Section& s, const fs::path& base, const EnvLookup& env, moodle::ClientOptions* m) {
  if (!s.present()) return Fail(ErrorCode::kConfig, s.file() + ": [moodle] section is required");
  TRY(s.CheckKeys({"url", "token", "token_file", "token_env", "ca_file", "max_input_vars", "max_batch_rows", "batch_seconds",
                   "concurrency", "create_course_concurrency", "enrol_concurrency", "user_concurrency",
                   "timeout_seconds", "max_retries", "max_bisect_calls"}));
  TRY_ASSIGN(m->url, s.RequiredString("url"));
  while (!m->url.empty() && m->url.back() == '/') m->url.pop_back();
  if (m->url.rfind("http://", 0) != 0 && m->url.rfind("https://", 0) != 0)
    return Fail(ErrorCode::kConfig, s.file() + ": [moodle] url = \"" + m->url + "\" must start with http:// or https://");
  TRY_ASSIGN(m->token, Secret(s, "token", base, env, true));
  std::optional<std::string> ca;
  TRY_ASSIGN(ca, s.String("ca_file"));
  if (ca) m->ca_file = Resolve(base, *ca);
  auto positive = [&](const std::string& key, int* out, long long lo, long long hi) -> Status {
    std::optional<long long> v;
    TRY_ASSIGN(v, s.Int(key));
    if (!v) return Ok();
    if (*v < lo || *v > hi)
      return Fail(ErrorCode::kConfig, s.Where(*s.Node(key)) + "[moodle] " + key + " = " + std::to_string(*v) +
                                          " must be between " + std::to_string(lo) + " and " + std::to_string(hi));
    *out = static_cast<int>(*v);
    return Ok();
  };
  TRY(positive("max_input_vars", &m->max_input_vars, 100, 1000000));
  TRY(positive("max_batch_rows", &m->max_batch_rows, 1, 100000));
  TRY(positive("batch_seconds", &m->batch_seconds, 1, 300));
  TRY(positive("concurrency", &m->concurrency, 1, 16));
  // Per kind of write; left out: creates one at a time, the rest `concurrency`.
  TRY(positive("create_course_concurrency", &m->create_course_concurrency, 1, 16));
  TRY(positive("enrol_concurrency", &m->enrol_concurrency, 1, 16));
  TRY(positive("user_concurrency", &m->user_concurrency, 1, 16));
  TRY(positive("max_retries", &m->max_retries, 0, 10));
  TRY(positive("max_bisect_calls", &m->max_bisect_calls, 0, 100000));
  int timeout = static_cast<int>(m->timeout.count());
  TRY(positive("timeout_seconds", &timeout, 1, 3600));
  m->timeout = std::chrono::seconds(timeout);
  return Ok();
}

Status LoadSource(const Section& s, const fs::path& base, const EnvLookup& env, sources::SourceSettings* src) {
  if (!s.present()) return Fail(ErrorCode::kConfig, s.file() + ": [source] section is required");
  TRY(s.CheckKeys({"type", "database", "dsn", "password", "password_file", "password_env"}));
  std::optional<std::string> type;
  TRY_ASSIGN(type, s.String("type"));
  src->type = type.value_or("sqlite");
  static const std::set<std::string> kTypes = {"sqlite", "postgresql", "odbc", "csv"};
  if (!kTypes.count(src->type))
    return Fail(ErrorCode::kConfig, s.Where(*s.Node("type")) + "[source] type = \"" + src->type +
                                        "\" is not one of: sqlite | postgresql | odbc | csv");
  std::optional<std::string> database, dsn;
  TRY_ASSIGN(database, s.String("database"));
  TRY_ASSIGN(dsn, s.String("dsn"));
  if (src->type == "sqlite" || src->type == "csv") {
    if (!database)
      return Fail(ErrorCode::kConfig, s.file() + ": [source] type = \"" + src->type + "\" needs database = \"" +
                                          (src->type == "csv" ? "<directory>" : "<file.db>") + "\"");
    src->database = Resolve(base, *database);
  } else {
    if (!dsn)
      return Fail(ErrorCode::kConfig, s.file() + ": [source] type = \"" + src->type + "\" needs dsn = \"" +
                                          (src->type == "odbc" ? "DRIVER=...;SERVER=...;DATABASE=...;UID=..."
                                                               : "host=... dbname=... user=...") +
                                          "\" (password from password_file or password_env)");
    std::string lower = ToLower(*dsn);
    if (lower.find("password=") != std::string::npos || lower.find("pwd=") != std::string::npos)
      return Fail(ErrorCode::kConfig, s.file() + ": [source] dsn must not contain a password; use password_file or password_env");
    src->dsn = *dsn;
  }
  TRY_ASSIGN(src->password, Secret(s, "password", base, env, false));
  return Ok();
}

Status LoadCourses(const Section& s, const Section& defaults, CoursesConfig* c, plan::Policy* policy) {
  if (!s.present()) return Ok();
  c->enabled = true;
  TRY(s.CheckKeys({"table", "fullname", "shortname", "idnumber", "category", "category_field", "default_category",
                   "startdate", "enddate", "defaults"}));
  TRY_ASSIGN(c->table, s.RequiredString("table"));
  TRY_ASSIGN(c->fullname, s.RequiredString("fullname"));
  TRY_ASSIGN(c->shortname, s.RequiredString("shortname"));
  std::optional<std::string> v;
  TRY_ASSIGN(v, s.String("idnumber"));
  c->idnumber = v.value_or("");
  TRY_ASSIGN(v, s.String("category"));
  c->category = v.value_or("");
  TRY_ASSIGN(v, s.String("startdate"));
  c->startdate = v.value_or("");
  TRY_ASSIGN(v, s.String("enddate"));
  c->enddate = v.value_or("");
  TRY_ASSIGN(c->category_field,
             s.Enum<plan::LocalCategoryField>("category_field",
                                              {{"id", plan::LocalCategoryField::kId},
                                               {"idnumber", plan::LocalCategoryField::kIdnumber}},
                                              plan::LocalCategoryField::kId));
  TRY_ASSIGN(v, s.StringOrInt("default_category"));
  c->default_category = v.value_or("1");
  if (c->category_field == plan::LocalCategoryField::kId) {
    long long id = 0;
    if (!ParseInt64(c->default_category, &id) || id < 1) {
      const toml::node* n = s.Node("default_category");
      return Fail(ErrorCode::kConfig, (n ? s.Where(*n) : s.file() + ": ") +
                                          "[courses] default_category must be a Moodle category id (a number "
                                          "such as 2) when category_field = \"id\", not '" + c->default_category +
                                          "'; to name it by idnumber set category_field = \"idnumber\"");
    }
  }
  policy->category_field = c->category_field;
  policy->default_category = c->default_category;

  // Course defaults. Unset keys take Moodle's site defaults, except
  // numsections: enrol_database gives new courses sections 0-4.
  TRY(defaults.CheckKeys({"visible", "format", "coursedisplay", "numsections", "hiddensections", "showreports",
                          "enablecompletion", "showgrades", "newsitems", "groupmode", "groupmodeforce", "lang",
                          "maxbytes", "startdate", "enddate"}));
  static const std::set<std::string> kFormatOptions = {"coursedisplay", "numsections", "hiddensections"};
  static const std::set<std::string> kBools = {"visible", "showreports", "enablecompletion", "showgrades",
                                               "groupmodeforce"};
  bool have_numsections = false;
  for (const std::string key : {"visible", "format", "coursedisplay", "numsections", "hiddensections", "showreports",
                                "enablecompletion", "showgrades", "newsitems", "groupmode", "groupmodeforce", "lang",
                                "maxbytes", "startdate", "enddate"}) {
    const toml::node* n = defaults.Node(key);
    if (!n) continue;
    std::string value;
    if (kBools.count(key)) {
      auto b = n->value<bool>();
      auto i = n->value<int64_t>();
      if (b) {
        value = *b ? "1" : "0";
      } else if (i && (*i == 0 || *i == 1)) {
        value = std::to_string(*i);
      } else {
        return Fail(ErrorCode::kConfig, defaults.Where(*n) + "[courses.defaults] " + key + " must be true or false");
      }
      if (key == "visible") c->visible = value == "1";  // only when set: else Moodle's default
    } else if (auto i = n->value<int64_t>()) {
      value = std::to_string(*i);
    } else if (auto str = n->value<std::string>()) {
      if (key != "format" && key != "lang")
        return Fail(ErrorCode::kConfig, defaults.Where(*n) + "[courses.defaults] " + key + " must be a number");
      value = *str;
    } else {
      return Fail(ErrorCode::kConfig, defaults.Where(*n) + "[courses.defaults] " + key + " has an unsupported type");
    }
    if (kFormatOptions.count(key)) {
      c->format_options.emplace_back(key, value);
      if (key == "numsections") have_numsections = true;
    } else {
      c->fields.emplace_back(key, value);
    }
  }
  if (!have_numsections) c->format_options.emplace_back("numsections", "4");
  policy->new_courses_visible = c->visible;
  return Ok();
}

Status LoadEnrolments(const Section& s, EnrolmentsConfig* e, plan::Policy* policy) {
  if (!s.present()) return Fail(ErrorCode::kConfig, s.file() + ": [enrolments] section is required");
  TRY(s.CheckKeys({"table", "course_field", "user_field", "role_field", "local_course_field", "local_user_field",
                   "local_role_field", "default_role", "unenrol_action", "ignore_hidden_courses",
                   "take_over_existing"}));
  TRY_ASSIGN(e->table, s.RequiredString("table"));
  TRY_ASSIGN(e->course_field, s.RequiredString("course_field"));
  TRY_ASSIGN(e->user_field, s.RequiredString("user_field"));
  std::optional<std::string> v;
  TRY_ASSIGN(v, s.String("role_field"));
  e->role_field = v.value_or("");
  TRY_ASSIGN(policy->local_course_field,
             s.Enum<plan::LocalCourseField>("local_course_field",
                                            {{"id", plan::LocalCourseField::kId},
                                             {"idnumber", plan::LocalCourseField::kIdnumber},
                                             {"shortname", plan::LocalCourseField::kShortname}},
                                            plan::LocalCourseField::kIdnumber));
  TRY_ASSIGN(policy->local_user_field,
             s.Enum<plan::LocalUserField>("local_user_field",
                                          {{"id", plan::LocalUserField::kId},
                                           {"idnumber", plan::LocalUserField::kIdnumber},
                                           {"email", plan::LocalUserField::kEmail},
                                           {"username", plan::LocalUserField::kUsername}},
                                          plan::LocalUserField::kEmail));
  TRY_ASSIGN(policy->local_role_field,
             s.Enum<plan::LocalRoleField>("local_role_field",
                                          {{"id", plan::LocalRoleField::kId},
                                           {"shortname", plan::LocalRoleField::kShortname}},
                                          plan::LocalRoleField::kId));
  TRY_ASSIGN(v, s.String("default_role"));
  policy->default_role = v.value_or("student");
  TRY_ASSIGN(policy->unenrol_action,
             s.Enum<plan::UnenrolAction>("unenrol_action",
                                         {{"unenrol", plan::UnenrolAction::kUnenrol},
                                          {"keep", plan::UnenrolAction::kKeep},
                                          {"suspend", plan::UnenrolAction::kSuspend},
                                          {"suspend_remove_roles", plan::UnenrolAction::kSuspendRemoveRoles}},
                                         plan::UnenrolAction::kSuspend));
  std::optional<bool> b;
  TRY_ASSIGN(b, s.Bool("ignore_hidden_courses"));
  policy->ignore_hidden_courses = b.value_or(false);
  TRY_ASSIGN(b, s.Bool("take_over_existing"));
  policy->take_over_existing = b.value_or(false);
  return Ok();
}

Status LoadSafety(const Section& s, plan::Policy* policy) {
  // Default: at most 10% of managed enrolments may go in one run.
  policy->max_removals_percent = 10;
  if (!s.present()) return Ok();
  TRY(s.CheckKeys({"max_removals"}));
  const toml::node* n = s.Node("max_removals");
  if (!n) return Ok();
  // toml++'s value<int64_t>() would read `true` as 1.
  if (auto i = n->is_integer() ? n->value<int64_t>() : std::nullopt) {
    if (*i < 0) return Fail(ErrorCode::kConfig, s.Where(*n) + "[safety] max_removals must not be negative");
    policy->max_removals = *i;
    policy->max_removals_percent = -1;
    return Ok();
  }
  if (auto str = n->value<std::string>()) {
    std::string t = Trim(*str);
    bool pct = !t.empty() && t.back() == '%';
    if (pct) t.pop_back();
    char* end = nullptr;
    double d = std::strtod(t.c_str(), &end);
    if (pct && !t.empty() && end && *end == '\0' && d > 100)
      return Fail(ErrorCode::kConfig, s.Where(*n) + "[safety] max_removals \"" + Trim(*str) +
                                          "\" is over 100%: a percentage of the managed enrolments is at most "
                                          "\"100%\" (no limit); or give a count (50)");
    if (!t.empty() && end && *end == '\0' && d >= 0 && (!pct || d <= 100)) {
      if (pct) {
        policy->max_removals_percent = d;
      } else {
        policy->max_removals = static_cast<long long>(d);
        policy->max_removals_percent = -1;
      }
      return Ok();
    }
  }
  return Fail(ErrorCode::kConfig, s.Where(*n) + "[safety] max_removals must be a count (50) or a percentage (\"10%\")");
}

// Moodle user fields a directory attribute may fill (auth_ldap's field_map_*).
const std::set<std::string>& UserFields() {
  static const std::set<std::string> f = {"firstname", "lastname", "email", "idnumber", "department", "institution",
                                          "phone1", "phone2", "address", "city", "country", "description",
                                          "middlename", "alternatename", "firstnamephonetic", "lastnamephonetic"};
  return f;
}

Status LoadUsers(const Section& s, const Section& map, const fs::path& base, const EnvLookup& env, UsersConfig* u) {
  if (!s.present()) return Ok();
  u->enabled = true;
  TRY(s.CheckKeys({"source", "url", "start_tls", "ca_file", "bind_dn", "bind_password", "bind_password_file",
                   "bind_password_env", "contexts", "search_sub", "user_attribute", "object_class", "user_type",
                   "removed_user_action", "auth", "page_size", "timeout_seconds", "update", "table", "username",
                   "disabled", "map"}));
  std::optional<std::string> v;
  TRY_ASSIGN(v, s.String("source"));
  u->source = v.value_or("ldap");
  if (u->source != "ldap" && u->source != "sql" && u->source != "csv")
    return Fail(ErrorCode::kConfig, s.Where(*s.Node("source")) + "[users] source = \"" + u->source +
                                        "\" is not one of: ldap | sql | csv");
  TRY_ASSIGN(v, s.String("auth"));
  u->policy.auth = v.value_or("ldap");
  TRY_ASSIGN(u->policy.removed_user_action,
             s.Enum<plan::RemovedUserAction>("removed_user_action",
                                             {{"keep", plan::RemovedUserAction::kKeep},
                                              {"suspend", plan::RemovedUserAction::kSuspend},
                                              {"delete", plan::RemovedUserAction::kDelete}},
                                             plan::RemovedUserAction::kSuspend));
  // [users.map]
  if (!map.present()) return Fail(ErrorCode::kConfig, s.file() + ": [users.map] is required (Moodle field = attribute)");
  TRY(map.CheckKeys(UserFields()));
  for (const std::string field : {"firstname", "lastname", "email", "idnumber", "department", "institution", "phone1",
                                  "phone2", "address", "city", "country", "description", "middlename",
                                  "alternatename", "firstnamephonetic", "lastnamephonetic"}) {
    std::optional<std::string> attr;
    TRY_ASSIGN(attr, map.String(field));
    if (attr) {
      u->map.emplace_back(field, *attr);
      u->policy.mapped_fields.push_back(field);
    }
  }
  for (const char* required : {"firstname", "lastname", "email"}) {
    bool found = false;
    for (const auto& [f, a] : u->map) found |= f == required;
    if (!found) return Fail(ErrorCode::kConfig, s.file() + ": [users.map] " + required + " is required");
  }
  // Fields kept in step every run (default: all mapped fields).
  if (const toml::node* n = s.Node("update")) {
    const toml::array* arr = n->as_array();
    if (!arr) return Fail(ErrorCode::kConfig, s.Where(*n) + "[users] update must be a list of Moodle fields");
    for (const auto& el : *arr) {
      auto f = el.value<std::string>();
      if (!f || std::find(u->policy.mapped_fields.begin(), u->policy.mapped_fields.end(), *f) ==
                    u->policy.mapped_fields.end())
        return Fail(ErrorCode::kConfig, s.Where(el) + "[users] update lists '" + f.value_or("?") +
                                            "', which is not a field in [users.map]");
      u->policy.update_fields.insert(*f);
    }
  } else {
    u->policy.update_fields.insert(u->policy.mapped_fields.begin(), u->policy.mapped_fields.end());
  }

  if (u->source != "ldap") {
    TRY_ASSIGN(u->table, s.RequiredString("table"));
    TRY_ASSIGN(u->username_column, s.RequiredString("username"));
    TRY_ASSIGN(v, s.String("disabled"));
    u->disabled_column = v.value_or("");
    return Ok();
  }
  auto& l = u->ldap;
  TRY_ASSIGN(l.url, s.RequiredString("url"));
  if (l.url.rfind("ldap://", 0) != 0 && l.url.rfind("ldaps://", 0) != 0)
    return Fail(ErrorCode::kConfig, s.file() + ": [users] url = \"" + l.url + "\" must start with ldap:// or ldaps://");
  std::optional<bool> b;
  TRY_ASSIGN(b, s.Bool("start_tls"));
  l.start_tls = b.value_or(false);
  TRY_ASSIGN(b, s.Bool("search_sub"));
  l.search_sub = b.value_or(false);
  TRY_ASSIGN(v, s.String("ca_file"));
  if (v) l.ca_file = Resolve(base, *v);
  TRY_ASSIGN(v, s.String("bind_dn"));
  l.bind_dn = v.value_or("");
  TRY_ASSIGN(l.bind_password, Secret(s, "bind_password", base, env, !l.bind_dn.empty()));
  TRY_ASSIGN(v, s.String("user_type"));
  l.user_type = v.value_or("default");
  if (l.user_type != "default" && l.user_type != "ad")
    return Fail(ErrorCode::kConfig, s.file() + ": [users] user_type = \"" + l.user_type + "\" is not one of: default | ad");
  bool ad = l.user_type == "ad";
  TRY_ASSIGN(v, s.String("user_attribute"));
  l.user_attribute = v.value_or(ad ? "sAMAccountName" : "uid");
  TRY_ASSIGN(v, s.String("object_class"));
  l.object_class = v.value_or(ad ? "user" : "inetOrgPerson");
  std::optional<long long> i;
  TRY_ASSIGN(i, s.Int("page_size"));
  l.page_size = static_cast<int>(i.value_or(250));
  if (l.page_size < 1 || l.page_size > 100000)
    return Fail(ErrorCode::kConfig, s.file() + ": [users] page_size must be between 1 and 100000");
  TRY_ASSIGN(i, s.Int("timeout_seconds"));
  l.timeout_seconds = static_cast<int>(i.value_or(30));
  const toml::node* ctx = s.Node("contexts");
  const toml::array* arr = ctx ? ctx->as_array() : nullptr;
  if (!arr || arr->empty())
    return Fail(ErrorCode::kConfig, s.file() + ": [users] contexts must list at least one search base");
  for (const auto& el : *arr) {
    auto c = el.value<std::string>();
    if (!c || Trim(*c).empty()) return Fail(ErrorCode::kConfig, s.Where(el) + "[users] contexts entries must be DNs");
    l.contexts.push_back(*c);
  }
  l.map = u->map;
  return Ok();
}

Status LoadLog(const Section& s, const fs::path& base, LogConfig* l) {
  if (!s.present()) return Ok();
  TRY(s.CheckKeys({"file", "format", "level"}));
  std::optional<std::string> v;
  TRY_ASSIGN(v, s.String("file"));
  if (v) l->file = Resolve(base, *v);
  TRY_ASSIGN(v, s.String("format"));
  l->format = v.value_or("text");
  if (l->format != "text" && l->format != "json")
    return Fail(ErrorCode::kConfig, s.Where(*s.Node("format")) + "[log] format = \"" + l->format + "\" is not one of: text | json");
  TRY_ASSIGN(v, s.String("level"));
  l->level = v.value_or("info");
  if (l->level != "debug" && l->level != "info" && l->level != "warn" && l->level != "error")
    return Fail(ErrorCode::kConfig, s.Where(*s.Node("level")) + "[log] level = \"" + l->level +
                                        "\" is not one of: debug | info | warn | error");
  return Ok();
}

Status LoadSchedule(const Section& s, ScheduleConfig* sc) {
  if (!s.present()) return Ok();
  TRY(s.CheckKeys({"users", "full"}));
  for (const char* job : {"users", "full"}) {
    std::optional<std::string> v;
    TRY_ASSIGN(v, s.String(job));
    if (!v) continue;
    auto parsed = schedule::ParseCron(*v);
    if (!parsed) return Fail(ErrorCode::kConfig, s.Where(*s.Node(job)) + "[schedule] " + job + ": " + parsed.error().message);
    sc->jobs.emplace_back(job, *v);
  }
  return Ok();
}

Status LoadHooks(const std::string& file, const toml::node* node, std::vector<HookConfig>* hooks) {
  if (!node) return Ok();
  const toml::array* arr = node->as_array();
  if (!arr) return Fail(ErrorCode::kConfig, file + ": hooks must be written as [[hooks]] tables");
  int i = 0;
  for (const auto& el : *arr) {
    ++i;
    const toml::table* t = el.as_table();
    const std::string where = file + ":" + std::to_string(el.source().begin.line) + ": ";
    if (!t) return Fail(ErrorCode::kConfig, where + "hooks entry " + std::to_string(i) + " is not a table");
    Section s(file, "hooks", t);
    TRY(s.CheckKeys({"after", "command", "timeout"}));
    HookConfig h;
    TRY_ASSIGN(h.after, s.RequiredString("after"));
    if (h.after != "full" && h.after != "users")
      return Fail(ErrorCode::kConfig, where + "[[hooks]] after = \"" + h.after + "\" is not one of: full | users");
    const toml::array* cmd = t->get_as<toml::array>("command");
    if (!cmd || cmd->empty())
      return Fail(ErrorCode::kConfig, where + "[[hooks]] command must be a non-empty list, e.g. [\"php\", \"purge_caches.php\"]"
                                              " (no shell is used)");
    for (const auto& a : *cmd) {
      auto str = a.value<std::string>();
      if (!str) return Fail(ErrorCode::kConfig, where + "[[hooks]] command entries must be strings");
      h.command.push_back(*str);
    }
    std::optional<std::string> timeout;
    TRY_ASSIGN(timeout, s.String("timeout"));
    if (timeout) {
      auto d = ops::ParseDuration(*timeout);
      if (!d) return Fail(ErrorCode::kConfig, where + "[[hooks]] timeout: " + d.error().message);
      h.timeout_seconds = static_cast<int>(d->count());
    }
    hooks->push_back(std::move(h));
  }
  return Ok();
}

Status LoadRoles(const std::string& file, const toml::table* t, std::vector<model::Role>* roles) {
  *roles = StandardRoles();
  if (!t) return Ok();
  for (const auto& [k, v] : *t) {
    std::string name(k.str());
    auto id = v.value<int64_t>();
    const std::string where = file + ":" + std::to_string(v.source().begin.line) + ": ";
    if (!id || *id <= 0) return Fail(ErrorCode::kConfig, where + "[roles] " + name + " must be a role id (a positive integer)");
    bool replaced = false;
    for (auto& r : *roles) {
      if (r.shortname == name) {
        r.id = *id;
        replaced = true;
      } else if (r.id == *id) {
        return Fail(ErrorCode::kConfig, where + "[roles] " + name + " = " + std::to_string(*id) +
                                            ": id already belongs to role '" + r.shortname + "'");
      }
    }
    if (!replaced) roles->push_back({*id, name});
  }
  return Ok();
}

Status LoadState(const Section& s, StateConfig* st) {
  if (!s.present()) return Ok();
  TRY(s.CheckKeys({"verify_courses_per_run", "verify_max_age_days", "runs_per_day", "keep_runs"}));
  std::optional<long long> v;
  TRY_ASSIGN(v, s.Int("verify_courses_per_run"));
  if (v) {
    if (*v < 0) return Fail(ErrorCode::kConfig, s.Where(*s.Node("verify_courses_per_run")) + "[state] verify_courses_per_run must be >= 0");
    st->verify_courses_per_run = static_cast<int>(*v);
  }
  TRY_ASSIGN(v, s.Int("verify_max_age_days"));
  if (v) {
    if (*v < 1) return Fail(ErrorCode::kConfig, s.Where(*s.Node("verify_max_age_days")) + "[state] verify_max_age_days must be >= 1");
    st->verify_max_age_days = static_cast<int>(*v);
  }
  TRY_ASSIGN(v, s.Int("runs_per_day"));
  if (v) {
    if (*v < 1 || *v > 1440)
      return Fail(ErrorCode::kConfig, s.Where(*s.Node("runs_per_day")) + "[state] runs_per_day must be 1-1440");
    st->runs_per_day = static_cast<int>(*v);
  }
  TRY_ASSIGN(v, s.Int("keep_runs"));
  if (v) {
    if (*v < 1 || *v > 100000)
      return Fail(ErrorCode::kConfig, s.Where(*s.Node("keep_runs")) + "[state] keep_runs must be 1-100000");
    st->keep_runs = static_cast<int>(*v);
  }
  return Ok();
}

const toml::table* Sub(const toml::table& t, const char* key) { return t[key].as_table(); }

}  // namespace

Result<Config> LoadConfig(const std::string& path, const EnvLookup& env) {
  {
    std::error_code ec;
    if (fs::is_directory(path, ec))
      return Fail(ErrorCode::kConfig, path + ": is a directory; --config takes the config file (e.g. " +
                                          (fs::path(path) / "enrolsync.toml").string() + ")");
  }
  toml::table root;
  try {
    root = toml::parse_file(path);
  } catch (const toml::parse_error& e) {
    std::ostringstream msg;
    msg << path;
    if (e.source().begin.line) msg << ":" << e.source().begin.line << ":" << e.source().begin.column;
    msg << ": " << e.description();
    std::error_code ec;
    if (!fs::exists(path, ec)) return Fail(ErrorCode::kConfig, "cannot read config file '" + path + "'");
    return Fail(ErrorCode::kConfig, msg.str());
  }
  Config cfg;
  cfg.path = path;
  fs::path base = fs::absolute(fs::path(path)).parent_path();

  Section top(path, "", &root);
  TRY(top.CheckKeys({"state_dir", "moodle", "source", "courses", "enrolments", "users", "safety", "state", "log",
                     "schedule", "hooks", "roles"}));
  std::optional<std::string> state_dir;
  TRY_ASSIGN(state_dir, top.String("state_dir"));
  cfg.state_dir = Resolve(base, state_dir.value_or("state"));

  TRY(LoadMoodle(Section(path, "moodle", Sub(root, "moodle")), base, env, &cfg.moodle));
  TRY(LoadSource(Section(path, "source", Sub(root, "source")), base, env, &cfg.source));
  const toml::table* courses = Sub(root, "courses");
  const toml::table* defaults = courses ? courses->get_as<toml::table>("defaults") : nullptr;
  TRY(LoadCourses(Section(path, "courses", courses), Section(path, "courses.defaults", defaults), &cfg.courses,
                  &cfg.policy));
  TRY(LoadEnrolments(Section(path, "enrolments", Sub(root, "enrolments")), &cfg.enrolments, &cfg.policy));
  TRY(LoadSafety(Section(path, "safety", Sub(root, "safety")), &cfg.policy));
  const toml::table* users = Sub(root, "users");
  const toml::table* users_map = users ? users->get_as<toml::table>("map") : nullptr;
  TRY(LoadUsers(Section(path, "users", users), Section(path, "users.map", users_map), base, env, &cfg.users));
  cfg.users.policy.max_removals = cfg.policy.max_removals;
  cfg.users.policy.max_removals_percent = cfg.policy.max_removals_percent;
  TRY(LoadState(Section(path, "state", Sub(root, "state")), &cfg.state));
  TRY(LoadLog(Section(path, "log", Sub(root, "log")), base, &cfg.log));
  TRY(LoadSchedule(Section(path, "schedule", Sub(root, "schedule")), &cfg.schedule));
  TRY(LoadHooks(path, root.get("hooks"), &cfg.hooks));
  TRY(LoadRoles(path, Sub(root, "roles"), &cfg.roles));
  return cfg;
}

std::vector<long long> ExpectedEnrolmentRuns(const Config& cfg, long long now, long long until) {
  if (cfg.state.runs_per_day == 0) {
    for (const auto& [job, expr] : cfg.schedule.jobs) {
      if (job != "full") continue;
      auto cron = schedule::ParseCron(expr);
      if (!cron) break;  // validated at load; fall back to one a day
      std::vector<long long> runs;
      std::time_t t = static_cast<std::time_t>(now);
      while (runs.size() < 100000) {
        auto next = schedule::NextRun(*cron, t);
        if (!next || *next > until) break;
        runs.push_back(static_cast<long long>(*next));
        t = *next;
      }
      return runs;
    }
  }
  return plan::EvenlySpacedRuns(now, cfg.state.runs_per_day > 0 ? cfg.state.runs_per_day : 1, until);
}

}  // namespace enrolsync::config
