#include "sync/report.h"

#include <nlohmann/json.hpp>

namespace enrolsync::sync {

std::string ReportJson(const RunReport& r, const std::string& command, const std::vector<std::string>* trace) {
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
  if (r.users_ran) {
    const auto& us = r.users.plan.summary;
    j["summary"]["users.create"] = us.create;
    j["summary"]["users.update"] = us.update;
    j["summary"]["users.suspend"] = us.suspend;
    j["summary"]["users.revive"] = us.revive;
    j["summary"]["users.delete"] = us.remove;
    json uitems = json::array();
    for (const auto& i : r.users.plan.items) {
      json it{{"action", plan::UserActionName(i.action)}, {"username", i.username}, {"reason", i.why}};
      if (i.userid) it["userid"] = i.userid;
      if (!i.changes.empty()) {
        json ch = json::array();
        for (const auto& c : i.changes) ch.push_back(json{{"field", c.field}, {"from", c.from}, {"to", c.to}});
        it["changes"] = ch;
      }
      uitems.push_back(std::move(it));
    }
    json uproblems = json::array();
    for (const auto& pr : r.users.plan.problems) uproblems.push_back(json{{"reason", pr.reason}, {"values", pr.values}});
    j["users"] = json{{"read_ok", r.users.read_ok},
                      {"error", r.users.read_error},
                      {"people", r.users.people},
                      {"contexts", r.users.context_counts},
                      {"items", uitems},
                      {"problems", uproblems},
                      {"notes", r.users.plan.notes},
                      {"adopted", r.users.plan.adoptions.size()},
                      {"removals_withheld", r.users.plan.removals_withheld},
                      {"guard_tripped", r.users.plan.guard_tripped}};
    if (r.users.applied) {
      const auto& ua = r.users.apply.applied;
      j["users"]["applied"] = json{{"create", ua.create}, {"update", ua.update}, {"suspend", ua.suspend},
                                   {"revive", ua.revive}, {"delete", ua.remove}};
      j["users"]["failures"] = r.users.apply.failures;
    }
  }
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
  int retried = 0;
  for (const auto& [reason, n] : r.retries) retried += n;
  j["calls"] = json{{"total", total},
                    {"writes", r.write_calls},
                    {"by_function", calls},
                    {"retried", json{{"total", retried}, {"by_reason", r.retries}}},
                    {"waiting_s", r.moodle_wait_seconds}};
  j["timings"] = json{{"sources_s", r.timings.sources},
                      {"users_s", r.timings.users},
                      {"moodle_read_s", r.timings.moodle_read},
                      {"planning_s", r.timings.planning},
                      {"apply_s", r.timings.apply}};
  json hooks = json::array();
  for (const auto& h : r.hooks)
    hooks.push_back(json{{"command", h.command}, {"exit_code", h.exit_code}, {"timed_out", h.timed_out},
                         {"ok", h.ok()}, {"error", h.error}});
  j["hooks"] = std::move(hooks);
  j["stopped"] = r.stopped;
  j["courses_verified"] = r.courses_verified;
  j["warnings"] = r.warnings;
  j["run_id"] = r.run_id;
  if (trace) j["trace"] = *trace;
  return j.dump(2);
}

}  // namespace enrolsync::sync
