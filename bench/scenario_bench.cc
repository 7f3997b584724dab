// scenario_bench: issue 9's three scenarios with the generated school, on
// the sandbox charging Moodle 5.1's measured costs (--cost-model
// moodle-5.1) and on a real Moodle 5.1 (tests/real_school.h), so that the
// model can be checked against the real thing:
//   first sync   users from slapd, courses and enrolments from the MIS;
//   no change    the same sources again;
//   normal day   20 pupils move set, 3 new sets, a teacher taken off a set,
//                a set deleted, a role change, 5 directory leavers and a
//                surname change, all in one run.
// For each it prints wall time, calls, writes, calls retried, server
// seconds by function (summed over parallel calls), and, on the sandbox,
// the seconds the model charged.
//
//   scenario_bench [--pupils 800] [--staff 90] [--runs-per-day N]
//                  [--repeat N] [--backend sandbox|moodle|both]
//
// Not a test: numbers depend on the machine; bench/README.md says where they
// were measured. --backend moodle and both need the Moodle distribution
// (../shared/moodle-src or ENROLSYNC_MOODLE_TARBALL); "both" falls back to
// the sandbox alone when it is missing.
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>
#include <vector>

#include "real_school.h"

using namespace enrolsync;

namespace {

struct Run {
  double seconds = 0, charged = 0;
  int calls = 0, writes = 0, retried = 0, failures = 0, exit_code = 0;
  std::map<std::string, moodle::FunctionStats> by_function;
};

Run Measure(testing::RealSchool& school, bool sandbox) {
  double charged0 = sandbox ? school.sandbox().ChargedSeconds() : 0;
  auto t0 = std::chrono::steady_clock::now();
  auto r = school.Sync();
  Run out;
  out.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (sandbox) out.charged = school.sandbox().ChargedSeconds() - charged0;
  for (const auto& [fn, st] : r.calls) out.calls += st.calls;
  out.by_function = r.calls;
  out.writes = r.write_calls;
  for (const auto& [reason, n] : r.retries) out.retried += n;
  out.failures = static_cast<int>(r.apply.failures.size() + r.users.apply.failures.size());
  out.exit_code = r.exit_code;
  return out;
}

const char* kScenarios[] = {"first sync", "no change", "normal day"};

// One pass of the three scenarios on a fresh site; empty on a setup error.
std::vector<Run> Pass(const testing::RealSchoolOptions& options, std::string* error) {
  auto school = testing::RealSchool::Start(options);
  if (!school) {
    *error = school.error().message;
    return {};
  }
  bool sandbox = !options.real_moodle;
  std::vector<Run> runs;
  runs.push_back(Measure(**school, sandbox));
  runs.push_back(Measure(**school, sandbox));
  Status st = (*school)->DayOfChanges(20);
  if (st) {
    auto leavers = (*school)->Leave(5);
    st = leavers ? (*school)->Rename((*school)->school().people.back().username, "Smith & O'Neill-Åberg")
                 : Status(Fail(leavers.error()));
  }
  if (!st) {
    *error = st.error().message;
    return {};
  }
  runs.push_back(Measure(**school, sandbox));
  return runs;
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v.size() % 2 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
}

void Print(const char* backend, const std::vector<std::vector<Run>>& passes) {
  for (std::size_t s = 0; s < 3; ++s) {
    std::vector<double> secs;
    std::string all;
    for (const auto& p : passes) {
      secs.push_back(p[s].seconds);
      char b[32];
      std::snprintf(b, sizeof b, "%s%.1f", all.empty() ? "" : " ", p[s].seconds);
      all += b;
    }
    const Run& r = passes.back()[s];
    std::printf("%-8s %-11s median %6.1f s (%s)  calls %d  writes %d  retried %d  failed %d%s", backend,
                kScenarios[s], Median(secs), all.c_str(), r.calls, r.writes, r.retried, r.failures,
                r.exit_code ? "  (exit code not 0)" : "");
    if (r.charged > 0) std::printf("  charged %.1f s", r.charged);
    std::printf("\n");
    for (const auto& [fn, st] : r.by_function)
      std::printf("           %-48s %4d calls %7.2f s\n", fn.c_str(), st.calls, st.seconds);
  }
  std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  testing::RealSchoolOptions base;
  base.size = {800, 90};
  int runs_per_day = 0, repeat = 1;
  std::string backend = "both";
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> std::string { return i + 1 < argc ? argv[++i] : ""; };
    if (a == "--pupils") base.size.pupils = std::atoi(next().c_str());
    else if (a == "--staff") base.size.staff = std::atoi(next().c_str());
    else if (a == "--runs-per-day") runs_per_day = std::atoi(next().c_str());
    else if (a == "--repeat") repeat = std::max(1, std::atoi(next().c_str()));
    else if (a == "--backend") backend = next();
    else {
      std::fprintf(stderr, "scenario_bench: unknown argument '%s'\n", a.c_str());
      return 64;
    }
  }
  if (backend != "sandbox" && backend != "moodle" && backend != "both") {
    std::fprintf(stderr, "scenario_bench: --backend is sandbox, moodle or both\n");
    return 64;
  }
  // The config has no [state] table of its own: this one follows [moodle].
  if (runs_per_day > 0) base.moodle_extra += "\n[state]\nruns_per_day = " + std::to_string(runs_per_day) + "\n";
  std::printf("school: %d pupils, %d staff; runs_per_day %d; %d pass(es) each\n", base.size.pupils, base.size.staff,
              runs_per_day, repeat);

  std::map<std::string, std::vector<std::vector<Run>>> results;
  for (const char* b : {"sandbox", "moodle"}) {
    if (backend != "both" && backend != b) continue;
    testing::RealSchoolOptions o = base;
    o.real_moodle = std::string(b) == "moodle";
    if (!o.real_moodle) o.sandbox_cost_model = "moodle-5.1";
    if (o.real_moodle && !testsupport::FindMoodleDistribution()) {
      std::printf("moodle: no Moodle distribution found; skipped\n");
      if (backend == "moodle") return 1;
      continue;
    }
    for (int k = 0; k < repeat; ++k) {
      std::string error;
      auto runs = Pass(o, &error);
      if (runs.empty()) {
        std::fprintf(stderr, "scenario_bench: %s: %s\n", b, error.c_str());
        return 1;
      }
      results[b].push_back(std::move(runs));
    }
    Print(b, results[b]);
  }
  if (results.size() == 2) {
    std::printf("\nsandbox ÷ real Moodle, median wall time (goal: within ±30%%)\n");
    for (std::size_t s = 0; s < 3; ++s) {
      std::vector<double> sb, real;
      for (const auto& p : results["sandbox"]) sb.push_back(p[s].seconds);
      for (const auto& p : results["moodle"]) real.push_back(p[s].seconds);
      double ratio = Median(sb) / std::max(1e-9, Median(real));
      std::printf("  %-11s %6.1f s ÷ %6.1f s = %.2f %s\n", kScenarios[s], Median(sb), Median(real), ratio,
                  ratio >= 0.7 && ratio <= 1.3 ? "ok" : "OUTSIDE");
    }
  }
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  std::printf("peak RSS of this process: %ld MB\n", ru.ru_maxrss / 1024);
  return 0;
}
