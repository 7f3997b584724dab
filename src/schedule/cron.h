// Standard 5-field cron expressions (Vixie cron / cronie dialect) and the
// "when does it run next" question, answered in LOCAL time (the TZ
// environment variable, as cron does).
//
// Syntax: "minute hour day-of-month month day-of-week", each field a comma
// list of `*`, `N`, `A-B`, `*/S` or `A-B/S`. Month names JAN-DEC and weekday
// names SUN-SAT (three letters, any case) are accepted wherever a number is.
// Day-of-week 0 and 7 are both Sunday. Shortcuts: @yearly @annually
// @monthly @weekly @daily @midnight @hourly. Rejected on purpose:
//   - @reboot (the daemon only runs jobs on a time schedule);
//   - `N/S` without a range (Vixie rejects it; Quartz reads it differently),
//     the message suggests `N-max/S`;
//   - a step larger than the field's largest value (`*/90` in minutes);
//   - reversed ranges (`5-1`): no wrap-around;
//   - a day-of-month that can never occur in the chosen months when the
//     day-of-month alone decides the day (`0 0 30 2 *`, `0 0 31 4,6 *`).
//     Vixie accepts these and silently never runs them; we would rather
//     tell the admin at config load. (`0 0 30 2 MON` is fine: by the OR
//     rule below it runs every Monday in February.)
//
// Vixie's day rule: when BOTH day-of-month and day-of-week are restricted
// (neither field starts with `*`), a day matches if EITHER matches;
// otherwise both must (so `*/2` in one of them counts as unrestricted for
// this rule, exactly as in Vixie).
//
// Daylight saving time (see NextRun): like cronie, jobs are split into
// "fixed-time" jobs (neither the minute nor the hour field starts with `*`,
// e.g. `30 1 * * *`, `0 8,13 * * *`, @daily) and "wildcard" jobs (`*/15 * *
// * *`, `0 * * * *`, @hourly, `*/30 1 * * *`).
//   - Spring forward (a local time that does not exist): a fixed-time job
//     due in the gap runs ONCE at the first instant after the gap (in
//     Europe/London on 2026-03-29, `30 1 * * *` runs at 02:00 BST = 01:00
//     UTC; several gap times collapse into that one run). Wildcard jobs
//     simply have no occurrence in the gap (`*/30 * * * *` runs 00:30 GMT
//     then 02:00 BST: still every 30 real minutes).
//   - Fall back (a local time that happens twice): a fixed-time job runs
//     ONCE, on the first pass (`30 1 * * *` on 2026-10-25 runs at 01:30 BST
//     = 00:30 UTC, not again at 01:30 GMT). Wildcard jobs run on BOTH
//     passes, i.e. they keep their cadence in real time (`*/30 * * * *`
//     runs 01:00 BST, 01:30 BST, 01:00 GMT, 01:30 GMT, 02:00 GMT).
//   Assumes (as every real zone does) that the UTC offset changes at most
//   once in any 48 hours and by at most 3 hours.
#pragma once

#include <bitset>
#include <ctime>
#include <optional>
#include <string>
#include <string_view>

#include "util/result.h"

namespace enrolsync::schedule {

struct CronSchedule {
  std::string expr;                // as written (trimmed), e.g. "@daily"
  std::bitset<60> minutes;         // 0-59
  std::bitset<24> hours;           // 0-23
  std::bitset<32> days_of_month;   // 1-31 (bit 0 unused)
  std::bitset<13> months;          // 1-12 (bit 0 unused)
  std::bitset<7> days_of_week;     // 0-6, 0 = Sunday (7 is folded into 0)
  bool dom_restricted = false;     // day-of-month field did not start with '*'
  bool dow_restricted = false;     // day-of-week field did not start with '*'
  bool wildcard_time = false;      // minute or hour field starts with '*' (DST rules)

  // Month and day rule (Vixie OR rule) for a civil date; month 1-12,
  // mday 1-31, wday 0-6 (0 = Sunday).
  bool MatchesDay(int month, int mday, int wday) const;
  // Whole-minute match of a broken-down local time (ignores seconds).
  bool Matches(const std::tm& local) const;

  friend bool operator==(const CronSchedule&, const CronSchedule&) = default;
};

// Errors are kInvalidArgument and read like
//   cron "0 25 * * *": field 2 (hour) "25": hour 25 is out of range 0-23
Result<CronSchedule> ParseCron(std::string_view expr);

// The first matching minute strictly after `after`, in local time (TZ is
// re-read on every call via tzset()). DST as documented above. Searches at
// most 10 years ahead (enough for `0 0 29 2 *` across 2100); nullopt if
// nothing matches in that window.
std::optional<std::time_t> NextRun(const CronSchedule& schedule, std::time_t after);

// English summary for logs and `enrolsync schedule` output, e.g.
// "at 08:00 and 13:00, every day", "every 15 minutes, Monday-Friday".
std::string Describe(const CronSchedule& schedule);

}  // namespace enrolsync::schedule
