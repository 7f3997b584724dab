// `enrolsync adopt`: rebuild a lost ledger's ownership from Moodle
// (plan::PlanAdoption, sync::RunOptions::adopt). Prints what it would
// record, or records it with --apply. Nothing is ever sent to Moodle.
#pragma once

#include <iosfwd>

#include "config/config.h"
#include "sync/runner.h"

namespace enrolsync::cli {

// Text: one `+ own` line per course and enrolment, then a summary. Returns
// the exit code: 0, kExitChanges with `detailed` when there is something to
// record and `apply` is off, kExitError when the run failed.
int PrintAdoption(const sync::RunReport& r, bool apply, bool detailed, std::ostream& out, std::ostream& err);

// The same as one JSON object: {"command","exit_code","courses":[...],
// "enrolments":[...],"summary":{...},"problems":N}.
std::string AdoptionJson(const sync::RunReport& r, bool apply);

}  // namespace enrolsync::cli
