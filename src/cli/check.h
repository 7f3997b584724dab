// `enrolsync check`: Moodle's "Test settings" and more. Connects to every
// source and to Moodle, validates every mapping, and says what is wrong.
#pragma once

#include <ostream>

#include "config/config.h"
#include "sync/runner.h"

namespace enrolsync::cli {

// The web-service functions the token must be allowed to call with `cfg`.
std::vector<std::string> RequiredFunctions(const config::Config& cfg);

// Returns sync::kExitOk only if everything is usable; prints each finding.
int RunCheck(const config::Config& cfg, std::ostream& out, const sync::RunOptions& options);

}  // namespace enrolsync::cli
