// Planner benchmark: how long plan::BuildPlan takes, and how much memory it
// needs, for generated iSAMS schools of three sizes. Not a test (it is not in
// ctest); it reports numbers. See bench/README.md for how to run it.
//
//   BM_PlanFirstSync/<school>          empty Moodle (no courses), empty state DB:
//                                      the plan creates every course and enrols everyone.
//   BM_PlanNoChange/<school>           after a complete sync, every course read from
//                                      Moodle this run (snapshot.verified): empty plan.
//   BM_PlanNoChangeUnverified/<school> as above, nothing verified (the normal nightly
//                                      run: the planner trusts the state DB): empty plan.
//
// Schools (schoolgen::Options, default seed): sample 120 pupils/24 staff,
// recorded 800/90, x100 12,000/2,400. Each school and its inputs are built
// once, lazily, outside the timed region. The timed region is one BuildPlan
// call, including destroying the returned Plan.
//
// Counters: rows = enrolment rows in the feed, items = plan items,
// problems = plan problems (rows the planner reports and skips),
// peak_rss_mb = extra resident memory one BuildPlan needs (see PlanPeakRssMb).
#include <malloc.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <benchmark/benchmark.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "model/model.h"
#include "plan/plan.h"
#include "plan/policy.h"
#include "schoolgen/schoolgen.h"

namespace {

namespace model = enrolsync::model;
namespace plan = enrolsync::plan;
namespace schoolgen = enrolsync::schoolgen;
using model::MoodleId;

struct SchoolSpec {
  const char* name;
  int pupils;
  int staff;
};
// The sample school (schoolgen's default Options), the recorded-size school
// (the README's 458-set school) and a 100x sample school.
const SchoolSpec kSchools[] = {{"sample", 120, 24}, {"recorded", 800, 90}, {"x100", 12000, 2400}};

[[noreturn]] void Die(const std::string& what) {
  std::fprintf(stderr, "plan_bench: %s\n", what.c_str());
  std::fflush(stderr);
  std::abort();
}

// ---------------------------------------------------------------------------
// Inputs
// ---------------------------------------------------------------------------

struct Inputs {
  model::DesiredState desired;
  plan::Policy policy;  // defaults: idnumber / email / role id / category id, default category "1"
  model::MoodleSnapshot fresh;  // categories, roles, users; no courses

  // What the first sync should plan.
  long long expect_creates = 0;       // course rows whose category exists in Moodle
  long long expect_enrol_items = 0;   // enrolment rows for those courses (enrol + role_assign)

  // After a complete sync (built on first use by the no-change benchmarks).
  bool have_synced = false;
  model::MoodleSnapshot synced;             // + every course, every course verified
  model::MoodleSnapshot synced_unverified;  // + every course, nothing verified
  model::Ownership owned;                   // every enrolment, with its roles

  // Kept from the school to build the synced state.
  std::vector<schoolgen::CourseViewRow> course_view;
  std::vector<schoolgen::EnrolViewRow> enrol_view;
  std::set<std::string> category_ids;  // as strings, incl. "1"
};

std::unique_ptr<Inputs> BuildInputs(const SchoolSpec& spec) {
  schoolgen::Options opt;
  opt.pupils = spec.pupils;
  opt.staff = spec.staff;
  schoolgen::School school = schoolgen::Generate(opt);
  auto in = std::make_unique<Inputs>();

  model::DesiredState& d = in->desired;
  d.courses_table = "VwMoodleCourseData";
  d.enrolments_table = "VwMoodleEnrolData";
  d.course_columns = {"txtFullName", "txtShortName", "txtCourseID", "intCategoryID"};
  d.enrolment_columns = {"txtSetCode", "txtEmailAddress", "intRoleID"};
  d.have_courses = true;
  d.courses.reserve(school.course_view.size());
  for (const auto& r : school.course_view) {
    d.courses.push_back({d.courses.size() + 1, r.fullname, r.shortname, r.idnumber,
                         r.category.empty() ? std::nullopt : std::optional<std::string>(r.category)});
  }
  d.enrolments.reserve(school.enrol_view.size());
  for (const auto& r : school.enrol_view) {
    d.enrolments.push_back({d.enrolments.size() + 1, r.set_code, r.email, std::to_string(r.role_id)});
  }

  model::MoodleSnapshot& m = in->fresh;
  m.categories.push_back({1, "Category 1", ""});
  in->category_ids.insert("1");
  for (const auto& [id, name] : school.categories) {
    m.categories.push_back({id, name, ""});
    in->category_ids.insert(std::to_string(id));
  }
  // Moodle's standard roles.
  m.roles = {{1, "manager"}, {2, "coursecreator"}, {3, "editingteacher"}, {4, "teacher"},
             {5, "student"}, {6, "guest"},         {7, "user"},           {8, "frontpage"}};
  // Users in order after guest (1) and admin (2).
  MoodleId next_user = 3;
  m.users.reserve(school.people.size());
  for (const auto& p : school.people) {
    m.users.push_back({next_user++, p.username, p.email, p.idnumber, "manual", false, {}});
  }

  std::set<std::string> creatable;
  for (const auto& r : school.course_view) {
    if (in->category_ids.count(r.category.empty() ? "1" : r.category)) {
      ++in->expect_creates;
      creatable.insert(r.idnumber);
    }
  }
  for (const auto& r : school.enrol_view) in->expect_enrol_items += creatable.count(r.set_code);

  in->course_view = std::move(school.course_view);
  in->enrol_view = std::move(school.enrol_view);
  return in;
}

// The state after a complete sync: every course of the view exists (a course
// whose category is missing in Moodle, e.g. Careers' 999, was made by hand in
// category 1), every row is enrolled, enrolsync owns every enrolment with the
// roles of its rows, and Moodle agrees.
void BuildSynced(Inputs& in) {
  if (in.have_synced) return;
  model::MoodleSnapshot& m = in.synced;
  m.categories = in.fresh.categories;
  m.roles = in.fresh.roles;
  m.users = in.fresh.users;
  std::unordered_map<std::string, MoodleId> course_by_code;
  MoodleId next_course = 2;  // 1 is the front page
  for (const auto& r : in.course_view) {
    std::string cat = r.category.empty() ? "1" : r.category;
    const bool made_by_us = in.category_ids.count(cat) > 0;
    m.courses.push_back({next_course, r.fullname, r.shortname, r.idnumber, made_by_us ? std::stoll(cat) : 1, true});
    if (made_by_us) in.owned.created_courses.insert(next_course);
    course_by_code[r.idnumber] = next_course++;
  }
  std::unordered_map<std::string, MoodleId> user_by_email;
  for (const auto& u : m.users) user_by_email[u.email] = u.id;

  for (const auto& r : in.enrol_view) {
    auto c = course_by_code.find(r.set_code);
    auto u = user_by_email.find(r.email);
    if (c == course_by_code.end() || u == user_by_email.end())
      Die("enrolment row " + r.set_code + " " + r.email + " has no course or user");
    model::OwnedEnrolment& e = in.owned.enrolments[{c->second, u->second}];
    e.courseid = c->second;
    e.userid = u->second;
    e.owns_enrolment = true;
    e.status = model::EnrolStatus::kActive;
    e.roles.insert(r.role_id);
    e.source_course = r.set_code;
    e.source_user = r.email;
    model::Participant& p = m.verified[c->second][u->second];
    p.userid = u->second;
    p.active = true;
    p.roles.insert(r.role_id);
  }
  // Every course is verified, including those without participants.
  for (const auto& c : m.courses) m.verified[c.id];

  in.synced_unverified.categories = m.categories;
  in.synced_unverified.roles = m.roles;
  in.synced_unverified.courses = m.courses;
  in.synced_unverified.users = m.users;
  in.have_synced = true;
}

Inputs& School(const SchoolSpec& spec) {
  static std::map<std::string, std::unique_ptr<Inputs>> cache;
  auto& slot = cache[spec.name];
  if (!slot) slot = BuildInputs(spec);
  return *slot;
}

// ---------------------------------------------------------------------------
// Peak memory
// ---------------------------------------------------------------------------

long StatusKb(const char* field) {
  std::ifstream f("/proc/self/status");
  std::string line;
  const std::size_t n = std::strlen(field);
  while (std::getline(f, line)) {
    if (line.compare(0, n, field) == 0) return std::atol(line.c_str() + n);
  }
  return -1;
}

// The extra resident memory one BuildPlan call needs, in MB (-1: could not
// measure).
//
// How: fork a child. A forked child starts with a fresh RSS high-water mark
// (the kernel sets it to the child's RSS at fork; the parent's history — e.g.
// a bigger school built earlier — does not carry over). In the child:
// malloc_trim(0) hands free heap pages back to the kernel, the high-water mark
// is reset to the current RSS where the kernel allows it (`5` to
// /proc/self/clear_refs, Linux >= 4.0), VmRSS is read, BuildPlan runs with the
// Plan kept alive, and VmHWM is read. peak_rss_mb = VmHWM - VmRSS before.
//
// Limits:
// - It is the planner's working memory plus the Plan it returns, on top of
//   its inputs. The inputs (DesiredState, MoodleSnapshot, Ownership) are
//   already resident and not counted; in a real run they are built by
//   sources/ and state/ and also cost memory.
// - Resolution is one page (4 KiB). Below about 1 MB (the sample school) the
//   number is mostly noise: allocator arenas growing in whole chunks, code
//   pages of the planner and libstdc++ faulted in for the first time in the
//   child.
// - Free heap memory that malloc_trim can not return (fragments smaller than
//   a page, or freed chunks inside a page still in use) is already resident
//   and may be reused by the planner uncounted: a slight underestimate.
// - VmHWM is sampled by the kernel at page-fault granularity; it is exact for
//   an anonymous-memory peak, which is what the planner's allocations are.
double PlanPeakRssMb(const model::DesiredState& desired, const model::MoodleSnapshot& moodle,
                     const model::Ownership& owned, const plan::Policy& policy) {
  int fds[2];
  if (pipe(fds) != 0) return -1;
  std::fflush(nullptr);
  pid_t pid = fork();
  if (pid < 0) {
    close(fds[0]);
    close(fds[1]);
    return -1;
  }
  if (pid == 0) {
    close(fds[0]);
    malloc_trim(0);
    if (FILE* f = std::fopen("/proc/self/clear_refs", "w")) {
      std::fputs("5", f);
      std::fclose(f);
    }
    long kb[2] = {StatusKb("VmRSS:"), -1};
    {
      plan::Plan p = plan::BuildPlan(desired, moodle, owned, policy);
      benchmark::DoNotOptimize(p.items.data());
      kb[1] = StatusKb("VmHWM:");
    }
    ssize_t w = write(fds[1], kb, sizeof kb);
    _exit(w == static_cast<ssize_t>(sizeof kb) ? 0 : 1);
  }
  close(fds[1]);
  long kb[2] = {-1, -1};
  ssize_t got = 0;
  while (got < static_cast<ssize_t>(sizeof kb)) {
    ssize_t r = read(fds[0], reinterpret_cast<char*>(kb) + got, sizeof kb - static_cast<std::size_t>(got));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    got += r;
  }
  close(fds[0]);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (got != static_cast<ssize_t>(sizeof kb) || !WIFEXITED(status) || WEXITSTATUS(status) != 0) return -1;
  if (kb[0] < 0 || kb[1] < 0) return -1;
  return static_cast<double>(kb[1] - kb[0]) / 1024.0;
}

// ---------------------------------------------------------------------------
// Benchmarks
// ---------------------------------------------------------------------------

enum class Case { kFirstSync, kNoChange, kNoChangeUnverified };

const char* CaseName(Case c) {
  switch (c) {
    case Case::kFirstSync: return "BM_PlanFirstSync";
    case Case::kNoChange: return "BM_PlanNoChange";
    case Case::kNoChangeUnverified: return "BM_PlanNoChangeUnverified";
  }
  return "?";
}

struct Measured {
  double peak_rss_mb = -1;
  double items = 0;
  double problems = 0;
};

// Checks the plan is what the case says, once per benchmark, outside the
// timed loop; aborts with a message if not.
void Check(Case c, const SchoolSpec& spec, const Inputs& in, const plan::Plan& p) {
  const std::string where = std::string(CaseName(c)) + "/" + spec.name + ": ";
  if (c == Case::kFirstSync) {
    const auto& s = p.summary;
    if (s.courses_create != in.expect_creates || s.enrol + s.role_assign != in.expect_enrol_items ||
        s.Changes() != s.courses_create + s.enrol + s.role_assign ||
        static_cast<long long>(p.items.size()) != in.expect_creates + in.expect_enrol_items) {
      Die(where + "expected " + std::to_string(in.expect_creates) + " course creates and " +
          std::to_string(in.expect_enrol_items) + " enrol/role items, got " + std::to_string(s.courses_create) +
          " creates, " + std::to_string(s.enrol) + " enrols, " + std::to_string(s.role_assign) + " role assigns, " +
          std::to_string(p.items.size()) + " items");
    }
    return;
  }
  if (!p.items.empty()) {
    std::string msg = where + "a complete sync must plan nothing, got " + std::to_string(p.items.size()) +
                      " items, e.g.:";
    for (std::size_t i = 0; i < p.items.size() && i < 5; ++i) msg += "\n  " + plan::PlanLine(p.items[i]);
    Die(msg);
  }
}

void BM_Plan(benchmark::State& state, Case c, const SchoolSpec* spec) {
  Inputs& in = School(*spec);
  if (c != Case::kFirstSync) BuildSynced(in);
  const model::MoodleSnapshot& moodle =
      c == Case::kFirstSync ? in.fresh : c == Case::kNoChange ? in.synced : in.synced_unverified;
  const model::Ownership empty;
  const model::Ownership& owned = c == Case::kFirstSync ? empty : in.owned;

  // Once per benchmark (Google Benchmark calls this function several times).
  static std::map<std::string, Measured> measured;
  const std::string key = std::string(CaseName(c)) + "/" + spec->name;
  auto [mit, first] = measured.try_emplace(key);
  if (first) {
    mit->second.peak_rss_mb = PlanPeakRssMb(in.desired, moodle, owned, in.policy);
    plan::Plan p = plan::BuildPlan(in.desired, moodle, owned, in.policy);
    Check(c, *spec, in, p);
    mit->second.items = static_cast<double>(p.items.size());
    mit->second.problems = static_cast<double>(p.problems.size());
  }

  for (auto _ : state) {
    plan::Plan p = plan::BuildPlan(in.desired, moodle, owned, in.policy);
    benchmark::DoNotOptimize(p.items.data());
  }

  const double rows = static_cast<double>(in.desired.enrolments.size());
  state.counters["rows"] = rows;
  state.counters["items"] = mit->second.items;
  state.counters["problems"] = mit->second.problems;
  state.counters["peak_rss_mb"] = mit->second.peak_rss_mb;
  state.counters["rows/s"] = benchmark::Counter(rows, benchmark::Counter::kIsIterationInvariantRate);
}

}  // namespace

int main(int argc, char** argv) {
  for (Case c : {Case::kFirstSync, Case::kNoChange, Case::kNoChangeUnverified}) {
    for (const SchoolSpec& s : kSchools) {
      const std::string name = std::string(CaseName(c)) + "/" + s.name;
      benchmark::RegisterBenchmark(name.c_str(), BM_Plan, c, &s)->Unit(benchmark::kMillisecond);
    }
  }
  benchmark::AddCustomContext("schools", "schoolgen seed " + std::to_string(schoolgen::Options{}.seed) +
                                             ": sample 120/24, recorded 800/90, x100 12000/2400 pupils/staff");
  benchmark::AddCustomContext("peak_rss_mb", "VmHWM - VmRSS around one BuildPlan in a forked child (inputs excluded)");
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
