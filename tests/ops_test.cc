// Running enrolsync every day: hooks, log files, run history and status, the
// schedule, and the daemon's signals — through the real binary.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fcntl.h>

#include <array>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <set>
#include <tuple>
#include <thread>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "school_site.h"
#include "support/pg_server.h"
#include "sync/report.h"
#include "util/strings.h"

namespace enrolsync::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

const std::string kBin = std::string(ENROLSYNC_BINARY_DIR) + "/src/cli/enrolsync";

CliOutput Es(const std::string& args) { return RunEnrolsync(args); }

std::string Slurp(const std::string& path) {
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// Every manual enrolment in the sandbox is owned in the state database with
// Moodle's status (and there are at least `at_least` of them).
void ExpectEveryManualEnrolmentOwned(SchoolSite& site, std::size_t at_least) {
  auto q = testsupport::QuerySqlite(site.dir() + "/state/state.db",
                                    "SELECT courseid, userid, status FROM owned_enrolment WHERE owns_enrolment = 1");
  ASSERT_TRUE(q) << q.error().message;
  std::set<std::tuple<std::string, std::string, std::string>> owned;
  for (const auto& row : *q) owned.insert({row[0], row[1], row[2]});
  std::size_t manual = 0, lost = 0;
  for (const auto& e : site.moodle().Enrolments()) {
    if (e.method != "manual") continue;
    ++manual;
    if (!owned.count({std::to_string(e.courseid), std::to_string(e.userid), std::to_string(e.status)}) && lost++ < 5)
      ADD_FAILURE() << "enrolment of user " << e.userid << " in course " << e.courseid << " is not owned";
  }
  EXPECT_EQ(lost, 0u);
  EXPECT_EQ(owned.size(), manual);
  EXPECT_GE(manual, at_least);
}

class OpsTest : public ::testing::Test {
 protected:
  void Start(const std::string& extra, int latency_ms = 0) {
    SiteOptions o;
    o.latency_ms = latency_ms;
    o.extra_config = extra;
    site_ = std::make_unique<SchoolSite>(o);
    auto st = site_->Setup();
    ASSERT_TRUE(st) << st.error().message;
    cfg_ = "--config " + site_->config_path();
  }
  std::string File(const std::string& name) const { return site_->dir() + "/" + name; }
  std::unique_ptr<SchoolSite> site_;
  std::string cfg_;
};

TEST_F(OpsTest, HookRunsAfterTheFullSyncWithTheRunsCounts) {
  Start("[[hooks]]\nafter = \"full\"\ncommand = [\"/bin/sh\", \"-c\", \"env | grep ^ENROLSYNC_ | sort > " +
        std::string("$HOOK_OUT") + "; echo purged caches\"]\ntimeout = \"30s\"\n");
  ::setenv("HOOK_OUT", File("hook.env").c_str(), 1);
  auto r = Es("sync " + cfg_);
  EXPECT_EQ(r.exit_code, 0) << r.out;
  std::string env = Slurp(File("hook.env"));
  EXPECT_THAT(env, HasSubstr("ENROLSYNC_RUN_ID=1"));
  EXPECT_THAT(env, HasSubstr("ENROLSYNC_JOB=full"));
  EXPECT_THAT(env, HasSubstr("ENROLSYNC_ENROLLED=1292"));
  EXPECT_THAT(env, HasSubstr("ENROLSYNC_COURSES_CREATED=94"));
  EXPECT_THAT(env, HasSubstr("ENROLSYNC_EXIT_CODE=0"));
  EXPECT_THAT(env, Not(HasSubstr(site_->token())));
  auto h = Es("history --json " + cfg_);
  auto j = nlohmann::json::parse(h.out);
  ASSERT_EQ(j.size(), 1u);
  EXPECT_EQ(j[0]["exit_code"], 0);
  auto report = nlohmann::json::parse(Slurp(site_->dir() + "/state/reports/run-1.json"));
  ASSERT_EQ(report["hooks"].size(), 1u);
  EXPECT_EQ(report["hooks"][0]["exit_code"], 0);
  ::unsetenv("HOOK_OUT");
}

TEST_F(OpsTest, FailingOrSlowHookMarksTheRunFailedAndLosesNothing) {
  Start("[[hooks]]\nafter = \"full\"\ncommand = [\"/bin/sleep\", \"30\"]\ntimeout = \"1s\"\n"
        "[[hooks]]\nafter = \"full\"\ncommand = [\"/bin/false\"]\n");
  auto start = std::chrono::steady_clock::now();
  auto r = Es("sync " + cfg_);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(20)) << "the timeout was not enforced";
  EXPECT_EQ(r.exit_code, 4) << r.out;
  EXPECT_THAT(r.out, HasSubstr("hook /bin/sleep 30 failed: timed out after 1 s"));
  EXPECT_THAT(r.out, HasSubstr("hook /bin/false failed: exited with status 1"));
  EXPECT_THAT(r.out, HasSubstr("1292 enrolled"));
  auto again = Es("plan --detailed-exitcode " + cfg_);
  EXPECT_EQ(again.exit_code, 0) << "everything was applied despite the hooks";
}

TEST_F(OpsTest, StatusAndHistoryShowRealRunsAndTheLastFailure) {
  Start("");
  ASSERT_EQ(Es("sync " + cfg_).exit_code, 0);
  std::ofstream(site_->dir() + "/moodle.token") << "bad-token-1234567\n";
  ASSERT_EQ(Es("sync " + cfg_).exit_code, 1);
  auto status = Es("status " + cfg_);
  EXPECT_EQ(status.exit_code, 0) << status.out;
  EXPECT_THAT(status.out, HasSubstr("Last runs:"));
  EXPECT_THAT(status.out, HasSubstr("manual sync  exit 0  enrol=1292"));
  EXPECT_THAT(status.out, HasSubstr("Last failure: #2"));
  EXPECT_THAT(status.out, HasSubstr("invalidtoken"));
  EXPECT_THAT(status.out, Not(HasSubstr("bad-token-1234567")));
  auto h = nlohmann::json::parse(Es("history --json " + cfg_).out);
  ASSERT_EQ(h.size(), 2u);
  EXPECT_EQ(h[0]["id"], 2);
  EXPECT_EQ(h[0]["exit_code"], 1);
  EXPECT_EQ(h[1]["exit_code"], 0);
  EXPECT_EQ(h[1]["summary"]["enrolments.enrol"], 1292);
  EXPECT_EQ(h[1]["trigger"], "manual");
  EXPECT_FALSE(h[1]["ended"].get<std::string>().empty());
}

TEST_F(OpsTest, ScheduleCommandPrintsTheNextRunTimes) {
  Start("[schedule]\nusers = \"0 8,13 * * *\"\nfull = \"@daily\"\n");
  auto s = Es("schedule -n 2 " + cfg_);
  EXPECT_EQ(s.exit_code, 0) << s.out;
  EXPECT_THAT(s.out, HasSubstr("users = \"0 8,13 * * *\""));
  EXPECT_THAT(s.out, HasSubstr("08:00:00  users"));
  EXPECT_THAT(s.out, HasSubstr("13:00:00  users"));
  EXPECT_THAT(s.out, HasSubstr("00:00:00  full"));
}

TEST_F(OpsTest, BadCronIsAConfigErrorNamingTheLine) {
  Start("[schedule]\nfull = \"0 25 * * *\"\n");
  auto s = Es("schedule " + cfg_);
  EXPECT_EQ(s.exit_code, 78);
  EXPECT_THAT(s.out, HasSubstr("[schedule] full"));
  EXPECT_THAT(s.out, HasSubstr("hour 25 is out of range 0-23"));
}

TEST_F(OpsTest, LogLinesCarryTimestampLevelAndRunIdInTextAndJson) {
  Start("[log]\nfile = \"enrolsync.log\"\n");
  ASSERT_EQ(Es("sync -v " + cfg_).exit_code, 0);
  std::string log = Slurp(File("enrolsync.log"));
  EXPECT_THAT(log, ::testing::ContainsRegex("[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+[+-][0-9:]+ INFO  \\[run r1\\] enrolling: "));
  EXPECT_THAT(log, HasSubstr("[run r1] sync finished"));
  EXPECT_THAT(log, Not(HasSubstr(site_->token())));
  ASSERT_TRUE(site_->Exec("DELETE FROM TblTeachingManagerSetLists WHERE TblTeachingManagerSetListsID = 1"));
  ASSERT_EQ(Es("--log-format json sync " + cfg_).exit_code, 0);
  int json_lines = 0;
  for (const auto& line : Split(Slurp(File("enrolsync.log")), '\n')) {
    if (line.empty() || line[0] != '{') continue;
    auto j = nlohmann::json::parse(line);
    EXPECT_EQ(j["run"], "r2");
    EXPECT_TRUE(j.contains("ts"));
    ++json_lines;
  }
  EXPECT_GT(json_lines, 2);
}

// The daemon, for real: a job starts at once (--run-now), SIGHUP reloads,
// SIGTERM mid-run ends it cleanly with the run recorded.
TEST_F(OpsTest, DaemonRunsJobsReloadsOnSighupAndStopsCleanlyOnSigterm) {
  Start("[log]\nfile = \"enrolsync.log\"\n[schedule]\nfull = \"0 3 * * *\"\n", /*latency_ms=*/250);
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    ::execl(kBin.c_str(), kBin.c_str(), "daemon", "--config", site_->config_path().c_str(), "--run-now", "full",
            static_cast<char*>(nullptr));
    ::_exit(127);
  }
  auto wait_for = [&](const std::string& needle, int seconds) {
    for (int i = 0; i < seconds * 10; ++i) {
      if (Slurp(File("enrolsync.log")).find(needle) != std::string::npos) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return false;
  };
  ASSERT_TRUE(wait_for("sync finished", 60)) << Slurp(File("enrolsync.log"));
  ASSERT_TRUE(wait_for("next full run", 10));
  // SIGHUP: a new schedule is picked up.
  std::string text = Slurp(site_->config_path());
  text.replace(text.find("0 3 * * *"), 9, "0 4 * * *");
  std::ofstream(site_->config_path()) << text;
  ::kill(pid, SIGHUP);
  ASSERT_TRUE(wait_for("config reloaded", 10)) << Slurp(File("enrolsync.log"));
  EXPECT_THAT(Slurp(File("enrolsync.log")), ::testing::ContainsRegex("next full run: [0-9-]+ 04:00"));
  // A manual sync while the daemon idles works; the lock is only held during runs.
  ASSERT_TRUE(site_->Exec("DELETE FROM TblTeachingManagerSetLists WHERE TblTeachingManagerSetListsID < 4"));
  EXPECT_EQ(Es("sync " + cfg_).exit_code, 0);
  ::kill(pid, SIGTERM);
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
  EXPECT_THAT(Slurp(File("enrolsync.log")), HasSubstr("daemon stopped"));
  auto h = nlohmann::json::parse(Es("history --json " + cfg_).out);
  ASSERT_EQ(h.size(), 2u);
  EXPECT_EQ(h[1]["trigger"], "startup");
  EXPECT_EQ(h[1]["exit_code"], 0);
}

TEST_F(OpsTest, SigtermDuringARunFinishesTheCallInFlightAndRecordsTheRun) {
  Start("[log]\nfile = \"enrolsync.log\"\n[schedule]\nfull = \"0 3 * * *\"\n", 0);
  // Small batches, each slowed down, so the stop lands mid-apply.
  std::string text = Slurp(site_->config_path());
  text.replace(text.find("max_input_vars = 5000"), 21, "max_input_vars = 5000\nmax_batch_rows = 20");
  std::ofstream(site_->config_path()) << text;
  site_->moodle().InjectFault({"enrol_manual_enrol_users", 0, 1000, sandbox::Sandbox::Fault::kDelay, "", 150, false});
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    ::execl(kBin.c_str(), kBin.c_str(), "daemon", "--config", site_->config_path().c_str(), "--run-now", "full",
            static_cast<char*>(nullptr));
    ::_exit(127);
  }
  // Wait until enrolments are being sent, then stop.
  for (int i = 0; i < 300 && site_->moodle().CallCounts()["enrol_manual_enrol_users"] < 3; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  ::kill(pid, SIGTERM);
  int status = 0;
  auto start = std::chrono::steady_clock::now();
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(10));
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
  int sent = site_->moodle().CallCounts()["enrol_manual_enrol_users"];
  EXPECT_LT(sent, 1292 / 20) << "it should have stopped early";
  auto h = nlohmann::json::parse(Es("history --json " + cfg_).out);
  ASSERT_EQ(h.size(), 1u);
  EXPECT_EQ(h[0]["exit_code"], 4);
  EXPECT_FALSE(h[0]["ended"].get<std::string>().empty()) << "the run was recorded";
  // Nothing was lost: the state database knows exactly what was applied, and
  // the next run completes the rest.
  site_->moodle().ClearFaults();
  auto r = Es("sync " + cfg_);
  EXPECT_EQ(r.exit_code, 0) << r.out;
  EXPECT_EQ(Es("plan --detailed-exitcode " + cfg_).exit_code, 0);
  int enrolled = 0;
  for (const auto& e : site_->moodle().Enrolments()) enrolled += e.method == "manual";
  EXPECT_EQ(enrolled, 1292);
}

// `enrolsync sync` (a systemd timer's run, or a terminal's) stopped by
// SIGTERM or Ctrl-C mid-apply: the batch in flight completes, nothing more
// is sent, the run is recorded with exit 4, the summary says it was stopped,
// and the next run finishes the job. It used to die with 143, printing
// nothing, the run left as "exit -1".
class SyncStopTest : public OpsTest, public ::testing::WithParamInterface<int> {};

TEST_P(SyncStopTest, ASignalMidApplyStopsSyncCleanlyWithExit4AndTheRunRecorded) {
  const int signo = GetParam();
  Start("", 0);
  std::string text = Slurp(site_->config_path());
  text.replace(text.find("max_input_vars = 5000"), 21, "max_input_vars = 5000\nmax_batch_rows = 20");
  std::ofstream(site_->config_path()) << text;
  site_->moodle().InjectFault({"enrol_manual_enrol_users", 0, 1000, sandbox::Sandbox::Fault::kDelay, "", 150, false});
  const std::string out_file = File("sync.out");
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    int fd = ::open(out_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0) ::_exit(126);
    ::dup2(fd, STDOUT_FILENO);
    ::dup2(fd, STDERR_FILENO);
    ::execl(kBin.c_str(), kBin.c_str(), "sync", "--config", site_->config_path().c_str(), static_cast<char*>(nullptr));
    ::_exit(127);
  }
  for (int i = 0; i < 300 && site_->moodle().CallCounts()["enrol_manual_enrol_users"] < 3; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  ASSERT_GE(site_->moodle().CallCounts()["enrol_manual_enrol_users"], 3);
  ::kill(pid, signo);
  int status = 0;
  auto start = std::chrono::steady_clock::now();
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(10));
  const std::string out = Slurp(out_file);
  ASSERT_TRUE(WIFEXITED(status)) << "killed by signal " << (WIFSIGNALED(status) ? WTERMSIG(status) : 0) << "\n" << out;
  EXPECT_EQ(WEXITSTATUS(status), 4) << out;
  EXPECT_THAT(out, HasSubstr("Stopped by SIGTERM/SIGINT: the batch in flight completed and nothing more was sent"));
  int sent = site_->moodle().CallCounts()["enrol_manual_enrol_users"];
  EXPECT_LT(sent, 1292 / 20) << "it should have stopped early";
  // Nothing more is sent after the process has gone.
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  EXPECT_EQ(site_->moodle().CallCounts()["enrol_manual_enrol_users"], sent);
  auto h = nlohmann::json::parse(Es("history --json " + cfg_).out);
  ASSERT_EQ(h.size(), 1u);
  EXPECT_EQ(h[0]["exit_code"], 4);
  EXPECT_FALSE(h[0]["ended"].get<std::string>().empty()) << "the run was recorded";

  // Row by row: every enrolment the stopped run made is owned, with Moodle's
  // status, and nothing is left in flight (the batch completed).
  const std::string db = site_->dir() + "/state/state.db";
  ExpectEveryManualEnrolmentOwned(*site_, 3 * 20);
  auto pending = testsupport::QuerySqlite(db, "SELECT COUNT(*) FROM pending_intent");
  ASSERT_TRUE(pending) << pending.error().message;
  EXPECT_EQ((*pending)[0][0], "0") << "a stop leaves nothing in flight";

  site_->moodle().ClearFaults();
  auto r = Es("sync " + cfg_);
  EXPECT_EQ(r.exit_code, 0) << r.out;
  EXPECT_THAT(r.out, Not(HasSubstr("in flight"))) << r.out;
  EXPECT_EQ(Es("plan --detailed-exitcode " + cfg_).exit_code, 0) << "the rerun left an empty plan";
  int enrolled = 0;
  for (const auto& e : site_->moodle().Enrolments()) enrolled += e.method == "manual";
  EXPECT_EQ(enrolled, 1292);
  ExpectEveryManualEnrolmentOwned(*site_, 1292);
}

// Stopped while still reading Moodle: nothing is applied, exit 4, recorded.
TEST_F(OpsTest, SigtermWhileSyncIsReadingAppliesNothingAndExits4) {
  Start("", 0);
  // The user lookups in small, slow batches (reads are sized by
  // max_input_vars): the stop lands between them.
  std::string text = Slurp(site_->config_path());
  text.replace(text.find("max_input_vars = 5000"), 21, "max_input_vars = 100");
  std::ofstream(site_->config_path()) << text;
  site_->moodle().InjectFault({"core_user_get_users_by_field", 0, 1000, sandbox::Sandbox::Fault::kDelay, "", 150, false});
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  const std::string out_file = File("sync.out");
  if (pid == 0) {
    int fd = ::open(out_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0) ::_exit(126);
    ::dup2(fd, STDOUT_FILENO);
    ::dup2(fd, STDERR_FILENO);
    ::execl(kBin.c_str(), kBin.c_str(), "sync", "--config", site_->config_path().c_str(), static_cast<char*>(nullptr));
    ::_exit(127);
  }
  for (int i = 0; i < 300 && site_->moodle().CallCounts()["core_user_get_users_by_field"] < 2; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  ::kill(pid, SIGTERM);
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  const std::string out = Slurp(out_file);
  ASSERT_TRUE(WIFEXITED(status)) << out;
  EXPECT_EQ(WEXITSTATUS(status), 4) << out;
  EXPECT_THAT(out, HasSubstr("Stopped by SIGTERM/SIGINT before any change was applied")) << out;
  EXPECT_EQ(site_->moodle().CallCounts()["enrol_manual_enrol_users"], 0);
  auto h = nlohmann::json::parse(Es("history --json " + cfg_).out);
  ASSERT_EQ(h.size(), 1u);
  EXPECT_EQ(h[0]["exit_code"], 4);
}

INSTANTIATE_TEST_SUITE_P(Signals, SyncStopTest, ::testing::Values(SIGTERM, SIGINT),
                         [](const ::testing::TestParamInfo<int>& i) {
                           return std::string(i.param == SIGTERM ? "Sigterm" : "Sigint");
                         });

// The sandbox dies mid-apply. Each batch used to do its own retries with
// backoff, so a run kept at a dead server for minutes (117 s in issue 8),
// and exit 4 printed only "N failed". Now the client gives up once calls
// have failed for give_up_after (60 s): the run ends within that and a
// batch, with exit 4 and the failed items listed by reason.
TEST_F(OpsTest, ADeadMoodleMidRunIsGivenUpOnWithinABoundAndTheFailuresAreGroupedByReason) {
  Start("");
  // Small batches, each slowed down, so the sandbox dies mid-apply with
  // hundreds of batches still to send.
  std::string text = Slurp(site_->config_path());
  text.replace(text.find("max_input_vars = 5000"), 21, "max_input_vars = 5000\nmax_batch_rows = 4");
  std::ofstream(site_->config_path()) << text;
  site_->moodle().InjectFault({"enrol_manual_enrol_users", 0, 1000, sandbox::Sandbox::Fault::kDelay, "", 50, false});
  const std::string port = std::to_string(site_->moodle().port());
  CliOutput r;
  std::thread run([&] { r = Es("sync " + cfg_); });
  for (int i = 0; i < 600 && site_->moodle().CallCounts()["enrol_manual_enrol_users"] < 5; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  const int sent = site_->moodle().CallCounts()["enrol_manual_enrol_users"];
  site_->moodle().Stop();
  const auto stopped = std::chrono::steady_clock::now();
  run.join();
  const double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - stopped).count();
  std::printf("sandbox stopped after %d enrol calls; enrolsync ended %.1f s later:\n%s\n", sent, took, r.out.c_str());
  EXPECT_LT(took, 75.0) << "gave up too late\n" << r.out;
  EXPECT_EQ(r.exit_code, 4) << r.out;
  // The failures by reason, with counts and a few items each.
  EXPECT_THAT(r.out, HasSubstr("\nfailed: ")) << r.out;
  EXPECT_THAT(r.out, HasSubstr(" × enrol_manual_enrol_users: cannot connect to 127.0.0.1:" + port + " (Connection)"))
      << r.out;
  EXPECT_THAT(r.out, HasSubstr(" × enrol_manual_enrol_users: Moodle unreachable for 6")) << r.out;
  EXPECT_THAT(r.out, HasSubstr("); giving up\n")) << r.out;
  EXPECT_THAT(r.out, HasSubstr("      e.g. ")) << r.out;
  EXPECT_THAT(r.out, HasSubstr(" more\n")) << r.out;
  EXPECT_LT(r.out.size(), 20000u) << "the failures are grouped, not listed one by one";
  EXPECT_THAT(r.out, Not(HasSubstr("Moodle rolled them back"))) << "connection retries are not rollbacks";

  // Nothing made before the death lost its owner, and once Moodle is back
  // the rerun finishes the job and owns everything, row by row.
  ExpectEveryManualEnrolmentOwned(*site_, 5 * 4);
  auto restarted = site_->RestartMoodle();
  ASSERT_TRUE(restarted) << restarted.error().message;
  auto again = Es("sync " + cfg_);
  EXPECT_EQ(again.exit_code, 0) << again.out;
  EXPECT_EQ(Es("plan --detailed-exitcode " + cfg_).exit_code, 0) << "the rerun left an empty plan";
  ExpectEveryManualEnrolmentOwned(*site_, 1292);
}

// The grouping behind that list: what is particular to one item or one
// batch is taken out of the reason, so identical failures form one group.
TEST(FailureGroupsTest, ItemSpecificPartsAreTakenOutOfTheReason) {
  const std::string refused = "enrol_manual_enrol_users: cannot connect to moodle.school (Connection)";
  std::vector<std::pair<std::string, std::string>> failures = {
      {"c1 / a", refused + " (gave up after 4 attempts)"},
      {"course X", "skipped: course 'X' was not created"},
      {"c1 / b", refused + " (gave up after 2 attempts)"},
      {"course Y", "skipped: course 'Y/2' was not created"},
      {"c2 / c", refused},
      {"c3 / d", "core_role_assign_roles: Error writing to database (dmlwriteexception) [debuginfo: userid 4711 "
                 "in context 88]"},
      {"c3 / e", "core_role_assign_roles: Error writing to database (dmlwriteexception) [debuginfo: userid 4712 "
                 "in context 88]"},
      {"c4 / f", "enrol_manual_enrol_users: Moodle's answer is not 'null'"},
      {"c2 / g", refused},
  };
  auto groups = sync::GroupFailures(failures, 3);
  ASSERT_EQ(groups.size(), 4u);
  EXPECT_EQ(groups[0].reason, refused);
  EXPECT_EQ(groups[0].count, 4u);
  EXPECT_EQ(groups[0].examples, (std::vector<std::string>{"c1 / a", "c1 / b", "c2 / c"}));
  EXPECT_EQ(groups[1].reason, "skipped: course '…' was not created");
  EXPECT_EQ(groups[1].count, 2u);
  EXPECT_EQ(groups[2].reason,
            "core_role_assign_roles: Error writing to database (dmlwriteexception) [debuginfo: userid N in context N]");
  EXPECT_EQ(groups[2].count, 2u);
  EXPECT_EQ(groups[3].reason, "enrol_manual_enrol_users: Moodle's answer is not '…'");
}

}  // namespace
}  // namespace enrolsync::testing
