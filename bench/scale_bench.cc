// scale_bench: issue 10's district-scale benchmark. Whole-process runs of the
// real `enrolsync` binary (fork/exec; wall time from a monotonic clock, CPU
// and peak RSS from wait4()'s rusage of the child) on generated schools of
// 1k, 10k, 100k and 1M users, read from SQLite and from PostgreSQL (a real
// server on loopback, tests/support/pg_server.h), against the sandbox
// (enrolsync-sandbox, no cost model) seeded in bulk with the school's users
// and categories:
//
//   first sync  `enrolsync plan --json` on the seeded site (no courses yet);
//   sync        `enrolsync sync --json`, which makes the site match (needed
//               for the next case; measured too);
//   no change   `enrolsync plan --json` again after that sync.
//
// For each it prints wall, CPU (user+sys), peak RSS, Moodle calls (from the
// run's --json), the bytes of the --json output and of the run's
// state_dir/reports/run-N.json, and the run's own timings (sources, Moodle
// reads, planning, apply). Every child gets a time cap; a case past it is
// killed and recorded as "not run: cap"; the cases after it at that size are
// "not run" with the reason.
//
// --history N: the run history's growth: a 1k-user school synced, then N
// more syncs (no change), state.db and reports/ measured every 10 runs.
//
//   scale_bench [--sizes 1000,10000,100000,1000000] [--sources sqlite,postgresql]
//               [--cap-minutes 20] [--work DIR] [--history 100] [--keep]
//               [--sync-max-users N [--sync-skip-reason TEXT]] [--mem-limit-gb G]
//
// Not a test (not in ctest): the numbers depend on the machine.
#include <fcntl.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "support/pg_server.h"

namespace fs = std::filesystem;
namespace testsupport = enrolsync::testsupport;

namespace {

#ifndef ENROLSYNC_BINARY_DIR
#define ENROLSYNC_BINARY_DIR "."
#endif

std::string Bin(const std::string& rel) { return std::string(ENROLSYNC_BINARY_DIR) + "/" + rel; }

double Now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// --- one measured child ------------------------------------------------------

struct Child {
  bool ran = false;          // exec'd and waited for
  bool capped = false;       // killed at the cap
  int exit_code = -1;        // or 128+signal
  double wall = 0, cpu = 0;  // seconds
  long peak_rss_kb = 0;
};

// A limit on each child's address space (RLIMIT_AS, bytes; 0: none), so that
// a run that would need more memory than a shared machine has fails with
// std::bad_alloc instead of waking the kernel's OOM killer.
unsigned long long g_mem_limit = 0;

// fork/exec argv (argv[0] a path), stdout and stderr to files, in cwd; waits
// with wait4 (rusage of this child alone), killing its process group at the cap.
Child RunMeasured(const std::vector<std::string>& argv, const std::string& out, const std::string& err,
                  double cap_seconds, const std::string& cwd = "") {
  Child c;
  double t0 = Now();
  pid_t pid = fork();
  if (pid < 0) return c;
  if (pid == 0) {
    setpgid(0, 0);
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    int fo = open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int fe = open(err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int fi = open("/dev/null", O_RDONLY);
    if (fo < 0 || fe < 0 || fi < 0) _exit(126);
    dup2(fi, 0);
    dup2(fo, 1);
    dup2(fe, 2);
    if (!cwd.empty() && chdir(cwd.c_str()) != 0) _exit(126);
    if (g_mem_limit > 0) {
      rlimit rl{g_mem_limit, g_mem_limit};
      setrlimit(RLIMIT_AS, &rl);
    }
    std::vector<char*> av;
    for (const auto& a : argv) av.push_back(const_cast<char*>(a.c_str()));
    av.push_back(nullptr);
    execv(av[0], av.data());
    _exit(127);
  }
  int status = 0;
  rusage ru{};
  for (;;) {
    pid_t r = wait4(pid, &status, WNOHANG, &ru);
    if (r == pid) break;
    if (r < 0) return c;
    if (Now() - t0 > cap_seconds) {
      kill(-pid, SIGKILL);
      kill(pid, SIGKILL);
      wait4(pid, &status, 0, &ru);
      c.capped = true;
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  c.wall = Now() - t0;
  c.ran = true;
  c.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  c.cpu = ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
  c.peak_rss_kb = ru.ru_maxrss;
  return c;
}

// --- the little the bench needs from a --json output (SAX: a 1 GB output is
// not built in memory) -------------------------------------------------------

struct JsonFacts {
  bool ok = false;
  std::map<std::string, double> numbers;  // "calls.total", "timings.sources_s", "summary.enrolments.enrol"...
  long long items = 0;                    // elements of the top-level "items" array
  long long users_items = 0;              // elements of "users.items"
  double Get(const std::string& k) const {
    auto it = numbers.find(k);
    return it == numbers.end() ? NAN : it->second;
  }
};

class FactsSax : public nlohmann::json_sax<nlohmann::json> {
 public:
  explicit FactsSax(JsonFacts* f) : f_(f) {}
  bool null() override { return Scalar(NAN); }
  bool boolean(bool v) override { return Scalar(v ? 1 : 0); }
  bool number_integer(number_integer_t v) override { return Scalar(static_cast<double>(v)); }
  bool number_unsigned(number_unsigned_t v) override { return Scalar(static_cast<double>(v)); }
  bool number_float(number_float_t v, const string_t&) override { return Scalar(v); }
  bool string(string_t&) override { return Scalar(NAN); }
  bool binary(binary_t&) override { return Scalar(NAN); }
  bool start_object(std::size_t) override { return Open(false); }
  bool end_object() override { return Close(); }
  bool start_array(std::size_t) override { return Open(true); }
  bool end_array() override { return Close(); }
  bool key(string_t& k) override {
    stack_.back().key = k;
    return true;
  }
  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception&) override { return false; }

 private:
  struct Frame {
    bool array;
    std::string key;
  };
  std::string Path() const {
    std::string p;
    for (const auto& fr : stack_) {
      if (fr.array) return "";  // inside an array: not recorded
      if (!p.empty()) p += '.';
      p += fr.key;
    }
    return p;
  }
  void CountElement() {
    if (stack_.empty() || !stack_.back().array) return;
    // An element of an array that sits directly under objects only.
    std::string p;
    for (std::size_t i = 0; i + 1 < stack_.size(); ++i) {
      if (stack_[i].array) return;
      if (!p.empty()) p += '.';
      p += stack_[i].key;
    }
    if (p == "items") ++f_->items;
    else if (p == "users.items") ++f_->users_items;
  }
  bool Scalar(double v) {
    CountElement();
    if (!stack_.empty() && !stack_.back().array && stack_.size() <= 4) {
      std::string p = Path();
      if (!p.empty() && !std::isnan(v)) f_->numbers[p] = v;
    }
    return true;
  }
  bool Open(bool array) {
    CountElement();
    stack_.push_back({array, ""});
    return true;
  }
  bool Close() {
    stack_.pop_back();
    return true;
  }
  JsonFacts* f_;
  std::vector<Frame> stack_;
};

JsonFacts ReadFacts(const std::string& path) {
  JsonFacts f;
  std::ifstream in(path, std::ios::binary);
  if (!in) return f;
  FactsSax sax(&f);
  try {
    f.ok = nlohmann::json::sax_parse(in, &sax);
  } catch (const std::exception&) {
    f.ok = false;
  }
  return f;
}

long long FileBytes(const std::string& p) {
  std::error_code ec;
  auto n = fs::file_size(p, ec);
  return ec ? -1 : static_cast<long long>(n);
}

long long DirBytes(const std::string& p) {
  long long n = 0;
  std::error_code ec;
  if (!fs::exists(p, ec)) return 0;
  for (const auto& e : fs::recursive_directory_iterator(p, ec))
    if (e.is_regular_file(ec)) n += static_cast<long long>(e.file_size(ec));
  return n;
}

// The newest reports/run-N.json (highest N), "" if none.
std::string NewestReport(const std::string& state_dir) {
  std::string best;
  long long best_n = -1;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(state_dir + "/reports", ec)) {
    std::string name = e.path().filename().string();
    if (name.rfind("run-", 0) != 0) continue;
    long long n = std::atoll(name.c_str() + 4);
    if (n > best_n) best_n = n, best = e.path().string();
  }
  return best;
}

std::string Slurp(const std::string& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string Tail(const std::string& p, std::size_t n = 600) {
  std::string s = Slurp(p);
  return s.size() > n ? "..." + s.substr(s.size() - n) : s;
}

std::string Label(long long users) {
  if (users >= 1000000 && users % 1000000 == 0) return std::to_string(users / 1000000) + "M";
  if (users >= 1000 && users % 1000 == 0) return std::to_string(users / 1000) + "k";
  return std::to_string(users);
}

// --- the sandbox process -----------------------------------------------------

// CPU seconds (user + sys) a running process has used so far, from
// /proc/PID/stat; NAN when unreadable.
double ProcessCpu(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string all((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto rp = all.rfind(')');
  if (rp == std::string::npos) return NAN;
  std::istringstream rest(all.substr(rp + 2));
  std::string field;
  double utime = 0, stime = 0;
  for (int i = 3; i <= 15 && rest >> field; ++i) {
    if (i == 14) utime = std::atof(field.c_str());
    if (i == 15) stime = std::atof(field.c_str());
  }
  return (utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

struct SandboxProc {
  pid_t pid = -1;
  std::string url;
  double seed_seconds = NAN;  // the sandbox's own "seeded N users in X s"
  double start_seconds = 0;   // spawn to listening (seeding included)
  long long seeded = 0;
  ~SandboxProc() { Stop(); }
  void Stop() {
    if (pid > 0) {
      kill(pid, SIGTERM);
      int st = 0;
      waitpid(pid, &st, 0);
      pid = -1;
    }
  }
};

std::string StartSandbox(SandboxProc* sb, const std::string& dir, const std::string& csv_dir, double cap) {
  fs::create_directories(dir + "/site");
  std::ofstream(dir + "/sandbox.token") << "scale-bench-token\n";
  std::string log = dir + "/sandbox.log";
  double t0 = Now();
  pid_t pid = fork();
  if (pid < 0) return "fork failed";
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    int fo = open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int fi = open("/dev/null", O_RDONLY);
    dup2(fi, 0);
    dup2(fo, 1);
    dup2(fo, 2);
    std::string bin = Bin("src/sandbox/enrolsync-sandbox");
    std::vector<std::string> a = {bin, "--listen", "127.0.0.1:0", "--state", dir + "/site",
                                  "--token-file", dir + "/sandbox.token", "--seed-users", csv_dir + "/users.csv",
                                  "--seed-categories", csv_dir + "/categories.csv"};
    std::vector<char*> av;
    for (auto& s : a) av.push_back(s.data());
    av.push_back(nullptr);
    execv(av[0], av.data());
    _exit(127);
  }
  sb->pid = pid;
  for (;;) {
    std::string s = Slurp(log);
    auto at = s.find("listening on ");
    if (at != std::string::npos && s.find('\n', at) != std::string::npos) {
      sb->url = s.substr(at + 13, s.find('\n', at) - at - 13);
      auto seeded = s.find("seeded ");
      if (seeded != std::string::npos) {
        sb->seeded = std::atoll(s.c_str() + seeded + 7);
        auto in = s.find(" in ", seeded);
        if (in != std::string::npos) sb->seed_seconds = std::atof(s.c_str() + in + 4);
      }
      break;
    }
    int st = 0;
    if (waitpid(pid, &st, WNOHANG) == pid) {
      sb->pid = -1;
      return "sandbox exited: " + Tail(log);
    }
    if (Now() - t0 > cap) return "sandbox not listening within the cap (seeding)";
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  sb->start_seconds = Now() - t0;
  return "";
}

// --- the table ---------------------------------------------------------------

struct Row {
  std::string size, source, kase;
  long long rows = 0;
  Child child;
  JsonFacts facts;
  long long json_bytes = -1, report_bytes = -1;
  double sandbox_cpu = NAN;  // the sandbox's CPU seconds during the case
  std::string not_run;
};

std::vector<Row> g_rows;

std::string Mb(long kb) {
  char b[32];
  std::snprintf(b, sizeof b, "%.0f MB", kb / 1024.0);
  return b;
}

std::string Num(double v, const char* fmt = "%.0f") {
  if (std::isnan(v)) return "-";
  char b[48];
  std::snprintf(b, sizeof b, fmt, v);
  return b;
}

void PrintRow(const Row& r) {
  if (!r.not_run.empty()) {
    std::printf("| %s | %s | %s | %s | not run: %s | | | | | | |\n", r.size.c_str(), Num(r.rows).c_str(),
                r.source.c_str(), r.kase.c_str(), r.not_run.c_str());
  } else {
    const auto& f = r.facts;
    std::printf("| %s | %s | %s | %s | %.2f s | %.2f s | %s | %s (%s w) | %s / %s | %s / %s / %s / %s | exit %d%s |\n",
                r.size.c_str(), Num(r.rows).c_str(), r.source.c_str(), r.kase.c_str(), r.child.wall, r.child.cpu,
                Mb(r.child.peak_rss_kb).c_str(), Num(f.Get("calls.total")).c_str(),
                Num(f.Get("calls.writes")).c_str(), Num(static_cast<double>(r.json_bytes)).c_str(),
                Num(static_cast<double>(r.report_bytes)).c_str(), Num(f.Get("timings.sources_s"), "%.2f").c_str(),
                Num(f.Get("timings.moodle_read_s"), "%.2f").c_str(), Num(f.Get("timings.planning_s"), "%.2f").c_str(),
                Num(f.Get("timings.apply_s"), "%.2f").c_str(), r.child.exit_code,
                r.child.capped ? " (killed at the cap)" : "");
    std::printf("    items %lld, users.items %lld, enrol %s, create %s; sandbox CPU %s s\n", f.items, f.users_items,
                Num(f.Get("summary.enrolments.enrol")).c_str(), Num(f.Get("summary.courses.create")).c_str(),
                Num(r.sandbox_cpu, "%.2f").c_str());
  }
  std::fflush(stdout);
}

struct Options {
  std::vector<long long> sizes = {1000, 10000, 100000, 1000000};
  std::vector<std::string> sources = {"sqlite", "postgresql"};
  double cap = 20 * 60;
  std::string work;
  int history = 0;
  bool keep = false;
  long long sync_max_users = 0;  // above it: the sync and the no-change plan are not run (0: no limit)
  std::string sync_skip_reason;
};

std::string Config(const std::string& source, const std::string& school_db, const testsupport::PgServer* pg,
                   const std::string& url, const std::string& token_file, const std::string& extra) {
  std::ostringstream c;
  c << "state_dir = \"state\"\n\n"
    << "[moodle]\nurl = \"" << url << "\"\ntoken_file = \"" << token_file << "\"\nmax_input_vars = 5000\n"
    << "timeout_seconds = 600\n\n";
  if (source == "sqlite") c << "[source]\ntype = \"sqlite\"\ndatabase = \"" << school_db << "\"\n\n";
  else c << "[source]\ntype = \"postgresql\"\ndsn = \"" << pg->conninfo() << "\"\npassword_env = \"SCALE_BENCH_PG_PASSWORD\"\n\n";
  c << "[courses]\ntable = \"VwMoodleCourseData\"\nfullname = \"txtFullName\"\nshortname = \"txtShortName\"\n"
    << "idnumber = \"txtCourseID\"\ncategory = \"intCategoryID\"\ncategory_field = \"id\"\ndefault_category = 2\n\n"
    << "[courses.defaults]\nvisible = false\nformat = \"topics\"\n\n"
    << "[enrolments]\ntable = \"VwMoodleEnrolData\"\ncourse_field = \"txtSetCode\"\n"
    << "user_field = \"txtEmailAddress\"\nrole_field = \"intRoleID\"\nlocal_course_field = \"idnumber\"\n"
    << "local_user_field = \"email\"\nlocal_role_field = \"id\"\ndefault_role = \"student\"\n"
    << "unenrol_action = \"suspend\"\nignore_hidden_courses = false\n\n"
    << "[safety]\nmax_removals = \"10%\"\n" << extra;
  return c.str();
}

// One enrolsync run (plan or sync) in `dir`, measured; appended to the table.
Row RunCase(const std::string& dir, const std::string& cmd, const std::string& tag, const Row& base, double cap,
            pid_t sandbox_pid) {
  Row r = base;
  r.kase = tag;
  std::string out = dir + "/" + tag + ".json", err = dir + "/" + tag + ".stderr";
  std::for_each(out.begin(), out.end(), [](char& ch) { if (ch == ' ') ch = '-'; });
  std::for_each(err.begin(), err.end(), [](char& ch) { if (ch == ' ') ch = '-'; });
  std::string before = NewestReport(dir + "/state");
  double sb0 = ProcessCpu(sandbox_pid);
  r.child = RunMeasured({Bin("src/cli/enrolsync"), cmd, "--json", "-c", dir + "/enrolsync.toml"}, out, err, cap, dir);
  r.sandbox_cpu = ProcessCpu(sandbox_pid) - sb0;
  r.json_bytes = FileBytes(out);
  std::string rep = NewestReport(dir + "/state");
  r.report_bytes = rep.empty() || rep == before ? -1 : FileBytes(rep);
  r.facts = ReadFacts(out);
  if (r.child.exit_code != 0 && r.child.exit_code != 2)
    std::fprintf(stderr, "scale_bench: %s %s exit %d: %s\n", base.size.c_str(), tag.c_str(), r.child.exit_code,
                 Tail(err).c_str());
  g_rows.push_back(r);
  PrintRow(r);
  return r;
}

struct School {
  std::string dir, db, sql, csv;
  long long rows = 0, users = 0, sets = 0;
  std::string error;
};

School Generate(long long users, const std::string& work, bool postgres, double cap) {
  School s;
  s.users = users;
  s.dir = work + "/school-" + Label(users);
  fs::create_directories(s.dir);
  s.db = s.dir + "/school.db";
  s.sql = s.dir + "/school.sql";
  s.csv = s.dir + "/csv";
  long long pupils = std::llround(users * 800.0 / 890.0), staff = users - pupils;
  std::vector<std::string> argv = {Bin("tools/enrolsync-gen-school"), "--pupils", std::to_string(pupils),
                                   "--staff", std::to_string(staff), "--sqlite", s.db, "--csv", s.csv};
  if (postgres) argv.insert(argv.end(), {"--postgres-sql", s.sql});
  Child c = RunMeasured(argv, s.dir + "/gen.out", s.dir + "/gen.err", cap);
  std::string out = Slurp(s.dir + "/gen.out");
  std::printf("  generate %s users (%lld pupils, %lld staff): %.1f s wall, %.1f s CPU, peak %s: %s",
              Label(users).c_str(), pupils, staff, c.wall, c.cpu, Mb(c.peak_rss_kb).c_str(),
              out.substr(0, out.find('\n') + 1).c_str());
  if (c.exit_code != 0) {
    s.error = c.capped ? "generator past the cap" : "generator failed: " + Tail(s.dir + "/gen.err");
    return s;
  }
  auto sets = out.find(" staff, ");
  if (sets != std::string::npos) s.sets = std::atoll(out.c_str() + sets + 8);
  auto rows = out.find(" sets, ");
  if (rows != std::string::npos) s.rows = std::atoll(out.c_str() + rows + 7);
  return s;
}

std::string LoadPostgres(const School& s, const testsupport::PgServer& pg, double cap) {
  double t0 = Now();
  Child c = RunMeasured({"/usr/lib/postgresql/15/bin/psql", "-q", "-X", "-v", "ON_ERROR_STOP=1", "-f", s.sql,
                         pg.superuser_conninfo(pg.database())},
                        s.dir + "/psql.out", s.dir + "/psql.err", cap);
  if (c.exit_code != 0) return "psql failed: " + Tail(s.dir + "/psql.err");
  if (auto st = pg.Exec("ANALYZE"); !st) return "ANALYZE: " + st.error().message;
  std::printf("  PostgreSQL load (psql -f, then ANALYZE): %.1f s\n", Now() - t0);
  return "";
}

void RunSize(long long users, const Options& o, testsupport::PgServer* pg) {
  std::string label = Label(users);
  std::printf("\n== %s users ==\n", label.c_str());
  bool want_pg = false;
  for (const auto& s : o.sources) want_pg |= s == "postgresql";
  School school = Generate(users, o.work, want_pg && pg, o.cap);
  const char* cases[] = {"first sync", "sync", "no change"};
  auto skip_all = [&](const std::string& source, const std::string& why, int from = 0) {
    for (int i = from; i < 3; ++i) {
      Row r;
      r.size = label, r.source = source, r.kase = cases[i], r.rows = school.rows, r.not_run = why;
      g_rows.push_back(r);
      PrintRow(r);
    }
  };
  for (const auto& source : o.sources) {
    if (!school.error.empty()) {
      skip_all(source, school.error);
      continue;
    }
    if (source == "postgresql") {
      if (!pg) {
        skip_all(source, "no PostgreSQL server");
        continue;
      }
      if (auto e = LoadPostgres(school, *pg, o.cap); !e.empty()) {
        skip_all(source, e);
        continue;
      }
    }
    std::string dir = o.work + "/run-" + label + "-" + source;
    fs::remove_all(dir);
    fs::create_directories(dir);
    SandboxProc sb;
    if (auto e = StartSandbox(&sb, dir, school.csv, o.cap); !e.empty()) {
      skip_all(source, e);
      continue;
    }
    std::printf("  sandbox: %lld users seeded in %.2f s (one transaction); listening after %.2f s; site.db+wal %.1f MB\n",
                sb.seeded, sb.seed_seconds, sb.start_seconds,
                (FileBytes(dir + "/site/site.db") + std::max(0LL, FileBytes(dir + "/site/site.db-wal"))) / 1e6);
    std::ofstream(dir + "/enrolsync.toml")
        << Config(source, school.db, pg, sb.url, dir + "/sandbox.token", "");
    Row base;
    base.size = label, base.source = source, base.rows = school.rows;
    Row first = RunCase(dir, "plan", "first sync", base, o.cap, sb.pid);
    if (o.sync_max_users > 0 && users > o.sync_max_users) {
      skip_all(source, o.sync_skip_reason.empty() ? "above --sync-max-users" : o.sync_skip_reason, 1);
      sb.Stop();
      if (!o.keep) fs::remove_all(dir);
      continue;
    }
    Row sync = RunCase(dir, "sync", "sync", base, o.cap, sb.pid);
    if (sync.child.capped || (sync.child.exit_code != 0 && sync.child.exit_code != 2)) {
      skip_all(source,
               sync.child.capped ? "the sync before it passed the cap (" + Num(o.cap / 60) + " min)"
                                 : "the sync before it failed (exit " + std::to_string(sync.child.exit_code) + ")",
               2);
    } else {
      RunCase(dir, "plan", "no change", base, o.cap, sb.pid);
    }
    std::printf("  after: site.db %.1f MB, state.db %.1f MB, reports/ %.1f MB\n",
                FileBytes(dir + "/site/site.db") / 1e6, FileBytes(dir + "/state/state.db") / 1e6,
                DirBytes(dir + "/state/reports") / 1e6);
    sb.Stop();
    if (!o.keep) fs::remove_all(dir);
  }
  if (!o.keep) fs::remove_all(school.dir);
}

// The stored run history over N runs at 1k users (sqlite).
void History(const Options& o) {
  std::printf("\n== run history: 1k users, sqlite, first sync then %d syncs ==\n", o.history);
  School school = Generate(1000, o.work, false, o.cap);
  if (!school.error.empty()) {
    std::printf("  not run: %s\n", school.error.c_str());
    return;
  }
  std::string dir = o.work + "/history";
  fs::remove_all(dir);
  fs::create_directories(dir);
  SandboxProc sb;
  if (auto e = StartSandbox(&sb, dir, school.csv, o.cap); !e.empty()) {
    std::printf("  not run: %s\n", e.c_str());
    return;
  }
  std::ofstream(dir + "/enrolsync.toml") << Config("sqlite", school.db, nullptr, sb.url, dir + "/sandbox.token", "");
  std::printf("| runs | state.db (+ -wal) | reports/ | reports files | last run wall | last exit |\n|---:|---:|---:|---:|---:|---:|\n");
  for (int k = 0; k <= o.history; ++k) {
    Child c = RunMeasured({Bin("src/cli/enrolsync"), "sync", "--json", "-c", dir + "/enrolsync.toml"},
                          dir + "/last.json", dir + "/last.err", o.cap, dir);
    int runs = k + 1;
    if (runs == 1 || runs % 10 == 0 || k == o.history) {
      long long files = 0;
      std::error_code ec;
      for (const auto& e : fs::directory_iterator(dir + "/state/reports", ec)) (void)e, ++files;
      long long wal = std::max(0LL, FileBytes(dir + "/state/state.db-wal"));
      std::printf("| %d | %.1f kB (+ %.1f kB) | %.1f kB | %lld | %.2f s | %d |\n", runs,
                  FileBytes(dir + "/state/state.db") / 1e3, wal / 1e3, DirBytes(dir + "/state/reports") / 1e3, files,
                  c.wall, c.exit_code);
      std::fflush(stdout);
    }
  }
  sb.Stop();
  if (!o.keep) {
    fs::remove_all(dir);
    fs::remove_all(school.dir);
  }
}

std::vector<std::string> Split(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  std::string x;
  while (std::getline(ss, x, ',')) if (!x.empty()) out.push_back(x);
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> std::string { return i + 1 < argc ? argv[++i] : ""; };
    if (a == "--sizes") {
      o.sizes.clear();
      for (const auto& s : Split(next())) o.sizes.push_back(std::atoll(s.c_str()));
    } else if (a == "--sources") o.sources = Split(next());
    else if (a == "--cap-minutes") o.cap = std::atof(next().c_str()) * 60;
    else if (a == "--work") o.work = next();
    else if (a == "--history") o.history = std::atoi(next().c_str());
    else if (a == "--keep") o.keep = true;
    else if (a == "--mem-limit-gb") g_mem_limit = static_cast<unsigned long long>(std::atof(next().c_str()) * (1ULL << 30));
    else if (a == "--sync-max-users") o.sync_max_users = std::atoll(next().c_str());
    else if (a == "--sync-skip-reason") o.sync_skip_reason = next();
    else {
      std::fprintf(stderr, "scale_bench: unknown argument '%s'\n", a.c_str());
      return 64;
    }
  }
  if (o.work.empty()) {
    const char* tmp = std::getenv("TMPDIR");
    o.work = std::string(tmp && *tmp ? tmp : "/tmp") + "/enrolsync-scale-" + std::to_string(getpid());
  }
  fs::create_directories(o.work);
  std::printf("scale_bench: binaries from %s, work in %s, cap %.0f min a case, address-space limit %s\n",
              ENROLSYNC_BINARY_DIR, o.work.c_str(), o.cap / 60,
              g_mem_limit ? (std::to_string(g_mem_limit >> 20) + " MiB").c_str() : "none");
  std::unique_ptr<testsupport::PgServer> pg;
  bool want_pg = false;
  for (const auto& s : o.sources) want_pg |= s == "postgresql";
  if (want_pg && !o.sizes.empty()) {
    auto started = testsupport::PgServer::Start();
    if (started) {
      pg = std::move(*started);
      setenv("SCALE_BENCH_PG_PASSWORD", pg->password().c_str(), 1);
    } else {
      std::printf("PostgreSQL: %s (postgresql cases not run)\n", started.error().message.c_str());
    }
  }
  std::printf("\n| size | rows | source | case | wall | CPU | peak RSS | calls (writes) | --json / run-N.json bytes | "
              "sources / Moodle reads / planning / apply (s) | exit |\n|---|---:|---|---|---:|---:|---:|---:|---:|---|---|\n");
  for (long long n : o.sizes) RunSize(n, o, pg.get());
  if (o.history > 0) History(o);
  if (!g_rows.empty()) {
    std::printf("\n== table ==\n");
    std::printf("| size | rows | source | case | wall | CPU | peak RSS | calls (writes) | --json / run-N.json bytes | "
                "sources / Moodle reads / planning / apply (s) | exit |\n|---|---:|---|---|---:|---:|---:|---:|---:|---|---|\n");
    for (const auto& r : g_rows) {
      if (!r.not_run.empty()) {
        std::printf("| %s | %s | %s | %s | not run: %s | | | | | | |\n", r.size.c_str(), Num(r.rows).c_str(),
                    r.source.c_str(), r.kase.c_str(), r.not_run.c_str());
        continue;
      }
      PrintRow(r);
    }
  }
  if (!o.keep) fs::remove_all(o.work);
  return 0;
}
