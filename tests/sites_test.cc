// Many sites from one daemon (`daemon --config-dir`, `status --config-dir`),
// through the real binary against sandbox Moodles: each site its own state,
// log and history; broken or unreachable sites leave the others running;
// SIGHUP adds, removes and reloads sites; SIGUSR1 reopens their logs;
// SIGTERM stops them all cleanly.
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fcntl.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <set>
#include <thread>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "school_site.h"
#include "support/pg_server.h"

namespace enrolsync::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

const std::string kBin = std::string(ENROLSYNC_BINARY_DIR) + "/src/cli/enrolsync";

std::string Slurp(const std::string& path) {
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

void Replace(std::string& text, const std::string& from, const std::string& to) {
  auto at = text.find(from);
  ASSERT_NE(at, std::string::npos) << from;
  text.replace(at, from.size(), to);
}

// A port nothing listens on.
int ClosedPort() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

class SitesTest : public ::testing::Test {
 protected:
  // A sandbox site whose config names its log and schedule.
  std::unique_ptr<SchoolSite> NewSite(const std::string& schedule) {
    auto site = std::make_unique<SchoolSite>();
    auto st = site->Setup();
    EXPECT_TRUE(st) << st.error().message;
    site->WriteConfig("[log]\nfile = \"enrolsync.log\"\n[schedule]\n" + schedule);
    return site;
  }
  // The site's config as a file in the sites folder: its relative paths made
  // absolute (they are relative to the config file's folder).
  std::string SiteToml(SchoolSite& site) {
    std::string text = Slurp(site.config_path());
    const std::string d = site.dir() + "/";
    Replace(text, "state_dir = \"state\"", "state_dir = \"" + d + "state\"");
    Replace(text, "token_file = \"moodle.token\"", "token_file = \"" + d + "moodle.token\"");
    Replace(text, "database = \"school.db\"", "database = \"" + d + "school.db\"");
    Replace(text, "file = \"enrolsync.log\"", "file = \"" + d + "enrolsync.log\"");
    return text;
  }
  void Put(const std::string& name, const std::string& text) { std::ofstream(dir_.File("sites.d/" + name)) << text; }

  pid_t StartDaemon() {
    pid_t pid = ::fork();
    if (pid == 0) {
      int fd = ::open(dir_.File("daemon.err").c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
      ::dup2(fd, STDERR_FILENO);
      ::dup2(fd, STDOUT_FILENO);
      ::execl(kBin.c_str(), kBin.c_str(), "daemon", "--config-dir", dir_.File("sites.d").c_str(), "--run-now",
              "full", static_cast<char*>(nullptr));
      ::_exit(127);
    }
    return pid;
  }
  static bool WaitFor(const std::string& file, const std::string& needle, int seconds) {
    for (int i = 0; i < seconds * 10; ++i) {
      if (Slurp(file).find(needle) != std::string::npos) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return false;
  }
  static int Wait(pid_t pid) {
    int status = 0;
    if (::waitpid(pid, &status, 0) != pid || !WIFEXITED(status)) return -1;
    return WEXITSTATUS(status);
  }
  std::string Err() const { return Slurp(dir_.File("daemon.err")); }
  static nlohmann::json History(SchoolSite& site) {
    return nlohmann::json::parse(RunEnrolsync("history --json --config " + site.config_path()).out);
  }

  void SetUp() override { std::filesystem::create_directory(dir_.File("sites.d")); }
  testsupport::TempDir dir_;
};

TEST_F(SitesTest, TwoSitesRunFromOneDaemonBrokenAndUnreachableSitesDoNotStopThemSighupAddsAndRemoves) {
  auto a = NewSite("full = \"0 3 * * *\"\n");
  auto b = NewSite("users = \"30 5 * * 1\"\nfull = \"0 4 * * *\"\n");
  ASSERT_FALSE(HasFailure());
  Put("a.toml", SiteToml(*a));
  Put("b.toml", SiteToml(*b));
  Put("c.toml", "state_dir = \"/tmp/x\"\n[moodle\nurl = 1\n");  // broken TOML
  // d: a's school, a Moodle nobody listens on, its own state and log.
  std::string d = SiteToml(*a);
  Replace(d, a->moodle().url(), "http://127.0.0.1:" + std::to_string(ClosedPort()));
  Replace(d, a->dir() + "/state", dir_.File("d-state"));
  Replace(d, a->dir() + "/enrolsync.log", dir_.File("d.log"));
  Put("d.toml", d);
  // f: the same state_dir as a.
  std::string f = d;
  Replace(f, dir_.File("d-state"), a->dir() + "/state");
  Replace(f, dir_.File("d.log"), dir_.File("f.log"));
  Put("f.toml", f);
  Put("notes.txt", "not a site\n");

  pid_t pid = StartDaemon();
  ASSERT_GT(pid, 0);
  const std::string alog = a->dir() + "/enrolsync.log", blog = b->dir() + "/enrolsync.log";
  ASSERT_TRUE(WaitFor(alog, "sync finished", 60)) << Slurp(alog) << Err();
  ASSERT_TRUE(WaitFor(blog, "sync finished", 60)) << Slurp(blog) << Err();
  ASSERT_TRUE(WaitFor(dir_.File("d.log"), "job full ended with exit code 1", 60)) << Slurp(dir_.File("d.log"));
  ASSERT_TRUE(WaitFor(alog, "next full run", 10));
  ASSERT_TRUE(WaitFor(blog, "next full run", 10)) << Slurp(blog);
  // The broken and the clashing site are named, with their files; the others run.
  std::string err = Err();
  EXPECT_THAT(err, HasSubstr("site c skipped: " + dir_.File("sites.d/c.toml")));
  EXPECT_THAT(err, HasSubstr("site f skipped: " + dir_.File("sites.d/f.toml") + ": state_dir " + a->dir() +
                             "/state is also the state_dir of " + dir_.File("sites.d/a.toml")));
  EXPECT_THAT(err, HasSubstr("3 site(s) from " + dir_.File("sites.d") + ": a, b, d; skipped: c, f"));
  EXPECT_FALSE(std::filesystem::exists(dir_.File("f.log")));
  // Each site its own log: a's lines only in a's file, b's schedule in b's.
  EXPECT_THAT(Slurp(alog), HasSubstr("[run r1] sync finished"));
  EXPECT_THAT(Slurp(alog), HasSubstr("config " + dir_.File("sites.d/a.toml")));
  EXPECT_THAT(Slurp(alog), Not(HasSubstr("b.toml")));
  EXPECT_THAT(Slurp(alog), ::testing::ContainsRegex("next full run: [0-9-]+ 03:00"));
  EXPECT_THAT(Slurp(alog), Not(::testing::ContainsRegex("next full run: [0-9-]+ 04:00")));
  EXPECT_THAT(Slurp(blog), HasSubstr("config " + dir_.File("sites.d/b.toml")));
  EXPECT_THAT(Slurp(blog), ::testing::ContainsRegex("next full run: [0-9-]+ 04:00"));
  EXPECT_THAT(Slurp(blog), Not(HasSubstr("a.toml")));
  EXPECT_THAT(Slurp(dir_.File("d.log")), HasSubstr("config " + dir_.File("sites.d/d.toml")));
  EXPECT_THAT(Slurp(alog) + Slurp(blog) + err, Not(HasSubstr(a->token())));
  // Each its own state: both Moodles hold the whole feed, each history one run.
  for (SchoolSite* s : {a.get(), b.get()}) {
    int enrolled = 0;
    for (const auto& e : s->moodle().Enrolments()) enrolled += e.method == "manual";
    EXPECT_EQ(enrolled, 1292);
    auto h = History(*s);
    ASSERT_EQ(h.size(), 1u);
    EXPECT_EQ(h[0]["trigger"], "startup");
    EXPECT_EQ(h[0]["exit_code"], 0);
  }

  // status --config-dir lists every site.
  auto st = RunEnrolsync("status --config-dir " + dir_.File("sites.d"));
  EXPECT_EQ(st.exit_code, 78) << st.out;  // c and f are broken
  EXPECT_THAT(st.out, HasSubstr("Site a (" + dir_.File("sites.d/a.toml") + "):\n  Last runs:\n    #1 "));
  EXPECT_THAT(st.out, HasSubstr("Site b ("));
  EXPECT_THAT(st.out, HasSubstr("Site c (" + dir_.File("sites.d/c.toml") + "):\n  config error: "));
  EXPECT_THAT(st.out, HasSubstr("startup sync  exit 0  enrol=1292"));
  EXPECT_THAT(st.out, HasSubstr("  Last failure: #1"));  // d's
  auto js = nlohmann::json::parse(RunEnrolsync("status --json --config-dir " + dir_.File("sites.d")).out);
  ASSERT_EQ(js["sites"].size(), 5u);
  EXPECT_EQ(js["sites"][0]["site"], "a");
  EXPECT_EQ(js["sites"][0]["last_runs"][0]["exit_code"], 0);
  EXPECT_TRUE(js["sites"][0]["last_failure"].is_null());
  ASSERT_EQ(js["sites"][1]["next_runs"].size(), 4u);  // b's two jobs, two each
  std::set<std::string> bjobs;
  for (const auto& n : js["sites"][1]["next_runs"]) bjobs.insert(n["job"].get<std::string>());
  EXPECT_EQ(bjobs, (std::set<std::string>{"users", "full"}));
  EXPECT_TRUE(js["sites"][2].contains("config_error"));
  EXPECT_EQ(js["sites"][3]["site"], "d");
  EXPECT_EQ(js["sites"][3]["last_failure"]["exit_code"], 1);
  EXPECT_THAT(js["sites"][4]["config_error"].get<std::string>(), HasSubstr("is also the state_dir of"));

  // SIGHUP: a new site starts (and runs its --run-now job), a removed one
  // stops, a changed one reloads; a now-broken one keeps its config.
  auto e = NewSite("full = \"0 2 * * *\"\n");
  Put("e.toml", SiteToml(*e));
  std::filesystem::remove(dir_.File("sites.d/b.toml"));
  std::string atext = SiteToml(*a);
  Replace(atext, "0 3 * * *", "0 5 * * *");
  Put("a.toml", atext);
  Put("d.toml", "state_dir = [\n");
  ::kill(pid, SIGHUP);
  const std::string elog = e->dir() + "/enrolsync.log";
  ASSERT_TRUE(WaitFor(elog, "sync finished", 60)) << Slurp(elog) << Err();
  ASSERT_TRUE(WaitFor(alog, "config reloaded", 10)) << Slurp(alog);
  EXPECT_THAT(Slurp(alog), ::testing::ContainsRegex("next full run: [0-9-]+ 05:00"));
  ASSERT_TRUE(WaitFor(blog, "site stopped: its config file was removed", 10)) << Slurp(blog);
  ASSERT_TRUE(WaitFor(dir_.File("d.log"), "reload failed, keeping the running config: " + dir_.File("sites.d/d.toml"),
                      10))
      << Slurp(dir_.File("d.log"));
  ASSERT_TRUE(WaitFor(dir_.File("daemon.err"), "site b stopped (its config file was removed)", 10)) << Err();
  EXPECT_THAT(Err(), HasSubstr("site e started (" + dir_.File("sites.d/e.toml") + ")"));

  // SIGUSR1 (logrotate renamed the files): idle sites reopen theirs.
  std::filesystem::rename(alog, alog + ".1");
  std::filesystem::rename(elog, elog + ".1");
  ::kill(pid, SIGUSR1);
  for (int i = 0; i < 50 && !(std::filesystem::exists(alog) && std::filesystem::exists(elog)); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_TRUE(std::filesystem::exists(alog));
  EXPECT_TRUE(std::filesystem::exists(elog));

  ::kill(pid, SIGTERM);
  EXPECT_EQ(Wait(pid), 0) << Err();
  EXPECT_THAT(Err(), HasSubstr("daemon stopped"));
  EXPECT_THAT(Slurp(alog + ".1"), Not(HasSubstr("daemon stopped")));
  EXPECT_THAT(Slurp(alog), HasSubstr("daemon stopped"));
  EXPECT_THAT(Slurp(elog), HasSubstr("daemon stopped"));
  auto h = History(*e);
  ASSERT_EQ(h.size(), 1u);
  EXPECT_EQ(h[0]["exit_code"], 0);
  EXPECT_EQ(History(*b).size(), 1u);
  EXPECT_EQ(History(*a).size(), 1u);
}

// SIGTERM while two sites are both mid-apply: each run stops after its call
// in flight and is recorded (exit 4), the daemon exits 0, and the next run
// of each site finishes the job.
TEST_F(SitesTest, SigtermStopsEverySitesRunInFlightAndRecordsThem) {
  std::vector<std::unique_ptr<SchoolSite>> sites;
  for (const char* name : {"one", "two"}) {
    sites.push_back(NewSite("full = \"0 3 * * *\"\n"));
    ASSERT_FALSE(HasFailure());
    std::string text = SiteToml(*sites.back());
    Replace(text, "max_input_vars = 5000", "max_input_vars = 5000\nmax_batch_rows = 20");
    // Site two has no log file: its lines go to the daemon's stderr, named.
    if (std::string(name) == "two") Replace(text, "file = \"" + sites.back()->dir() + "/enrolsync.log\"", "");
    Put(std::string(name) + ".toml", text);
    sites.back()->moodle().InjectFault(
        {"enrol_manual_enrol_users", 0, 1000, sandbox::Sandbox::Fault::kDelay, "", 150, false});
  }
  pid_t pid = StartDaemon();
  ASSERT_GT(pid, 0);
  for (int i = 0; i < 300; ++i) {
    if (sites[0]->moodle().CallCounts()["enrol_manual_enrol_users"] >= 3 &&
        sites[1]->moodle().CallCounts()["enrol_manual_enrol_users"] >= 3)
      break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ::kill(pid, SIGTERM);
  auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(Wait(pid), 0) << Err();
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(10));
  EXPECT_THAT(Err(), ::testing::ContainsRegex("INFO  \\[site two\\] \\[run r1\\] sync finished: .* exit=4"));
  EXPECT_THAT(Err(), Not(HasSubstr("[site one]")));
  EXPECT_THAT(Slurp(sites[0]->dir() + "/enrolsync.log"), HasSubstr("[run r1] sync finished"));
  for (auto& s : sites) {
    EXPECT_LT(s->moodle().CallCounts()["enrol_manual_enrol_users"], 1292 / 20) << "it should have stopped early";
    auto h = History(*s);
    ASSERT_EQ(h.size(), 1u);
    EXPECT_EQ(h[0]["exit_code"], 4);
    EXPECT_FALSE(h[0]["ended"].get<std::string>().empty()) << "the run was recorded";
    s->moodle().ClearFaults();
    EXPECT_EQ(RunEnrolsync("sync --config " + s->config_path()).exit_code, 0);
    int enrolled = 0;
    for (const auto& e : s->moodle().Enrolments()) enrolled += e.method == "manual";
    EXPECT_EQ(enrolled, 1292);
  }
}

TEST_F(SitesTest, NoUsableSiteAtStartExits78AndTheFlagsAreExclusive) {
  pid_t pid = StartDaemon();
  EXPECT_EQ(Wait(pid), 78);
  EXPECT_THAT(Err(), HasSubstr("no *.toml site configs"));
  Put("x.toml", "state_dir = \"s\"\n[moodle]\nurl = \"http://127.0.0.1:1\"\ntoken = 5\n");
  pid = StartDaemon();
  EXPECT_EQ(Wait(pid), 78);
  EXPECT_THAT(Err(), HasSubstr("site x skipped: " + dir_.File("sites.d/x.toml")));
  EXPECT_THAT(Err(), HasSubstr("no site in " + dir_.File("sites.d") + " has a usable config"));
  auto both = RunEnrolsync("daemon --config a.toml --config-dir " + dir_.File("sites.d"));
  EXPECT_EQ(both.exit_code, 64) << both.out;
  auto none = RunEnrolsync("status");
  EXPECT_EQ(none.exit_code, 64) << none.out;
  EXPECT_THAT(none.out, HasSubstr("exactly one of --config FILE and --config-dir DIR"));
}

}  // namespace
}  // namespace enrolsync::testing
