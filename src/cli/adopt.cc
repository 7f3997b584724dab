#include "cli/adopt.h"

#include <ostream>

#include <nlohmann/json.hpp>

#include "util/moodle_values.h"
#include "util/strings.h"

namespace enrolsync::cli {
namespace {

std::string Roles(const plan::AdoptEnrolment& e) { return Join(e.role_names, ", "); }

std::string SummaryLine(const plan::Adoption& a, bool apply) {
  return std::string(apply ? "Adopted" : "Adopt") + ": " + std::to_string(a.courses.size()) + " course(s), " +
         std::to_string(a.enrolments.size()) + " enrolment(s)" + (apply ? " recorded as enrolsync's" : " to record") +
         "; " + std::to_string(a.already_owned) + " row(s) already enrolsync's, " +
         std::to_string(a.not_participants) + " row(s) not enrolled in Moodle (the next sync enrols them), " +
         std::to_string(a.without_feed_role) + " participant(s) without the row's role (left alone), " +
         std::to_string(a.problems.size()) + " problem row(s).";
}

}  // namespace

int PrintAdoption(const sync::RunReport& r, bool apply, bool detailed, std::ostream& out, std::ostream& err) {
  if (r.exit_code == sync::kExitError || !r.adoption) {
    err << "enrolsync adopt: " << r.error << "\n";
    return sync::kExitError;
  }
  const plan::Adoption& a = *r.adoption;
  for (const auto& c : a.courses)
    out << "+ own course " << ShownValue(c.shortname) << " (id " << c.courseid << ", idnumber "
        << ShownValue(c.idnumber) << ")\n";
  for (const auto& e : a.enrolments)
    out << "+ own enrolment " << ShownValue(e.user_key) << " in " << ShownValue(e.course_shortname) << " as "
        << Roles(e) << (e.active ? "" : " (suspended)") << "\n";
  out << SummaryLine(a, apply) << "\n";
  if (!apply && !a.Empty()) out << "Nothing was recorded. Run `enrolsync adopt --apply` to record it.\n";
  if (apply && r.applied) out << "The next `enrolsync sync` manages them as its own.\n";
  for (const auto& w : r.warnings) err << "warning: " << w << "\n";
  if (!apply && detailed && !a.Empty()) return sync::kExitChanges;
  return sync::kExitOk;
}

std::string AdoptionJson(const sync::RunReport& r, bool apply) {
  nlohmann::json j;
  j["command"] = apply ? "adopt --apply" : "adopt";
  j["exit_code"] = r.exit_code;
  if (r.exit_code == sync::kExitError || !r.adoption) {
    j["error"] = r.error;
    return j.dump();
  }
  const plan::Adoption& a = *r.adoption;
  j["courses"] = nlohmann::json::array();
  for (const auto& c : a.courses)
    j["courses"].push_back({{"id", c.courseid}, {"shortname", c.shortname}, {"idnumber", c.idnumber}});
  j["enrolments"] = nlohmann::json::array();
  for (const auto& e : a.enrolments)
    j["enrolments"].push_back({{"courseid", e.courseid},
                               {"userid", e.userid},
                               {"course", e.course_key},
                               {"user", e.user_key},
                               {"roles", e.role_names},
                               {"status", e.active ? "active" : "suspended"}});
  j["summary"] = {{"courses", a.courses.size()},
                  {"enrolments", a.enrolments.size()},
                  {"already_owned", a.already_owned},
                  {"not_enrolled", a.not_participants},
                  {"without_role", a.without_feed_role}};
  j["problems"] = a.problems.size();
  j["recorded"] = apply && r.applied;
  j["warnings"] = r.warnings;
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace enrolsync::cli
