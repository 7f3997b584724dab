// enrol_meta: meta links.
#include "sandbox/ws_common.h"

#include "sandbox/ws_error.h"
#include "util/strings.h"

namespace enrolsync::sandbox {

namespace {

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
      std::optional<long long> group = 0;  // customint2: 0 = no group
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

}  // namespace

void RegisterEnrolMeta(std::vector<FunctionDef>& f) {
  using P = PType;
  f.push_back({"enrol_meta_add_instances", kPluginVersion,
               Single({{"instances", Multi(Single({{"metacourseid", Req(P::kInt)},
                                                   {"courseid", Req(P::kRaw)},
                                                   {"creategroup", Def(P::kBool, false)}}))}}),
               MetaAddInstances});
  f.push_back({"enrol_meta_delete_instances", kPluginVersion,
               Single({{"instances", Multi(Single({{"metacourseid", Req(P::kInt)}, {"courseid", Req(P::kRaw)}}))}}),
               MetaDeleteInstances});
}

}  // namespace enrolsync::sandbox
