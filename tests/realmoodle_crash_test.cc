// `enrolsync sync` killed with SIGKILL halfway through enrolling the
// sample-size school into a real Moodle 5.1: the rerun must read back what
// was in flight, finish the job, and own every enrolment Moodle holds (the
// crash_test kill points, on the real thing; there the kill lands wherever
// Moodle happens to be, usually inside a batch).
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fcntl.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <set>
#include <tuple>
#include <vector>
#include <thread>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "config/config.h"
#include "real_school.h"
#include "sync/runner.h"
#include "support/pg_server.h"

namespace enrolsync::testing {
namespace {

using ::testing::HasSubstr;

TEST(RealMoodleCrash, AKillMidEnrolLosesNoOwnerAndTheRerunFinishesTheJob) {
  RealSchoolOptions o;
  o.size = {120, 24};
  o.moodle_extra = "max_batch_rows = 100\n";  // about a second a batch
  std::unique_ptr<RealSchool> site;
  ENROLSYNC_START_REAL_SCHOOL(site, o);
  const std::string bin = std::string(ENROLSYNC_BINARY_DIR) + "/src/cli/enrolsync";
  const std::string dir = std::filesystem::path(site->config_path()).parent_path().string();
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    int fd = ::open((dir + "/killed.out").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0) ::_exit(126);
    ::dup2(fd, STDOUT_FILENO);
    ::dup2(fd, STDERR_FILENO);
    ::execl(bin.c_str(), bin.c_str(), "sync", "--config", site->config_path().c_str(), static_cast<char*>(nullptr));
    ::_exit(127);
  }
  auto count = [&]() -> long long {
    auto r = site->moodle().Query("SELECT COUNT(*) FROM mdl_user_enrolments");
    return r && !r->empty() ? std::stoll((*r)[0][0]) : -1;
  };
  long long at_kill = 0;
  for (int i = 0; i < 1200 && (at_kill = count()) < 400; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  ::kill(pid, SIGKILL);
  int status = 0;
  ::waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFSIGNALED(status)) << "the run ended before the kill";
  ASSERT_GE(at_kill, 400);
  std::printf("[realmoodle] killed with %lld enrolments made\n", at_kill);

  auto r = site->Sync();
  ASSERT_EQ(r.exit_code, 0) << r.error;
  std::string warnings;
  for (const auto& w : r.warnings) warnings += w + "\n";
  EXPECT_THAT(warnings, HasSubstr("in flight"));
  auto again = site->Sync();
  ASSERT_EQ(again.exit_code, 0) << again.error;
  EXPECT_EQ(again.write_calls, 0) << "the rerun left work undone";

  // Every manual enrolment in Moodle is owned, with Moodle's status.
  auto owned = testsupport::QuerySqlite(dir + "/state/state.db",
                                        "SELECT courseid, userid, status FROM owned_enrolment WHERE owns_enrolment = 1");
  ASSERT_TRUE(owned) << owned.error().message;
  std::set<std::tuple<std::string, std::string, std::string>> state;
  for (const auto& row : *owned) state.insert({row[0], row[1], row[2]});
  auto moodle = site->moodle().Query(
      "SELECT e.courseid, ue.userid, ue.status FROM mdl_user_enrolments ue JOIN mdl_enrol e ON e.id = ue.enrolid "
      "WHERE e.enrol = 'manual'");
  ASSERT_TRUE(moodle) << moodle.error().message;
  ASSERT_GT(moodle->size(), 1000u);
  int lost = 0;
  for (const auto& row : *moodle)
    if (!state.count({row[0], row[1], row[2]}) && lost++ < 5)
      ADD_FAILURE() << "enrolment of user " << row[1] << " in course " << row[0] << " is not owned";
  EXPECT_EQ(lost, 0);
  EXPECT_EQ(state.size(), moodle->size());

  // The ledger then lost with no copy (0 bytes, backups gone): adopt
  // rebuilds the same ownership from the real Moodle.
  const std::string db = dir + "/state/state.db";
  std::filesystem::resize_file(db, 0);
  std::filesystem::remove(db + "-wal");
  std::filesystem::remove(db + "-shm");
  std::filesystem::remove_all(dir + "/state/backups");
  auto run = [&](std::vector<std::string> args) {
    pid_t p = ::fork();
    if (p == 0) {
      int fd = ::open((dir + "/adopt.out").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
      if (fd < 0) ::_exit(126);
      ::dup2(fd, STDOUT_FILENO);
      ::dup2(fd, STDERR_FILENO);
      std::vector<char*> argv{const_cast<char*>(bin.c_str())};
      for (auto& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      ::execv(bin.c_str(), argv.data());
      ::_exit(127);
    }
    int st = 0;
    ::waitpid(p, &st, 0);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  };
  EXPECT_EQ(run({"sync", "--config", site->config_path()}), 1) << "a lost ledger must be refused";
  ASSERT_EQ(run({"adopt", "--apply", "--config", site->config_path()}), 0);
  auto adopted = testsupport::QuerySqlite(db, "SELECT courseid, userid, status FROM owned_enrolment WHERE owns_enrolment = 1");
  ASSERT_TRUE(adopted) << adopted.error().message;
  std::set<std::tuple<std::string, std::string, std::string>> rebuilt;
  for (const auto& row : *adopted) rebuilt.insert({row[0], row[1], row[2]});
  EXPECT_EQ(rebuilt, state) << "adopt on real Moodle rebuilt " << rebuilt.size() << " of " << state.size();
  auto after = site->Sync();
  ASSERT_EQ(after.exit_code, 0) << after.error;
  EXPECT_EQ(after.write_calls, 0) << "after adopt a sync has nothing to do";

  // The whole state_dir gone: nothing there says earlier runs happened, but
  // the real site holds the feed, so the sync is refused (plan/first_run.h)
  // and adopt takes it back.
  std::filesystem::remove_all(dir + "/state");
  {
    // The daemon's users job may well run first: it adopts the directory's
    // users into the new ledger, which must not answer the question for it.
    auto cfg = config::LoadConfig(site->config_path());
    ASSERT_TRUE(cfg) << cfg.error().message;
    sync::RunOptions users_job;
    users_job.apply = true;
    users_job.enrolments = false;
    users_job.job = "users";
    auto users = sync::RunOnce(*cfg, users_job);
    ASSERT_EQ(users.exit_code, 0) << users.error;
    ASSERT_TRUE(users.users_ran);
  }
  const long long before = count();
  EXPECT_EQ(run({"sync", "--config", site->config_path()}), 1) << "a site holding the feed must be refused";
  std::ifstream out(dir + "/adopt.out");
  const std::string said((std::istreambuf_iterator<char>(out)), std::istreambuf_iterator<char>());
  EXPECT_THAT(said, HasSubstr("owns nothing yet")) << said;
  EXPECT_EQ(count(), before);
  ASSERT_EQ(run({"adopt", "--apply", "--config", site->config_path()}), 0);
  auto readopted = testsupport::QuerySqlite(db, "SELECT COUNT(*) FROM owned_enrolment WHERE owns_enrolment = 1");
  ASSERT_TRUE(readopted) << readopted.error().message;
  EXPECT_EQ((*readopted)[0][0], std::to_string(state.size()));
  auto last = site->Sync();
  ASSERT_EQ(last.exit_code, 0) << last.error;
  EXPECT_EQ(last.write_calls, 0);
}

}  // namespace
}  // namespace enrolsync::testing
