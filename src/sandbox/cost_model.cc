#include "sandbox/cost_model.h"

#include <set>

#include "util/strings.h"

namespace enrolsync::sandbox {

namespace {

// Moodle 5.1+ (Build 20251017) of the realmoodle harness: PHP 8.2's built-in
// server with 4 workers, PostgreSQL 15, 2 cores. Sources (bench/README.md):
// R = realmoodle_reads, S = server seconds by function of realmoodle_bench's
// runs, T = shared/moodle/README.md throughput, G = a guess from a similar
// function (no measurement yet).
CostModel Moodle51() {
  CostModel m;
  m.name = "moodle-5.1";
  m.bootstrap = 0.035;  // R: site info 0.029 s, one user by id 0.040 s
  m.workers = 2;        // T: enrol with 2 clients 283-297/s, with 4 no faster
  m.participants_id_only_factor = 0.57;  // R: 66 courses "id" onlyactive 0.806 s vs "id,roles" 1.417 s
  m.participants_details_factor = 3.6;   // R: 66 courses with user fields 5.074 s
  m.functions = {
      // Reads.
      {"core_user_get_users_by_field", {0, 0, 0.0060}},            // R: 100 users by id 0.641 s
      {"core_user_get_users", {0, 0, 0.0078}},                     // R: 890 users 7.065 s
      {"core_enrol_get_enrolled_users", {0.021, 0, 0.0011}},       // R: 1 course, 18 "id,roles" 0.076 s
      {"core_enrol_get_enrolled_users_with_capability", {0, 0.003, 0.0011}},  // R: 456 courses, 8,513: 10.4 s
      {"core_course_get_courses_by_field", {0, 0, 0.0044}},        // R: 457 courses 2.042 s
      {"core_course_get_courses", {0, 0, 0.0025}},                 // R: 457 courses 1.184 s
      {"core_course_search_courses", {0, 0, 0.0021}},              // R: a page of 100 0.247 s
      {"core_course_get_categories", {0, 0, 0.0005}},              // G
      // Writes.
      {"core_course_create_courses", {0, 0.050, 0}},               // S: 456 courses 21-24 s
      {"core_course_update_courses", {0, 0.020, 0}},               // G
      {"core_course_delete_courses", {0, 0.050, 0}},               // G
      {"core_course_create_categories", {0, 0.030, 0}},            // G
      {"enrol_manual_enrol_users", {0, 0.010, 0}},                 // S: 8,513 enrolments 80-92 s
      {"enrol_manual_unenrol_users", {0, 0.010, 0}},               // T: 241/s with 2 clients
      {"core_role_assign_roles", {0, 0.010, 0}},                   // G: as enrol
      {"core_role_unassign_roles", {0, 0.010, 0}},                 // G: as enrol
      {"core_user_create_users", {0, 0.0045, 0}},                  // S: 890 users 3-5 s
      {"core_user_update_users", {0, 0.0070, 0}},                  // G: as create, plus the read
      {"enrol_meta_add_instances", {0, 0.70, 0}},                  // shared/moodle: ~0.7 s each
      {"enrol_meta_delete_instances", {0, 0.70, 0}},               // shared/moodle: ~0.7 s each
      {"core_group_create_groups", {0, 0.010, 0}},                 // G
      {"core_group_add_group_members", {0, 0.010, 0}},             // G
      {"core_cohort_create_cohorts", {0, 0.010, 0}},               // G
      {"core_cohort_add_cohort_members", {0, 0.010, 0}},           // G
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

double CallSeconds(const CostModel& model, std::string_view function, const Json& params, const Json& result) {
  double seconds = model.bootstrap;
  if (result.is_object() && result.contains("exception")) return seconds;
  auto it = model.functions.find(function);
  if (it == model.functions.end()) return seconds;
  const FunctionCost& c = it->second;
  CallSize size = MeasureCall(function, params, result);
  double per_record = c.per_record;
  if (IsParticipantRead(function)) per_record *= ParticipantFactor(model, params);
  return seconds + c.per_call + c.per_item * static_cast<double>(size.items) +
         per_record * static_cast<double>(size.records);
}

}  // namespace enrolsync::sandbox
