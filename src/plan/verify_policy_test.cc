#include "plan/verify_policy.h"

#include <algorithm>
#include <cstdio>
#include <map>
#include <numeric>
#include <set>
#include <vector>

#include <gtest/gtest.h>

namespace enrolsync::plan {
namespace {

constexpr long long kDay = 86400;
constexpr long long kHour = 3600;
constexpr long long kT0 = 1767571200;  // Mon 2026-01-05 00:00 UTC

std::map<model::MoodleId, long long> Courses(int n, long long last) {
  std::map<model::MoodleId, long long> out;
  for (int i = 1; i <= n; ++i) out[100 + i] = last;
  return out;
}

VerifyInput Input(std::map<model::MoodleId, long long> managed, long long now, int runs_per_day, int days = 7) {
  VerifyInput in;
  in.managed = std::move(managed);
  in.now = now;
  in.max_age_days = days;
  in.upcoming_runs = EvenlySpacedRuns(now, runs_per_day, now + days * kDay + kHour);
  return in;
}

int Rotation(const VerifyChoice& c, const VerifyInput& in) {
  int n = 0;
  for (auto id : c.courses) n += in.managed.count(id) && !in.touched.count(id);
  return n;
}

// ------------------------------------------------------------------ the share

TEST(VerifyPolicy, TheShareSpreadsEveryCourseOverTheWindowWithOneRunSpare) {
  // 4 runs a day for 7 days: 28 runs; one kept spare. Verified evenly over
  // the past week.
  std::map<model::MoodleId, long long> m;
  for (int i = 0; i < 458; ++i) m[i + 1] = kT0 - 6 * kDay - 23 * kHour + i * (7 * kDay / 458);
  auto in = Input(m, kT0, 4);
  auto c = ChooseVerification(in);
  EXPECT_EQ(c.runs_in_window, 28);
  EXPECT_EQ(c.share, 17);  // ceil(458 / 27)
  EXPECT_EQ(c.rotation, 17);
  EXPECT_EQ(c.courses.size(), 17u);
  EXPECT_EQ(c.overdue, 0);
  // One run a day (a nightly timer): ceil(458 / 6).
  in = Input(m, kT0, 1);
  c = ChooseVerification(in);
  EXPECT_EQ(c.runs_in_window, 7);
  EXPECT_EQ(c.share, 77);
  EXPECT_EQ(Rotation(c, in), 77);
}

TEST(VerifyPolicy, TwoOrFewerRunsInTheWindowReadEveryCourse) {
  auto in = Input(Courses(30, kT0 - kHour), kT0, 1, 1);
  auto c = ChooseVerification(in);
  EXPECT_EQ(c.runs_in_window, 1);
  EXPECT_EQ(c.courses.size(), 30u);
  in = Input(Courses(30, kT0 - kHour), kT0, 1, 2);
  c = ChooseVerification(in);
  EXPECT_EQ(c.runs_in_window, 2);
  EXPECT_EQ(c.courses.size(), 30u);
  in = Input(Courses(30, kT0 - kHour), kT0, 1, 3);
  c = ChooseVerification(in);
  EXPECT_EQ(c.runs_in_window, 3);
  EXPECT_EQ(c.courses.size(), 15u);
}

TEST(VerifyPolicy, NoExpectedRunsMeansEveryCourseIsRead) {
  auto in = Input(Courses(12, kT0 - kHour), kT0, 1);
  in.upcoming_runs.clear();
  EXPECT_EQ(ChooseVerification(in).courses.size(), 12u);
}

TEST(VerifyPolicy, VerifyCoursesPerRunIsAFloor) {
  auto in = Input(Courses(20, kT0 - kHour), kT0, 4);
  EXPECT_EQ(ChooseVerification(in).rotation, 1);  // ceil(20 / 27)
  in.min_per_run = 6;
  EXPECT_EQ(ChooseVerification(in).rotation, 6);
  in.min_per_run = 50;
  EXPECT_EQ(ChooseVerification(in).rotation, 20);
}

TEST(VerifyPolicy, OldestFirstNeverVerifiedOldestOfAll) {
  std::map<model::MoodleId, long long> m;
  for (int i = 1; i <= 54; ++i) m[i] = kT0 - i * kHour;  // course 54 the oldest
  m[7] = 0;                                                // never verified
  auto in = Input(m, kT0, 4);
  auto c = ChooseVerification(in);
  ASSERT_EQ(c.rotation, 2);  // ceil(54 / 27)
  EXPECT_EQ(c.courses, (std::vector<model::MoodleId>{7, 54}));
  EXPECT_EQ(c.overdue, 1);
}

// ------------------------------------------------------- touched and --verify

TEST(VerifyPolicy, TouchedCoursesAreAlwaysReadAndDoNotUseTheShare) {
  auto in = Input(Courses(54, kT0 - kHour), kT0, 4);
  in.touched = {101, 102, 103, 9999};  // 9999: not managed yet (a first enrolment)
  auto c = ChooseVerification(in);
  EXPECT_EQ(c.rotation, 2);
  EXPECT_EQ(c.courses.size(), 6u);
  for (auto id : in.touched) EXPECT_TRUE(std::count(c.courses.begin(), c.courses.end(), id)) << id;
}

TEST(VerifyPolicy, VerifyAllReadsEveryManagedCourse) {
  auto in = Input(Courses(458, kT0 - kHour), kT0, 4);
  in.touched = {9999};
  in.verify_all = true;
  auto c = ChooseVerification(in);
  EXPECT_EQ(c.courses.size(), 459u);
}

// ----------------------------------------------------------------- catch-up

TEST(VerifyPolicy, CoursesThatWouldMissTheirDeadlineRaiseTheBudget) {
  // 54 courses, share 2; 6 of them are due within the next 2 runs (this one
  // included): 3 a run are needed.
  auto m = Courses(54, kT0 - kHour);
  for (int i = 1; i <= 6; ++i) m[100 + i] = kT0 - 7 * kDay + 5 * kHour;  // deadline before the run at +6 h
  auto in = Input(m, kT0, 4);
  auto c = ChooseVerification(in);
  EXPECT_EQ(c.share, 2);
  EXPECT_EQ(c.rotation, 3);
  EXPECT_EQ(c.overdue, 0);
}

TEST(VerifyPolicy, CatchUpIsCappedAtTwiceTheShare) {
  // Everything overdue (the daemon was off for a fortnight): not all at once.
  auto in = Input(Courses(458, kT0 - 14 * kDay), kT0, 4);
  auto c = ChooseVerification(in);
  EXPECT_EQ(c.overdue, 458);
  EXPECT_EQ(c.rotation, 34);
  // Never verified at all (a state database from before verification times).
  in = Input(Courses(458, 0), kT0, 4);
  EXPECT_EQ(ChooseVerification(in).rotation, 34);
}

TEST(VerifyPolicy, ARunThatStartsALittleLateStillMeetsTheDeadline) {
  // Deadline 10 minutes before the next run: that run counts (tolerance
  // 1 h), so the course is not due now.
  auto m = Courses(54, kT0 - kHour);
  for (int i = 1; i <= 4; ++i) m[100 + i] = kT0 - 7 * kDay + 6 * kHour - 600;
  auto in = Input(m, kT0, 4);
  EXPECT_EQ(ChooseVerification(in).rotation, 2);
  // Two hours before: it is due now.
  for (int i = 1; i <= 4; ++i) m[100 + i] = kT0 - 7 * kDay + 4 * kHour;
  in = Input(m, kT0, 4);
  EXPECT_EQ(ChooseVerification(in).rotation, 4);
}

TEST(VerifyPolicy, EvenlySpacedRuns) {
  EXPECT_EQ(EvenlySpacedRuns(0, 4, kDay), (std::vector<long long>{6 * kHour, 12 * kHour, 18 * kHour, kDay}));
  EXPECT_EQ(EvenlySpacedRuns(0, 1, kDay - 1), std::vector<long long>{});
  EXPECT_EQ(EvenlySpacedRuns(0, 0, kDay).size(), 1u);
}

// ------------------------------------------------------- a simulated month

struct SimRun {
  long long now = 0;
  int managed = 0;
  int share = 0;
  int rotation = 0;     // managed courses read because of the rotation
  int touched = 0;
  long long oldest = 0;  // the largest age (now - last verified) of any managed course, before reading
  int never = 0;         // managed courses never verified, before reading
};

struct Sim {
  int courses = 458;
  int max_age_days = 7;
  int min_per_run = 6;
  std::vector<long long> schedule;  // nominal run times, ascending; the future the policy is told of
  int days = 30;                    // how many days of it run
  std::set<size_t> skipped;         // indexes into schedule that do not run
  std::map<size_t, int> new_courses;  // run index -> courses created by that run
  long long first_sync = kT0;         // every course created (so verified) then
  bool never_verified = false;        // ... or no verification times at all

  std::vector<SimRun> Run() const {
    std::map<model::MoodleId, long long> last;
    for (int i = 1; i <= courses; ++i) last[i] = never_verified ? 0 : first_sync;
    model::MoodleId next_id = courses + 1;
    std::vector<SimRun> out;
    unsigned rng = 12345;
    auto rand = [&rng] { return rng = rng * 1103515245u + 12345u, (rng >> 16) & 0x7fff; };
    for (size_t i = 0; i < schedule.size() && schedule[i] < first_sync + days * kDay; ++i) {
      if (skipped.count(i)) continue;
      VerifyInput in;
      in.now = schedule[i] + static_cast<long long>(rand() % 180);  // starts up to 3 minutes late
      in.max_age_days = max_age_days;
      in.min_per_run = min_per_run;
      for (size_t j = i + 1; j < schedule.size() && schedule[j] <= in.now + max_age_days * kDay + kHour; ++j)
        in.upcoming_runs.push_back(schedule[j]);
      in.managed = last;
      // A normal day touches a few courses (moves, a new teacher).
      int touch = static_cast<int>(rand() % 6);
      for (int t = 0; t < touch; ++t) in.touched.insert(1 + static_cast<model::MoodleId>(rand()) % (next_id - 1));
      SimRun r;
      r.now = in.now;
      r.managed = static_cast<int>(last.size());
      for (const auto& [_, t] : last) {
        if (t > 0) r.oldest = std::max(r.oldest, in.now - t);
        r.never += t == 0;
      }
      VerifyChoice c = ChooseVerification(in);
      r.share = c.share;
      r.touched = static_cast<int>(in.touched.size());
      r.rotation = Rotation(c, in);
      for (auto id : c.courses) last[id] = in.now;
      if (auto n = new_courses.find(i); n != new_courses.end())
        for (int k = 0; k < n->second; ++k) last[next_id++] = in.now;  // created: verified
      out.push_back(r);
    }
    return out;
  }
};

std::vector<long long> Daily(long long from, int days, std::vector<long long> times_of_day, int weekdays_only = 0) {
  std::vector<long long> out;
  for (int d = 0; d < days; ++d) {
    if (weekdays_only && (d % 7) >= 5) continue;  // kT0 is a Monday
    for (long long t : times_of_day) out.push_back(from + d * kDay + t);
  }
  return out;
}

void Print(const char* name, const std::vector<SimRun>& runs) {
  int max_reads = 0;
  long long sum = 0, oldest = 0;
  for (const auto& r : runs) {
    max_reads = std::max(max_reads, r.rotation);
    sum += r.rotation;
    oldest = std::max(oldest, r.oldest);
  }
  std::printf("%s: %zu runs, rotation reads max %d, mean %.1f, oldest course %.2f days\n", name, runs.size(),
              max_reads, static_cast<double>(sum) / static_cast<double>(runs.size()),
              static_cast<double>(oldest) / kDay);
}

// 458 courses, 4 runs a day (03:00, 09:00, 15:00, 21:00), 30 days, three
// runs skipped, courses added on days 10 and 20, a few touched every run.
TEST(VerifyPolicySimulation, AMonthOfRunsReadsAnEvenShareAndKeepsEveryCourseWithinTheLimit) {
  Sim sim;
  sim.schedule = Daily(kT0, 40, {3 * kHour, 9 * kHour, 15 * kHour, 21 * kHour});
  sim.skipped = {17, 50, 90};
  sim.new_courses = {{40, 3}, {80, 12}};
  auto runs = sim.Run();
  ASSERT_EQ(runs.size(), 117u);
  Print("4 a day, 3 skipped", runs);
  for (const auto& r : runs) {
    EXPECT_EQ(r.share, (r.managed + 26) / 27) << "run at day " << (r.now - kT0) / kDay;
    EXPECT_LE(r.rotation, r.share) << "no cliff: run at day " << static_cast<double>(r.now - kT0) / kDay;
    EXPECT_GE(r.rotation, r.share - 6) << "the rotation keeps going";  // less only by the touched courses
    EXPECT_LE(r.oldest, 7 * kDay + 180) << "run at day " << static_cast<double>(r.now - kT0) / kDay;
  }
}

// The nightly timer's default: one run a day at 02:30, 7 days.
TEST(VerifyPolicySimulation, OneRunADayReadsASixthOfTheCoursesEachNight) {
  Sim sim;
  sim.schedule = Daily(kT0, 40, {2 * kHour + 30 * 60});
  sim.skipped = {9, 20};
  auto runs = sim.Run();
  Print("1 a day, 2 skipped", runs);
  for (const auto& r : runs) {
    EXPECT_LE(r.rotation, 77);
    EXPECT_LE(r.oldest, 7 * kDay + 180);
  }
}

// Weekdays only, uneven within the day (07:00 and 07:30): the window holds
// 10 runs wherever it starts.
TEST(VerifyPolicySimulation, AnUnevenWeekdayScheduleStillMeetsTheLimit) {
  Sim sim;
  sim.schedule = Daily(kT0, 40, {7 * kHour, 7 * kHour + 30 * 60}, 1);
  auto runs = sim.Run();
  Print("weekdays 07:00 and 07:30", runs);
  for (const auto& r : runs) {
    EXPECT_LE(r.rotation, 2 * ((r.managed + 8) / 9));
    EXPECT_LE(r.oldest, 7 * kDay + 180) << "run at day " << static_cast<double>(r.now - kT0) / kDay;
  }
}

// The daemon is off for three days (12 runs): the backlog is read at no more
// than twice the share a run, oldest first, and is gone within 12 runs.
TEST(VerifyPolicySimulation, AnOutageIsCaughtUpAtTwiceTheShareNotAllAtOnce) {
  Sim sim;
  sim.schedule = Daily(kT0, 40, {3 * kHour, 9 * kHour, 15 * kHour, 21 * kHour});
  for (size_t i = 44; i < 56; ++i) sim.skipped.insert(i);
  auto runs = sim.Run();
  Print("4 a day, 3 days off", runs);
  size_t after = 0;
  while (runs[after].now < sim.schedule[56]) ++after;
  for (size_t i = 0; i < runs.size(); ++i) {
    EXPECT_LE(runs[i].rotation, 2 * runs[i].share) << i;
    if (i < after || i > after + 12) {
      EXPECT_LE(runs[i].oldest, 7 * kDay + 180) << i;
    }
    if (i > after + 12) {
      EXPECT_LE(runs[i].rotation, runs[i].share) << i;
    }
  }
  EXPECT_GT(runs[after].oldest, 9 * kDay);
  EXPECT_EQ(runs[after].rotation, 2 * runs[after].share);
}

// No verification times at all (every course counts as never verified).
TEST(VerifyPolicySimulation, NeverVerifiedCoursesAreSpreadOut) {
  Sim sim;
  sim.never_verified = true;
  sim.days = 14;
  sim.schedule = Daily(kT0, 40, {3 * kHour, 9 * kHour, 15 * kHour, 21 * kHour});
  auto runs = sim.Run();
  Print("never verified", runs);
  for (size_t i = 0; i < runs.size(); ++i) {
    EXPECT_LE(runs[i].rotation, 34) << i;
    EXPECT_LE(runs[i].oldest, 7 * kDay + 180) << i;
    if (i >= 14) {
      EXPECT_EQ(runs[i].never, 0) << i;
    }
  }
}

}  // namespace
}  // namespace enrolsync::plan
