// What must never happen, and what bad input must look like: the removal
// guard, empty/unreadable/broken sources, Moodle failing mid-run, drift, and
// enrolments that are not ours. Each test runs real syncs against the sandbox.
#include <filesystem>
#include <fstream>
#include <set>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <thread>

#include "school_site.h"
#include "state/state_db.h"
#include "util/strings.h"

namespace enrolsync::testing {
namespace {

using ::testing::AllOf;
using ::testing::Contains;
using ::testing::HasSubstr;
using ::testing::Not;

class SafetyTest : public ::testing::Test {
 protected:
  void SetUp() override { Start({}); }
  void Start(SiteOptions o) {
    site_ = std::make_unique<SchoolSite>(o);
    auto st = site_->Setup();
    ASSERT_TRUE(st) << st.error().message;
  }
  void InitialSync() {
    auto r = site_->Sync();
    ASSERT_EQ(r.exit_code, 0) << r.error;
    ASSERT_GT(r.apply.applied.enrol, 500);
  }
  int Problems(const sync::RunReport& r, const std::string& needle) {
    int n = 0;
    for (const auto& p : r.plan.problems) n += p.reason.find(needle) != std::string::npos;
    return n;
  }
  const plan::Problem* FindProblem(const sync::RunReport& r, const std::string& needle) {
    for (const auto& p : r.plan.problems)
      if (p.reason.find(needle) != std::string::npos) return &p;
    return nullptr;
  }
  model::MoodleId CourseId(const std::string& idnumber) {
    for (const auto& c : site_->moodle().Courses())
      if (c.idnumber == idnumber) return c.id;
    return 0;
  }
  model::MoodleId UserId(const std::string& email) {
    for (const auto& u : site_->moodle().Users())
      if (u.email == email) return u.id;
    return 0;
  }
  std::unique_ptr<SchoolSite> site_;
};

// ---------------------------------------------------------------- removal guard

TEST_F(SafetyTest, RemovalsOverTheLimitLeaveMoodleUnchangedAndExit3) {
  InitialSync();
  auto before = site_->Moodle();
  // A third of all pupils vanish from set lists (a broken MIS export).
  ASSERT_TRUE(site_->Exec("DELETE FROM TblTeachingManagerSetLists WHERE TblTeachingManagerSetListsID % 3 = 0"));
  site_->moodle().ResetCallCounts();
  auto r = site_->Sync();
  EXPECT_EQ(r.exit_code, sync::kExitRemovalGuard);
  EXPECT_TRUE(r.plan.guard_tripped);
  EXPECT_GT(r.plan.summary.suspend, r.plan.removal_limit);
  EXPECT_EQ(r.write_calls, 0);
  EXPECT_TRUE(site_->Moodle() == before) << Describe(before, site_->Moodle());

  // An admin approves exactly this run.
  auto approved = site_->Sync(true, r.plan.summary.Removals());
  EXPECT_EQ(approved.exit_code, 0) << approved.error;
  EXPECT_EQ(approved.apply.applied.suspend, r.plan.summary.suspend);
}

TEST_F(SafetyTest, EmptyEnrolmentFeedRemovesNothing) {
  InitialSync();
  auto before = site_->Moodle();
  ASSERT_TRUE(site_->Exec("DELETE FROM TblTeachingManagerSetLists; DELETE FROM TblTeachingManagerSetAssociatedTeachers;"
                          "UPDATE TblTeachingManagerSets SET txtTeacher = NULL;"));
  ASSERT_TRUE(site_->EnrolFeed().empty());
  auto r = site_->Sync();
  EXPECT_EQ(r.exit_code, 0) << r.error;
  EXPECT_GT(r.plan.removals_withheld, 500);
  EXPECT_THAT(r.plan.removal_block_reasons, Contains(HasSubstr("returned 0 rows")));
  EXPECT_EQ(r.write_calls, 0);
  EXPECT_TRUE(site_->Moodle() == before);
}

TEST_F(SafetyTest, UnreadableSourceStopsTheRunAndNamesTheFile) {
  InitialSync();
  auto before = site_->Moodle();
  std::ofstream(site_->dir() + "/school.db", std::ios::trunc) << "this is not an SQLite database, it is a PDF";
  auto r = site_->Sync();
  EXPECT_EQ(r.exit_code, sync::kExitError);
  EXPECT_THAT(r.error, HasSubstr("school.db"));
  EXPECT_EQ(r.write_calls, 0);
  EXPECT_TRUE(site_->Moodle() == before);
}

TEST_F(SafetyTest, MissingColumnErrorNamesTableAndColumn) {
  site_->WriteConfig();
  std::string cfg;
  {
    std::ifstream in(site_->config_path());
    cfg.assign(std::istreambuf_iterator<char>(in), {});
  }
  auto pos = cfg.find("user_field = \"txtEmailAddress\"");
  cfg.replace(pos, std::string("user_field = \"txtEmailAddress\"").size(), "user_field = \"txtEmail\"");
  std::ofstream(site_->config_path()) << cfg;
  auto r = site_->Sync();
  EXPECT_EQ(r.exit_code, sync::kExitError);
  EXPECT_THAT(r.error, AllOf(HasSubstr("VwMoodleEnrolData"), HasSubstr("txtEmail")));
  EXPECT_EQ(r.write_calls, 0);
}

TEST_F(SafetyTest, MissingTableErrorNamesTheTable) {
  ASSERT_TRUE(site_->Exec("DROP VIEW VwMoodleCourseData"));
  auto r = site_->Sync();
  EXPECT_EQ(r.exit_code, sync::kExitError);
  EXPECT_THAT(r.error, HasSubstr("VwMoodleCourseData"));
  EXPECT_TRUE(site_->moodle().Courses().size() <= 1u) << "nothing may be created";
}

// ---------------------------------------------------------------- bad rows

TEST_F(SafetyTest, BadRowsAreReportedWithTableRowAndValuesAndSkipped) {
  // A duplicated pupil row, an unknown user, an unknown role, and a course
  // row with an empty shortname.
  std::string view = site_->Query("SELECT sql FROM sqlite_master WHERE name = 'VwMoodleEnrolData'")[0][0];
  view.replace(view.find("\"VwMoodleEnrolData\""), 19, "\"VwMoodleEnrolData_base\"");
  ASSERT_TRUE(site_->Exec("DROP VIEW VwMoodleEnrolData; " + view));
  ASSERT_TRUE(site_->Exec(
      "CREATE VIEW VwMoodleEnrolData (txtSetCode, txtEmailAddress, intRoleID) AS "
      "SELECT txtSetCode, txtEmailAddress, intRoleID FROM VwMoodleEnrolData_base "
      "UNION ALL SELECT * FROM (SELECT txtSetCode, txtEmailAddress, intRoleID FROM VwMoodleEnrolData_base LIMIT 1) "
      "UNION ALL SELECT * FROM (SELECT txtSetCode, 'nadia.newcomer@school.test', 5 FROM VwMoodleEnrolData_base "
      "LIMIT 1 OFFSET 7) "
      "UNION ALL SELECT * FROM (SELECT txtSetCode, txtEmailAddress, 99 FROM VwMoodleEnrolData_base LIMIT 1 OFFSET 3)"));
  std::string cview = site_->Query("SELECT sql FROM sqlite_master WHERE name = 'VwMoodleCourseData'")[0][0];
  cview.replace(cview.find("\"VwMoodleCourseData\""), 20, "\"VwMoodleCourseData_base\"");
  ASSERT_TRUE(site_->Exec("DROP VIEW VwMoodleCourseData; " + cview));
  ASSERT_TRUE(site_->Exec("CREATE VIEW VwMoodleCourseData (txtFullName, txtShortName, txtCourseID, intCategoryID) AS "
                          "SELECT * FROM VwMoodleCourseData_base UNION ALL SELECT 'Orphan set', '', 'ORPH', 3"));
  auto r = site_->Sync();
  ASSERT_EQ(r.exit_code, 0) << r.error;
  const auto* dup = FindProblem(r, "counted once");
  ASSERT_NE(dup, nullptr);
  EXPECT_EQ(dup->table, "VwMoodleEnrolData");
  EXPECT_FALSE(dup->skipped);
  const auto* unknown = FindProblem(r, "unknown user email 'nadia.newcomer@school.test'");
  ASSERT_NE(unknown, nullptr);
  EXPECT_GT(unknown->row, 1000u);
  EXPECT_EQ(unknown->values[1].first, "txtEmailAddress");
  EXPECT_EQ(unknown->values[1].second, "nadia.newcomer@school.test");
  EXPECT_EQ(Problems(r, "unknown role id '99'"), 1);
  EXPECT_EQ(Problems(r, "shortname and fullname are mandatory"), 1);
  // The careers set's unknown category is reported, and its rows too.
  EXPECT_EQ(Problems(r, "invalid category id '999'"), 1);
  EXPECT_GT(Problems(r, "course '11/CR1' does not exist in Moodle"), 0);
  // And again on the next run: a refused course is never silently forgotten.
  auto again = site_->Sync();
  EXPECT_EQ(Problems(again, "invalid category id '999'"), 1);
  EXPECT_EQ(again.write_calls, 0);
}

// ---------------------------------------------------------------- Moodle failing

TEST_F(SafetyTest, BadTokenIsAClearErrorWithoutTheToken) {
  std::ofstream(site_->dir() + "/moodle.token") << "wrong-token-4711-abcdef\n";
  auto r = site_->Sync();
  EXPECT_EQ(r.exit_code, sync::kExitError);
  EXPECT_THAT(r.error, HasSubstr("invalidtoken"));
  EXPECT_THAT(r.error, Not(HasSubstr("wrong-token-4711-abcdef")));
}

TEST_F(SafetyTest, MoodleExceptionMidBatchIsIsolatedAndEveryGoodItemLands) {
  sandbox::Sandbox::Fault f;
  f.function = "enrol_manual_enrol_users";
  f.skip = 1;
  f.times = 1;
  f.kind = sandbox::Sandbox::Fault::kException;
  site_->moodle().InjectFault(f);
  auto r = site_->Sync();
  EXPECT_EQ(r.exit_code, 0) << r.error;
  EXPECT_TRUE(r.apply.failures.empty());
  auto again = site_->Sync();
  EXPECT_FALSE(again.plan.HasChanges());
}

TEST_F(SafetyTest, PersistentMoodleFailureIsPartialLosesNothingAndTheNextRunFinishes) {
  sandbox::Sandbox::Fault f;
  f.function = "enrol_manual_enrol_users";
  f.skip = 2;
  f.times = 1000000;
  f.kind = sandbox::Sandbox::Fault::kException;
  f.errorcode = "invalidrecordunknown";
  site_->moodle().InjectFault(f);
  auto r = site_->Sync();
  EXPECT_EQ(r.exit_code, sync::kExitPartial);
  EXPECT_FALSE(r.apply.failures.empty());
  EXPECT_GT(r.apply.applied.enrol, 0);
  EXPECT_LT(r.apply.applied.enrol, r.plan.summary.enrol);
  site_->moodle().ClearFaults();
  auto next = site_->Sync();
  EXPECT_EQ(next.exit_code, 0) << next.error;
  // Exactly the enrolments that failed are sent again: the state database
  // recorded only what Moodle accepted.
  EXPECT_EQ(next.apply.applied.enrol, r.plan.summary.enrol - r.apply.applied.enrol);
  EXPECT_EQ(next.apply.applied.courses_create, 0);
  EXPECT_FALSE(site_->Sync().plan.HasChanges());
}

// A row Moodle refuses night after night (here a role it will not assign in
// a course: wsusercannotassign) used to make every batch holding it fail and
// be bisected again on every run. The refused item is recorded and the next
// run sends it alone first: its set's new pupils land in one call.
TEST_F(SafetyTest, ARowMoodleRefusesIsSentAloneTheNextRunSoItsBatchIsNotBisectedAgain) {
  auto set = site_->Query(
      "SELECT l.intSetID, COUNT(*) FROM TblTeachingManagerSetLists l JOIN TblPupilManagementPupils p "
      "ON p.txtSchoolID = l.txtSchoolID WHERE p.intSystemStatus = 1 GROUP BY l.intSetID ORDER BY COUNT(*) DESC, "
      "l.intSetID LIMIT 1");
  ASSERT_EQ(set.size(), 1u);
  const std::string setid = set[0][0];
  const int held = std::stoi(set[0][1]) - 2;
  ASSERT_GE(held, 10);
  ASSERT_TRUE(site_->Exec("CREATE TABLE held AS SELECT * FROM TblTeachingManagerSetLists WHERE intSetID = " + setid +
                          " ORDER BY TblTeachingManagerSetListsID DESC LIMIT " + std::to_string(held)));
  ASSERT_TRUE(site_->Exec("DELETE FROM TblTeachingManagerSetLists WHERE TblTeachingManagerSetListsID IN "
                          "(SELECT TblTeachingManagerSetListsID FROM held)"));
  auto pupil = site_->Query("SELECT txtSchoolID FROM TblTeachingManagerSetLists WHERE intSetID = " + setid +
                            " ORDER BY TblTeachingManagerSetListsID LIMIT 1");
  ASSERT_EQ(pupil.size(), 1u);
  auto view = site_->Query("SELECT sql FROM sqlite_master WHERE name = 'VwMoodleEnrolData'");
  ASSERT_EQ(view.size(), 1u);
  std::string sql = view[0][0];
  const std::string from = "SELECT s.\"txtSetCode\", p.\"txtEmailAddress\", 5";
  auto pos = sql.find(from);
  ASSERT_NE(pos, std::string::npos) << sql;
  // Role 7 ("user", authenticated user) cannot be assigned in a course.
  sql.replace(pos, from.size(),
              "SELECT s.\"txtSetCode\", p.\"txtEmailAddress\", CASE WHEN l.\"txtSchoolID\" = '" + pupil[0][0] +
                  "' AND l.\"intSetID\" = " + setid + " THEN 7 ELSE 5 END");
  ASSERT_TRUE(site_->Exec("DROP VIEW VwMoodleEnrolData; " + sql));

  auto first = site_->Sync();
  EXPECT_EQ(first.exit_code, sync::kExitPartial) << first.error;
  ASSERT_EQ(first.apply.failures.size(), 1u);
  EXPECT_THAT(first.apply.failures[0].message, ::testing::HasSubstr("wsusercannotassign"));
  auto recorded = state::StateDb::Open(site_->dir() + "/state");
  ASSERT_TRUE(recorded) << recorded.error().message;
  auto failed = (*recorded)->LoadFailedItems();
  ASSERT_TRUE(failed) << failed.error().message;
  ASSERT_EQ(failed->size(), 1u);
  EXPECT_EQ((*failed)[0].function, "enrol_manual_enrol_users");
  recorded->reset();

  ASSERT_TRUE(site_->Exec("INSERT INTO TblTeachingManagerSetLists SELECT * FROM held"));
  site_->moodle().ResetCallCounts();
  auto next = site_->Sync();
  EXPECT_EQ(next.exit_code, sync::kExitPartial) << next.error;
  EXPECT_EQ(next.apply.applied.enrol, held);
  ASSERT_EQ(next.apply.failures.size(), 1u);
  EXPECT_EQ(site_->moodle().CallCounts()["enrol_manual_enrol_users"], 2)
      << "the refused row alone, then the " << held << " new pupils in one call";
}

TEST_F(SafetyTest, RolesOfAFailedEnrolmentAreLeftForTheNextRun) {
  // A teacher who holds two roles in a set (two rows differing in role).
  std::string view = site_->Query("SELECT sql FROM sqlite_master WHERE name = 'VwMoodleEnrolData'")[0][0];
  view.replace(view.find("\"VwMoodleEnrolData\""), 19, "\"VwMoodleEnrolData_base\"");
  ASSERT_TRUE(site_->Exec("DROP VIEW VwMoodleEnrolData; " + view));
  ASSERT_TRUE(site_->Exec("CREATE VIEW VwMoodleEnrolData (txtSetCode, txtEmailAddress, intRoleID) AS "
                          "SELECT txtSetCode, txtEmailAddress, intRoleID FROM VwMoodleEnrolData_base UNION ALL "
                          "SELECT * FROM (SELECT txtSetCode, txtEmailAddress, 4 FROM VwMoodleEnrolData_base "
                          "WHERE intRoleID = 3 LIMIT 1)"));
  sandbox::Sandbox::Fault f;
  f.function = "enrol_manual_enrol_users";
  f.times = 1000000;
  f.kind = sandbox::Sandbox::Fault::kException;
  f.errorcode = "accessexception";  // a whole-call error: nothing is bisected
  site_->moodle().InjectFault(f);
  auto r = site_->Sync();
  EXPECT_EQ(r.exit_code, sync::kExitPartial);
  ASSERT_EQ(r.plan.summary.role_assign, 1);
  EXPECT_EQ(r.apply.applied.enrol, 0);
  EXPECT_EQ(r.apply.applied.role_assign, 0);
  bool skipped = false;
  for (const auto& fail : r.apply.failures) skipped |= fail.message == "skipped: the enrolment change for this user failed";
  EXPECT_TRUE(skipped);
  EXPECT_TRUE(site_->moodle().RoleAssignments().empty()) << "no role for a user who is not enrolled";
  site_->moodle().ClearFaults();
  auto next = site_->Sync();
  EXPECT_EQ(next.exit_code, 0) << next.error;
  EXPECT_EQ(next.apply.applied.role_assign, 1);
  EXPECT_FALSE(site_->Sync().plan.HasChanges());
}

TEST_F(SafetyTest, CourseCreateWhoseAnswerWasLostIsNotSentAgainAndTheNextRunRecordsIt) {
  // The first create call is applied but its answer never arrives. A second
  // create would fail on the duplicate shortnames, so it is not sent: those
  // courses fail this run (exit 4) and their intents stay pending; the next
  // run reads them back and records them as enrolsync's.
  sandbox::Sandbox::Fault f;
  f.function = "core_course_create_courses";
  f.kind = sandbox::Sandbox::Fault::kDropConnection;
  f.apply = true;
  site_->moodle().InjectFault(f);
  auto r = site_->Sync();
  EXPECT_EQ(r.exit_code, sync::kExitPartial) << r.error;
  EXPECT_EQ(site_->moodle().CallCounts()["core_course_create_courses"], 1);
  ASSERT_FALSE(r.apply.failures.empty());
  EXPECT_THAT(r.apply.failures[0].message, HasSubstr("dropped after the request was sent"));
  const std::size_t courses = site_->moodle().Courses().size();
  site_->moodle().ClearFaults();
  auto next = site_->Sync();
  EXPECT_EQ(next.exit_code, 0) << next.error << (next.apply.failures.empty() ? "" : next.apply.failures[0].message);
  EXPECT_EQ(next.apply.applied.courses_create, 0);
  EXPECT_EQ(site_->moodle().Courses().size(), courses) << "a course was created twice";
  EXPECT_FALSE(site_->Sync().plan.HasChanges());
}

TEST_F(SafetyTest, TimeoutIsReportedAndNothingChanges) {
  site_->WriteConfig();
  std::string cfg;
  {
    std::ifstream in(site_->config_path());
    cfg.assign(std::istreambuf_iterator<char>(in), {});
  }
  cfg.replace(cfg.find("max_input_vars"), 0, "timeout_seconds = 1\nmax_retries = 1\n");
  std::ofstream(site_->config_path()) << cfg;
  sandbox::Sandbox::Fault f;
  f.function = "core_course_get_courses_by_field";
  f.times = 10;
  f.kind = sandbox::Sandbox::Fault::kDelay;
  f.delay_ms = 2500;
  site_->moodle().InjectFault(f);
  auto r = site_->Sync();
  EXPECT_EQ(r.exit_code, sync::kExitError);
  EXPECT_THAT(r.error, HasSubstr("within 1 s"));
  EXPECT_EQ(r.write_calls, 0);
}

TEST_F(SafetyTest, WelcomeMessageFailureIsTreatedAsCommittedOnceVerified) {
  sandbox::Sandbox::Fault f;
  f.function = "enrol_manual_enrol_users";
  f.times = 1000000;
  f.kind = sandbox::Sandbox::Fault::kMessageNotSent;
  site_->moodle().InjectFault(f);
  auto r = site_->Sync();
  EXPECT_EQ(r.exit_code, 0) << r.error;
  EXPECT_EQ(r.apply.message_not_sent, r.plan.summary.enrol);
  EXPECT_THAT(r.warnings, Contains(HasSubstr("welcome message")));
  site_->moodle().ClearFaults();
  EXPECT_FALSE(site_->Sync().plan.HasChanges());
}

// ---------------------------------------------------------------- ownership and drift

TEST_F(SafetyTest, EnrolmentsEnrolsyncDidNotMakeAreNeverTouched) {
  SiteOptions o;
  o.unenrol_action = "unenrol";
  Start(o);
  InitialSync();
  auto set = site_->EnrolFeed().front();
  model::MoodleId course = CourseId(std::get<0>(set));
  // A teacher enrols a visitor by hand; a pupil also self-enrols elsewhere.
  model::MoodleId visitor = UserId(site_->school().people.back().email);
  ASSERT_TRUE(site_->moodle().AddEnrolmentAs("manual", course, visitor, 5));
  model::MoodleId pupil = UserId(std::get<1>(set));
  model::MoodleId other = 0;
  for (const auto& c : site_->moodle().Courses())
    if (c.id != course && c.id != 1) other = c.id;
  ASSERT_TRUE(site_->moodle().AddEnrolmentAs("self", other, pupil, 5));
  auto r = site_->Sync(true, -1, /*verify_all=*/true);
  EXPECT_EQ(r.exit_code, 0) << r.error;
  EXPECT_FALSE(r.plan.HasChanges()) << plan::PlanLine(r.plan.items.front());
  bool visitor_there = false, self_there = false;
  for (const auto& e : site_->moodle().Enrolments()) {
    visitor_there |= e.courseid == course && e.userid == visitor && e.status == 0;
    self_there |= e.courseid == other && e.userid == pupil && e.method == "self";
  }
  EXPECT_TRUE(visitor_there);
  EXPECT_TRUE(self_there);
}

TEST_F(SafetyTest, TakeOverExistingMovesASchoolOffEnrolDatabase) {
  // Courses exist and enrol_database enrolled everyone (method "database").
  std::string view = site_->Query("SELECT sql FROM sqlite_master WHERE name = 'VwMoodleEnrolData'")[0][0];
  auto feed = site_->EnrolFeed();
  ASSERT_TRUE(site_->Exec("DROP VIEW VwMoodleEnrolData; CREATE VIEW VwMoodleEnrolData (txtSetCode, txtEmailAddress, "
                          "intRoleID) AS SELECT 'x', 'y', 5 WHERE 0"));
  ASSERT_EQ(site_->Sync().exit_code, 0);
  ASSERT_TRUE(site_->Exec("DROP VIEW VwMoodleEnrolData; " + view));
  int seeded = 0;
  for (const auto& [set, email, role] : feed) {
    model::MoodleId c = CourseId(set), u = UserId(email);
    if (!c || !u) continue;
    ASSERT_TRUE(site_->moodle().AddEnrolmentAs("database", c, u, role));
    ++seeded;
  }
  ASSERT_GT(seeded, 1000);
  // Without take_over_existing, their enrolments are someone else's.
  auto r = site_->Sync();
  ASSERT_EQ(r.exit_code, 0) << r.error;
  EXPECT_EQ(r.apply.applied.enrol, 0);
  // With it, enrolsync adds its own manual enrolment beside each one.
  std::string cfg;
  {
    std::ifstream in(site_->config_path());
    cfg.assign(std::istreambuf_iterator<char>(in), {});
  }
  cfg.replace(cfg.find("ignore_hidden_courses = false"), 29, "ignore_hidden_courses = false\ntake_over_existing = true");
  std::ofstream(site_->config_path()) << cfg;
  r = site_->Sync();
  ASSERT_EQ(r.exit_code, 0) << r.error;
  EXPECT_GT(r.apply.applied.enrol, 1000);
  int manual = 0, database = 0;
  for (const auto& e : site_->moodle().Enrolments()) {
    manual += e.method == "manual" && e.status == 0;
    database += e.method == "database";
  }
  EXPECT_EQ(manual, r.apply.applied.enrol);
  EXPECT_EQ(database, seeded) << "the plugin's own enrolments are left for the admin to remove";
  EXPECT_FALSE(site_->Sync().plan.HasChanges());
}

TEST_F(SafetyTest, DriftIsFoundAndCorrected) {
  InitialSync();
  auto before = site_->Moodle();
  auto row = site_->EnrolFeed()[10];
  model::MoodleId course = CourseId(std::get<0>(row));
  model::MoodleId pupil = UserId(std::get<1>(row));
  // A teacher unenrols a pupil by hand: --verify finds it.
  ASSERT_TRUE(site_->moodle().RemoveEnrolment(course, pupil, "manual"));
  auto r = site_->Sync(true, -1, true);
  EXPECT_EQ(r.exit_code, 0) << r.error;
  EXPECT_EQ(r.apply.applied.enrol, 1);
  EXPECT_TRUE(site_->Moodle() == before) << Describe(before, site_->Moodle());

  // An admin deletes a course: the next ordinary run that reads it (the
  // rotation reads the oldest-verified first, ties by id: here the lowest
  // id) recreates it and its enrolments.
  std::string doomed;
  for (const auto& [set, email, role] : site_->EnrolFeed()) {
    const model::MoodleId c = CourseId(set);
    if (c && UserId(email) && (doomed.empty() || c < CourseId(doomed))) doomed = set;
  }
  ASSERT_FALSE(doomed.empty());
  ASSERT_TRUE(site_->moodle().DeleteCourse(CourseId(doomed)));
  auto r2 = site_->Sync();
  EXPECT_EQ(r2.exit_code, 0) << r2.error;
  EXPECT_EQ(r2.apply.applied.courses_create, 1);
  EXPECT_NE(CourseId(doomed), 0);
  EXPECT_TRUE(site_->Moodle() == before) << Describe(before, site_->Moodle());
}

// Drift in courses no plan touches is found by the rotation: with the
// default verify_max_age_days = 7 and one run a day, every managed course is
// read once in 6 runs (one run spare), ceil(managed / 6) courses a run.
TEST_F(SafetyTest, HandMadeDriftInUntouchedCoursesIsCorrectedWithinTheRotation) {
  InitialSync();
  auto before = site_->Moodle();
  std::map<model::MoodleId, std::vector<model::MoodleId>> managed;  // course -> its users
  for (const auto& [set, email, role] : site_->EnrolFeed()) {
    model::MoodleId c = CourseId(set), u = UserId(email);
    if (c && u) managed[c].push_back(u);
  }
  ASSERT_GT(managed.size(), 30u);
  const int share = static_cast<int>((managed.size() + 5) / 6);
  // Every course was verified when it was created; ties go by id, so the
  // highest id is read last.
  auto last = std::prev(managed.end());
  auto middle = std::next(managed.begin(), static_cast<long>(managed.size() / 2));
  ASSERT_TRUE(site_->moodle().RemoveEnrolment(last->first, last->second[0], "manual"));
  ASSERT_TRUE(site_->moodle().SetEnrolmentStatus(middle->first, middle->second[0], "manual", 1));
  int runs = 0;
  while (runs < 6 && !(site_->Moodle() == before)) {
    // Verification times are whole seconds: runs in the same second as the
    // last one would tie with courses not yet read (nightly runs never do).
    std::this_thread::sleep_for(std::chrono::milliseconds(1100));
    auto r = site_->Sync();
    ASSERT_EQ(r.exit_code, 0) << r.error;
    EXPECT_LE(r.courses_verified, share) << "run " << runs + 1;
    ++runs;
  }
  EXPECT_TRUE(site_->Moodle() == before) << "after " << runs << " runs: " << Describe(before, site_->Moodle());
  EXPECT_EQ(runs, static_cast<int>((managed.size() + share - 1) / share)) << "the last course comes round last";
}

TEST_F(SafetyTest, SiteSuspendedUserKeepsActiveEnrolments) {
  InitialSync();
  auto before = site_->Moodle();
  ASSERT_TRUE(site_->moodle().SetUserSuspended(UserId(std::get<1>(site_->EnrolFeed()[0])), true));
  auto r = site_->Sync(true, -1, true);
  EXPECT_FALSE(r.plan.HasChanges());
  EXPECT_TRUE(site_->Moodle() == before);
}

TEST_F(SafetyTest, NoChangeRunCostsAHandfulOfCalls) {
  InitialSync();
  site_->moodle().ResetCallCounts();
  auto r = site_->Sync();
  ASSERT_EQ(r.exit_code, 0);
  int total = 0;
  for (const auto& [fn, n] : site_->moodle().CallCounts()) total += n;
  // site info, categories, courses, one user lookup, and 2 reads for each of
  // the courses verified in rotation: ceil(managed / 6) with the defaults
  // (verify_max_age_days = 7, one run a day).
  std::set<model::MoodleId> managed;
  for (const auto& [set, email, role] : site_->EnrolFeed())
    if (CourseId(set) && UserId(email)) managed.insert(CourseId(set));
  EXPECT_EQ(r.courses_verified, static_cast<int>((managed.size() + 5) / 6));
  EXPECT_LE(total, 4 + 2 * r.courses_verified);
  EXPECT_EQ(r.write_calls, 0);
}

TEST_F(SafetyTest, VerboseSyncPrintsMoodlesOwnLines) {
  std::vector<std::string> trace;
  auto r = site_->Sync(true, -1, false, &trace);
  ASSERT_EQ(r.exit_code, 0);
  // A Mathematics set (category 3) with a teacher.
  std::string idnumber, shortname;
  for (const auto& [idn, sn, cat] : site_->CourseFeed()) {
    if (cat == "3" && idnumber.empty()) {
      idnumber = idn;
      shortname = sn;
    }
  }
  model::MoodleId id = CourseId(idnumber);
  ASSERT_NE(id, 0);
  EXPECT_THAT(trace, Contains("creating course: " + std::to_string(id) + ", " + shortname + ", " + shortname +
                              ", " + idnumber + ", 3"));
  EXPECT_THAT(trace, Contains(::testing::MatchesRegex("enrolling: [0-9]+ ==> " + shortname + " as student")));
  EXPECT_THAT(trace, Contains(::testing::MatchesRegex("enrolling: [0-9]+ ==> " + shortname + " as editingteacher")));
}

TEST_F(SafetyTest, ASecondRunWhileOneIsGoingIsRefused) {
  auto cfg = site_->Config();
  ASSERT_TRUE(cfg);
  auto lock = state::RunLock::Acquire(cfg->state_dir);
  ASSERT_TRUE(lock);
  auto r = site_->Sync();
  EXPECT_EQ(r.exit_code, sync::kExitError);
  EXPECT_THAT(r.error, HasSubstr("another enrolsync run"));
}

// [state] keep_runs: the newest N reports keep their items (reports/), every
// run keeps its summary in state.db with its lists as counts; nothing grows
// without bound.
TEST_F(SafetyTest, OnlyTheNewestKeepRunsReportsKeepTheirItems) {
  SiteOptions o;
  o.extra_config = "\n[state]\nkeep_runs = 2\n";
  Start(o);
  for (int i = 0; i < 4; ++i) {
    auto r = site_->Sync();
    ASSERT_EQ(r.exit_code, 0) << r.error;
  }
  std::set<std::string> files;
  for (const auto& e : std::filesystem::directory_iterator(site_->dir() + "/state/reports"))
    files.insert(e.path().filename().string());
  EXPECT_EQ(files, (std::set<std::string>{"run-3.json", "run-4.json"}));
  auto runs = testsupport::QuerySqlite(site_->dir() + "/state/state.db",
                                       "SELECT id, json_type(summary_json, '$.items') IS NOT NULL, "
                                       "json_extract(summary_json, '$.summary.\"enrolments.enrol\"'), "
                                       "json_extract(summary_json, '$.items_count'), "
                                       "(SELECT sum(value) FROM json_each(summary_json, '$.summary') "
                                       "WHERE key NOT IN ('problems')) FROM run ORDER BY id");
  ASSERT_TRUE(runs) << runs.error().message;
  ASSERT_EQ(runs->size(), 4u);
  for (const auto& row : *runs) EXPECT_EQ(row[1], "0") << "run " << row[0] << " holds its items in state.db";
  EXPECT_EQ((*runs)[0][2], "1292") << "the first run keeps its summary";
  EXPECT_EQ((*runs)[0][3], (*runs)[0][4]) << "and the count of its items, one per change";
  EXPECT_NE((*runs)[0][3], "0");
  // A kept report holds the lists themselves.
  auto third = nlohmann::json::parse(std::ifstream(site_->dir() + "/state/reports/run-3.json"));
  EXPECT_TRUE(third["items"].is_array());
}

}  // namespace
}  // namespace enrolsync::testing
