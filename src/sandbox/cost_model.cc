#include "sandbox/cost_model.h"

#include <set>

#include "util/strings.h"

namespace enrolsync::sandbox {

namespace {

// Moodle 5.1+ (Build 20251017) of the realmoodle harness: PHP 8.2's built-in
// server with 4 workers, PostgreSQL 15, 2 cores, a quiet machine. Fitted to
// the server seconds by function of scenario_bench --backend moodle
// (2026-12-02 evening: first sync, no change, normal day of the
// recorded-size school; bench/README.md). R marks figures from
// realmoodle_reads instead, G a guess from a similar function.
CostModel Moodle51() {
  CostModel m;
  m.name = "moodle-5.1";
  m.bootstrap = 0.035;  // site info 0.029-0.035 s
  m.workers = 2;        // enrol with 2 clients 283-297/s, with 4 no faster (shared/moodle)
  m.participants_id_only_factor = 0.57;  // R: 66 courses "id" onlyactive 0.806 s vs "id,roles" 1.417 s
  m.participants_details_factor = 3.6;   // R: 66 courses with user fields 5.074 s
  m.functions = {
      // Reads. A user costs 3.0 ms, plus 0.53 ms per course they are in:
      // 890 new users by id 2.76 s; 150 enrolled users by id 1.25 s.
      {"core_user_get_users_by_field", {0, 0, 0.0030, 0.00053}},
      {"core_user_get_users", {0, 0, 0.0040, 0.00053}},             // R: 890 users 7.065 s (loaded machine)
      {"core_enrol_get_enrolled_users", {0.021, 0, 0.0008}},        // R: 1 course, 18 "id,roles" 0.076 s
      // 76 courses, ~1,400 enrolments "id,roles" + "id" onlyactive: 2.18 s;
      // 5 more courses in a normal day: 3.15 s.
      {"core_enrol_get_enrolled_users_with_capability", {0, 0.003, 0.0008}},
      {"core_course_get_courses_by_field", {0, 0, 0.0044}},         // R: 457 courses 2.042 s
      {"core_course_get_courses", {0, 0, 0.0040}},                  // 78 courses 0.35 s
      {"core_course_search_courses", {0, 0, 0.0021}},               // R: a page of 100 0.247 s
      {"core_course_get_categories", {0, 0, 0.0002}},               // 16 categories 0.03 s
      // Writes.
      {"core_course_create_courses", {0, 0.028, 0}},                // 456 courses in 4 calls 12.97 s
      {"core_course_update_courses", {0, 0.020, 0}},                // G
      {"core_course_delete_courses", {0, 0.050, 0}},                // G
      {"core_course_create_categories", {0, 0.030, 0}},             // G
      {"enrol_manual_enrol_users", {0, 0.0053, 0}},                 // 8,513 enrolments in 18 calls 46.1 s
      {"enrol_manual_unenrol_users", {0, 0.0053, 0}},               // G: as enrol
      {"core_role_assign_roles", {0, 0.0035, 0}},                   // 13 roles 0.08 s
      {"core_role_unassign_roles", {0, 0.0015, 0}},                 // 13 roles 0.05 s
      {"core_user_create_users", {0, 0.0016, 0}},                   // 890 users in 2 calls 1.46 s
      {"core_user_update_users", {0, 0.0070, 0}},                   // G: as create, plus the read
      {"enrol_meta_add_instances", {0, 0.70, 0}},                   // shared/moodle: ~0.7 s each
      {"enrol_meta_delete_instances", {0, 0.70, 0}},                // shared/moodle: ~0.7 s each
      {"core_group_create_groups", {0, 0.010, 0}},                  // G
      {"core_group_add_group_members", {0, 0.005, 0}},              // G
      {"core_cohort_create_cohorts", {0, 0.010, 0}},                // G
      {"core_cohort_add_cohort_members", {0, 0.005, 0}},            // G
  };
  return m;
}

bool IsParticipantRead(std::string_view function) {
  return function == "core_enrol_get_enrolled_users" || function == "core_enrol_get_enrolled_users_with_capability";
}

// 1 for "id,roles", the id-only factor for "id", the details factor for
// anything else (no userfields option: Moodle's full records).
double ParticipantFactor(const CostModel& m, const Json& params) {
  auto it = params.find("options");
  if (it != params.end() && it->is_array()) {
    for (const Json& o : *it) {
      if (!o.is_object() || !o.contains("name") || !o["name"].is_string()) continue;
      if (ToLower(o["name"].get<std::string>()) != "userfields" || !o.contains("value")) continue;
      std::set<std::string> fields;
      if (o["value"].is_string())
        for (const std::string& f : Split(o["value"].get<std::string>(), ',')) fields.insert(ToLower(Trim(f)));
      if (fields == std::set<std::string>{"id"}) return m.participants_id_only_factor;
      if (fields == std::set<std::string>{"id", "roles"} || fields == std::set<std::string>{"roles"}) return 1;
      return m.participants_details_factor;
    }
  }
  return m.participants_details_factor;
}

}  // namespace

std::optional<CostModel> FindCostModel(std::string_view name) {
  if (name == "moodle-5.1") return Moodle51();
  return std::nullopt;
}

CallSize MeasureCall(std::string_view function, const Json& params, const Json& result) {
  CallSize size;
  if (params.is_object()) {
    for (const auto& [key, value] : params.items()) {
      if (key == "options") continue;  // settings of the call, not work
      if (value.is_array()) size.items = std::max<long long>(size.items, static_cast<long long>(value.size()));
    }
  }
  if (result.is_object() && result.contains("exception")) return size;
  if (function == "core_enrol_get_enrolled_users_with_capability" && result.is_array()) {
    for (const Json& course : result)
      if (course.is_object() && course.contains("users") && course["users"].is_array())
        size.records += static_cast<long long>(course["users"].size());
  } else if (result.is_array()) {
    size.records = static_cast<long long>(result.size());
  } else if (result.is_object()) {
    for (const char* key : {"users", "courses"}) {
      auto it = result.find(key);
      if (it != result.end() && it->is_array()) size.records += static_cast<long long>(it->size());
    }
  }
  return size;
}

double CallSeconds(const CostModel& model, std::string_view function, const Json& params, const Json& result,
                   long long units) {
  double seconds = model.bootstrap;
  if (result.is_object() && result.contains("exception")) return seconds;
  auto it = model.functions.find(function);
  if (it == model.functions.end()) return seconds;
  const FunctionCost& c = it->second;
  CallSize size = MeasureCall(function, params, result);
  double per_record = c.per_record;
  if (IsParticipantRead(function)) per_record *= ParticipantFactor(model, params);
  return seconds + c.per_call + c.per_item * static_cast<double>(size.items) +
         per_record * static_cast<double>(size.records) + c.per_unit * static_cast<double>(units);
}

}  // namespace enrolsync::sandbox
