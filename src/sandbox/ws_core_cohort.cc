// core_cohort: cohorts and members.
#include "sandbox/ws_common.h"

#include "sandbox/ws_error.h"
#include "util/strings.h"

namespace enrolsync::sandbox {

namespace {

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

}  // namespace

void RegisterCoreCohort(std::vector<FunctionDef>& f) {
  using P = PType;
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
}

}  // namespace enrolsync::sandbox
