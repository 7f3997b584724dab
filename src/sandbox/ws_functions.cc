#include "sandbox/ws_functions.h"

#include <set>

#include "sandbox/ws_common.h"

// The registry. Each Moodle component's functions live in ws_<component>.cc.
namespace enrolsync::sandbox {

namespace {

std::vector<FunctionDef> BuildFunctions() {
  std::vector<FunctionDef> f;
  RegisterWebservice(f);
  RegisterCoreCourse(f);
  RegisterCoreUser(f);
  RegisterCoreEnrol(f);
  RegisterEnrolManual(f);
  RegisterCoreRole(f);
  RegisterEnrolMeta(f);
  RegisterCoreCohort(f);
  RegisterCoreGroup(f);
  return f;
}

}  // namespace

const std::vector<FunctionDef>& ServiceFunctions() {
  static const std::vector<FunctionDef> fns = BuildFunctions();
  return fns;
}

const FunctionDef* FindServiceFunction(const std::string& name) {
  for (const FunctionDef& f : ServiceFunctions()) {
    if (f.name == name) return &f;
  }
  return nullptr;
}

bool IsOtherMoodleFunction(const std::string& name) {
  // A sample of real Moodle 5.1 functions that the enrolsync service lacks.
  static const std::set<std::string> kOthers = {
      "core_course_delete_courses", "core_course_delete_categories",
      "core_course_update_categories", "core_course_get_contents", "core_course_duplicate_course",
      "core_course_search_courses", "core_enrol_get_users_courses",
      "core_enrol_search_users", "core_group_get_course_groups", "core_group_delete_groups",
      "core_group_delete_group_members", "core_group_get_group_members", "core_cohort_delete_cohorts",
      "core_cohort_delete_cohort_members", "core_cohort_update_cohorts", "core_cohort_search_cohorts",
      "core_user_get_course_user_profiles", "core_user_update_user_preferences", "core_role_get_roles",
      "enrol_self_enrol_user", "enrol_guest_get_instance_info", "enrol_self_get_instance_info",
      "core_webservice_get_site_info_v2", "core_message_send_instant_messages", "core_course_get_course_module",
      "core_calendar_get_calendar_events", "core_grades_get_grades", "gradereport_user_get_grade_items",
      "core_completion_get_course_completion_status", "core_enrol_unenrol_user_enrolment",
      "core_enrol_edit_user_enrolment", "core_enrol_submit_user_enrolment_form", "tool_mobile_get_config"};
  return kOthers.count(name) > 0;
}

}  // namespace enrolsync::sandbox
