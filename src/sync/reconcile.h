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

#include <map>
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
  int not_applied = 0;  // Moodle did not (yet): see `unsettled`
  int moot = 0;         // their course no longer exists
  // Intents the first read did not show applied. They stay in the state
  // database: the dead run's last batches may still be running inside Moodle
  // (PHP finishes a request whose client has gone), so they are looked at
  // again with the run's own later reads (SettleUnsettled).
  std::vector<state::Intent> unsettled;
};

// Reads what the intents touched, records what was applied (in `owned` and
// the state database, in one transaction with dropping those intents).
// `now` stamps created courses. On a failed read nothing changes and the
// intents stay for the next run: the caller must not plan without them
// (an unrecorded enrolment would read as someone else's for good).
Result<ReconcileResult> ReconcileIntents(state::StateDb& db, moodle::Client& client, model::Ownership& owned,
                                         long long now);

// The second look, after the run has read the site's courses and the
// participants of the courses its plan touches (which the caller makes
// include every unsettled intent's course), before it plans for good.
// Records what those reads show applied, and drops every unsettled intent
// whose course was read (or that created a course): what is still missing
// is in this run's plan and is sent again. An intent whose course was not
// read stays for the next run, as does one about a user the read could not
// tell (Participant::roles_known). Returns how many were applied late.
Result<int> SettleUnsettled(state::StateDb& db, const std::vector<state::Intent>& unsettled,
                            const std::vector<model::Course>& courses,
                            const std::map<model::MoodleId, model::Participants>& verified, model::Ownership& owned,
                            long long now);

}  // namespace enrolsync::sync
