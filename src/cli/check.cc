#include "cli/check.h"

#include <algorithm>
#include <set>

#include "moodle/client.h"
#include "sources/directory.h"
#include "sources/source.h"
#include "sync/user_sync.h"
#include "util/secrets.h"
#include "util/strings.h"

namespace enrolsync::cli {
namespace {

struct Checker {
  std::ostream& out;
  int failures = 0;
  void Ok(const std::string& s) { out << "  ok    " << s << "\n"; }
  void Bad(const std::string& s) {
    out << "  FAIL  " << Redact(s) << "\n";
    ++failures;
  }
  void Warn(const std::string& s) { out << "  warn  " << s << "\n"; }
};

std::string Row(const sources::SqlRow& r) {
  std::vector<std::string> v;
  for (const auto& c : r) v.push_back(c ? "'" + *c + "'" : "NULL");
  return "(" + Join(v, ", ") + ")";
}

void CheckTable(Checker& ck, sources::Source& src, const std::string& label, const std::string& table,
                const std::vector<std::pair<std::string, std::string>>& mapped) {
  auto info = src.Inspect(table, 3);
  if (!info) {
    ck.Bad(label + " table '" + table + "': " + info.error().message);
    return;
  }
  ck.Ok(label + " table '" + table + "': " + std::to_string(info->row_count) + " rows; columns: " +
        Join(info->columns, ", "));
  if (info->row_count == 0) ck.Bad(label + " table '" + table + "' is empty: a sync would remove nothing and add nothing");
  for (const auto& s : info->sample) ck.out << "        sample " << Row(s) << "\n";
  for (const auto& [key, column] : mapped) {
    if (column.empty()) continue;
    if (std::find(info->columns.begin(), info->columns.end(), column) != info->columns.end()) {
      ck.Ok(key + " = \"" + column + "\" found");
      continue;
    }
    std::string hint;
    for (const auto& c : info->columns)
      if (IEquals(c, column)) hint = " (did you mean \"" + c + "\"? names are case-sensitive)";
    ck.Bad(key + " = \"" + column + "\": table '" + table + "' has no such column" + hint);
  }
}

}  // namespace

std::vector<std::string> RequiredFunctions(const config::Config& cfg) {
  std::vector<std::string> f = {"core_webservice_get_site_info", "core_course_get_courses_by_field",
                                "core_course_get_courses", "core_user_get_users_by_field",
                                "core_enrol_get_enrolled_users",
                                "enrol_manual_enrol_users", "core_role_assign_roles", "core_role_unassign_roles"};
  if (cfg.courses.enabled) {
    f.push_back("core_course_get_categories");
    f.push_back("core_course_create_courses");
  }
  if (cfg.policy.unenrol_action == plan::UnenrolAction::kUnenrol) f.push_back("enrol_manual_unenrol_users");
  // Emails stored with capitals are found with core_user_get_users, whose
  // email criterion ignores case; the user sync reads its users with it.
  if (cfg.users.enabled || cfg.policy.local_user_field == plan::LocalUserField::kEmail)
    f.push_back("core_user_get_users");
  if (cfg.users.enabled) {
    f.push_back("core_user_create_users");
    f.push_back("core_user_update_users");
    if (cfg.users.policy.removed_user_action == plan::RemovedUserAction::kDelete) f.push_back("core_user_delete_users");
  }
  return f;
}

int RunCheck(const config::Config& cfg, std::ostream& out, const sync::RunOptions& options) {
  Checker ck{out};
  out << "Config " << cfg.path << "\n";
  ck.Ok("config parsed; state_dir " + cfg.state_dir);

  out << "Source (" << cfg.source.type << ")\n";
  auto src = sources::OpenSource(cfg.source);
  std::set<std::string> categories, roles;
  if (!src) {
    ck.Bad(src.error().message);
  } else {
    ck.Ok("connected: " + (*src)->Describe());
    if (cfg.courses.enabled) {
      const auto& c = cfg.courses;
      CheckTable(ck, **src, "[courses]", c.table,
                 {{"fullname", c.fullname}, {"shortname", c.shortname}, {"idnumber", c.idnumber}, {"category", c.category}});
      if (!c.category.empty()) {
        if (auto t = (*src)->ReadTable(c.table, {c.category}))
          for (const auto& r : t->rows) categories.insert(Trim(r[0].value_or("")));
      }
    }
    const auto& e = cfg.enrolments;
    CheckTable(ck, **src, "[enrolments]", e.table,
               {{"course_field", e.course_field}, {"user_field", e.user_field}, {"role_field", e.role_field}});
    if (!e.role_field.empty()) {
      if (auto t = (*src)->ReadTable(e.table, {e.role_field}))
        for (const auto& r : t->rows) roles.insert(Trim(r[0].value_or("")));
    }
  }

  if (cfg.users.enabled) {
    const auto& u = cfg.users;
    out << "Users (" << u.source << (u.source == "ldap" ? " " + u.ldap.url : " table " + u.table) << ")\n";
    std::map<std::string, int> counts;
    auto people = sync::ReadPeople(cfg, &counts);
    if (!people) {
      ck.Bad(people.error().message);
    } else {
      if (u.source == "ldap")
        ck.Ok("bound as " + (u.ldap.bind_dn.empty() ? std::string("anonymous") : u.ldap.bind_dn) + "; filter " +
              sources::UserFilter(u.ldap));
      for (const auto& [context, n] : counts) ck.Ok(context + ": " + std::to_string(n) + " entries");
      if (people->empty()) ck.Bad("the user source returned no users: nothing would be created, nothing removed");
      int shown = 0;
      int missing_email = 0;
      for (const auto& p : *people) {
        auto e = p.fields.find("email");
        if (e == p.fields.end() || e->second.empty()) ++missing_email;
        if (shown++ >= 3) continue;
        std::string line = "        sample " + p.username + ":";
        for (const auto& [field, attr] : u.map) {
          auto v = p.fields.find(field);
          line += " " + field + "=" + (v == p.fields.end() ? std::string("(missing ") + attr + ")" : "'" + v->second + "'");
        }
        if (p.disabled) line += " [disabled]";
        out << line << "\n";
      }
      if (missing_email)
        ck.Warn(std::to_string(missing_email) + " entries have no email: they cannot be created in Moodle");
    }
  }

  out << "Moodle " << cfg.moodle.url << "\n";
  auto client = options.transport_factory
                    ? std::make_unique<moodle::Client>(cfg.moodle, options.transport_factory(cfg.moodle))
                    : std::make_unique<moodle::Client>(cfg.moodle);
  auto site = client->GetSiteInfo();
  if (!site) {
    ck.Bad(site.error().message);
  } else {
    ck.Ok("site '" + site->sitename + "', Moodle " + site->release + " (version " + site->version + "), token user " +
          site->username);
    std::vector<std::string> missing;
    const auto required = RequiredFunctions(cfg);
    for (const auto& f : required)
      if (std::find(site->functions.begin(), site->functions.end(), f) == site->functions.end()) missing.push_back(f);
    if (missing.empty()) {
      ck.Ok("the token may call all " + std::to_string(required.size()) + " functions this config needs: " +
            Join(required, ", "));
    } else {
      ck.Bad("the token's service lacks: " + Join(missing, ", ") + " (add them to the external service)");
    }
    if (std::find(site->functions.begin(), site->functions.end(), "core_enrol_get_enrolled_users_with_capability") ==
        site->functions.end())
      ck.Warn("the token's service lacks core_enrol_get_enrolled_users_with_capability: participants are read "
              "course by course (2 calls a course instead of 2 calls per 50 courses)");
    if (cfg.courses.enabled) {
      auto cats = client->GetCategories();
      if (!cats) {
        ck.Bad("reading categories: " + cats.error().message);
      } else {
        auto has = [&](const std::string& v) {
          for (const auto& c : *cats)
            if ((cfg.policy.category_field == plan::LocalCategoryField::kId ? std::to_string(c.id) : c.idnumber) == v)
              return true;
          return false;
        };
        if (has(cfg.policy.default_category))
          ck.Ok("default_category " + cfg.policy.default_category + " exists");
        else
          ck.Bad("default_category " + cfg.policy.default_category + " does not exist in Moodle");
        for (const auto& v : categories) {
          if (v.empty()) continue;
          if (has(v))
            ck.Ok("category '" + v + "' exists");
          else
            ck.Warn("category '" + v + "' used in the course table does not exist: those courses will not be created");
        }
      }
    }
  }
  // Roles: Moodle's web services cannot list roles; enrolsync knows the
  // standard ones and those named in [roles].
  bool default_ok = false;
  for (const auto& r : cfg.roles) default_ok |= r.shortname == cfg.policy.default_role;
  if (default_ok)
    ck.Ok("default_role '" + cfg.policy.default_role + "' is a known role");
  else
    ck.Bad("default_role '" + cfg.policy.default_role + "' is not a standard Moodle role; name it in [roles]");
  for (const auto& v : roles) {
    if (v.empty()) continue;
    bool ok = false;
    for (const auto& r : cfg.roles)
      ok |= cfg.policy.local_role_field == plan::LocalRoleField::kId ? std::to_string(r.id) == v : r.shortname == v;
    if (ok)
      ck.Ok("role '" + v + "' resolves");
    else
      ck.Warn("role '" + v + "' in the enrolment table is not a known role: those rows will be skipped (add it to [roles])");
  }
  // No web-service function reads enrol_manual's settings, so this is a
  // reminder, not a finding.
  ck.Warn("cannot see whether Moodle sends a course welcome message (no web service reads the setting). If "
          "\"Send course welcome message\" is on (Site administration > Plugins > Enrolments > Manual enrolments, "
          "and in existing courses' manual instances), every enrol call sends one: switch it off before the first "
          "sync.");
  out << (ck.failures ? "check: " + std::to_string(ck.failures) + " problem(s) found\n" : "check: all good\n");
  return ck.failures ? sync::kExitError : sync::kExitOk;
}

}  // namespace enrolsync::cli
