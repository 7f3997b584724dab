#include "plan/first_run.h"

#include <algorithm>

#include "util/strings.h"

namespace enrolsync::plan {

FeedInMoodle FeedCoursesInMoodle(const model::DesiredState& desired, const std::vector<model::Course>& courses,
                                 LocalCourseField field) {
  std::map<std::string, model::MoodleId> by_key;
  for (const auto& c : courses) {
    switch (field) {
      case LocalCourseField::kId: by_key[std::to_string(c.id)] = c.id; break;
      case LocalCourseField::kIdnumber:
        if (!c.idnumber.empty()) by_key[c.idnumber] = c.id;
        break;
      case LocalCourseField::kShortname: by_key[c.shortname] = c.id; break;
    }
  }
  FeedInMoodle out;
  for (const auto& row : desired.enrolments) {
    if (Trim(row.course).empty() || Trim(row.user).empty()) continue;
    ++out.total_rows;
    if (auto it = by_key.find(row.course); it != by_key.end()) ++out.rows[it->second];
  }
  return out;
}

FirstRunCheck CheckFirstRun(const FeedInMoodle& feed, const std::map<model::MoodleId, std::size_t>& participants) {
  FirstRunCheck out;
  out.feed_rows = feed.total_rows;
  for (const auto& [courseid, rows] : feed.rows) {
    auto it = participants.find(courseid);
    if (it == participants.end() || it->second == 0) continue;
    ++out.courses;
    out.held += std::min(rows, static_cast<long long>(it->second));
  }
  out.refuse = out.feed_rows > 0 && out.held * 2 > out.feed_rows;
  if (out.refuse) {
    out.message =
        "the state database owns nothing yet (its first sync), but Moodle already holds " + std::to_string(out.held) +
        " of the feed's " + std::to_string(out.feed_rows) + " enrolments, in " + std::to_string(out.courses) +
        " of its courses. If an earlier enrolsync made them, its ledger is lost: restore state_dir from a backup, "
        "or rebuild it from Moodle with `enrolsync adopt` (it shows what it would record) and `enrolsync adopt "
        "--apply`. If another method made them (enrol_database, by hand), set take_over_existing = true in "
        "[enrolments] to manage them from now on, or run `enrolsync sync --first-run` once to leave them to that "
        "method. Nothing was sent to Moodle";
  }
  return out;
}

}  // namespace enrolsync::plan
