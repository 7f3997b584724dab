#include "cli/output.h"

#include <iomanip>
#include <sstream>

#include <nlohmann/json.hpp>

namespace enrolsync::cli {
namespace {

std::string Plural(int n, const char* one, const char* many) {
  return std::to_string(n) + " " + (n == 1 ? one : many);
}

std::string ProblemText(const plan::Problem& p) {
  std::string s;
  if (!p.table.empty()) {
    s = p.table + " row " + std::to_string(p.row);
    if (!p.values.empty()) {
      s += " [";
      for (std::size_t i = 0; i < p.values.size(); ++i) {
        if (i) s += ", ";
        s += p.values[i].first + "=" + p.values[i].second;
      }
      s += "]";
    }
    s += ": ";
  }
  return s + p.reason + (p.skipped ? "" : " (warning)");
}

std::string Seconds(double s) {
  std::ostringstream o;
  o << std::fixed << std::setprecision(2) << s << "s";
  return o.str();
}

}  // namespace

std::string PlanSummaryLine(const plan::Plan& p) {
  const auto& s = p.summary;
  std::string line = "Plan: " + std::to_string(s.courses_create) + " to create, " + std::to_string(s.enrol) +
                     " to enrol, " + std::to_string(s.unsuspend) + " to unsuspend, " + std::to_string(s.suspend) +
                     " to suspend, " + std::to_string(s.unenrol) + " to unenrol, " +
                     Plural(s.role_assign, "role to assign", "roles to assign") + ", " +
                     Plural(s.role_unassign, "role to unassign", "roles to unassign");
  int skipped = 0;
  for (const auto& pr : p.problems) skipped += pr.skipped ? 1 : 0;
  line += "; " + Plural(skipped, "problem", "problems");
  if (p.removals_withheld) line += "; " + std::to_string(p.removals_withheld) + " removals withheld";
  return line + ".";
}

void PrintPlan(const sync::RunReport& r, std::ostream& out, bool explain) {
  const auto& p = r.plan;
  for (const auto& item : p.items) {
    out << "  " << plan::PlanLine(item);
    if (explain && !item.reason.empty()) out << "    # " << item.reason;
    out << "\n";
  }
  if (!p.problems.empty()) {
    out << "\nProblems (" << p.problems.size() << "):\n";
    for (const auto& pr : p.problems) out << "  " << ProblemText(pr) << "\n";
  }
  for (const auto& n : p.notes) out << "note: " << n << "\n";
  if (p.removals_withheld) {
    out << "\nNothing will be removed this run (" << p.removals_withheld << " removals withheld):\n";
    for (const auto& why : p.removal_block_reasons) out << "  - " << why << "\n";
  }
  if (!p.items.empty() || !p.problems.empty()) out << "\n";
  out << PlanSummaryLine(p) << "\n";
}

void PrintGuard(const sync::RunReport& r, std::ostream& out) {
  const auto& p = r.plan;
  out << "Refusing to apply: " << p.summary.Removals() << " removals exceed [safety] max_removals (limit "
      << p.removal_limit << " of " << p.managed_enrolments << " managed enrolments).\n"
      << "These would have gone:\n";
  for (const auto& item : p.items) {
    if (item.action == plan::Action::kSuspend || item.action == plan::Action::kUnenrol)
      out << "  " << plan::PlanLine(item) << "\n";
  }
  out << "Nothing was changed. If this is intended, approve this run with --allow-removals "
      << p.summary.Removals() << ".\n";
}

void PrintRunSummary(const sync::RunReport& r, std::ostream& out) {
  const auto& a = r.apply.applied;
  out << "Applied: " << a.courses_create << " created, " << a.enrol << " enrolled, " << a.unsuspend
      << " unsuspended, " << a.suspend << " suspended, " << a.unenrol << " unenrolled, " << a.role_assign
      << " roles assigned, " << a.role_unassign << " roles unassigned; " << r.apply.failures.size() << " failed.\n";
  int calls = 0;
  std::string by;
  for (const auto& [fn, st] : r.calls) {
    calls += st.calls;
    by += (by.empty() ? "" : ", ") + fn + " " + std::to_string(st.calls);
  }
  out << "Moodle calls: " << calls << " (" << r.write_calls << " writes)" << (by.empty() ? "" : ": " + by) << "\n";
  out << "Time: sources " << Seconds(r.timings.sources) << ", Moodle reads " << Seconds(r.timings.moodle_read)
      << " (" << r.courses_verified << " courses verified), planning " << Seconds(r.timings.planning) << ", apply "
      << Seconds(r.timings.apply) << "\n";
}

std::string ReportJson(const sync::RunReport& r, const std::string& command) {
  using nlohmann::json;
  const auto& p = r.plan;
  auto summary = [](const plan::Summary& s, std::size_t problems) {
    return json{{"courses.create", s.courses_create},       {"enrolments.enrol", s.enrol},
                {"enrolments.unsuspend", s.unsuspend},     {"enrolments.suspend", s.suspend},
                {"enrolments.unenrol", s.unenrol},         {"enrolments.role_assign", s.role_assign},
                {"enrolments.role_unassign", s.role_unassign}, {"problems", problems}};
  };
  json j;
  j["command"] = command;
  j["exit_code"] = r.exit_code;
  if (!r.error.empty()) j["error"] = r.error;
  j["summary"] = summary(p.summary, p.problems.size());
  json items = json::array();
  for (const auto& i : p.items) {
    json it{{"action", plan::ActionName(i.action)}, {"course", i.course_shortname}, {"reason", i.reason}};
    if (i.courseid) it["courseid"] = i.courseid;
    if (i.action == plan::Action::kCreateCourse) {
      it["fullname"] = i.course_fullname;
      it["idnumber"] = i.idnumber;
      it["categoryid"] = i.categoryid;
    } else {
      it["user"] = i.user_key;
      it["userid"] = i.userid;
      if (i.roleid) it["role"] = i.role;
    }
    items.push_back(std::move(it));
  }
  j["items"] = std::move(items);
  json problems = json::array();
  for (const auto& pr : p.problems) {
    json values = json::object();
    for (const auto& [k, v] : pr.values) values[k] = v;
    problems.push_back(json{{"table", pr.table}, {"row", pr.row}, {"values", values}, {"reason", pr.reason},
                            {"skipped", pr.skipped}});
  }
  j["problems"] = std::move(problems);
  j["notes"] = p.notes;
  j["removals"] = json{{"count", p.summary.Removals()},
                       {"limit", p.removal_limit},
                       {"managed_enrolments", p.managed_enrolments},
                       {"guard_tripped", p.guard_tripped},
                       {"withheld", p.removals_withheld},
                       {"withheld_because", p.removal_block_reasons}};
  if (r.applied) {
    json failures = json::array();
    for (const auto& f : r.apply.failures) failures.push_back(json{{"item", f.item}, {"error", f.message}});
    j["applied"] = summary(r.apply.applied, 0);
    j["applied"].erase("problems");
    j["failures"] = std::move(failures);
    j["message_not_sent"] = r.apply.message_not_sent;
  }
  json calls = json::object();
  int total = 0;
  for (const auto& [fn, st] : r.calls) {
    calls[fn] = json{{"calls", st.calls}, {"failed", st.failed}, {"seconds", st.seconds}};
    total += st.calls;
  }
  j["calls"] = json{{"total", total}, {"writes", r.write_calls}, {"by_function", calls}};
  j["timings"] = json{{"sources_s", r.timings.sources},
                      {"moodle_read_s", r.timings.moodle_read},
                      {"planning_s", r.timings.planning},
                      {"apply_s", r.timings.apply}};
  j["courses_verified"] = r.courses_verified;
  j["warnings"] = r.warnings;
  j["run_id"] = r.run_id;
  return j.dump(2);
}

}  // namespace enrolsync::cli
