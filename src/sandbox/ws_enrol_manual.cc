// enrol_manual: enrol and unenrol.
#include "sandbox/ws_common.h"

#include <set>

#include "sandbox/ws_error.h"
#include "util/strings.h"

namespace enrolsync::sandbox {

namespace {

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

}  // namespace

void RegisterEnrolManual(std::vector<FunctionDef>& f) {
  using P = PType;
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
}

}  // namespace enrolsync::sandbox
