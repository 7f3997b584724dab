#include "sync/report.h"

#include <algorithm>
#include <map>

#include <nlohmann/json.hpp>

#include "util/moodle_values.h"

namespace enrolsync::sync {

namespace {

bool IsDigit(char c) { return c >= '0' && c <= '9'; }

// A quote that opens a quoted value: at the start or after a space, '(',
// '[', '=' or ':' (not the apostrophe of "Moodle's").
bool OpensQuote(std::string_view s, std::size_t i) {
  return s[i] == '\'' && (i == 0 || std::string_view(" ([=:").find(s[i - 1]) != std::string_view::npos);
}

// A label for plan item `i` in examples: "course / user", "course X".
std::string ItemLabel(const plan::Plan& p, std::size_t i) {
  if (i >= p.items.size()) return "item " + std::to_string(i);
  const auto& item = p.items[i];
  if (item.action == plan::Action::kCreateCourse) return "course " + ShownValue(item.course_shortname, 60);
  return ShownValue(item.course_shortname, 60) + " / " + ShownValue(item.user_key, 60);
}

}  // namespace

std::string FailureReason(std::string_view message) {
  std::string out;
  out.reserve(std::min<std::size_t>(message.size(), 1200));
  bool in_debuginfo = false;
  for (std::size_t i = 0; i < message.size();) {
    // " (gave up after 4 attempts)": how often this batch was tried.
    static constexpr std::string_view kGaveUp = " (gave up after ";
    if (message.substr(i, kGaveUp.size()) == kGaveUp) {
      std::size_t j = i + kGaveUp.size();
      while (j < message.size() && IsDigit(message[j])) ++j;
      static constexpr std::string_view kTail = " attempts)";
      if (j > i + kGaveUp.size() && message.substr(j, kTail.size()) == kTail) {
        i = j + kTail.size();
        continue;
      }
    }
    if (message.substr(i, 11) == "[debuginfo:") in_debuginfo = true;
    if (OpensQuote(message, i)) {
      const std::size_t close = message.find('\'', i + 1);
      if (close != std::string_view::npos) {
        out += "'…'";
        i = close + 1;
        continue;
      }
    }
    if (in_debuginfo && IsDigit(message[i])) {
      while (i < message.size() && IsDigit(message[i])) ++i;
      out += 'N';
      continue;
    }
    out += message[i++];
  }
  return out;
}

std::vector<FailureGroup> GroupFailures(const std::vector<std::pair<std::string, std::string>>& failures,
                                        std::size_t examples) {
  std::vector<FailureGroup> groups;
  std::map<std::string, std::size_t> index;
  for (const auto& [item, message] : failures) {
    std::string reason = FailureReason(message);
    auto [it, inserted] = index.try_emplace(reason, groups.size());
    if (inserted) groups.push_back(FailureGroup{std::move(reason), 0, {}});
    FailureGroup& g = groups[it->second];
    ++g.count;
    if (g.examples.size() < examples) g.examples.push_back(item);
  }
  std::stable_sort(groups.begin(), groups.end(),
                   [](const FailureGroup& a, const FailureGroup& b) { return a.count > b.count; });
  return groups;
}

std::vector<FailureGroup> ApplyFailureGroups(const RunReport& r) {
  std::vector<std::pair<std::string, std::string>> failures;
  failures.reserve(r.apply.failures.size());
  for (const auto& f : r.apply.failures) failures.emplace_back(ItemLabel(r.plan, f.item), f.message);
  return GroupFailures(failures);
}

std::vector<FailureGroup> UserFailureGroups(const RunReport& r) {
  // "jsmith: <error>", "jsmith (suspending the new account): <error>".
  std::vector<std::pair<std::string, std::string>> failures;
  for (const auto& f : r.users.apply.failures) {
    const std::size_t colon = f.find(": ");
    if (colon == std::string::npos) {
      failures.emplace_back("", f);
    } else {
      failures.emplace_back(ShownValue(f.substr(0, colon), 60), f.substr(colon + 2));
    }
  }
  return GroupFailures(failures);
}

namespace {
nlohmann::json GroupsJson(const std::vector<FailureGroup>& groups) {
  nlohmann::json out = nlohmann::json::array();
  for (const auto& g : groups)
    out.push_back(nlohmann::json{{"reason", g.reason}, {"count", g.count}, {"examples", g.examples}});
  return out;
}
}  // namespace

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
      json it{{"action", plan::UserActionName(i.action)}, {"username", ShownValue(i.username)}, {"reason", i.why}};
      if (i.userid) it["userid"] = i.userid;
      if (!i.changes.empty()) {
        json ch = json::array();
        // Values as printed (ShownValue): a 1 MB value is not stored whole in
        // every report.
        for (const auto& c : i.changes)
          ch.push_back(json{{"field", c.field}, {"from", ShownValue(c.from)}, {"to", ShownValue(c.to)}});
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
      j["users"]["failures_by_reason"] = GroupsJson(UserFailureGroups(r));
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
    j["failures_by_reason"] = GroupsJson(ApplyFailureGroups(r));
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
