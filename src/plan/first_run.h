// The first sync of a ledger on a site that already holds the feed.
//
// A state database that owns nothing (a first run) on a Moodle where the
// feed's courses already hold most of the feed's enrolments is either a lost
// ledger (the whole state_dir gone, so no copy says earlier runs happened)
// or a move from another method (enrol_database, enrolments made by hand).
// Syncing on would treat every one of those enrolments as someone else's
// for good: no leaver in them would ever be suspended. So the run is
// refused until the admin says which it is (`enrolsync adopt`,
// take_over_existing, or `sync --first-run`). Moodle's web services say
// neither who created a course nor which method an enrolment came from, so
// the test is what the site holds, not who made it.
//
// Pure functions: no I/O. Thread safety: none needed.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "model/model.h"
#include "plan/policy.h"

namespace enrolsync::plan {

// The feed's rows, by the Moodle course they name (courses that do not
// exist yet are left out; a new site has none).
struct FeedInMoodle {
  std::map<model::MoodleId, long long> rows;  // course id -> the feed's rows naming it
  long long total_rows = 0;                   // every row with a course value
};
FeedInMoodle FeedCoursesInMoodle(const model::DesiredState& desired, const std::vector<model::Course>& courses,
                                 LocalCourseField field);

struct FirstRunCheck {
  long long feed_rows = 0;
  long long held = 0;     // rows Moodle already holds: per course, min(participants, rows)
  int courses = 0;        // of the feed's courses that already exist, those with participants
  bool refuse = false;    // more than half of the feed's rows are held
  std::string message;    // when refused: what it found and the three ways on
};
// `participants`: how many participants each course of `feed.rows` has.
FirstRunCheck CheckFirstRun(const FeedInMoodle& feed, const std::map<model::MoodleId, std::size_t>& participants);

}  // namespace enrolsync::plan
