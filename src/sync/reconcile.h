// Reconciling a run that died: the executor records each step's changes as
// pending intents before sending them (state::Intent) and drops them as
// Moodle answers. Intents found at the start of a run were in flight when
// the last run died (kill -9, power loss, a crashed host). Moodle may or may
// not have applied them, so they are read back: the courses they touch
// (participants) and, for course creation, the site's courses. What Moodle
// shows was applied is recorded as owned, exactly as if the answer had
// arrived; the rest is forgotten (this run's plan sends it again).
//
// Nothing is written to Moodle here. Thread safety: one thread.
#pragma once

#include <string>
#include <vector>

#include "model/model.h"
#include "moodle/client.h"
#include "state/state_db.h"
#include "util/result.h"

namespace enrolsync::sync {

struct ReconcileResult {
  int pending = 0;      // intents found
  int applied = 0;      // Moodle showed them applied: recorded as owned
  int not_applied = 0;  // Moodle did not: forgotten
  int moot = 0;         // their course no longer exists
};

// Reads what the intents touched, records what was applied (in `owned` and
// the state database, in one transaction with dropping the intents).
// `now` stamps created courses. On a failed read nothing changes and the
// intents stay for the next run: the caller must not plan without them
// (an unrecorded enrolment would read as someone else's for good).
Result<ReconcileResult> ReconcileIntents(state::StateDb& db, moodle::Client& client, model::Ownership& owned,
                                         long long now);

}  // namespace enrolsync::sync
