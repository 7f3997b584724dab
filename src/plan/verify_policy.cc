#include "plan/verify_policy.h"

#include <algorithm>
#include <utility>

namespace enrolsync::plan {
namespace {

constexpr long long kDay = 86400;
constexpr long long kMaxTolerance = 3600;

long long CeilDiv(long long a, long long b) { return b <= 0 ? a : (a + b - 1) / b; }

}  // namespace

VerifyChoice ChooseVerification(const VerifyInput& in) {
  VerifyChoice out;
  std::set<model::MoodleId> chosen(in.touched.begin(), in.touched.end());
  const long long max_age = static_cast<long long>(std::max(1, in.max_age_days)) * kDay;

  // The runs after this one, and how late one may start.
  std::vector<long long> runs;
  for (long long t : in.upcoming_runs)
    if (t > in.now) runs.push_back(t);
  std::sort(runs.begin(), runs.end());
  long long tolerance = kMaxTolerance;
  long long prev = in.now;
  for (long long t : runs) {
    if (t > prev) tolerance = std::min(tolerance, (t - prev) / 2);
    prev = t;
  }
  auto runs_until = [&](long long t) {  // runs after now starting no later than t
    return static_cast<long long>(std::upper_bound(runs.begin(), runs.end(), t) - runs.begin());
  };
  const long long window = runs_until(in.now + max_age + tolerance);
  out.runs_in_window = static_cast<int>(window);

  // Rotation candidates, oldest first (ties by id, so runs are reproducible).
  std::vector<std::pair<long long, model::MoodleId>> order;
  for (const auto& [course, last] : in.managed) {
    bool late = last <= 0 || in.now > last + max_age + tolerance;
    out.overdue += late;
    if (!chosen.count(course)) order.emplace_back(std::max(0LL, last), course);
  }
  std::sort(order.begin(), order.end());
  const long long managed = static_cast<long long>(in.managed.size());

  if (in.verify_all) {
    for (const auto& [_, course] : order) chosen.insert(course);
    out.share = static_cast<int>(managed);
    out.rotation = static_cast<int>(order.size());
    out.courses.assign(chosen.begin(), chosen.end());
    return out;
  }

  const long long share = window >= 3 ? CeilDiv(managed, window - 1) : managed;
  // Catch-up: the fewest reads per run that, oldest first, still meet every
  // deadline that can be met. The p-th oldest (1-based) is read within
  // ceil(p / budget) runs; it has runs_left runs (this one included).
  long long need = 0;
  for (size_t i = 0; i < order.size(); ++i) {
    long long last = order[i].first;
    long long runs_left = 1;
    if (last > 0 && in.now <= last + max_age + tolerance) runs_left += runs_until(last + max_age + tolerance);
    need = std::max(need, CeilDiv(static_cast<long long>(i) + 1, runs_left));
  }
  long long budget = std::max(share, std::min(need, 2 * share));
  budget = std::max(budget, static_cast<long long>(std::max(0, in.min_per_run)));
  budget = std::min(budget, static_cast<long long>(order.size()));
  for (long long i = 0; i < budget; ++i) chosen.insert(order[static_cast<size_t>(i)].second);
  out.share = static_cast<int>(share);
  out.rotation = static_cast<int>(budget);
  out.courses.assign(chosen.begin(), chosen.end());
  return out;
}

std::vector<long long> EvenlySpacedRuns(long long now, int runs_per_day, long long until) {
  std::vector<long long> out;
  if (runs_per_day < 1) runs_per_day = 1;
  // Exact for any divisor of a day; otherwise each run is rounded down to a second.
  for (long long i = 1;; ++i) {
    long long t = now + i * kDay / runs_per_day;
    if (t > until) break;
    out.push_back(t);
  }
  return out;
}

}  // namespace enrolsync::plan
