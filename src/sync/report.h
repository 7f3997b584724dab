// A run as one JSON object: what `--json` prints, what the run history
// stores, and what the per-run report file holds (README "JSON output").
#pragma once

#include <ostream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "sync/runner.h"

namespace enrolsync::sync {

// Failed items grouped by reason, for the text summary and the JSON
// ("failures_by_reason"). The reason is the error with what is particular
// to one item or one batch taken out (FailureReason), so that 50,000
// enrolments that failed the same way form one group.
struct FailureGroup {
  std::string reason;
  std::size_t count = 0;
  std::vector<std::string> examples;  // the first few items: "course / user", "course X", a username
};

// `message` without "(gave up after N attempts)", with quoted values shown
// as '…' and the numbers in Moodle's debuginfo as N.
std::string FailureReason(std::string_view message);
// {item, message} pairs grouped by FailureReason(message): largest group
// first, ties in order of first appearance; at most `examples` per group.
std::vector<FailureGroup> GroupFailures(const std::vector<std::pair<std::string, std::string>>& failures,
                                        std::size_t examples = 3);
// The enrolment steps' failures (RunReport::apply) and the user sync's.
std::vector<FailureGroup> ApplyFailureGroups(const RunReport& r);
std::vector<FailureGroup> UserFailureGroups(const RunReport& r);

// What a report holds. kFull: every item, problem, failure and note (what
// --json prints and reports/run-N.json holds). kSummary: the same document
// with each of those lists replaced by its count ("items_count",
// "problems_count", "notes_count", "failures_count", and inside "users"
// "items_count", "problems_count", "failures_count"): the run history in
// state.db, which stays small however big the run.
enum class ReportScope { kFull, kSummary };

// Streams the report to `out` as it is written: no tree of the whole run is
// built, so a million-item report costs its bytes on the stream, not a
// copy of itself in memory. `trace`, when given (sync -v --json), becomes
// the "trace" array of a kFull report: the Moodle-style lines -v prints as
// text. Stream errors are left in `out`'s state.
void WriteReportJson(std::ostream& out, const RunReport& r, const std::string& command, ReportScope scope,
                     const std::vector<std::string>* trace = nullptr);

}  // namespace enrolsync::sync
