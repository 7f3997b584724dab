// How runs are shown to people (text) and programs (--json).
#pragma once

#include <ostream>
#include <string>

#include "sync/runner.h"

namespace enrolsync::cli {

// The user sync's plan: "+ user", "~ user", "- suspend user", … and its summary.
void PrintUserPlan(const sync::RunReport& r, std::ostream& out, bool explain);
std::string UserSummaryLine(const sync::RunReport& r);
// terraform-style plan lines, problems and the one-line summary.
void PrintPlan(const sync::RunReport& r, std::ostream& out, bool explain);
// "Plan: 3 to create, 40 to enrol, …; 19 problems."
std::string PlanSummaryLine(const plan::Plan& p);
// The removal guard's refusal: what would have gone and how to approve it.
void PrintGuard(const sync::RunReport& r, std::ostream& out);
// After sync: applied counts, failures, calls by function, timings.
void PrintRunSummary(const sync::RunReport& r, std::ostream& out);
// "Stopped by SIGTERM/SIGINT: …" for a run that was stopped (RunReport::stopped).
std::string StoppedLine(const sync::RunReport& r);
// The whole report as one JSON object (see README "JSON output"), streamed
// to `out` (sync::WriteReportJson).
void PrintReportJson(const sync::RunReport& r, const std::string& command, std::ostream& out,
                     const std::vector<std::string>* trace = nullptr);
// "Moodle calls: 23 (0 writes, 0 retried, 14.6s waiting on Moodle)": the
// run's cost to Moodle, printed after every plan and sync.
std::string MoodleCostLine(const sync::RunReport& r);
// "15 calls retried: deadlock", "" when none was.
std::string RetriesLine(const std::map<std::string, int>& retries);

}  // namespace enrolsync::cli
