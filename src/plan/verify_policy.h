// Which managed courses a run re-reads from Moodle to find hand-made drift
// (README "How drift is found"). A pure function: the clock, the last
// verification times and the coming run times are all inputs.
//
// The rule:
//   - Courses the plan touches are always read (every write rests on fresh
//     data). With --verify every managed course is read.
//   - The others are read in rotation, least recently verified first (never
//     verified = oldest). R = the enrolment runs due in the next
//     max_age_days (after this one). Each run reads an even share
//         share = ceil(managed / (R - 1))    when R >= 3,
//         share = managed                    when R <= 2,
//     so every course comes round once in R - 1 runs. The spare run means a
//     skipped run (daemon down, a run that outlasted the next one, a failed
//     run) costs nothing: no course goes past max_age_days and the next run
//     reads no more than the share. With R <= 2 a spare run would double the
//     cost, so such schedules read every course every run (R = 2 could read
//     half, but then a single skipped run makes half the courses late).
//   - Catch-up, only when runs were skipped, or courses were never verified:
//     if reading the share oldest-first would leave some course past its
//     deadline (last verified + max_age_days) although it could still make
//     it, the run reads just enough more to meet every deadline it can:
//     max over the oldest p courses of ceil(p / runs left before the p-th
//     one's deadline). Courses already past the deadline count as due now.
//     This is capped at twice the share: a long outage is caught up at one
//     extra share per run (oldest first, so a backlog of s shares clears in
//     about s runs), never all at once.
//   - min_per_run (verify_courses_per_run) is a floor on the rotation.
//   - Run times are start times, and a run may start a little late (behind
//     the users job, say): a run that starts within `tolerance` after a
//     course's deadline counts as meeting it. tolerance = half the shortest
//     gap between runs, at most an hour.
#pragma once

#include <map>
#include <set>
#include <vector>

#include "model/model.h"

namespace enrolsync::plan {

struct VerifyInput {
  std::map<model::MoodleId, long long> managed;  // managed course -> last verified, unix seconds (0 = never)
  std::set<model::MoodleId> touched;             // courses the plan will write: always read
  long long now = 0;
  int max_age_days = 7;
  // Start times of the enrolment runs expected after `now`, ascending, at
  // least up to now + max_age_days + 1 hour (see ExpectedRuns).
  std::vector<long long> upcoming_runs;
  int min_per_run = 0;
  bool verify_all = false;
};

struct VerifyChoice {
  std::vector<model::MoodleId> courses;  // to read this run, ascending: touched + rotation
  int runs_in_window = 0;                // R
  int share = 0;                         // the even share
  int rotation = 0;                      // managed, untouched courses chosen (share, floor or catch-up)
  int overdue = 0;                       // managed courses already past max_age_days before this run
};

VerifyChoice ChooseVerification(const VerifyInput& in);

// Runs every 24 h / runs_per_day after `now`, up to and including `until`:
// the expected runs when no schedule says otherwise (a systemd timer, cron).
std::vector<long long> EvenlySpacedRuns(long long now, int runs_per_day, long long until);

}  // namespace enrolsync::plan
