// `enrolsync status`, `enrolsync history` and `enrolsync schedule`: what ran,
// what failed and why, and what runs next — read from the state database and
// the config; they never contact Moodle.
#pragma once

#include <ostream>

#include "config/config.h"

namespace enrolsync::ops {

int PrintStatus(const config::Config& cfg, std::ostream& out, bool json);
int PrintHistory(const config::Config& cfg, std::ostream& out, bool json, int limit);
int PrintSchedule(const config::Config& cfg, std::ostream& out, int count);

}  // namespace enrolsync::ops
