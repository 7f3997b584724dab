// Runs named jobs on cron schedules, one at a time, against an injected
// clock (real in the daemon, fake in tests).
//
// Rules:
//   - Run() starts from clock.Now(): only occurrences strictly after the
//     start are run; nothing missed while the daemon was down is caught up.
//   - Jobs due at the same scheduled instant form one batch and run in
//     config order, one after another (runs never overlap inside the daemon).
//     Every job in a batch runs even if an earlier one in it ran long.
//   - After a batch, any occurrence whose time is now in the past
//     (scheduled < clock.Now()) was missed because a run took longer than
//     the gap: it is skipped, not queued and not run late; the job's next
//     occurrence at or after Now() is used instead. The optional missed
//     observer is told (for the log).
//     An occurrence due exactly at Now() is not missed.
//   - If the clock jumps forward while sleeping (suspend, NTP step), the
//     earliest due batch still runs once, late; later missed ones are skipped
//     as above.
//   - `stop` is checked before every run and while sleeping (RealClock
//     polls it every 250 ms). Run() returns once stop is true, without
//     interrupting a run in progress; it also returns if no job has any
//     future occurrence.
#pragma once

#include <atomic>
#include <ctime>
#include <functional>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "schedule/cron.h"

namespace enrolsync::schedule {

class Clock {
 public:
  virtual ~Clock() = default;
  virtual std::time_t Now() = 0;
  // Returns true once Now() >= t, false as soon as `stop` is seen true.
  virtual bool SleepUntil(std::time_t t, const std::atomic<bool>& stop) = 0;
};

// Wall clock: time(nullptr); sleeps in slices of at most 250 ms so that a
// stop request, or a wall-clock step, is noticed promptly.
class RealClock : public Clock {
 public:
  std::time_t Now() override;
  bool SleepUntil(std::time_t t, const std::atomic<bool>& stop) override;
};

// Test clock: SleepUntil returns at once, having jumped Now() to t (never
// backwards) and recorded t. Advance() simulates a run taking time. All
// methods lock, so a test may read it from another thread.
class FakeClock : public Clock {
 public:
  explicit FakeClock(std::time_t start) : now_(start) {}
  std::time_t Now() override;
  // Calls the sleep hook (if any) first; returns false without moving time
  // if `stop` is then true.
  bool SleepUntil(std::time_t t, const std::atomic<bool>& stop) override;

  void Advance(std::time_t seconds);
  void Set(std::time_t t);
  std::vector<std::time_t> Sleeps() const;
  // Called with the target of every SleepUntil, before anything else; a test
  // uses it to set the stop flag once the simulation has gone far enough.
  void OnSleep(std::function<void(std::time_t target)> hook);

 private:
  mutable std::mutex mu_;
  std::time_t now_;
  std::vector<std::time_t> sleeps_;
  std::function<void(std::time_t)> hook_;
};

struct Job {
  std::string name;
  CronSchedule schedule;
};

class Scheduler {
 public:
  using RunFn = std::function<void(const std::string& job, std::time_t scheduled)>;
  // first_missed: the earliest skipped occurrence; next: the one that will
  // run instead (0 if none).
  using MissedFn = std::function<void(const std::string& job, std::time_t first_missed, std::time_t next)>;

  Scheduler(std::vector<Job> jobs, Clock& clock);

  // Optional: told, once per job per batch, when occurrences were skipped
  // because a run was still going when they came due. Set before Run().
  void OnMissed(MissedFn missed) { missed_ = std::move(missed); }

  // Blocks until `stop` is true (or no job can ever run again). `run` is
  // called on this thread with the job name and its scheduled time.
  void Run(const RunFn& run, const std::atomic<bool>& stop);

  // The next n (job, time) occurrences strictly after clock.Now(), in time
  // order, ties in config order. Independent of Run()'s progress.
  std::vector<std::pair<std::string, std::time_t>> Upcoming(int n) const;

  const std::vector<Job>& jobs() const { return jobs_; }

 private:
  std::vector<Job> jobs_;
  Clock& clock_;
  MissedFn missed_;
};

}  // namespace enrolsync::schedule
