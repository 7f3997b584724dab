// `enrolsync status`, `enrolsync history` and `enrolsync schedule`: what ran,
// what failed and why, and what runs next — read from the state database and
// the config; they never contact Moodle.
#pragma once

#include <ostream>
#include <string>

#include "config/config.h"

namespace enrolsync::ops {

int PrintStatus(const config::Config& cfg, std::ostream& out, bool json);
// `status --config-dir`: every site in the folder (ops/sites.h), each with
// its name and file, then as PrintStatus; a site whose config is broken shows
// the error. Exit 0; 78 if a site's config is broken (or the folder cannot be
// read); else 1 if a site's state database cannot be read.
int PrintSitesStatus(const std::string& config_dir, std::ostream& out, bool json);
int PrintHistory(const config::Config& cfg, std::ostream& out, bool json, int limit);
int PrintSchedule(const config::Config& cfg, std::ostream& out, int count);

}  // namespace enrolsync::ops
