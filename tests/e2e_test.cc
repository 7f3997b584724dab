// The sample school synced into the sandbox, then five rounds of MIS changes,
// for each of the four unenrol actions. After every round Moodle must hold
// exactly what enrol_database semantics say, and a second sync must make no
// write call at all.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "school_site.h"
#include "util/strings.h"

namespace enrolsync::testing {
namespace {

using ::testing::HasSubstr;

std::string Q(const std::string& s) { return "'" + s + "'"; }

class UnenrolActionE2E : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    SiteOptions o;
    o.unenrol_action = GetParam();
    site_ = std::make_unique<SchoolSite>(o);
    auto st = site_->Setup();
    ASSERT_TRUE(st) << st.error().message;
    std::set<std::string> cats = {"1"};
    for (const auto& [id, name] : site_->school().categories) cats.insert(std::to_string(id));
    std::set<std::string> users;
    for (const auto& p : site_->school().people) users.insert(ToLower(p.email));
    oracle_ = std::make_unique<Oracle>(GetParam(), cats, users);
  }

  // One round: sync, compare with the oracle, then prove a second sync is free.
  void Round(const std::string& name, long long allow_removals = -1) {
    SCOPED_TRACE(name);
    auto r = site_->Sync(true, allow_removals);
    ASSERT_EQ(r.exit_code, 0) << name << ": " << r.error;
    ASSERT_TRUE(r.apply.failures.empty()) << r.apply.failures.front().message;
    oracle_->Sync(site_->CourseFeed(), site_->EnrolFeed());
    auto actual = site_->Moodle();
    EXPECT_TRUE(actual == oracle_->state()) << name << ":\n" << Describe(oracle_->state(), actual);

    auto again = site_->Sync();
    ASSERT_EQ(again.exit_code, 0) << again.error;
    EXPECT_FALSE(again.plan.HasChanges()) << name << ": first item " << plan::PlanLine(again.plan.items.front());
    EXPECT_EQ(again.write_calls, 0) << name;
  }

  std::string One(const std::string& sql) {
    auto rows = site_->Query(sql);
    EXPECT_FALSE(rows.empty()) << sql;
    return rows.empty() ? "" : rows[0][0];
  }

  std::unique_ptr<SchoolSite> site_;
  std::unique_ptr<Oracle> oracle_;
};

TEST_P(UnenrolActionE2E, SampleSchoolThenFiveMutationRoundsReachTheExactMoodleState) {
  Round("initial sync");
  ASSERT_GT(oracle_->state().size(), 500u) << "the sample school should be sizeable";

  // Every course enrolsync created has enrol_database's shape: sections 0-4.
  for (const auto& c : site_->moodle().Courses()) EXPECT_EQ(site_->moodle().SectionCount(c.id), 5) << c.shortname;

  // 1. Move 20 pupils to another set of the same year.
  auto rows = site_->Query(
      "SELECT l.TblTeachingManagerSetListsID, l.txtSchoolID, s.intYear, s.TblTeachingManagerSetsID "
      "FROM TblTeachingManagerSetLists l JOIN TblTeachingManagerSets s ON s.TblTeachingManagerSetsID = l.intSetID "
      "ORDER BY l.TblTeachingManagerSetListsID");
  int moved = 0;
  for (std::size_t i = 3; i < rows.size() && moved < 20; i += 17) {
    const auto& r = rows[i];
    auto target = site_->Query("SELECT TblTeachingManagerSetsID FROM TblTeachingManagerSets WHERE intYear = " + r[2] +
                               " AND TblTeachingManagerSetsID <> " + r[3] +
                               " AND TblTeachingManagerSetsID NOT IN (SELECT intSetID FROM TblTeachingManagerSetLists "
                               "WHERE txtSchoolID = " + Q(r[1]) + ") ORDER BY TblTeachingManagerSetsID LIMIT 1");
    if (target.empty()) continue;
    ASSERT_TRUE(site_->Exec("UPDATE TblTeachingManagerSetLists SET intSetID = " + target[0][0] +
                            " WHERE TblTeachingManagerSetListsID = " + r[0]));
    ++moved;
  }
  ASSERT_EQ(moved, 20);
  Round("20 pupils moved");

  // 2. A teacher removed from a set.
  std::string set_with_teacher =
      One("SELECT TblTeachingManagerSetsID FROM TblTeachingManagerSets WHERE txtTeacher IS NOT NULL "
          "ORDER BY TblTeachingManagerSetsID LIMIT 1 OFFSET 5");
  ASSERT_TRUE(site_->Exec("UPDATE TblTeachingManagerSets SET txtTeacher = NULL WHERE TblTeachingManagerSetsID = " +
                          set_with_teacher));
  Round("teacher removed from a set");

  // 3. Three new sets with pupils and a teacher.
  std::string next = One("SELECT MAX(TblTeachingManagerSetsID) + 1 FROM TblTeachingManagerSets");
  std::string subject = One("SELECT TblTeachingManagerSubjectsID FROM TblTeachingManagerSubjects "
                            "WHERE intMoodleCategoryID IS NOT NULL AND intMoodleCategoryID < 100 LIMIT 1");
  std::string teacher = One("SELECT User_Code FROM TblStaff WHERE SystemStatus = 1 LIMIT 1");
  auto pupils = site_->Query("SELECT txtSchoolID FROM TblPupilManagementPupils WHERE intSystemStatus = 1 "
                             "ORDER BY txtSchoolID LIMIT 12");
  ASSERT_EQ(pupils.size(), 12u);
  const char* codes[] = {"10/Zz1", "9/E/ZZ", "12/Z/QQ"};
  for (int k = 0; k < 3; ++k) {
    std::string id = std::to_string(std::stoi(next) + k);
    ASSERT_TRUE(site_->Exec("INSERT INTO TblTeachingManagerSets VALUES (" + id + ", " + subject + ", 10, " +
                            Q(codes[k]) + ", " + Q(teacher) + ")"));
    for (int p = 0; p < 4; ++p)
      ASSERT_TRUE(site_->Exec("INSERT INTO TblTeachingManagerSetLists (intSetID, txtSchoolID) VALUES (" + id + ", " +
                              Q(pupils[k * 4 + p][0]) + ")"));
  }
  Round("three new sets");
  for (const char* code : codes) {
    bool found = false;
    for (const auto& c : site_->moodle().Courses()) found |= c.idnumber == code;
    EXPECT_TRUE(found) << code << " was not created";
  }

  // 4. A whole set deleted.
  std::string doomed = One("SELECT intSetID FROM TblTeachingManagerSetLists GROUP BY intSetID "
                           "HAVING COUNT(*) >= 5 ORDER BY intSetID LIMIT 1 OFFSET 2");
  ASSERT_TRUE(site_->Exec("DELETE FROM TblTeachingManagerSetLists WHERE intSetID = " + doomed +
                          "; DELETE FROM TblTeachingManagerSetAssociatedTeachers WHERE intSetID = " + doomed +
                          "; DELETE FROM TblTeachingManagerSets WHERE TblTeachingManagerSetsID = " + doomed));
  Round("a whole set deleted");

  // 5. A pupil's role changes (student -> non-editing teacher, e.g. a sixth-form helper).
  std::string pupil = One("SELECT txtSchoolID FROM TblTeachingManagerSetLists ORDER BY TblTeachingManagerSetListsID "
                          "LIMIT 1 OFFSET 40");
  std::string view = One("SELECT sql FROM sqlite_master WHERE name = 'VwMoodleEnrolData'");
  const std::string from = "SELECT s.\"txtSetCode\", p.\"txtEmailAddress\", 5";
  auto pos = view.find(from);
  ASSERT_NE(pos, std::string::npos) << view;
  view.replace(pos, from.size(),
               "SELECT s.\"txtSetCode\", p.\"txtEmailAddress\", CASE WHEN p.\"txtSchoolID\" = " + Q(pupil) +
                   " THEN 4 ELSE 5 END");
  ASSERT_TRUE(site_->Exec("DROP VIEW VwMoodleEnrolData; " + view));
  Round("a pupil's role changed");
}

INSTANTIATE_TEST_SUITE_P(AllUnenrolActions, UnenrolActionE2E,
                         ::testing::Values("suspend", "unenrol", "keep", "suspend_remove_roles"),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace enrolsync::testing
