// core_group: groups and members.
#include "sandbox/ws_common.h"

#include "sandbox/ws_error.h"
#include "util/strings.h"

namespace enrolsync::sandbox {

namespace {

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

}  // namespace

void RegisterCoreGroup(std::vector<FunctionDef>& f) {
  using P = PType;
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
}

}  // namespace enrolsync::sandbox
