#include "schedule/scheduler.h"

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <string>
#include <thread>
#include <vector>

#include "schedule/time_testing.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace enrolsync::schedule {
namespace {

using ::testing::ElementsAre;
using ::testing::ElementsAreArray;
using ::testing::IsEmpty;


using testing::ScopedTz;
using testing::Utc;

std::string Local(std::time_t t) {
  std::tm lt{};
  localtime_r(&t, &lt);
  char buf[64];
  std::strftime(buf, sizeof buf, "%a %Y-%m-%d %H:%M %Z", &lt);
  return buf;
}

Job MakeJob(const std::string& name, const std::string& expr) {
  auto s = ParseCron(expr);
  EXPECT_TRUE(s) << expr;
  return Job{name, s ? *s : CronSchedule{}};
}

// Runs the scheduler on a fake clock until it wants to sleep to `end` or
// later; returns "job at <scheduled>" for every run, checking each started
// when the clock said it was time.
std::vector<std::string> Simulate(Scheduler& scheduler, FakeClock& clock, std::time_t end,
                                  const std::function<void(const std::string&)>& during_run = nullptr) {
  std::atomic<bool> stop{false};
  clock.OnSleep([&](std::time_t target) {
    if (target >= end) stop = true;
  });
  std::vector<std::string> runs;
  scheduler.Run(
      [&](const std::string& job, std::time_t scheduled) {
        EXPECT_GE(clock.Now(), scheduled) << job << " ran early";
        runs.push_back(job + " at " + Local(scheduled));
        if (during_run) during_run(job);
      },
      stop);
  return runs;
}

class SchedulerTest : public ::testing::Test {
 protected:
  ScopedTz tz_{"UTC"};
};

TEST_F(SchedulerTest, SimulatedWeekRunsEachJobAtItsTimes) {
  FakeClock clock(Utc("2026-03-02 00:00"));  // a Monday
  Scheduler scheduler({MakeJob("users", "0 8,13 * * *"), MakeJob("full", "0 3 * * *")}, clock);
  std::vector<std::time_t> started;
  auto runs = Simulate(scheduler, clock, Utc("2026-03-09 00:00"),
                       [&](const std::string&) { started.push_back(clock.Now()); });
  EXPECT_THAT(runs, ElementsAreArray({
                        "full at Mon 2026-03-02 03:00 UTC",  "users at Mon 2026-03-02 08:00 UTC",
                        "users at Mon 2026-03-02 13:00 UTC", "full at Tue 2026-03-03 03:00 UTC",
                        "users at Tue 2026-03-03 08:00 UTC", "users at Tue 2026-03-03 13:00 UTC",
                        "full at Wed 2026-03-04 03:00 UTC",  "users at Wed 2026-03-04 08:00 UTC",
                        "users at Wed 2026-03-04 13:00 UTC", "full at Thu 2026-03-05 03:00 UTC",
                        "users at Thu 2026-03-05 08:00 UTC", "users at Thu 2026-03-05 13:00 UTC",
                        "full at Fri 2026-03-06 03:00 UTC",  "users at Fri 2026-03-06 08:00 UTC",
                        "users at Fri 2026-03-06 13:00 UTC", "full at Sat 2026-03-07 03:00 UTC",
                        "users at Sat 2026-03-07 08:00 UTC", "users at Sat 2026-03-07 13:00 UTC",
                        "full at Sun 2026-03-08 03:00 UTC",  "users at Sun 2026-03-08 08:00 UTC",
                        "users at Sun 2026-03-08 13:00 UTC",
                    }));
  // Instant runs on a fake clock: each started exactly at its time, and the
  // scheduler slept exactly until each one (plus the final sleep that stopped it).
  ASSERT_EQ(started.size(), 21u);
  auto sleeps = clock.Sleeps();
  ASSERT_EQ(sleeps.size(), 22u);
  for (std::size_t i = 0; i < started.size(); ++i) EXPECT_EQ(sleeps[i], started[i]);
  EXPECT_EQ(sleeps.back(), Utc("2026-03-09 03:00"));
}

TEST_F(SchedulerTest, SimulatedDstWeekInLondonRunsNightlyJobOncePerDay) {
  ScopedTz london("Europe/London");
  {
    FakeClock clock(Utc("2026-03-26 12:00"));
    Scheduler scheduler({MakeJob("night", "30 1 * * *")}, clock);
    EXPECT_THAT(Simulate(scheduler, clock, Utc("2026-04-01 12:00")),
                ElementsAre("night at Fri 2026-03-27 01:30 GMT", "night at Sat 2026-03-28 01:30 GMT",
                            "night at Sun 2026-03-29 02:00 BST", "night at Mon 2026-03-30 01:30 BST",
                            "night at Tue 2026-03-31 01:30 BST", "night at Wed 2026-04-01 01:30 BST"));
  }
  {
    FakeClock clock(Utc("2026-10-23 12:00"));
    Scheduler scheduler({MakeJob("night", "30 1 * * *")}, clock);
    EXPECT_THAT(Simulate(scheduler, clock, Utc("2026-10-27 12:00")),
                ElementsAre("night at Sat 2026-10-24 01:30 BST", "night at Sun 2026-10-25 01:30 BST",
                            "night at Mon 2026-10-26 01:30 GMT", "night at Tue 2026-10-27 01:30 GMT"));
  }
}

TEST_F(SchedulerTest, SameMinuteJobsRunInConfigOrderOneAtATime) {
  FakeClock clock(Utc("2026-03-02 08:50"));
  Scheduler scheduler(
      {MakeJob("b", "0 9 * * *"), MakeJob("c", "*/30 * * * *"), MakeJob("a", "0 9 * * *")}, clock);
  std::vector<std::pair<std::string, std::time_t>> starts;
  auto runs = Simulate(scheduler, clock, Utc("2026-03-02 09:45"), [&](const std::string& job) {
    starts.emplace_back(job, clock.Now());
    clock.Advance(20);  // each run takes 20 s
  });
  EXPECT_THAT(runs, ElementsAre("b at Mon 2026-03-02 09:00 UTC", "c at Mon 2026-03-02 09:00 UTC",
                                "a at Mon 2026-03-02 09:00 UTC", "c at Mon 2026-03-02 09:30 UTC"));
  const std::time_t nine = Utc("2026-03-02 09:00");
  EXPECT_THAT(starts, ElementsAre(std::pair<std::string, std::time_t>{"b", nine},
                                  std::pair<std::string, std::time_t>{"c", nine + 20},
                                  std::pair<std::string, std::time_t>{"a", nine + 40},
                                  std::pair<std::string, std::time_t>{"c", nine + 30 * 60}));
}

TEST_F(SchedulerTest, SlowRunSkipsMissedOccurrencesInsteadOfQueueingThem) {
  FakeClock clock(Utc("2026-03-02 07:59"));
  Scheduler scheduler({MakeJob("tick", "*/5 * * * *"), MakeJob("report", "7 8 * * *")}, clock);
  std::vector<std::string> missed;
  scheduler.OnMissed([&](const std::string& job, std::time_t first_missed, std::time_t next) {
    missed.push_back(job + " missed " + Local(first_missed) + ", next " + Local(next));
  });
  auto runs = Simulate(scheduler, clock, Utc("2026-03-02 08:40"), [&](const std::string& job) {
    if (job == "tick") clock.Advance(12 * 60);  // 12 minutes, the gap is 5
  });
  EXPECT_THAT(runs, ElementsAre("tick at Mon 2026-03-02 08:00 UTC", "tick at Mon 2026-03-02 08:15 UTC",
                                "tick at Mon 2026-03-02 08:30 UTC"));
  EXPECT_THAT(missed, ElementsAre("tick missed Mon 2026-03-02 08:05 UTC, next Mon 2026-03-02 08:15 UTC",
                                  "report missed Mon 2026-03-02 08:07 UTC, next Tue 2026-03-03 08:07 UTC",
                                  "tick missed Mon 2026-03-02 08:20 UTC, next Mon 2026-03-02 08:30 UTC",
                                  "tick missed Mon 2026-03-02 08:35 UTC, next Mon 2026-03-02 08:45 UTC"));
}

TEST_F(SchedulerTest, RunExactlyAsLongAsTheGapMissesNothing) {
  FakeClock clock(Utc("2026-03-02 07:59"));
  Scheduler scheduler({MakeJob("tick", "*/5 * * * *")}, clock);
  int missed = 0;
  scheduler.OnMissed([&](const std::string&, std::time_t, std::time_t) { ++missed; });
  auto runs = Simulate(scheduler, clock, Utc("2026-03-02 08:20"), [&](const std::string&) { clock.Advance(5 * 60); });
  EXPECT_THAT(runs, ElementsAre("tick at Mon 2026-03-02 08:00 UTC", "tick at Mon 2026-03-02 08:05 UTC",
                                "tick at Mon 2026-03-02 08:10 UTC", "tick at Mon 2026-03-02 08:15 UTC"));
  EXPECT_EQ(missed, 0);
}

TEST_F(SchedulerTest, StartsAfterNowWithoutCatchingUp) {
  FakeClock clock(Utc("2026-03-02 08:00") + 30);  // 08:00 has just passed
  Scheduler scheduler({MakeJob("users", "0 8,13 * * *")}, clock);
  EXPECT_THAT(Simulate(scheduler, clock, Utc("2026-03-02 14:00")), ElementsAre("users at Mon 2026-03-02 13:00 UTC"));
}

TEST_F(SchedulerTest, StopDuringABatchSkipsTheRestOfIt) {
  FakeClock clock(Utc("2026-03-02 08:50"));
  Scheduler scheduler({MakeJob("a", "0 9 * * *"), MakeJob("b", "0 9 * * *")}, clock);
  std::atomic<bool> stop{false};
  std::vector<std::string> ran;
  scheduler.Run(
      [&](const std::string& job, std::time_t) {
        ran.push_back(job);
        stop = true;
      },
      stop);
  EXPECT_THAT(ran, ElementsAre("a"));
}

TEST_F(SchedulerTest, StopAlreadySetReturnsWithoutRunning) {
  FakeClock clock(Utc("2026-03-02 08:50"));
  Scheduler scheduler({MakeJob("a", "* * * * *")}, clock);
  std::atomic<bool> stop{true};
  int runs = 0;
  scheduler.Run([&](const std::string&, std::time_t) { ++runs; }, stop);
  EXPECT_EQ(runs, 0);
}

TEST_F(SchedulerTest, StopWhileSleepingOnTheRealClockReturnsPromptly) {
  RealClock clock;
  Scheduler scheduler({MakeJob("new-year", "0 0 1 1 *")}, clock);
  std::atomic<bool> stop{false};
  int runs = 0;
  std::thread daemon([&] { scheduler.Run([&](const std::string&, std::time_t) { ++runs; }, stop); });
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  const auto asked = std::chrono::steady_clock::now();
  stop = true;
  daemon.join();
  EXPECT_LT(std::chrono::steady_clock::now() - asked, std::chrono::seconds(1));
  EXPECT_EQ(runs, 0);
}

TEST_F(SchedulerTest, RealClockSleepUntilThePastReturnsAtOnce) {
  RealClock clock;
  std::atomic<bool> stop{false};
  EXPECT_TRUE(clock.SleepUntil(clock.Now() - 10, stop));
  stop = true;
  EXPECT_FALSE(clock.SleepUntil(clock.Now() + 3600, stop));
}

TEST_F(SchedulerTest, NoJobsMeansRunReturns) {
  FakeClock clock(Utc("2026-03-02 08:50"));
  Scheduler scheduler({}, clock);
  std::atomic<bool> stop{false};
  scheduler.Run([](const std::string&, std::time_t) { ADD_FAILURE(); }, stop);
  EXPECT_THAT(clock.Sleeps(), IsEmpty());
}

TEST_F(SchedulerTest, UpcomingListsTheNextNInTimeThenConfigOrder) {
  FakeClock clock(Utc("2026-03-02 07:59"));
  Scheduler scheduler(
      {MakeJob("users", "0 8,13 * * *"), MakeJob("full", "0 3 * * *"), MakeJob("also", "0 13 * * *")}, clock);
  auto up = scheduler.Upcoming(6);
  std::vector<std::string> got;
  for (const auto& [job, t] : up) got.push_back(job + " at " + Local(t));
  EXPECT_THAT(got, ElementsAre("users at Mon 2026-03-02 08:00 UTC", "users at Mon 2026-03-02 13:00 UTC",
                               "also at Mon 2026-03-02 13:00 UTC", "full at Tue 2026-03-03 03:00 UTC",
                               "users at Tue 2026-03-03 08:00 UTC", "users at Tue 2026-03-03 13:00 UTC"));
  EXPECT_THAT(scheduler.Upcoming(0), IsEmpty());
  clock.Set(Utc("2026-03-02 13:00"));  // strictly after now
  ASSERT_FALSE(scheduler.Upcoming(1).empty());
  EXPECT_EQ(scheduler.Upcoming(1)[0], (std::pair<std::string, std::time_t>{"full", Utc("2026-03-03 03:00")}));
}

}  // namespace
}  // namespace enrolsync::schedule
