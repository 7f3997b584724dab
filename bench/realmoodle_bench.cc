// realmoodle_bench: the first sync and a no-change run of the generated
// school against a real Moodle 5.1 (tests/real_school.h), once per write
// concurrency setting, each on a freshly installed site. Prints, per
// setting: wall time, calls, writes, calls retried (deadlocks: Moodle rolled
// them back), failures, server time by function (calls/seconds, summed over
// parallel calls), and this process's peak RSS.
//
//   realmoodle_bench [--pupils 800] [--staff 90] [--runs-per-day N] [SETTING...]
//
// A SETTING is "cC,eE,uU": create_course_concurrency C, enrol_concurrency E,
// user_concurrency U (default: c1,e1,u1 c1,e2,u2 c2,e2,u2 c1,e4,u4). Not a
// test: numbers depend on the machine; README "Costs" says where they were
// measured.
#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "real_school.h"
#include "util/strings.h"

using namespace enrolsync;

namespace {

struct Setting {
  int create = 1, enrol = 1, user = 1;
  std::string Name() const {
    return "c" + std::to_string(create) + ",e" + std::to_string(enrol) + ",u" + std::to_string(user);
  }
};

bool ParseSetting(const std::string& s, Setting* out) {
  for (const std::string& part : Split(s, ',')) {
    if (part.size() < 2) return false;
    int v = std::atoi(part.c_str() + 1);
    if (v < 1 || v > 16) return false;
    if (part[0] == 'c') out->create = v;
    else if (part[0] == 'e') out->enrol = v;
    else if (part[0] == 'u') out->user = v;
    else return false;
  }
  return true;
}

struct Run {
  double seconds = 0;
  int calls = 0, writes = 0, retried = 0, failures = 0, exit_code = 0;
  std::string retried_by;
  std::string by_function;  // "fn calls/seconds, ..."
};

Run Measure(testing::RealSchool& school) {
  auto t0 = std::chrono::steady_clock::now();
  auto r = school.Sync();
  Run out;
  out.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  for (const auto& [fn, st] : r.calls) {
    out.calls += st.calls;
    char buf[160];
    std::snprintf(buf, sizeof buf, "%s%s %d/%.1fs", out.by_function.empty() ? "" : ", ", fn.c_str(), st.calls,
                  st.seconds);
    out.by_function += buf;
  }
  out.writes = r.write_calls;
  for (const auto& [reason, n] : r.retries) {
    out.retried += n;
    out.retried_by += (out.retried_by.empty() ? "" : " ") + std::to_string(n) + " " + reason;
  }
  out.failures = static_cast<int>(r.apply.failures.size() + r.users.apply.failures.size());
  out.exit_code = r.exit_code;
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  schoolgen::Options size{800, 90};
  int runs_per_day = 0;  // [state] runs_per_day: sizes the verification rotation
  std::vector<Setting> settings;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--pupils" && i + 1 < argc) {
      size.pupils = std::atoi(argv[++i]);
    } else if (a == "--staff" && i + 1 < argc) {
      size.staff = std::atoi(argv[++i]);
    } else if (a == "--runs-per-day" && i + 1 < argc) {
      runs_per_day = std::atoi(argv[++i]);
    } else {
      Setting s;
      if (!ParseSetting(a, &s)) {
        std::fprintf(stderr, "realmoodle_bench: bad setting '%s' (want e.g. c1,e2,u2)\n", a.c_str());
        return 64;
      }
      settings.push_back(s);
    }
  }
  if (settings.empty()) settings = {{1, 1, 1}, {1, 2, 2}, {2, 2, 2}, {1, 4, 4}};
  std::printf("school: %d pupils, %d staff; runs_per_day %d\n", size.pupils, size.staff, runs_per_day);
  std::printf("%-10s %9s %6s %6s %8s %8s %9s %6s  %s\n", "setting", "first s", "calls", "writes", "retried",
              "failed", "rerun s", "calls", "retried by reason");
  for (const Setting& s : settings) {
    testing::RealSchoolOptions o;
    o.size = size;
    o.moodle_extra = "create_course_concurrency = " + std::to_string(s.create) +
                     "\nenrol_concurrency = " + std::to_string(s.enrol) +
                     "\nuser_concurrency = " + std::to_string(s.user) + "\n";
    // The config has no [state] table of its own: this one follows [moodle].
    if (runs_per_day > 0) o.moodle_extra += "\n[state]\nruns_per_day = " + std::to_string(runs_per_day) + "\n";
    auto school = testing::RealSchool::Start(o);
    if (!school) {
      std::fprintf(stderr, "realmoodle_bench: %s\n", school.error().message.c_str());
      return 1;
    }
    Run first = Measure(**school);
    Run again = Measure(**school);
    std::printf("%-10s %9.1f %6d %6d %8d %8d %9.1f %6d  %s%s\n", s.Name().c_str(), first.seconds, first.calls,
                first.writes, first.retried, first.failures, again.seconds, again.calls,
                first.retried_by.empty() ? "-" : first.retried_by.c_str(),
                first.exit_code || again.exit_code ? "  (exit code not 0)" : "");
    std::printf("           first: %s\n           rerun: %s\n", first.by_function.c_str(), again.by_function.c_str());
    std::fflush(stdout);
  }
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  std::printf("peak RSS of this process: %ld MB\n", ru.ru_maxrss / 1024);
  return 0;
}
