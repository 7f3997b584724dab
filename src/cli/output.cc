#include "cli/output.h"

#include <iomanip>
#include <sstream>

#include "sync/report.h"
#include "util/moodle_values.h"

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

// "failed: 50522 items", then each reason with its count and a few of its
// items; at most kMaxGroups reasons (the JSON report lists every item).
constexpr std::size_t kMaxGroups = 10;
void PrintFailureGroups(const std::vector<sync::FailureGroup>& groups, std::size_t total, const std::string& what,
                        std::ostream& out) {
  if (total == 0) return;
  out << "failed: " << total << " " << what << (total == 1 ? "" : "s") << "\n";
  for (std::size_t k = 0; k < groups.size() && k < kMaxGroups; ++k) {
    const auto& g = groups[k];
    out << "  " << g.count << " × " << ShownValue(g.reason, 300) << "\n";
    if (g.examples.empty() || (g.examples.size() == 1 && g.examples[0].empty())) continue;
    out << "      e.g. ";
    for (std::size_t i = 0; i < g.examples.size(); ++i) out << (i ? ", " : "") << g.examples[i];
    if (g.count > g.examples.size()) out << " … and " << g.count - g.examples.size() << " more";
    out << "\n";
  }
  if (groups.size() > kMaxGroups) {
    std::size_t rest = 0;
    for (std::size_t k = kMaxGroups; k < groups.size(); ++k) rest += groups[k].count;
    out << "  … and " << rest << " more in " << groups.size() - kMaxGroups
        << " other reasons (the run's JSON report lists every item)\n";
  }
}

// A user plan item as printed: its values cut to 200 characters, with the
// length shown (a 1 MB department is not printed whole, twice).
plan::UserItem Shown(const plan::UserItem& item) {
  plan::UserItem shown = item;
  for (auto& c : shown.changes) {
    c.from = ShownValue(c.from);
    c.to = ShownValue(c.to);
  }
  for (auto& [field, value] : shown.fields) value = ShownValue(value);
  return shown;
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

void PrintUserPlan(const sync::RunReport& r, std::ostream& out, bool explain) {
  if (!r.users_ran) return;
  const auto& u = r.users;
  if (!u.read_ok) {
    out << "Users: not synced: " << u.read_error << "\n\n";
    return;
  }
  for (const auto& item : u.plan.items) {
    out << "  " << plan::UserPlanLine(Shown(item));
    if (explain && !item.why.empty()) out << "    # " << item.why;
    out << "\n";
  }
  for (const auto& pr : u.plan.problems) out << "  problem: " << ProblemText(pr) << "\n";
  for (const auto& n : u.plan.notes) out << "note: " << n << "\n";
  if (u.plan.removals_withheld) out << "Nothing will be suspended or deleted this run (" << u.plan.removals_withheld
                                    << " withheld).\n";
  out << UserSummaryLine(r) << "\n\n";
}

std::string UserSummaryLine(const sync::RunReport& r) {
  const auto& s = r.users.plan.summary;
  std::string line = "Users: " + std::to_string(r.users.people) + " in the directory; " + std::to_string(s.create) +
                     " to create, " + std::to_string(s.update) + " to update, " + std::to_string(s.suspend) +
                     " to suspend, " + std::to_string(s.revive) + " to revive, " + std::to_string(s.remove) +
                     " to delete";
  if (!r.users.plan.adoptions.empty()) line += ", " + std::to_string(r.users.plan.adoptions.size()) + " to adopt";
  if (!r.users.plan.problems.empty()) line += "; " + std::to_string(r.users.plan.problems.size()) + " problems";
  return line + ".";
}

void PrintPlan(const sync::RunReport& r, std::ostream& out, bool explain) {
  PrintUserPlan(r, out, explain);
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
  if (r.users_ran && r.users.plan.guard_tripped) {
    const auto& u = r.users.plan;
    out << "Refusing to apply: " << u.summary.Removals() << " user removals exceed [safety] max_removals (limit "
        << u.removal_limit << " of " << u.managed_users << " managed users).\nThese would have gone:\n";
    for (const auto& item : u.items)
      if (item.action == plan::UserAction::kSuspend || item.action == plan::UserAction::kDelete)
        out << "  " << plan::UserPlanLine(Shown(item)) << "\n";
    out << "Nothing was changed. If this is intended, approve this run with --allow-removals "
        << u.summary.Removals() << ".\n";
    return;
  }
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
  if (r.users_ran && r.users.applied) {
    const auto& u = r.users.apply.applied;
    out << "Users applied: " << u.create << " created, " << u.update << " updated, " << u.suspend << " suspended, "
        << u.revive << " revived, " << u.remove << " deleted; " << r.users.apply.failures.size() << " failed.\n";
    PrintFailureGroups(sync::UserFailureGroups(r), r.users.apply.failures.size(), "user", out);
  }
  const auto& a = r.apply.applied;
  out << "Applied: " << a.courses_create << " created, " << a.enrol << " enrolled, " << a.unsuspend
      << " unsuspended, " << a.suspend << " suspended, " << a.unenrol << " unenrolled, " << a.role_assign
      << " roles assigned, " << a.role_unassign << " roles unassigned; " << r.apply.failures.size() << " failed.\n";
  PrintFailureGroups(sync::ApplyFailureGroups(r), r.apply.failures.size(), "item", out);
  int calls = 0;
  std::string by;
  for (const auto& [fn, st] : r.calls) {
    calls += st.calls;
    by += (by.empty() ? "" : ", ") + fn + " " + std::to_string(st.calls);
  }
  out << MoodleCostLine(r) << (by.empty() ? "" : ": " + by) << "\n";
  if (std::string retried = RetriesLine(r.retries); !retried.empty()) {
    // Only a database error is something Moodle rolled back; the others
    // (connection, timeout, HTTP 5xx) never got an answer.
    bool rolled_back = true;
    for (const auto& [reason, n] : r.retries)
      if (n > 0 && reason != "deadlock" && reason != "database error") rolled_back = false;
    out << retried << (rolled_back ? " (Moodle rolled them back; each was sent again)" : " (each was sent again)")
        << "\n";
  }
  if (r.stopped) out << StoppedLine(r) << "\n";
  out << "Time: sources " << Seconds(r.timings.sources) << ", Moodle reads " << Seconds(r.timings.moodle_read)
      << " (" << r.courses_verified << " courses verified), users " << Seconds(r.timings.users) << ", planning "
      << Seconds(r.timings.planning) << ", apply " << Seconds(r.timings.apply) << "\n";
}

std::string StoppedLine(const sync::RunReport& r) {
  return std::string("Stopped by SIGTERM/SIGINT") +
         (r.applied ? ": the batch in flight completed and nothing more was sent"
                    : " before any change was applied") +
         "; the run is recorded (exit 4) and the next run does the rest.";
}

void PrintReportJson(const sync::RunReport& r, const std::string& command, std::ostream& out,
                     const std::vector<std::string>* trace) {
  sync::WriteReportJson(out, r, command, sync::ReportScope::kFull, trace);
  out << "\n";
}

std::string MoodleCostLine(const sync::RunReport& r) {
  int calls = 0, retried = 0;
  for (const auto& [fn, st] : r.calls) calls += st.calls;
  for (const auto& [reason, n] : r.retries) retried += n;
  return "Moodle calls: " + std::to_string(calls) + " (" + std::to_string(r.write_calls) + " writes, " +
         std::to_string(retried) + " retried, " + Seconds(r.moodle_wait_seconds) + " waiting on Moodle)";
}

std::string RetriesLine(const std::map<std::string, int>& retries) {
  int total = 0;
  std::string by;
  for (const auto& [reason, n] : retries) {
    if (n <= 0) continue;
    total += n;
    by += (by.empty() ? "" : ", ") + (retries.size() > 1 ? std::to_string(n) + " " : "") + reason;
  }
  if (total == 0) return "";
  return std::to_string(total) + (total == 1 ? " call" : " calls") + " retried: " + by;
}

}  // namespace enrolsync::cli
