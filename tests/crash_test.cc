// Crash consistency: `enrolsync sync` killed with SIGKILL in the middle of
// each write step, at the worst moment: Moodle has committed a batch whose
// answer never arrives (the sandbox applies the call, then holds the
// answer). Before the kill, other batches of the step were answered.
//
// After each kill a rerun must reconcile what was in flight, finish the job
// and leave an empty plan; then every enrolment, suspension and role
// enrolsync made (before or after the kill) must be owned in the state
// database exactly as Moodle holds it, every course it created recorded,
// and a pupil taken off the feed, one the killed run had enrolled where
// possible, must lose their enrolments (suspended, or unenrolled).
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fcntl.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <set>
#include <thread>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "school_site.h"
#include "support/pg_server.h"
#include "util/strings.h"

namespace enrolsync::testing {
namespace {

using ::testing::HasSubstr;

const std::string kBin = std::string(ENROLSYNC_BINARY_DIR) + "/src/cli/enrolsync";

std::string Slurp(const std::string& path) {
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

struct KillPoint {
  std::string name;
  std::string function;   // the write call held and killed in
  int skip = 1;           // batches of it answered first
  std::string unenrol_action = "suspend";
  // Brings the site to the state before the killed run (syncs, MIS edits).
  std::function<void(class CrashTest&)> prepare;
};

class CrashTest : public ::testing::TestWithParam<KillPoint> {
 public:
  void SetUp() override {
    SiteOptions o;
    o.unenrol_action = GetParam().unenrol_action;
    site_ = std::make_unique<SchoolSite>(o);
    auto st = site_->Setup();
    ASSERT_TRUE(st) << st.error().message;
    // Small batches, so that each step takes several calls.
    std::string text = Slurp(site_->config_path());
    text.replace(text.find("max_input_vars = 5000"), 21, "max_input_vars = 5000\nmax_batch_rows = 20");
    std::ofstream(site_->config_path()) << text;
    cfg_ = "--config " + site_->config_path();
  }

  void Sync() {
    auto r = RunEnrolsync("sync " + cfg_);
    ASSERT_EQ(r.exit_code, 0) << r.out;
  }
  void Exec(const std::string& sql) { ASSERT_TRUE(site_->Exec(sql)); }
  std::vector<std::vector<std::string>> Query(const std::string& sql) { return site_->Query(sql); }
  // 45 pupils' set memberships out of the feed (kept in table `gone`).
  void DropRows() {
    Exec("CREATE TABLE gone AS SELECT * FROM TblTeachingManagerSetLists ORDER BY TblTeachingManagerSetListsID "
         "LIMIT 45");
    Exec("DELETE FROM TblTeachingManagerSetLists WHERE TblTeachingManagerSetListsID IN "
         "(SELECT TblTeachingManagerSetListsID FROM gone)");
  }
  void RestoreRows() { Exec("INSERT INTO TblTeachingManagerSetLists SELECT * FROM gone"); }
  // Four pupils become non-editing teachers (role 4) in all their sets.
  void ChangeRoles() {
    auto pupils = Query("SELECT DISTINCT txtSchoolID FROM TblTeachingManagerSetLists ORDER BY txtSchoolID LIMIT 4");
    ASSERT_EQ(pupils.size(), 4u);
    std::string list;
    for (const auto& p : pupils) list += (list.empty() ? "'" : ",'") + p[0] + "'";
    auto view = Query("SELECT sql FROM sqlite_master WHERE name = 'VwMoodleEnrolData'");
    ASSERT_EQ(view.size(), 1u);
    std::string sql = view[0][0];
    const std::string from = "SELECT s.\"txtSetCode\", p.\"txtEmailAddress\", 5";
    auto pos = sql.find(from);
    ASSERT_NE(pos, std::string::npos) << sql;
    sql.replace(pos, from.size(), "SELECT s.\"txtSetCode\", p.\"txtEmailAddress\", CASE WHEN p.\"txtSchoolID\" IN (" +
                                      list + ") THEN 4 ELSE 5 END");
    Exec("DROP VIEW VwMoodleEnrolData; " + sql);
  }

  // Runs `enrolsync sync` and SIGKILLs it once the held call was applied.
  // Returns the (course, user) pairs whose manual enrolment changed in
  // between (the killed run's work).
  std::set<std::pair<long long, long long>> KillMidStep(const KillPoint& k) {
    std::map<std::pair<long long, long long>, int> before;
    for (const auto& e : site_->moodle().Enrolments())
      if (e.method == "manual") before[{e.courseid, e.userid}] = e.status;
    const int base = site_->moodle().CallCounts()[k.function];
    site_->moodle().InjectFault({k.function, k.skip, 1, sandbox::Sandbox::Fault::kDelay, "", 2000, true});
    const std::string out_file = site_->dir() + "/killed.out";
    pid_t pid = ::fork();
    if (pid == 0) {
      int fd = ::open(out_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
      if (fd < 0) ::_exit(126);
      ::dup2(fd, STDOUT_FILENO);
      ::dup2(fd, STDERR_FILENO);
      ::execl(kBin.c_str(), kBin.c_str(), "sync", "--config", site_->config_path().c_str(),
              static_cast<char*>(nullptr));
      ::_exit(127);
    }
    for (int i = 0; i < 1500 && site_->moodle().CallCounts()[k.function] < base + k.skip + 1; ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    const int reached = site_->moodle().CallCounts()[k.function];
    // The held call is applied within milliseconds of arriving.
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    ::kill(pid, SIGKILL);
    int status = 0;
    ::waitpid(pid, &status, 0);
    EXPECT_GE(reached, base + k.skip + 1) << "the run never reached the kill point:\n" << Slurp(out_file);
    EXPECT_TRUE(WIFSIGNALED(status)) << "the run ended before the kill:\n" << Slurp(out_file);
    site_->moodle().ClearFaults();
    std::set<std::pair<long long, long long>> changed;
    for (const auto& e : site_->moodle().Enrolments()) {
      if (e.method != "manual") continue;
      auto it = before.find({e.courseid, e.userid});
      if (it == before.end() || it->second != e.status) changed.insert({e.courseid, e.userid});
    }
    return changed;
  }

  // Every course in Moodle was created by enrolsync and is recorded so;
  // every manual enrolment and its roles are owned exactly as Moodle holds
  // them; nothing owned is missing from Moodle.
  void ExpectEverythingOwned(const std::string& when) {
    const std::string db = site_->dir() + "/state/state.db";
    auto created = testsupport::QuerySqlite(db, "SELECT courseid FROM created_course");
    ASSERT_TRUE(created) << created.error().message;
    std::set<long long> made;
    for (const auto& r : *created) made.insert(std::stoll(r[0]));
    for (const auto& c : site_->moodle().Courses())
      EXPECT_TRUE(made.count(c.id)) << when << ": course " << c.shortname << " (" << c.id << ") lost its owner";
    auto owned = testsupport::QuerySqlite(db, "SELECT courseid, userid, status FROM owned_enrolment "
                                              "WHERE owns_enrolment = 1");
    auto roles = testsupport::QuerySqlite(db, "SELECT courseid, userid, roleid FROM owned_role");
    ASSERT_TRUE(owned && roles);
    std::map<std::pair<long long, long long>, int> state;
    std::map<std::pair<long long, long long>, std::set<long long>> state_roles, moodle_roles;
    for (const auto& r : *owned) state[{std::stoll(r[0]), std::stoll(r[1])}] = std::stoi(r[2]);
    for (const auto& r : *roles) state_roles[{std::stoll(r[0]), std::stoll(r[1])}].insert(std::stoll(r[2]));
    for (const auto& a : site_->moodle().RoleAssignments())
      if (a.component.empty()) moodle_roles[{a.courseid, a.userid}].insert(a.roleid);
    int lost = 0, wrong = 0;
    std::set<std::pair<long long, long long>> in_moodle;
    for (const auto& e : site_->moodle().Enrolments()) {
      if (e.method != "manual") continue;
      std::pair<long long, long long> key{e.courseid, e.userid};
      in_moodle.insert(key);
      auto it = state.find(key);
      if (it == state.end()) {
        if (lost++ < 5) ADD_FAILURE() << when << ": enrolment of user " << e.userid << " in course " << e.courseid
                                      << " is not owned";
      } else if (it->second != e.status || state_roles[key] != moodle_roles[key]) {
        if (wrong++ < 5) ADD_FAILURE() << when << ": user " << e.userid << " in course " << e.courseid
                                       << ": state has status " << it->second << " and " << state_roles[key].size()
                                       << " role(s), Moodle " << e.status << " and " << moodle_roles[key].size();
      }
    }
    EXPECT_EQ(lost, 0) << when;
    EXPECT_EQ(wrong, 0) << when;
    for (const auto& [key, status] : state)
      EXPECT_TRUE(in_moodle.count(key)) << when << ": owned enrolment of user " << key.second << " in course "
                                        << key.first << " is not in Moodle";
  }

  // A pupil (one of the killed run's, if it enrolled any) leaves every set.
  void ExpectALeaverLosesTheirEnrolments(const std::set<std::pair<long long, long long>>& killed_run) {
    std::map<long long, std::string> email;
    for (const auto& u : site_->moodle().Users()) email[u.id] = ToLower(u.email);
    std::string pupil;
    long long userid = 0;
    auto pupil_of = [&](long long uid) -> std::string {
      auto rows = Query("SELECT txtSchoolID FROM TblPupilManagementPupils WHERE lower(txtEmailAddress) = '" +
                        email[uid] + "'");
      return rows.empty() ? "" : rows[0][0];
    };
    for (const auto& [course, uid] : killed_run) {
      pupil = pupil_of(uid);
      if (!pupil.empty() && !Query("SELECT 1 FROM TblTeachingManagerSetLists WHERE txtSchoolID = '" + pupil + "'")
                                 .empty()) {
        userid = uid;
        break;
      }
    }
    if (userid == 0) {
      pupil = Query("SELECT txtSchoolID FROM TblTeachingManagerSetLists ORDER BY TblTeachingManagerSetListsID "
                    "DESC LIMIT 1")[0][0];
      auto e = Query("SELECT lower(txtEmailAddress) FROM TblPupilManagementPupils WHERE txtSchoolID = '" + pupil +
                     "'")[0][0];
      for (const auto& [id, m] : email)
        if (m == e) userid = id;
    }
    ASSERT_GT(userid, 0);
    int had = 0;
    for (const auto& e : site_->moodle().Enrolments())
      if (e.method == "manual" && e.userid == userid && e.status == 0) ++had;
    ASSERT_GT(had, 0) << "pupil " << pupil << " has no active enrolment to lose";
    Exec("DELETE FROM TblTeachingManagerSetLists WHERE txtSchoolID = '" + pupil + "'");
    auto r = RunEnrolsync("sync " + cfg_);
    ASSERT_EQ(r.exit_code, 0) << r.out;
    int left = 0;
    for (const auto& e : site_->moodle().Enrolments())
      if (e.method == "manual" && e.userid == userid && e.status == 0) ++left;
    EXPECT_EQ(left, 0) << "pupil " << pupil << " (user " << userid << ") kept " << left << " of " << had
                       << " enrolments after leaving every set";
  }

  std::unique_ptr<SchoolSite> site_;
  std::string cfg_;
};

TEST_P(CrashTest, AKillMidStepLosesNoOwnerAndTheRerunFinishesTheJob) {
  const KillPoint& k = GetParam();
  if (k.prepare) {
    ASSERT_NO_FATAL_FAILURE(k.prepare(*this));
  }
  auto killed_run = KillMidStep(k);
  ASSERT_FALSE(::testing::Test::HasFailure());
  ASSERT_FALSE(killed_run.empty() && k.function == "enrol_manual_enrol_users") << "the killed run changed nothing";

  auto r = RunEnrolsync("sync " + cfg_);
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_THAT(r.out, HasSubstr("in flight")) << "the rerun did not reconcile the killed run's pending changes";
  EXPECT_EQ(RunEnrolsync("plan --detailed-exitcode " + cfg_).exit_code, 0) << "the rerun left work undone";
  ASSERT_NO_FATAL_FAILURE(ExpectEverythingOwned("after the rerun"));
  ASSERT_NO_FATAL_FAILURE(ExpectALeaverLosesTheirEnrolments(killed_run));
  ExpectEverythingOwned("after the leaver");
}

std::vector<KillPoint> Points() {
  auto synced = [](auto then) {
    return [then](CrashTest& t) {
      ASSERT_NO_FATAL_FAILURE(t.Sync());
      then(t);
    };
  };
  return {
      {"CourseCreate", "core_course_create_courses", 2, "suspend", nullptr},
      {"Enrol", "enrol_manual_enrol_users", 3, "suspend", nullptr},
      {"Suspend", "enrol_manual_enrol_users", 1, "suspend", synced([](CrashTest& t) { t.DropRows(); })},
      {"Reactivate", "enrol_manual_enrol_users", 1, "suspend", synced([](CrashTest& t) {
         t.DropRows();
         ASSERT_NO_FATAL_FAILURE(t.Sync());
         t.RestoreRows();
       })},
      {"RoleAssign", "core_role_assign_roles", 1, "suspend", synced([](CrashTest& t) { t.ChangeRoles(); })},
      {"RoleUnassign", "core_role_unassign_roles", 1, "suspend", synced([](CrashTest& t) { t.ChangeRoles(); })},
      {"Unenrol", "enrol_manual_unenrol_users", 1, "unenrol", synced([](CrashTest& t) { t.DropRows(); })},
  };
}

INSTANTIATE_TEST_SUITE_P(EveryWriteStep, CrashTest, ::testing::ValuesIn(Points()),
                         [](const ::testing::TestParamInfo<KillPoint>& i) { return i.param.name; });

// A pupil leaves every set and a sync runs: their enrolments are still
// enrolsync's, so they are suspended.
void ExpectALeaverIsSuspended(SchoolSite& site) {
  auto pupil = site.Query("SELECT l.txtSchoolID, lower(p.txtEmailAddress) FROM TblTeachingManagerSetLists l "
                          "JOIN TblPupilManagementPupils p ON p.txtSchoolID = l.txtSchoolID LIMIT 1");
  ASSERT_EQ(pupil.size(), 1u);
  ASSERT_TRUE(site.Exec("DELETE FROM TblTeachingManagerSetLists WHERE txtSchoolID = '" + pupil[0][0] + "'"));
  auto r = RunEnrolsync("sync --config " + site.config_path());
  ASSERT_EQ(r.exit_code, 0) << r.out;
  long long userid = 0;
  for (const auto& u : site.moodle().Users())
    if (ToLower(u.email) == pupil[0][1]) userid = u.id;
  ASSERT_GT(userid, 0);
  int active = 0, suspended = 0;
  for (const auto& e : site.moodle().Enrolments())
    if (e.method == "manual" && e.userid == userid) ++(e.status == 0 ? active : suspended);
  EXPECT_EQ(active, 0);
  EXPECT_GT(suspended, 0);
}

// A site after its first sync, for the ledger-loss tests.
class StateLossTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto st = site.Setup();
    ASSERT_TRUE(st) << st.error().message;
    auto r = RunEnrolsync("sync " + cfg);
    ASSERT_EQ(r.exit_code, 0) << r.out;
  }
  SchoolSite site;
  const std::string cfg = "--config " + site.config_path();
  const std::string state = site.dir() + "/state";
  const std::string db = state + "/state.db";
};

// A state.db emptied (disk full, a stray `>`) after earlier runs: sync
// refuses, names the copy to restore and sends nothing; restored, the next
// run carries on and a leaver is suspended. It used to start again as a
// fresh install, owning nothing, and never suspend anyone.
TEST_F(StateLossTest, AnEmptiedLedgerIsRefusedAndTheNewestCopyRestoresIt) {
  auto r = RunEnrolsync("sync " + cfg);  // the copy this run takes holds the first run's ownership
  ASSERT_EQ(r.exit_code, 0) << r.out;
  std::filesystem::resize_file(state + "/state.db", 0);
  std::filesystem::remove(state + "/state.db-wal");
  std::filesystem::remove(state + "/state.db-shm");
  site.moodle().ResetCallCounts();
  r = RunEnrolsync("sync " + cfg);
  EXPECT_EQ(r.exit_code, 1) << r.out;
  EXPECT_THAT(r.out, HasSubstr("is empty, but earlier runs left")) << r.out;
  EXPECT_THAT(r.out, HasSubstr("cp " + state + "/backups/state-")) << r.out;
  EXPECT_TRUE(site.moodle().CallCounts().empty()) << "nothing may be sent without the ledger";
  std::string newest;
  for (const auto& e : std::filesystem::directory_iterator(state + "/backups"))
    newest = std::max(newest, e.path().string());
  ASSERT_FALSE(newest.empty());
  std::filesystem::copy_file(newest, state + "/state.db", std::filesystem::copy_options::overwrite_existing);
  EXPECT_EQ(RunEnrolsync("plan --detailed-exitcode " + cfg).exit_code, 0);
  ExpectALeaverIsSuspended(site);
}

// The same loss with no copy to restore (state_dir wiped but for its
// reports): sync refuses and names `enrolsync adopt`; adopt shows what it can
// rebuild from Moodle and sends nothing, and a plain adopt leaves the refusal
// in place; adopt --apply records exactly the enrolments, roles and courses
// the lost ledger held, after which a sync has nothing to do and a leaver is
// suspended.
TEST_F(StateLossTest, WithNoCopyAdoptRebuildsTheOwnershipFromMoodle) {
  auto rows = [&](const std::string& sql) {
    std::set<std::vector<std::string>> out;
    auto q = testsupport::QuerySqlite(db, sql);
    EXPECT_TRUE(q) << q.error().message;
    if (q) out.insert(q->begin(), q->end());
    return out;
  };
  const std::string kEnrolments = "SELECT courseid, userid, status, owns_enrolment FROM owned_enrolment";
  const std::string kRoles = "SELECT courseid, userid, roleid FROM owned_role";
  const std::string kCourses = "SELECT courseid FROM created_course";
  const auto enrolments = rows(kEnrolments), roles = rows(kRoles), courses = rows(kCourses);
  ASSERT_GT(enrolments.size(), 100u);
  ASSERT_GT(courses.size(), 5u);
  std::filesystem::resize_file(db, 0);
  std::filesystem::remove(db + "-wal");
  std::filesystem::remove(db + "-shm");
  std::filesystem::remove_all(state + "/backups");

  auto r = RunEnrolsync("sync " + cfg);
  EXPECT_EQ(r.exit_code, 1) << r.out;
  EXPECT_THAT(r.out, HasSubstr("enrolsync adopt")) << r.out;

  site.moodle().ResetCallCounts();
  r = RunEnrolsync("adopt --detailed-exitcode " + cfg);
  EXPECT_EQ(r.exit_code, 2) << r.out;
  EXPECT_THAT(r.out, HasSubstr("+ own enrolment ")) << r.out;
  EXPECT_THAT(r.out, HasSubstr("+ own course ")) << r.out;
  EXPECT_THAT(r.out, HasSubstr("Adopt: " + std::to_string(courses.size()) + " course(s), " +
                               std::to_string(enrolments.size()) + " enrolment(s) to record"))
      << r.out;
  for (const auto& [fn, n] : site.moodle().CallCounts())
    EXPECT_TRUE(fn.find("get") != std::string::npos) << "adopt sent " << fn;
  EXPECT_EQ(std::filesystem::file_size(db), 0u) << "a plain adopt must not defuse the refusal";
  EXPECT_EQ(RunEnrolsync("sync " + cfg).exit_code, 1);

  // An adopt --apply that fails (here: a wrong token) leaves the lost
  // ledger as it was, still refused, not a fresh empty one.
  const std::string token = Slurp(site.dir() + "/moodle.token");
  std::ofstream(site.dir() + "/moodle.token") << "wrong-token\n";
  r = RunEnrolsync("adopt --apply " + cfg);
  EXPECT_EQ(r.exit_code, 1) << r.out;
  std::ofstream(site.dir() + "/moodle.token") << token;
  EXPECT_EQ(std::filesystem::file_size(db), 0u) << "a failed adopt --apply left a new ledger behind";
  EXPECT_EQ(RunEnrolsync("sync " + cfg).exit_code, 1);

  r = RunEnrolsync("adopt --apply " + cfg);
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_THAT(r.out, HasSubstr("Adopted: ")) << r.out;
  for (const auto& [fn, n] : site.moodle().CallCounts())
    EXPECT_TRUE(fn.find("get") != std::string::npos) << "adopt --apply sent " << fn;
  EXPECT_EQ(rows(kEnrolments), enrolments);
  EXPECT_EQ(rows(kRoles), roles);
  EXPECT_EQ(rows(kCourses), courses);
  r = RunEnrolsync("adopt --detailed-exitcode " + cfg);
  EXPECT_EQ(r.exit_code, 0) << "a second adopt finds nothing left to record:\n" << r.out;

  r = RunEnrolsync("plan --detailed-exitcode " + cfg);
  EXPECT_EQ(r.exit_code, 0) << r.out;
  ExpectALeaverIsSuspended(site);
}

// The whole state_dir gone (a new server set up from the config alone): no
// report or copy says earlier runs happened, so the state.db is new; but the
// site holds the feed's courses and enrolments. Syncing on would own none of
// them and never suspend a leaver. The sync is refused before anything is
// sent and names the ways on; `plan` only warns. adopt --apply takes them
// back; `--first-run` (or take_over_existing) is the answer when another
// method made them, and is asked once.
TEST_F(StateLossTest, AWholeStateDirGoneIsRefusedBecauseTheSiteAlreadyHoldsTheFeed) {
  auto q = testsupport::QuerySqlite(db, "SELECT COUNT(*) FROM owned_enrolment WHERE owns_enrolment = 1");
  ASSERT_TRUE(q) << q.error().message;
  const std::string owned = (*q)[0][0];
  ASSERT_GT(std::stoi(owned), 100);

  std::filesystem::remove_all(state);
  site.moodle().ResetCallCounts();
  auto r = RunEnrolsync("sync " + cfg);
  EXPECT_EQ(r.exit_code, 1) << r.out;
  EXPECT_THAT(r.out, HasSubstr("owns nothing yet")) << r.out;
  EXPECT_THAT(r.out, HasSubstr("enrolsync adopt")) << r.out;
  EXPECT_THAT(r.out, HasSubstr("--first-run")) << r.out;
  for (const auto& [fn, n] : site.moodle().CallCounts())
    EXPECT_TRUE(fn.find("get") != std::string::npos) << "the refused sync sent " << fn;
  r = RunEnrolsync("plan " + cfg);
  EXPECT_EQ(r.exit_code, 0) << r.out;
  EXPECT_THAT(r.out, HasSubstr("warning: sync will refuse: ")) << r.out;
  EXPECT_EQ(RunEnrolsync("sync " + cfg).exit_code, 1) << "refused again, not only once";

  r = RunEnrolsync("adopt --apply " + cfg);
  ASSERT_EQ(r.exit_code, 0) << r.out;
  q = testsupport::QuerySqlite(db, "SELECT COUNT(*) FROM owned_enrolment WHERE owns_enrolment = 1");
  ASSERT_TRUE(q) << q.error().message;
  EXPECT_EQ((*q)[0][0], owned);
  r = RunEnrolsync("plan --detailed-exitcode " + cfg);
  EXPECT_EQ(r.exit_code, 0) << r.out;
  ExpectALeaverIsSuspended(site);

  // Another method's enrolments: --first-run leaves them to it, once; the
  // next syncs are not asked again although they own nothing.
  std::filesystem::remove_all(state);
  r = RunEnrolsync("sync --first-run " + cfg);
  EXPECT_EQ(r.exit_code, 0) << r.out;
  q = testsupport::QuerySqlite(db, "SELECT COUNT(*) FROM owned_enrolment WHERE owns_enrolment = 1");
  ASSERT_TRUE(q) << q.error().message;
  EXPECT_EQ((*q)[0][0], "0") << "the existing enrolments stay someone else's";
  r = RunEnrolsync("sync " + cfg);
  EXPECT_EQ(r.exit_code, 0) << r.out;
}

}  // namespace
}  // namespace enrolsync::testing
