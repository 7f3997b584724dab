// A run as one JSON object: what `--json` prints, what the run history
// stores, and what the per-run report file holds (README "JSON output").
#pragma once

#include <string>

#include "sync/runner.h"

namespace enrolsync::sync {

std::string ReportJson(const RunReport& r, const std::string& command);

}  // namespace enrolsync::sync
