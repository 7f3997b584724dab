#include "sync/report.h"

#include <algorithm>
#include <map>

#include "util/json_writer.h"
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

void WriteGroups(JsonWriter& w, std::string_view key, const std::vector<FailureGroup>& groups) {
  w.Key(key).BeginArray();
  for (const auto& g : groups)
    w.BeginObject().Field("reason", g.reason).Field("count", g.count).Field("examples", g.examples).EndObject();
  w.EndArray();
}

void WriteSummary(JsonWriter& w, std::string_view key, const plan::Summary& s, const std::size_t* problems) {
  w.Key(key).BeginObject();
  w.Field("courses.create", s.courses_create)
      .Field("enrolments.enrol", s.enrol)
      .Field("enrolments.unsuspend", s.unsuspend)
      .Field("enrolments.suspend", s.suspend)
      .Field("enrolments.unenrol", s.unenrol)
      .Field("enrolments.role_assign", s.role_assign)
      .Field("enrolments.role_unassign", s.role_unassign);
  if (problems) w.Field("problems", *problems);
}

void WriteProblemValues(JsonWriter& w, const std::vector<std::pair<std::string, std::string>>& values) {
  w.Key("values").Inline().BeginObject();
  for (const auto& [k, v] : values) w.Field(k, v);
  w.EndObject();
}

void WriteUsers(JsonWriter& w, const RunReport& r, ReportScope scope) {
  const auto& up = r.users.plan;
  w.Key("users").BeginObject();
  w.Field("read_ok", r.users.read_ok).Field("error", r.users.read_error).Field("people", r.users.people);
  w.Key("contexts").BeginObject();
  for (const auto& [context, n] : r.users.context_counts) w.Field(context, n);
  w.EndObject();
  if (scope == ReportScope::kFull) {
    w.Key("items").BeginArray();
    for (const auto& i : up.items) {
      w.Inline().BeginObject().Field("action", plan::UserActionName(i.action)).Field("username", ShownValue(i.username));
      w.Field("reason", i.why);
      if (i.userid) w.Field("userid", i.userid);
      if (!i.changes.empty()) {
        // Values as printed (ShownValue): a 1 MB value is not stored whole in
        // every report.
        w.Key("changes").BeginArray();
        for (const auto& c : i.changes)
          w.BeginObject().Field("field", c.field).Field("from", ShownValue(c.from)).Field("to", ShownValue(c.to)).EndObject();
        w.EndArray();
      }
      w.EndObject();
    }
    w.EndArray();
    w.Key("problems").BeginArray();
    for (const auto& pr : up.problems) {
      w.Inline().BeginObject().Field("reason", pr.reason);
      WriteProblemValues(w, pr.values);
      w.EndObject();
    }
    w.EndArray();
    w.Field("notes", up.notes);
  } else {
    w.Field("items_count", up.items.size()).Field("problems_count", up.problems.size());
  }
  w.Field("adopted", up.adoptions.size())
      .Field("removals_withheld", up.removals_withheld)
      .Field("guard_tripped", up.guard_tripped);
  if (r.users.applied) {
    const auto& ua = r.users.apply.applied;
    w.Key("applied").BeginObject();
    w.Field("create", ua.create).Field("update", ua.update).Field("suspend", ua.suspend);
    w.Field("revive", ua.revive).Field("delete", ua.remove);
    w.EndObject();
    if (scope == ReportScope::kFull) w.Field("failures", r.users.apply.failures);
    else w.Field("failures_count", r.users.apply.failures.size());
    WriteGroups(w, "failures_by_reason", UserFailureGroups(r));
  }
  w.EndObject();
}

void WriteItem(JsonWriter& w, const plan::PlanItem& i) {
  w.Inline().BeginObject();
  w.Field("action", plan::ActionName(i.action)).Field("course", i.course_shortname).Field("reason", i.reason);
  if (i.courseid) w.Field("courseid", i.courseid);
  if (i.action == plan::Action::kCreateCourse) {
    w.Field("fullname", i.course_fullname).Field("idnumber", i.idnumber).Field("categoryid", i.categoryid);
  } else {
    w.Field("user", i.user_key).Field("userid", i.userid);
    if (i.roleid) w.Field("role", i.role);
  }
  w.EndObject();
}

}  // namespace

void WriteReportJson(std::ostream& out, const RunReport& r, const std::string& command, ReportScope scope,
                     const std::vector<std::string>* trace) {
  const auto& p = r.plan;
  const bool full = scope == ReportScope::kFull;
  JsonWriter w(out);
  w.BeginObject();
  w.Field("command", command).Field("exit_code", r.exit_code);
  if (!r.error.empty()) w.Field("error", r.error);
  const std::size_t problems = p.problems.size();
  WriteSummary(w, "summary", p.summary, &problems);
  if (r.users_ran) {
    const auto& us = r.users.plan.summary;
    w.Field("users.create", us.create).Field("users.update", us.update).Field("users.suspend", us.suspend);
    w.Field("users.revive", us.revive).Field("users.delete", us.remove);
  }
  w.EndObject();
  if (r.users_ran) WriteUsers(w, r, scope);
  if (full) {
    w.Key("items").BeginArray();
    for (const auto& i : p.items) WriteItem(w, i);
    w.EndArray();
    w.Key("problems").BeginArray();
    for (const auto& pr : p.problems) {
      w.Inline().BeginObject().Field("table", pr.table).Field("row", pr.row);
      WriteProblemValues(w, pr.values);
      w.Field("reason", pr.reason).Field("skipped", pr.skipped).EndObject();
    }
    w.EndArray();
    w.Field("notes", p.notes);
  } else {
    w.Field("items_count", p.items.size()).Field("problems_count", p.problems.size()).Field("notes_count", p.notes.size());
  }
  w.Key("removals").BeginObject();
  w.Field("count", p.summary.Removals())
      .Field("limit", p.removal_limit)
      .Field("managed_enrolments", p.managed_enrolments)
      .Field("guard_tripped", p.guard_tripped)
      .Field("withheld", p.removals_withheld)
      .Field("withheld_because", p.removal_block_reasons);
  w.EndObject();
  if (r.applied) {
    WriteSummary(w, "applied", r.apply.applied, nullptr);
    w.EndObject();
    if (full) {
      w.Key("failures").BeginArray();
      for (const auto& f : r.apply.failures) w.Inline().BeginObject().Field("item", f.item).Field("error", f.message).EndObject();
      w.EndArray();
    } else {
      w.Field("failures_count", r.apply.failures.size());
    }
    WriteGroups(w, "failures_by_reason", ApplyFailureGroups(r));
    w.Field("message_not_sent", r.apply.message_not_sent);
  }
  int total = 0, retried = 0;
  for (const auto& [fn, st] : r.calls) total += st.calls;
  for (const auto& [reason, n] : r.retries) retried += n;
  w.Key("calls").BeginObject();
  w.Field("total", total).Field("writes", r.write_calls);
  w.Key("by_function").BeginObject();
  for (const auto& [fn, st] : r.calls)
    w.Key(fn).Inline().BeginObject().Field("calls", st.calls).Field("failed", st.failed).Field("seconds", st.seconds).EndObject();
  w.EndObject();
  w.Key("retried").BeginObject().Field("total", retried).Key("by_reason").BeginObject();
  for (const auto& [reason, n] : r.retries) w.Field(reason, n);
  w.EndObject().EndObject();
  w.Field("waiting_s", r.moodle_wait_seconds);
  w.EndObject();
  w.Key("timings").BeginObject();
  w.Field("sources_s", r.timings.sources)
      .Field("users_s", r.timings.users)
      .Field("moodle_read_s", r.timings.moodle_read)
      .Field("planning_s", r.timings.planning)
      .Field("apply_s", r.timings.apply);
  w.EndObject();
  w.Key("hooks").BeginArray();
  for (const auto& h : r.hooks) {
    w.BeginObject().Field("command", h.command).Field("exit_code", h.exit_code).Field("timed_out", h.timed_out);
    w.Field("ok", h.ok()).Field("error", h.error).EndObject();
  }
  w.EndArray();
  w.Field("stopped", r.stopped).Field("courses_verified", r.courses_verified).Field("warnings", r.warnings);
  w.Field("run_id", r.run_id);
  if (trace && full) w.Field("trace", *trace);
  w.EndObject();
}

}  // namespace enrolsync::sync
