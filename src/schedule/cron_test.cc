#include "schedule/cron.h"

#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <string>
#include <vector>

#include "schedule/time_testing.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace enrolsync::schedule {
namespace {

using ::testing::ElementsAreArray;
using ::testing::HasSubstr;


using testing::ScopedTz;
using testing::Utc;

// Local wall-clock time with the zone abbreviation: "2026-03-29 02:00 BST".
std::string Local(std::time_t t) {
  std::tm lt{};
  localtime_r(&t, &lt);
  char buf[64];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M %Z", &lt);
  return buf;
}

// The next n runs after `start`, as local strings.
std::vector<std::string> Runs(const std::string& expr, std::time_t start, std::size_t n) {
  auto s = ParseCron(expr);
  EXPECT_TRUE(s) << expr << ": " << s.error().message;
  std::vector<std::string> out;
  if (!s) return out;
  std::time_t t = start;
  for (std::size_t i = 0; i < n; ++i) {
    auto next = NextRun(*s, t);
    if (!next) {
      out.push_back("none");
      break;
    }
    out.push_back(Local(*next));
    t = *next;
  }
  return out;
}

template <std::size_t N>
std::string Bits(const std::bitset<N>& b, int lo, int hi) {
  std::string out;
  bool all = true;
  for (int v = lo; v <= hi; ++v) {
    if (!b[static_cast<std::size_t>(v)]) {
      all = false;
      continue;
    }
    if (!out.empty()) out += ",";
    out += std::to_string(v);
  }
  return all ? "*" : out;
}

// "minutes|hours|days-of-month|months|days-of-week"
std::string Fields(const CronSchedule& s) {
  return Bits(s.minutes, 0, 59) + "|" + Bits(s.hours, 0, 23) + "|" + Bits(s.days_of_month, 1, 31) + "|" +
         Bits(s.months, 1, 12) + "|" + Bits(s.days_of_week, 0, 6);
}

// ---------------------------------------------------------------- parsing

struct ValidCase {
  const char* expr;
  const char* fields;
};

TEST(ParseCron, AcceptsListsRangesStepsAndNames) {
  const ValidCase cases[] = {
      {"* * * * *", "*|*|*|*|*"},
      {"*/15 * * * *", "0,15,30,45|*|*|*|*"},
      {"1-30/5 * * * *", "1,6,11,16,21,26|*|*|*|*"},
      {"0,30 * * * *", "0,30|*|*|*|*"},
      {"5-5 * * * *", "5|*|*|*|*"},
      {"0 8,13 * * *", "0|8,13|*|*|*"},
      {"0 9-17/4 * * MON-FRI", "0|9,13,17|*|*|1,2,3,4,5"},
      {"0 0 1 jan,Jul *", "0|0|1|1,7|*"},
      {"30 2 * FEB-APR/2 *", "30|2|*|2,4|*"},
      {"0 0 */10 * *", "0|0|1,11,21,31|*|*"},
      {"0 0 * * */2", "0|0|*|*|0,2,4,6"},
      {"0 0 * * 7", "0|0|*|*|0"},
      {"0 0 * * 0", "0|0|*|*|0"},
      {"0 0 * * sun", "0|0|*|*|0"},
      {"0 0 * * 5-7", "0|0|*|*|0,5,6"},
      {"0 0 * * Sat,sUn", "0|0|*|*|0,6"},
      {"59 23 31 12 6", "59|23|31|12|6"},
      {"  0\t3   * * *  ", "0|3|*|*|*"},
      {"0 0 29 2 *", "0|0|29|2|*"},
  };
  for (const auto& c : cases) {
    auto s = ParseCron(c.expr);
    ASSERT_TRUE(s) << c.expr << ": " << s.error().message;
    EXPECT_EQ(Fields(*s), c.fields) << c.expr;
  }
}

TEST(ParseCron, DayRestrictionFlagsFollowTheLeadingStar) {
  struct Case {
    const char* expr;
    bool dom, dow, wildcard_time;
  } cases[] = {
      {"0 0 * * *", false, false, false},     {"0 0 13 * FRI", true, true, false},
      {"0 0 */2 * FRI", false, true, false},  {"0 0 1-31 * MON", true, true, false},
      {"*/15 * * * *", false, false, true},   {"0 * * * *", false, false, true},
      {"*/30 1 * * *", false, false, true},   {"30 1 * * *", false, false, false},
  };
  for (const auto& c : cases) {
    auto s = ParseCron(c.expr);
    ASSERT_TRUE(s) << c.expr;
    EXPECT_EQ(s->dom_restricted, c.dom) << c.expr;
    EXPECT_EQ(s->dow_restricted, c.dow) << c.expr;
    EXPECT_EQ(s->wildcard_time, c.wildcard_time) << c.expr;
  }
}

TEST(ParseCron, ShortcutsMeanTheirFiveFieldForms) {
  const std::pair<const char*, const char*> cases[] = {
      {"@yearly", "0 0 1 1 *"},  {"@annually", "0 0 1 1 *"}, {"@monthly", "0 0 1 * *"},
      {"@weekly", "0 0 * * 0"},  {"@daily", "0 0 * * *"},    {"@midnight", "0 0 * * *"},
      {"@hourly", "0 * * * *"},  {"@DAILY", "0 0 * * *"},    {" @hourly ", "0 * * * *"},
  };
  for (const auto& [shortcut, fields] : cases) {
    auto a = ParseCron(shortcut);
    auto b = ParseCron(fields);
    ASSERT_TRUE(a) << shortcut << ": " << a.error().message;
    ASSERT_TRUE(b) << fields;
    b->expr = a->expr;
    EXPECT_EQ(*a, *b) << shortcut;
  }
  EXPECT_EQ(ParseCron("@daily")->expr, "@daily");
}

TEST(ParseCron, RejectsRebootWithAClearMessage) {
  auto s = ParseCron("@reboot");
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().code, ErrorCode::kInvalidArgument);
  EXPECT_THAT(s.error().message, HasSubstr("cron \"@reboot\": @reboot is not supported"));
}

TEST(ParseCron, OutOfRangeMessageNamesFieldAndValue) {
  auto s = ParseCron("0 25 * * *");
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().message, "cron \"0 25 * * *\": field 2 (hour) \"25\": hour 25 is out of range 0-23");
}

struct InvalidCase {
  const char* expr;
  std::vector<const char*> says;  // substrings the message must contain
};

TEST(ParseCron, RejectsInvalidExpressionsNamingFieldAndValue) {
  const InvalidCase cases[] = {
      {"60 * * * *", {"field 1 (minute) \"60\"", "minute 60 is out of range 0-59"}},
      {"0 8,25 * * *", {"field 2 (hour) \"8,25\"", "hour 25 is out of range 0-23"}},
      {"0 0 32 * *", {"field 3 (day-of-month) \"32\"", "day-of-month 32 is out of range 1-31"}},
      {"0 0 0 * *", {"field 3 (day-of-month) \"0\"", "day-of-month 0 is out of range 1-31"}},
      {"0 0 * 13 *", {"field 4 (month) \"13\"", "month 13 is out of range 1-12"}},
      {"0 0 * * 8", {"field 5 (day-of-week) \"8\"", "day-of-week 8 is out of range 0-7"}},
      {"0 99999999999 * * *", {"field 2 (hour)", "hour 99999999999 is out of range 0-23"}},
      {"0 0 * *", {"expected 5 fields", "got 4"}},
      {"0 0 * * * /usr/bin/sync", {"expected 5 fields", "got 6"}},
      {"0 0 0 * * * *", {"got 7"}},
      {"", {"empty expression"}},
      {"   ", {"empty expression"}},
      {"*/0 * * * *", {"field 1 (minute) \"*/0\"", "bad step \"/0\"", "from 1 to 59"}},
      {"*/ * * * *", {"field 1 (minute) \"*/\"", "bad step \"/\""}},
      {"*/x * * * *", {"field 1 (minute) \"*/x\"", "bad step \"/x\""}},
      {"*/60 * * * *", {"field 1 (minute) \"*/60\"", "bad step \"/60\""}},
      {"0 */24 * * *", {"field 2 (hour) \"*/24\"", "bad step \"/24\"", "from 1 to 23"}},
      {"1-10/2/3 * * * *", {"field 1 (minute)", "bad step"}},
      {"5/15 * * * *", {"field 1 (minute) \"5/15\"", "needs a range", "\"5-59/15\""}},
      {"0 17-9 * * *", {"field 2 (hour) \"17-9\"", "range \"17-9\" is reversed"}},
      {"0 0 * * FRI-MON", {"field 5 (day-of-week) \"FRI-MON\"", "range \"FRI-MON\" is reversed"}},
      {"0 0 * * FUNDAY", {"field 5 (day-of-week) \"FUNDAY\"", "unknown day-of-week name \"FUNDAY\"", "SUN-SAT"}},
      {"0 0 * * Monday", {"field 5 (day-of-week) \"Monday\"", "unknown day-of-week name \"Monday\""}},
      {"0 0 * * JAN", {"field 5 (day-of-week) \"JAN\"", "unknown day-of-week name \"JAN\""}},
      {"0 0 * JAN-FOO *", {"field 4 (month) \"JAN-FOO\"", "unknown month name \"FOO\"", "JAN-DEC"}},
      {"0 0 MON * *", {"field 3 (day-of-month) \"MON\"", "\"MON\" is not a number"}},
      {"x * * * *", {"field 1 (minute) \"x\"", "\"x\" is not a number"}},
      {"1,,2 * * * *", {"field 1 (minute) \"1,,2\"", "empty list item"}},
      {"0 8, * * *", {"field 2 (hour) \"8,\"", "empty list item"}},
      {"0 -5 * * *", {"field 2 (hour) \"-5\"", "missing a number"}},
      {"0 5- * * *", {"field 2 (hour) \"5-\"", "missing a number"}},
      {"@fortnightly", {"cron \"@fortnightly\": unknown shortcut", "@daily"}},
      {"0 0 30 2 *", {"day-of-month \"30\" never occurs in month \"2\"", "29 days"}},
      {"0 0 31 4,6,9,11 *", {"day-of-month \"31\" never occurs in month \"4,6,9,11\"", "30 days"}},
      {"0 0 30,31 FEB *", {"day-of-month \"30,31\" never occurs in month \"FEB\""}},
  };
  for (const auto& c : cases) {
    auto s = ParseCron(c.expr);
    ASSERT_FALSE(s) << "accepted: \"" << c.expr << "\"";
    EXPECT_EQ(s.error().code, ErrorCode::kInvalidArgument) << c.expr;
    EXPECT_THAT(s.error().message, HasSubstr("cron \"")) << c.expr;
    for (const char* part : c.says) EXPECT_THAT(s.error().message, HasSubstr(part)) << c.expr;
  }
}

TEST(ParseCron, AcceptsRareButPossibleDays) {
  // Feb 29 happens in leap years; with a weekday too, the OR rule makes
  // February 30 harmless (it runs on Mondays in February).
  for (const char* expr : {"0 0 29 2 *", "0 0 30 2 MON", "0 0 31 * *", "0 0 30,31 1-2 *"}) {
    EXPECT_TRUE(ParseCron(expr)) << expr;
  }
}

// ---------------------------------------------------------------- matching

TEST(CronDayRule, BothDayFieldsRestrictedMatchesEither) {
  ScopedTz tz("UTC");
  // Every 13th AND every Friday (13 April 2026 is a Monday).
  EXPECT_THAT(Runs("0 0 13 * FRI", Utc("2026-04-01 00:00"), 8),
              ElementsAreArray({"2026-04-03 00:00 UTC", "2026-04-10 00:00 UTC", "2026-04-13 00:00 UTC",
                                "2026-04-17 00:00 UTC", "2026-04-24 00:00 UTC", "2026-05-01 00:00 UTC",
                                "2026-05-08 00:00 UTC", "2026-05-13 00:00 UTC"}));
}

TEST(CronDayRule, StarStepDayFieldCountsAsUnrestrictedSoBothMustMatch) {
  ScopedTz tz("UTC");
  // */2 starts with '*': odd-numbered days that are also Fridays.
  EXPECT_THAT(Runs("0 0 */2 * FRI", Utc("2026-04-01 00:00"), 4),
              ElementsAreArray({"2026-04-03 00:00 UTC", "2026-04-17 00:00 UTC", "2026-05-01 00:00 UTC",
                                "2026-05-15 00:00 UTC"}));
}

TEST(CronDayRule, OnlyOneDayFieldRestrictedMatchesThatOne) {
  ScopedTz tz("UTC");
  EXPECT_THAT(Runs("0 0 13 * *", Utc("2026-04-01 00:00"), 2),
              ElementsAreArray({"2026-04-13 00:00 UTC", "2026-05-13 00:00 UTC"}));
  EXPECT_THAT(Runs("0 0 * * FRI", Utc("2026-04-01 00:00"), 2),
              ElementsAreArray({"2026-04-03 00:00 UTC", "2026-04-10 00:00 UTC"}));
}

TEST(CronSchedule, MatchesChecksMinuteHourMonthAndDays) {
  auto s = ParseCron("0 8,13 * JAN-MAR MON-FRI");
  ASSERT_TRUE(s);
  std::tm t{};
  t.tm_year = 126, t.tm_mon = 0, t.tm_mday = 5, t.tm_wday = 1, t.tm_hour = 8, t.tm_min = 0;  // Mon 5 Jan 2026
  EXPECT_TRUE(s->Matches(t));
  t.tm_min = 1;
  EXPECT_FALSE(s->Matches(t));
  t.tm_min = 0, t.tm_wday = 0;
  EXPECT_FALSE(s->Matches(t));
  t.tm_wday = 1, t.tm_mon = 3;
  EXPECT_FALSE(s->Matches(t));
}

// ---------------------------------------------------------------- NextRun

struct RunsCase {
  const char* expr;
  const char* start;  // UTC
  std::vector<const char*> runs;
};

void CheckRuns(const std::vector<RunsCase>& cases) {
  for (const auto& c : cases) {
    EXPECT_THAT(Runs(c.expr, Utc(c.start), c.runs.size()), ElementsAreArray(c.runs))
        << c.expr << " after " << c.start;
  }
}

TEST(NextRun, InUtcFindsTheFirstMatchingMinuteStrictlyAfter) {
  ScopedTz tz("UTC");
  CheckRuns({
      {"*/15 * * * *", "2026-01-01 00:07:30",
       {"2026-01-01 00:15 UTC", "2026-01-01 00:30 UTC", "2026-01-01 00:45 UTC", "2026-01-01 01:00 UTC"}},
      {"* * * * *", "2026-12-31 23:58:59", {"2026-12-31 23:59 UTC", "2027-01-01 00:00 UTC"}},
      {"0 8,13 * * *", "2026-01-01 08:00:00", {"2026-01-01 13:00 UTC", "2026-01-02 08:00 UTC"}},
      {"0 8,13 * * *", "2026-01-01 07:59:59", {"2026-01-01 08:00 UTC"}},
      {"0 8,13 * * *", "2026-01-01 08:00:30", {"2026-01-01 13:00 UTC"}},
      {"0 9 * * MON-FRI", "2026-01-09 10:00", {"2026-01-12 09:00 UTC", "2026-01-13 09:00 UTC"}},
      {"@weekly", "2026-01-07 12:00", {"2026-01-11 00:00 UTC", "2026-01-18 00:00 UTC"}},
      {"@monthly", "2026-01-31 12:00", {"2026-02-01 00:00 UTC", "2026-03-01 00:00 UTC"}},
      {"@yearly", "2026-06-01 00:00", {"2027-01-01 00:00 UTC", "2028-01-01 00:00 UTC"}},
      {"@hourly", "2026-06-01 10:59:59", {"2026-06-01 11:00 UTC", "2026-06-01 12:00 UTC"}},
      {"0 0 31 * *", "2026-01-31 01:00",
       {"2026-03-31 00:00 UTC", "2026-05-31 00:00 UTC", "2026-07-31 00:00 UTC", "2026-08-31 00:00 UTC"}},
      {"59 23 31 12 *", "2026-01-01 00:00", {"2026-12-31 23:59 UTC", "2027-12-31 23:59 UTC"}},
  });
}

TEST(NextRun, Feb29FindsTheNextLeapYear) {
  ScopedTz tz("UTC");
  CheckRuns({
      {"0 0 29 2 *", "2026-01-01 00:00", {"2028-02-29 00:00 UTC", "2032-02-29 00:00 UTC"}},
      {"0 0 29 2 *", "2028-02-29 00:00", {"2032-02-29 00:00 UTC"}},
      // 2100 is not a leap year: eight years between runs.
      {"0 0 29 2 *", "2096-03-01 00:00", {"2104-02-29 00:00 UTC"}},
  });
}

TEST(NextRun, InNewYorkFollowsLocalTime) {
  ScopedTz tz("America/New_York");
  CheckRuns({
      {"0 9 * * *", "2026-01-15 15:00", {"2026-01-16 09:00 EST"}},
      {"0 9 * * *", "2026-07-15 12:00", {"2026-07-15 09:00 EDT" /* 13:00 UTC */}},
  });
  auto s = ParseCron("0 9 * * *");
  ASSERT_TRUE(s);
  EXPECT_EQ(NextRun(*s, Utc("2026-01-15 15:00")), Utc("2026-01-16 14:00"));
  EXPECT_EQ(NextRun(*s, Utc("2026-07-15 12:00")), Utc("2026-07-15 13:00"));
}

// Europe/London 2026: Sun 29 March 01:00 GMT -> 02:00 BST (01:00 UTC);
// Sun 25 October 02:00 BST -> 01:00 GMT (01:00 UTC).

TEST(NextRunDst, SpringForwardFixedJobInTheGapRunsOnceRightAfterIt) {
  ScopedTz tz("Europe/London");
  CheckRuns({
      {"30 1 * * *", "2026-03-27 12:00",
       {"2026-03-28 01:30 GMT", "2026-03-29 02:00 BST", "2026-03-30 01:30 BST"}},
      {"0 1 * * *", "2026-03-28 12:00", {"2026-03-29 02:00 BST", "2026-03-30 01:00 BST"}},
  });
  auto s = ParseCron("30 1 * * *");
  ASSERT_TRUE(s);
  EXPECT_EQ(NextRun(*s, Utc("2026-03-28 12:00")), Utc("2026-03-29 01:00"));
  // Having run at the end of the gap, the next is tomorrow's.
  EXPECT_EQ(NextRun(*s, Utc("2026-03-29 01:00")), Utc("2026-03-30 00:30"));
}

TEST(NextRunDst, SpringForwardGapTimesCollapseIntoOneRun) {
  ScopedTz tz("Europe/London");
  // 01:00, 01:30 (in the gap) and 02:00 all mean 01:00 UTC that day: one run.
  CheckRuns({{"0,30 1,2 * * *", "2026-03-29 00:00",
              {"2026-03-29 02:00 BST", "2026-03-29 02:30 BST", "2026-03-30 01:00 BST"}}});
}

TEST(NextRunDst, SpringForwardDoesNotMoveOtherFixedTimes) {
  ScopedTz tz("Europe/London");
  CheckRuns({
      {"0 8,13 * * *", "2026-03-28 12:00",
       {"2026-03-28 13:00 GMT", "2026-03-29 08:00 BST", "2026-03-29 13:00 BST", "2026-03-30 08:00 BST"}},
      {"0 3 * * *", "2026-03-28 12:00", {"2026-03-29 03:00 BST", "2026-03-30 03:00 BST"}},
  });
}

TEST(NextRunDst, SpringForwardWildcardJobSkipsTheMissingHour) {
  ScopedTz tz("Europe/London");
  CheckRuns({
      {"*/30 * * * *", "2026-03-29 00:00",
       {"2026-03-29 00:30 GMT", "2026-03-29 02:00 BST", "2026-03-29 02:30 BST", "2026-03-29 03:00 BST"}},
      {"30 * * * *", "2026-03-29 00:00", {"2026-03-29 00:30 GMT", "2026-03-29 02:30 BST"}},
  });
}

TEST(NextRunDst, FallBackFixedJobInTheRepeatedHourRunsOnce) {
  ScopedTz tz("Europe/London");
  CheckRuns({
      {"30 1 * * *", "2026-10-24 12:00", {"2026-10-25 01:30 BST", "2026-10-26 01:30 GMT"}},
      {"0 1 * * *", "2026-10-24 12:00", {"2026-10-25 01:00 BST", "2026-10-26 01:00 GMT"}},
  });
  auto s = ParseCron("30 1 * * *");
  ASSERT_TRUE(s);
  EXPECT_EQ(NextRun(*s, Utc("2026-10-24 12:00")), Utc("2026-10-25 00:30"));
  // Even asked from inside the second pass (a daemon restarted at 01:15
  // GMT), 01:30 GMT is not a second run that day.
  EXPECT_EQ(NextRun(*s, Utc("2026-10-25 01:15")), Utc("2026-10-26 01:30"));
  EXPECT_EQ(NextRun(*s, Utc("2026-10-25 00:45")), Utc("2026-10-26 01:30"));
}

TEST(NextRunDst, FallBackDoesNotMoveOtherFixedTimes) {
  ScopedTz tz("Europe/London");
  CheckRuns({
      {"0 8,13 * * *", "2026-10-24 11:00",
       {"2026-10-24 13:00 BST", "2026-10-25 08:00 GMT", "2026-10-25 13:00 GMT", "2026-10-26 08:00 GMT"}},
      {"0 3 * * *", "2026-10-24 12:00", {"2026-10-25 03:00 GMT", "2026-10-26 03:00 GMT"}},
  });
}

TEST(NextRunDst, FallBackWildcardJobRunsInBothPassesKeepingRealTimeCadence) {
  ScopedTz tz("Europe/London");
  CheckRuns({
      {"*/30 * * * *", "2026-10-24 23:40",
       {"2026-10-25 01:00 BST", "2026-10-25 01:30 BST", "2026-10-25 01:00 GMT", "2026-10-25 01:30 GMT",
        "2026-10-25 02:00 GMT"}},
      // Asked from inside the first pass, the second pass still comes next.
      {"*/30 * * * *", "2026-10-25 00:45", {"2026-10-25 01:00 GMT", "2026-10-25 01:30 GMT"}},
  });
}

TEST(NextRunDst, WildcardJobIsEveryThirtyRealMinutesAcrossBothTransitions) {
  ScopedTz tz("Europe/London");
  auto s = ParseCron("*/30 * * * *");
  ASSERT_TRUE(s);
  for (const char* day : {"2026-03-28 12:00", "2026-10-24 12:00"}) {
    std::time_t t = Utc(day);
    for (int i = 0; i < 48; ++i) {
      auto next = NextRun(*s, t);
      ASSERT_TRUE(next);
      if (i > 0) {
        EXPECT_EQ(*next - t, 1800) << Local(t) << " -> " << Local(*next);
      }
      t = *next;
    }
  }
}

TEST(NextRunDst, NewYorkSpringForwardAndFallBack) {
  // 2026: Sun 8 March 02:00 EST -> 03:00 EDT; Sun 1 November 02:00 EDT -> 01:00 EST.
  ScopedTz tz("America/New_York");
  CheckRuns({
      {"30 2 * * *", "2026-03-07 12:00", {"2026-03-08 03:00 EDT", "2026-03-09 02:30 EDT"}},
      {"0 * * * *", "2026-03-08 06:30", {"2026-03-08 03:00 EDT", "2026-03-08 04:00 EDT"}},
      {"0 9 * * *", "2026-03-07 15:00", {"2026-03-08 09:00 EDT"}},
      {"30 1 * * *", "2026-10-31 12:00", {"2026-11-01 01:30 EDT", "2026-11-02 01:30 EST"}},
      {"0 * * * *", "2026-11-01 04:30",
       {"2026-11-01 01:00 EDT", "2026-11-01 01:00 EST", "2026-11-01 02:00 EST"}},
  });
}

TEST(NextRun, RereadsTzOnEveryCall) {
  auto s = ParseCron("0 12 * * *");
  ASSERT_TRUE(s);
  {
    ScopedTz tz("UTC");
    EXPECT_EQ(NextRun(*s, Utc("2026-07-01 00:00")), Utc("2026-07-01 12:00"));
  }
  {
    ScopedTz tz("Europe/London");
    EXPECT_EQ(NextRun(*s, Utc("2026-07-01 00:00")), Utc("2026-07-01 11:00"));
  }
}

TEST(NextRun, IsFastForEveryMinuteJobs) {
  ScopedTz tz("Europe/London");
  auto s = ParseCron("* * * * *");
  ASSERT_TRUE(s);
  std::time_t t = Utc("2026-10-24 12:00");
  for (int i = 0; i < 3 * 1440; ++i) {  // three days of minutes, across fall-back
    auto next = NextRun(*s, t);
    ASSERT_TRUE(next);
    ASSERT_EQ(*next - t, 60) << Local(t);
    t = *next;
  }
}

// ---------------------------------------------------------------- Describe

TEST(Describe, SummarisesInEnglish) {
  const std::pair<const char*, const char*> cases[] = {
      {"*/15 * * * *", "every 15 minutes, every day"},
      {"* * * * *", "every minute, every day"},
      {"0 8,13 * * *", "at 08:00 and 13:00, every day"},
      {"0 3 * * MON-FRI", "at 03:00, Monday-Friday"},
      {"0 0 13 * FRI", "at 00:00, on day 13 of the month or on Friday"},
      {"@hourly", "every hour, on the hour, every day"},
      {"0 0 29 2 *", "at 00:00, on day 29 of the month, in February"},
      {"0 9-17 * * 1-5", "at minute 0 of hour 9-17, Monday-Friday"},
      {"*/20 9-17 * * *", "every 20 minutes during hour 9-17, every day"},
      {"0 0 * * 6,0", "at 00:00, Sunday,Saturday"},
  };
  for (const auto& [expr, text] : cases) {
    auto s = ParseCron(expr);
    ASSERT_TRUE(s) << expr;
    EXPECT_EQ(Describe(*s), text) << expr;
  }
}

}  // namespace
}  // namespace enrolsync::schedule
