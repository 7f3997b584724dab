// A run as one JSON object: what `--json` prints, what the run history
// stores, and what the per-run report file holds (README "JSON output").
#pragma once

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

// `trace`, when given (sync -v --json), becomes the "trace" array: the
// Moodle-style lines -v prints as text.
std::string ReportJson(const RunReport& r, const std::string& command,
                       const std::vector<std::string>* trace = nullptr);

}  // namespace enrolsync::sync
