#include "schedule/scheduler.h"

#include <algorithm>
#include <chrono>
#include <optional>
#include <thread>

namespace enrolsync::schedule {

std::time_t RealClock::Now() { return std::time(nullptr); }

bool RealClock::SleepUntil(std::time_t t, const std::atomic<bool>& stop) {
  using namespace std::chrono_literals;
  while (true) {
    if (stop.load()) return false;
    const std::time_t now = Now();
    if (now >= t) return true;
    // Re-read the wall clock often: it may be stepped, and stop must be prompt.
    auto slice = std::chrono::milliseconds(static_cast<long long>(t - now) * 1000);
    std::this_thread::sleep_for(std::min<std::chrono::milliseconds>(slice, 250ms));
  }
}

std::time_t FakeClock::Now() {
  std::lock_guard<std::mutex> lock(mu_);
  return now_;
}

bool FakeClock::SleepUntil(std::time_t t, const std::atomic<bool>& stop) {
  std::function<void(std::time_t)> hook;
  {
    std::lock_guard<std::mutex> lock(mu_);
    sleeps_.push_back(t);
    hook = hook_;
  }
  if (hook) hook(t);
  if (stop.load()) return false;
  std::lock_guard<std::mutex> lock(mu_);
  now_ = std::max(now_, t);
  return true;
}

void FakeClock::Advance(std::time_t seconds) {
  std::lock_guard<std::mutex> lock(mu_);
  now_ += seconds;
}

void FakeClock::Set(std::time_t t) {
  std::lock_guard<std::mutex> lock(mu_);
  now_ = t;
}

std::vector<std::time_t> FakeClock::Sleeps() const {
  std::lock_guard<std::mutex> lock(mu_);
  return sleeps_;
}

void FakeClock::OnSleep(std::function<void(std::time_t)> hook) {
  std::lock_guard<std::mutex> lock(mu_);
  hook_ = std::move(hook);
}

Scheduler::Scheduler(std::vector<Job> jobs, Clock& clock) : jobs_(std::move(jobs)), clock_(clock) {}

void Scheduler::Run(const RunFn& run, const std::atomic<bool>& stop) {
  std::vector<std::optional<std::time_t>> next(jobs_.size());
  const std::time_t start = clock_.Now();
  for (std::size_t i = 0; i < jobs_.size(); ++i) next[i] = NextRun(jobs_[i].schedule, start);

  while (!stop.load()) {
    std::optional<std::time_t> due;
    for (const auto& n : next) {
      if (n && (!due || *n < *due)) due = n;
    }
    if (!due) return;  // nothing can ever run again
    if (!clock_.SleepUntil(*due, stop)) return;

    // The batch: every job due at this instant, in config order.
    for (std::size_t i = 0; i < jobs_.size(); ++i) {
      if (next[i] != due) continue;
      if (stop.load()) return;
      run(jobs_[i].name, *due);
    }

    const std::time_t now = clock_.Now();
    for (std::size_t i = 0; i < jobs_.size(); ++i) {
      std::optional<std::time_t> n = next[i];
      if (!n) continue;
      if (*n == *due) n = NextRun(jobs_[i].schedule, *due);
      if (n && *n < now) {
        // Came due while a run was still going: skip, don't queue.
        const std::time_t first_missed = *n;
        n = NextRun(jobs_[i].schedule, now - 1);
        if (missed_) missed_(jobs_[i].name, first_missed, n.value_or(0));
      }
      next[i] = n;
    }
  }
}

std::vector<std::pair<std::string, std::time_t>> Scheduler::Upcoming(int n) const {
  std::vector<std::pair<std::string, std::time_t>> out;
  if (n <= 0) return out;
  const std::time_t now = clock_.Now();
  std::vector<std::optional<std::time_t>> next(jobs_.size());
  for (std::size_t i = 0; i < jobs_.size(); ++i) next[i] = NextRun(jobs_[i].schedule, now);
  while (static_cast<int>(out.size()) < n) {
    std::optional<std::size_t> pick;
    for (std::size_t i = 0; i < jobs_.size(); ++i) {
      if (next[i] && (!pick || *next[i] < *next[*pick])) pick = i;
    }
    if (!pick) break;
    out.emplace_back(jobs_[*pick].name, *next[*pick]);
    next[*pick] = NextRun(jobs_[*pick].schedule, *next[*pick]);
  }
  return out;
}

}  // namespace enrolsync::schedule
