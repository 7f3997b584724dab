#include "sandbox/ws_common.h"

#include "sandbox/ws_error.h"

namespace enrolsync::sandbox {

std::string Str(const Json& j, const char* key, const std::string& def) {
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

namespace {

bool IsSpace(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }

// PHP's strip_tags, for the cases names meet: a '<' that starts a tag drops
// everything to the matching '>' (quoted '>' inside attributes included), or
// to the end when it is never closed; a '<' followed by whitespace is text.
std::string StripTags(const std::string& s) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '<' || i + 1 >= s.size() || IsSpace(s[i + 1])) {
      out += s[i];
      continue;
    }
    char quote = 0;
    std::size_t j = i + 1;
    for (; j < s.size(); ++j) {
      if (quote) {
        if (s[j] == quote) quote = 0;
      } else if (s[j] == '"' || s[j] == '\'') {
        quote = s[j];
      } else if (s[j] == '>') {
        break;
      }
    }
    i = j;  // past the '>' (or the end)
  }
  return out;
}

bool StartsEntity(const std::string& s, std::size_t amp) {
  std::size_t n = 0;
  for (std::size_t i = amp + 1; i < s.size() && n <= 8; ++i, ++n) {
    char c = s[i];
    if (c == ';') return n >= 1;
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '#';
    if (!ok) return false;
  }
  return false;
}

}  // namespace

std::string FormatString(const std::string& raw) {
  std::string amp;
  for (std::size_t i = 0; i < raw.size(); ++i) {
    if (raw[i] == '&' && !StartsEntity(raw, i)) amp += "&amp;";
    else amp += raw[i];
  }
  std::string out;
  for (char c : StripTags(amp)) {
    if (c == '<') out += "&lt;";
    else if (c == '>') out += "&gt;";
    else out += c;
  }
  return out;
}

std::string ImageUrl(const CallEnv& env, bool small) {
  return env.siteurl + "/theme/image.php/boost/core/1/u/" + (small ? "f2" : "f1");
}

const char* const kUserCols =
    "id, username, firstname, lastname, email, department, idnumber, institution, auth, suspended, confirmed, "
    "lang, timezone, mailformat, description, city, country, firstaccess, lastaccess";

void ChargeUserCourses(SiteStore& s, MoodleId userid, const CallEnv& env) {
  if (!env.work_units) return;
  *env.work_units += s.db().Int(
      "SELECT COUNT(DISTINCT e.courseid) FROM user_enrolments ue JOIN enrol e ON e.id = ue.enrolid WHERE ue.userid = ?",
      userid);
}

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

void RequireLiveUser(SiteStore& s, MoodleId userid) {
  auto r = s.db().One("SELECT deleted FROM users WHERE id = ?", userid);
  if (!r) Throw(MissingRecord());
  if ((*r)[0].i != 0) Throw(MoodleError("userdeleted"));
}

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

}  // namespace enrolsync::sandbox
