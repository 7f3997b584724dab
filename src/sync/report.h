// A run as one JSON object: what `--json` prints, what the run history
// stores, and what the per-run report file holds (README "JSON output").
#pragma once

#include <string>
#include <vector>

#include "sync/runner.h"

namespace enrolsync::sync {

// `trace`, when given (sync -v --json), becomes the "trace" array: the
// Moodle-style lines -v prints as text.
std::string ReportJson(const RunReport& r, const std::string& command,
                       const std::vector<std::string>* trace = nullptr);

}  // namespace enrolsync::sync
