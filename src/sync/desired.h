// Reads the configured MIS tables into the planner's DesiredState.
#pragma once

#include "config/config.h"
#include "model/model.h"
#include "sources/source.h"
#include "util/result.h"

namespace enrolsync::sync {

// Reads [courses] (if configured) and [enrolments] from `source`. Errors name
// the source, table and column. An empty table is not an error here: the
// caller decides (it blocks removals).
Result<model::DesiredState> ReadDesired(sources::Source& source, const config::Config& cfg);

}  // namespace enrolsync::sync
