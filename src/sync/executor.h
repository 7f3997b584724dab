// Applies a Plan to Moodle through the client and records every change it
// made in the state database, batch by batch, so a crash mid-run loses no
// knowledge of what enrolsync owns.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "config/config.h"
#include "model/model.h"
#include "moodle/client.h"
#include "plan/plan.h"
#include "state/state_db.h"

namespace enrolsync::sync {

struct ApplyContext {
  const config::CoursesConfig* courses = nullptr;  // defaults for new courses
  long long now = 0;                               // unix seconds, for records
  // Receives Moodle-style trace lines ("enrolling: …", "error: …") as items
  // complete; may be empty.
  std::function<void(const std::string&)> trace;
  moodle::Progress progress;  // items done / total, across the whole apply
};

struct ItemFailure {
  std::size_t item = 0;  // index into Plan::items
  std::string message;
};

struct ApplyResult {
  plan::Summary applied;  // what actually happened
  std::vector<ItemFailure> failures;
  int message_not_sent = 0;  // committed changes whose welcome message failed
  bool state_error = false;  // the state database could not be written
};

// Applies `plan` in its item order. Items of a course that could not be
// created are skipped and reported. `owned` is updated in memory alongside
// the database.
ApplyResult Apply(plan::Plan& plan, moodle::Client& client, state::StateDb& db, model::Ownership& owned,
                  const ApplyContext& ctx);

}  // namespace enrolsync::sync
