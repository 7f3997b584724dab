// core_user: users.
#include "sandbox/ws_common.h"

#include <algorithm>
#include <cctype>
#include <set>

#include "sandbox/ws_error.h"
#include "util/strings.h"

namespace enrolsync::sandbox {

namespace {

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
      // Moodle mails the generated password at once (the create_password
      // preference is set and cleared) and forces a change at first login.
      s.db().Run("INSERT OR REPLACE INTO user_preferences(userid, name, value) "
                 "VALUES (?, 'auth_forcepasswordchange', '1')", id);
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
    // Moodle 5.1 (user/externallib.php) updates each user in its own
    // transaction and answers a refused one as a warning; the messages are
    // moodle_exception's (a code without a language string shows as
    // "error/<code>").
    auto warn = [&](const std::string& code, const std::string& message) {
      warnings.push_back({{"item", "user"}, {"itemid", id}, {"warningcode", code}, {"message", message}});
    };
    auto existing = db.One("SELECT deleted, email FROM users WHERE id = ?", id);
    if (!existing) {
      warn("invaliduserid", "Invalid user ID");
      continue;
    }
    if ((*existing)[0].i != 0) {
      warn("usernotupdateddeleted", "error/usernotupdateddeleted");
      continue;
    }
    if (id == 1) {
      warn("usernotupdatedguest", "error/usernotupdatedguest");
      continue;
    }
    if (Has(u, "username") &&
        db.One("SELECT 1 FROM users WHERE username = ? AND id <> ? AND deleted = 0", Str(u, "username"), id)) {
      warn("usernameexists", "Username already exists: " + Str(u, "username"));
      continue;
    }
    if (Has(u, "email") && Str(u, "email") != (*existing)[1].s) {
      if (!IsValidEmail(Str(u, "email"))) {
        warn("useremailinvalid", "error/useremailinvalid");
        continue;
      }
      if (EmailTaken(s, Str(u, "email"), id)) {
        warn("useremailduplicate", "Duplicate address");
        continue;
      }
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
    if (!seen.insert(r[0].i).second) continue;
    ChargeUserCourses(s, r[0].i, env);
    out.push_back(UserDetails(r, env));
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
    for (const Row& r : rows) {
      ChargeUserCourses(s, r[0].i, env);
      users.push_back(UserDetails(r, env));
    }
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

}  // namespace

void RegisterCoreUser(std::vector<FunctionDef>& f) {
  using P = PType;
  auto kv = [](PType k) { return Single({{"key", Req(k)}, {"value", Req(PType::kRaw)}}); };
  f.push_back({"core_user_get_users_by_field", kCoreVersion,
               Single({{"field", Req(P::kAlpha)}, {"values", Multi(Req(P::kRaw))}}), GetUsersByField});
  f.push_back({"core_user_get_users", kCoreVersion, Single({{"criteria", Multi(kv(P::kAlpha))}}), GetUsers});
  f.push_back({"core_user_create_users", kCoreVersion, Single({{"users", Multi(UserFields(true))}}), CreateUsers});
  f.push_back({"core_user_update_users", kCoreVersion, Single({{"users", Multi(UserFields(false))}}), UpdateUsers});
  f.push_back({"core_user_delete_users", kCoreVersion, Single({{"userids", Multi(Req(P::kInt))}}), DeleteUsers});
}

}  // namespace enrolsync::sandbox
