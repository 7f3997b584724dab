// Rules of the planner. Each test name states one rule.
#include "plan/plan.h"

#include <algorithm>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace enrolsync::plan {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using model::EnrolStatus;

class PlanTest : public ::testing::Test {
 protected:
  void SetUp() override {
    desired.courses_table = "VwMoodleCourseData";
    desired.enrolments_table = "VwMoodleEnrolData";
    desired.course_columns = {"txtFullName", "txtShortName", "txtCourseID", "intCategoryID"};
    desired.enrolment_columns = {"txtSetCode", "txtEmailAddress", "intRoleID"};
    desired.have_courses = true;
    moodle.categories = {{1, "Category 1", ""}, {6, "Humanities", "HUM"}};
    moodle.roles = {{1, "manager"}, {3, "editingteacher"}, {4, "teacher"}, {5, "student"}};
    policy.default_category = "1";
  }

  MoodleId AddCourse(const std::string& idnumber, bool visible = true) {
    MoodleId id = next_course_++;
    moodle.courses.push_back({id, "Course " + idnumber, "Course " + idnumber, idnumber, 1, visible});
    return id;
  }
  MoodleId AddUser(const std::string& email, bool suspended = false) {
    MoodleId id = next_user_++;
    moodle.users.push_back({id, "u" + std::to_string(id), email, "", "ldap", suspended, {}});
    return id;
  }
  void CourseRow(const std::string& full, const std::string& shortname, const std::string& idnumber,
                 std::optional<std::string> category) {
    desired.courses.push_back({desired.courses.size() + 1, full, shortname, idnumber, std::move(category)});
  }
  void Row(const std::string& course, const std::string& user, std::optional<std::string> role = "5") {
    desired.enrolments.push_back({desired.enrolments.size() + 1, course, user, std::move(role)});
  }
  void Own(MoodleId c, MoodleId u, std::set<MoodleId> roles, EnrolStatus status = EnrolStatus::kActive,
           bool owns_enrolment = true) {
    model::OwnedEnrolment e;
    e.courseid = c;
    e.userid = u;
    e.roles = std::move(roles);
    e.status = status;
    e.owns_enrolment = owns_enrolment;
    for (const auto& co : moodle.courses)
      if (co.id == c) e.source_course = co.idnumber;
    for (const auto& us : moodle.users)
      if (us.id == u) e.source_user = us.email;
    owned.enrolments[{c, u}] = e;
  }
  // Marks `c` as read from Moodle this run, with these participants.
  void Verified(MoodleId c, std::vector<model::Participant> ps = {}) {
    auto& m = moodle.verified[c];
    for (auto& p : ps) m[p.userid] = p;
  }
  static model::Participant P(MoodleId u, std::set<MoodleId> roles, bool active = true) {
    return model::Participant{u, active, std::move(roles)};
  }

  Plan Build() { return BuildPlan(desired, moodle, owned, policy); }
  static std::vector<std::string> Lines(const Plan& p) {
    std::vector<std::string> out;
    for (const auto& i : p.items) out.push_back(PlanLine(i));
    return out;
  }
  static std::vector<std::string> Reasons(const Plan& p) {
    std::vector<std::string> out;
    for (const auto& pr : p.problems) out.push_back(pr.reason);
    return out;
  }

  model::DesiredState desired;
  model::MoodleSnapshot moodle;
  model::Ownership owned;
  Policy policy;
  MoodleId next_course_ = 100;
  MoodleId next_user_ = 500;
};

// ---------------------------------------------------------------- courses

TEST_F(PlanTest, MissingCourseIsCreatedWithItsCategory) {
  CourseRow("Art - 11/Ar1", "Art - 11/Ar1", "11/Ar1", "6");
  Plan p = Build();
  EXPECT_THAT(Lines(p), ElementsAre("+ course Art - 11/Ar1 \"Art - 11/Ar1\" idnumber 11/Ar1 in category 6"));
  EXPECT_EQ(p.summary.courses_create, 1);
  EXPECT_EQ(p.items[0].create_index, 0);
}

TEST_F(PlanTest, EmptyCategoryMeansDefaultCategory) {
  CourseRow("A", "A", "a", std::nullopt);
  CourseRow("B", "B", "b", "");
  Plan p = Build();
  ASSERT_EQ(p.items.size(), 2u);
  EXPECT_EQ(p.items[0].categoryid, 1);
  EXPECT_EQ(p.items[1].categoryid, 1);
}

TEST_F(PlanTest, UnknownCategoryIsReportedAndCourseNotCreated) {
  CourseRow("Careers - 11/CR1", "Careers - 11/CR1", "11/CR1", "999");
  Plan p = Build();
  EXPECT_THAT(p.items, IsEmpty());
  ASSERT_EQ(p.problems.size(), 1u);
  EXPECT_EQ(p.problems[0].reason, "invalid category id '999', can not create course: Careers - 11/CR1");
  EXPECT_EQ(p.problems[0].table, "VwMoodleCourseData");
  EXPECT_EQ(p.problems[0].row, 1u);
  EXPECT_EQ(p.problems[0].values[3], (std::pair<std::string, std::string>{"intCategoryID", "999"}));
}

TEST_F(PlanTest, UnknownCategoryIsReportedOnEveryRun) {
  CourseRow("Careers - 11/CR1", "Careers - 11/CR1", "11/CR1", "999");
  Row("11/CR1", "pupil@school.test");
  AddUser("pupil@school.test");
  for (int run = 0; run < 2; ++run) {
    Plan p = Build();
    EXPECT_THAT(Reasons(p), ElementsAre(HasSubstr("invalid category id '999'"),
                                        "course '11/CR1' does not exist in Moodle"));
  }
}

TEST_F(PlanTest, CategoryIsResolvedByIdnumberWhenConfigured) {
  policy.category_field = LocalCategoryField::kIdnumber;
  CourseRow("H", "H", "h", "HUM");
  CourseRow("X", "X", "x", "6");  // an id is not an idnumber
  Plan p = Build();
  ASSERT_EQ(p.items.size(), 1u);
  EXPECT_EQ(p.items[0].categoryid, 6);
  EXPECT_THAT(Reasons(p), ElementsAre("invalid category idnumber '6', can not create course: X"));
}

// enrol_database: "default course category does not exist!", then the first
// category in Moodle's sort order.
TEST_F(PlanTest, MissingDefaultCategoryFallsBackToTheFirstCategoryWithOneWarning) {
  policy.default_category = "42";
  moodle.categories = {{6, "Humanities", "HUM"}, {1, "Category 1", ""}};  // sortorder: Humanities first
  CourseRow("A", "A", "a", std::nullopt);
  CourseRow("B", "B", "b", "");
  CourseRow("C", "C", "c", "1");
  Plan p = Build();
  ASSERT_EQ(p.items.size(), 3u);
  EXPECT_EQ(p.items[0].categoryid, 6);
  EXPECT_EQ(p.items[1].categoryid, 6);
  EXPECT_EQ(p.items[2].categoryid, 1);
  ASSERT_EQ(p.problems.size(), 1u) << "said once per run";
  EXPECT_FALSE(p.problems[0].skipped);
  EXPECT_THAT(p.problems[0].reason, HasSubstr("default category id '42' does not exist in Moodle"));
  EXPECT_THAT(p.problems[0].reason, HasSubstr("first category, 'Humanities' (id 6)"));
}

TEST_F(PlanTest, MissingDefaultCategoryWithNoCategoryAtAllIsReported) {
  policy.default_category = "42";
  moodle.categories.clear();
  CourseRow("A", "A", "a", std::nullopt);
  Plan p = Build();
  EXPECT_THAT(p.items, IsEmpty());
  EXPECT_THAT(Reasons(p), ElementsAre(HasSubstr("no category, can not create course: A")));
}

// enrol_database's newcoursestartdate / newcourseenddate columns.
class CourseDatesTest : public PlanTest {
 protected:
  void SetUp() override {
    PlanTest::SetUp();
    desired.course_columns = {"txtFullName", "txtShortName", "txtCourseID", "intCategoryID", "dtStart", "dtEnd"};
  }
  void Dated(const std::string& shortname, std::optional<std::string> start, std::optional<std::string> end) {
    CourseRow(shortname, shortname, shortname, "1");
    desired.courses.back().startdate = std::move(start);
    desired.courses.back().enddate = std::move(end);
  }
};

TEST_F(CourseDatesTest, RowDatesGoWithTheNewCourse) {
  Dated("A", "1788220800", "2027-07-15T00:00:00Z");
  Dated("B", "2026-09-01 08:00:00+01:00", "1815609600.000000");  // extract(epoch …) gives decimals
  Dated("C", std::nullopt, "");
  Dated("D", "0", std::nullopt);  // PHP empty(): Moodle's default
  Plan p = Build();
  ASSERT_EQ(p.items.size(), 4u) << (p.problems.empty() ? "" : p.problems[0].reason);
  EXPECT_EQ(p.items[0].startdate, std::optional<long long>(1788220800));
  EXPECT_EQ(p.items[0].enddate, std::optional<long long>(1815609600));
  EXPECT_EQ(p.items[1].startdate, std::optional<long long>(1788246000));
  EXPECT_EQ(p.items[1].enddate, std::optional<long long>(1815609600));
  for (int i : {2, 3}) {
    EXPECT_FALSE(p.items[i].startdate.has_value());
    EXPECT_FALSE(p.items[i].enddate.has_value());
  }
}

TEST_F(CourseDatesTest, BrokenDateIsReportedWithTableRowColumnAndValueAndTheCourseIsNotCreated) {
  Dated("A", "next tuesday", std::nullopt);
  Dated("B", std::nullopt, "2026-02-30");
  Dated("C", "2026-09-01", "2026-08-01");
  Plan p = Build();
  EXPECT_THAT(p.items, IsEmpty());
  EXPECT_THAT(Reasons(p),
              ElementsAre(HasSubstr("invalid external course start date value: VwMoodleCourseData row 1 column "
                                    "'dtStart' = 'next tuesday'"),
                          HasSubstr("invalid external course end date value: VwMoodleCourseData row 2 column 'dtEnd' "
                                    "= '2026-02-30'"),
                          "can not insert new course, the end date must be after the start date: C"));
  EXPECT_EQ(p.problems[0].values.back(), (std::pair<std::string, std::string>{"dtEnd", "NULL"}));
}

TEST_F(PlanTest, ExistingCourseIsNeverRenamedOrMoved) {
  AddCourse("10/AX1");  // shortname "Course 10/AX1", category 1
  CourseRow("A new name", "Course 10/AX1", "10/AX1", "6");
  Plan p = Build();
  EXPECT_THAT(p.items, IsEmpty());
  EXPECT_THAT(p.problems, IsEmpty());
}

TEST_F(PlanTest, IdnumberClashIsReportedAndCourseNotCreated) {
  AddCourse("10/AX1");
  CourseRow("Other", "Other", "10/AX1", "1");
  Plan p = Build();
  EXPECT_THAT(p.items, IsEmpty());
  EXPECT_THAT(Reasons(p), ElementsAre("duplicate idnumber, can not create course: Other [10/AX1] (idnumber used "
                                      "by course 'Course 10/AX1', id 100)"));
}

TEST_F(PlanTest, EmptyFullnameOrShortnameIsInvalid) {
  CourseRow("", "S", "s", "1");
  CourseRow("F", "  ", "f", "1");
  Plan p = Build();
  EXPECT_THAT(p.items, IsEmpty());
  ASSERT_EQ(p.problems.size(), 2u);
  EXPECT_EQ(p.problems[0].reason, "invalid external course record, shortname and fullname are mandatory");
  EXPECT_EQ(p.problems[1].row, 2u);
}

TEST_F(PlanTest, DuplicateCourseRowsCreateOneCourse) {
  CourseRow("A", "A", "a", "1");
  CourseRow("A", "A", "a", "1");
  CourseRow("A2", "A", "a2", "1");
  Plan p = Build();
  EXPECT_EQ(p.summary.courses_create, 1);
  ASSERT_EQ(p.problems.size(), 2u);
  EXPECT_FALSE(p.problems[0].skipped) << "an identical row is only a warning";
  EXPECT_TRUE(p.problems[1].skipped);
  EXPECT_THAT(p.problems[1].reason, HasSubstr("first at row 1"));
}

TEST_F(PlanTest, CoursesAreNotPlannedWhenCourseTableIsNotConfigured) {
  desired.have_courses = false;
  CourseRow("A", "A", "a", "1");
  EXPECT_THAT(Build().items, IsEmpty());
}

// ---------------------------------------------------------------- enrolments

TEST_F(PlanTest, RowsForACourseCreatedThisRunAreEnrolledInTheSameRun) {
  CourseRow("Art - 11/Ar1", "Art - 11/Ar1", "11/Ar1", "6");
  MoodleId u = AddUser("a@school.test");
  Row("11/Ar1", "a@school.test", "3");
  Plan p = Build();
  ASSERT_EQ(p.items.size(), 2u);
  EXPECT_EQ(p.items[1].action, Action::kEnrol);
  EXPECT_EQ(p.items[1].create_index, 0);
  EXPECT_EQ(p.items[1].courseid, 0);
  EXPECT_EQ(p.items[1].userid, u);
  EXPECT_EQ(p.items[1].role, "editingteacher");
  EXPECT_THAT(p.touched_courses, IsEmpty()) << "a new course needs no participant read";
}

TEST_F(PlanTest, NewRowIsEnrolledWithItsRole) {
  MoodleId c = AddCourse("10/AX1");
  AddUser("renee.webb@school.test");
  Row("10/AX1", "renee.webb@school.test", "3");
  Verified(c);
  Plan p = Build();
  EXPECT_THAT(Lines(p), ElementsAre("+ enrol Course 10/AX1: renee.webb@school.test as editingteacher"));
  EXPECT_EQ(p.summary.enrol, 1);
  EXPECT_THAT(p.touched_courses, ElementsAre(c));
}

TEST_F(PlanTest, DuplicateRowsAreCountedOnce) {
  MoodleId c = AddCourse("7/Ma2");
  AddUser("a@school.test");
  Row("7/Ma2", "a@school.test");
  Row("7/Ma2", "a@school.test");
  Verified(c);
  Plan p = Build();
  EXPECT_EQ(p.summary.enrol, 1);
  ASSERT_EQ(p.problems.size(), 1u);
  EXPECT_EQ(p.problems[0].reason, "duplicate of row 1; counted once");
  EXPECT_EQ(p.problems[0].row, 2u);
  EXPECT_FALSE(p.problems[0].skipped);
}

TEST_F(PlanTest, TwoRowsDifferingOnlyInRoleGiveOneEnrolmentHoldingBothRoles) {
  MoodleId c = AddCourse("7/Ma2");
  AddUser("t@school.test");
  Row("7/Ma2", "t@school.test", "3");
  Row("7/Ma2", "t@school.test", "4");
  Verified(c);
  Plan p = Build();
  EXPECT_THAT(Lines(p), ElementsAre("+ enrol Course 7/Ma2: t@school.test as editingteacher",
                                    "~ role Course 7/Ma2: t@school.test +teacher"));
  EXPECT_EQ(p.summary.enrol, 1);
  EXPECT_EQ(p.summary.role_assign, 1);
}

TEST_F(PlanTest, EmptyRoleUsesDefaultRole) {
  MoodleId c = AddCourse("7/Ma2");
  AddUser("a@school.test");
  AddUser("b@school.test");
  Row("7/Ma2", "a@school.test", std::nullopt);
  Row("7/Ma2", "b@school.test", "");
  Verified(c);
  Plan p = Build();
  ASSERT_EQ(p.items.size(), 2u);
  EXPECT_EQ(p.items[0].role, "student");
  EXPECT_EQ(p.items[1].role, "student");
}

TEST_F(PlanTest, UnknownRoleIsReportedAndSkippedNotDefaulted) {
  MoodleId c = AddCourse("7/Ma2");
  AddUser("a@school.test");
  Row("7/Ma2", "a@school.test", "99");
  Verified(c);
  Plan p = Build();
  EXPECT_THAT(p.items, IsEmpty());
  EXPECT_THAT(Reasons(p), ElementsAre("skipping user 'a@school.test' in course '7/Ma2' - unknown role id '99'"));
}

TEST_F(PlanTest, RolesAreMatchedByShortnameWhenConfigured) {
  policy.local_role_field = LocalRoleField::kShortname;
  MoodleId c = AddCourse("7/Ma2");
  AddUser("a@school.test");
  AddUser("b@school.test");
  Row("7/Ma2", "a@school.test", "teacher");
  Row("7/Ma2", "b@school.test", "4");
  Verified(c);
  Plan p = Build();
  ASSERT_EQ(p.items.size(), 1u);
  EXPECT_EQ(p.items[0].roleid, 4);
  EXPECT_THAT(Reasons(p), ElementsAre(HasSubstr("unknown role shortname '4'")));
}

TEST_F(PlanTest, UnknownUserIsReportedPerRowAndSkipped) {
  MoodleId c = AddCourse("8/Cs8");
  Row("8/Cs8", "nadia.newcomer@school.test");
  Row("8/Cs8", "nadia.newcomer@school.test", "3");
  Verified(c);
  Plan p = Build();
  EXPECT_THAT(p.items, IsEmpty());
  EXPECT_THAT(Reasons(p),
              ElementsAre("skipping unknown user email 'nadia.newcomer@school.test' in course '8/Cs8'",
                          "skipping unknown user email 'nadia.newcomer@school.test' in course '8/Cs8'"));
  EXPECT_EQ(p.problems[1].values[1], (std::pair<std::string, std::string>{"txtEmailAddress",
                                                                          "nadia.newcomer@school.test"}));
}

TEST_F(PlanTest, UnknownCourseIsReportedPerRowAndSkipped) {
  AddUser("a@school.test");
  Row("11/CR1", "a@school.test");
  Plan p = Build();
  EXPECT_THAT(p.items, IsEmpty());
  EXPECT_THAT(Reasons(p), ElementsAre("course '11/CR1' does not exist in Moodle"));
}

TEST_F(PlanTest, RowWithoutUserIsReported) {
  AddCourse("7/Ma2");
  Row("7/Ma2", "");
  Plan p = Build();
  EXPECT_THAT(Reasons(p), ElementsAre("skipping user without mandatory email in course '7/Ma2'"));
}

TEST_F(PlanTest, EmailIsMatchedCaseInsensitively) {
  MoodleId c = AddCourse("7/Ma2");
  MoodleId u = AddUser("Zoe.OBrien@school.test");
  Row("7/Ma2", "zoe.obrien@SCHOOL.test");
  Verified(c);
  Plan p = Build();
  ASSERT_EQ(p.items.size(), 1u);
  EXPECT_EQ(p.items[0].userid, u);
}

TEST_F(PlanTest, AmbiguousEmailIsReportedNotGuessed) {
  MoodleId c = AddCourse("7/Ma2");
  AddUser("twin@school.test");
  AddUser("TWIN@school.test");
  Row("7/Ma2", "twin@school.test");
  Verified(c);
  Plan p = Build();
  EXPECT_THAT(p.items, IsEmpty());
  EXPECT_THAT(Reasons(p), ElementsAre(HasSubstr("matches Moodle users 500, 501")));
}

TEST_F(PlanTest, UsersAreMatchedByUsernameExactlyWhenConfigured) {
  policy.local_user_field = LocalUserField::kUsername;
  MoodleId c = AddCourse("7/Ma2");
  MoodleId u = AddUser("a@school.test");  // username "u500"
  Row("7/Ma2", "u500");
  Row("7/Ma2", "U500");
  Verified(c);
  Plan p = Build();
  ASSERT_EQ(p.items.size(), 1u);
  EXPECT_EQ(p.items[0].userid, u);
  // Moodle's lookup would refuse 'U500' (PARAM_USERNAME lower-cases it):
  // the row is a problem of its own, never sent.
  EXPECT_THAT(Reasons(p), ElementsAre("skipping user in course '7/Ma2': column 'txtEmailAddress' = 'U500': not a username Moodle "
                                      "accepts (PARAM_USERNAME: lower-case a-z 0-9 - . _ @ only; cleaned it is "
                                      "'u500')"));
}

TEST_F(PlanTest, EmailsAreTrimmedAndOnesMoodleRefusesAreRowProblemsThatStillProtect) {
  MoodleId c = AddCourse("7/Ma2");
  MoodleId a = AddUser("a.pupil@school.test");
  MoodleId b = AddUser("b.pupil@school.test");
  MoodleId d = AddUser("d.pupil@school.test");
  Own(c, b, {5});
  Own(c, d, {5});
  Verified(c, {P(b, {5}), P(d, {5})});
  Row("7/Ma2", " a.pupil@school.test\t");     // trimmed: enrolled
  Row("7/Ma2", "b.pu\"pil@school.test");      // refused; b's enrolment stays
  Row("7/Ma2", std::string(300, 'x') + "@school.test");
  Plan p = Build();
  EXPECT_THAT(Lines(p), ElementsAre("+ enrol Course 7/Ma2: a.pupil@school.test as student",
                                    "- suspend Course 7/Ma2: d.pupil@school.test"));
  ASSERT_EQ(p.problems.size(), 2u);
  EXPECT_EQ(p.problems[0].row, 2u);
  EXPECT_EQ(p.problems[0].reason, "skipping user in course '7/Ma2': column 'txtEmailAddress' = 'b.pu\"pil@school.test': "
                                  "not an email address Moodle accepts (PARAM_EMAIL)");
  EXPECT_EQ(p.problems[1].row, 3u);
  EXPECT_THAT(p.problems[1].reason, ::testing::HasSubstr("… (312 characters)': the email is 312 characters, longer than "
                                                         "Moodle's 100"));
  (void)a;
}

TEST_F(PlanTest, NewCourseValuesLongerThanMoodlesColumnsAreProblems) {
  CourseRow("Maths", std::string(256, 's'), "id1", std::nullopt);
  CourseRow(std::string(255, 'f'), "7/Ma3", "id2", std::nullopt);
  CourseRow("Maths", "7/Ma4", std::string(101, 'i'), std::nullopt);
  CourseRow(std::string(254, 'f'), std::string(255, 's'), std::string(100, 'i'), std::nullopt);
  desired.have_courses = true;
  moodle.categories.push_back({1, "Misc", ""});
  policy.default_category = "1";
  policy.category_field = LocalCategoryField::kId;
  Plan p = Build();
  EXPECT_EQ(p.summary.courses_create, 1);
  ASSERT_EQ(p.problems.size(), 3u);
  EXPECT_THAT(p.problems[0].reason, ::testing::HasSubstr("is 256 characters, longer than Moodle's 255"));
  EXPECT_THAT(p.problems[1].reason, ::testing::HasSubstr("is 255 characters, longer than Moodle's 254"));
  EXPECT_THAT(p.problems[2].reason, ::testing::HasSubstr("is 101 characters, longer than Moodle's 100"));
}

TEST_F(PlanTest, CoursesAreMatchedByShortnameOrIdWhenConfigured) {
  MoodleId c = AddCourse("7/Ma2");
  AddUser("a@school.test");
  Verified(c);
  policy.local_course_field = LocalCourseField::kShortname;
  Row("Course 7/Ma2", "a@school.test");
  EXPECT_EQ(Build().summary.enrol, 1);
  desired.enrolments.clear();
  policy.local_course_field = LocalCourseField::kId;
  Row(std::to_string(c), "a@school.test");
  EXPECT_EQ(Build().summary.enrol, 1);
}

// ---------------------------------------------------------------- leavers

TEST_F(PlanTest, StudentLeavingSetIsSuspendedNotUnenrolled) {
  MoodleId c = AddCourse("7/En1");
  MoodleId u = AddUser("a@school.test");
  Own(c, u, {5});
  Verified(c, {P(u, {5})});
  Plan p = Build();
  EXPECT_THAT(Lines(p), ElementsAre("- suspend Course 7/En1: a@school.test"));
  EXPECT_EQ(p.items[0].roleid, 5) << "the enrol call must carry a role the user already holds";
  EXPECT_EQ(p.summary.suspend, 1);
  EXPECT_EQ(p.summary.role_unassign, 0) << "a suspended enrolment keeps its roles";
}

TEST_F(PlanTest, SuspendRemoveRolesAlsoUnassignsOurRoles) {
  policy.unenrol_action = UnenrolAction::kSuspendRemoveRoles;
  MoodleId c = AddCourse("7/En1");
  MoodleId u = AddUser("a@school.test");
  Own(c, u, {5});
  Verified(c, {P(u, {5, 4})});  // role 4 was given by a teacher: not ours
  Plan p = Build();
  EXPECT_THAT(Lines(p), ElementsAre("- suspend Course 7/En1: a@school.test", "~ role Course 7/En1: a@school.test -student"));
}

TEST_F(PlanTest, UnenrolActionUnenrols) {
  policy.unenrol_action = UnenrolAction::kUnenrol;
  MoodleId c = AddCourse("7/En1");
  MoodleId u = AddUser("a@school.test");
  Own(c, u, {5});
  Verified(c, {P(u, {5})});
  Plan p = Build();
  EXPECT_THAT(Lines(p), ElementsAre("~ role Course 7/En1: a@school.test -student", "- unenrol Course 7/En1: a@school.test"));
  EXPECT_EQ(p.summary.unenrol, 1);
  EXPECT_EQ(p.summary.Removals(), 1) << "taking the roles back is part of the one unenrolment";
}

TEST_F(PlanTest, UnenrolTakesBackOurRolesFirstBecauseAnotherEnrolmentMayKeepTheUser) {
  // A teacher is in the course twice: enrolsync's manual enrolment and a
  // meta link (student). Moodle keeps manual roles while any enrolment
  // remains, so the unenrol alone would leave editingteacher behind.
  policy.unenrol_action = UnenrolAction::kUnenrol;
  MoodleId c = AddCourse("8/DT3");
  MoodleId t = AddUser("t@school.test");
  Own(c, t, {3, 4});
  Verified(c, {P(t, {3, 4, 5})});
  Plan p = Build();
  EXPECT_THAT(Lines(p), ElementsAre("~ role Course 8/DT3: t@school.test -editingteacher",
                                    "~ role Course 8/DT3: t@school.test -teacher",
                                    "- unenrol Course 8/DT3: t@school.test"));
  // Blocked runs withhold the role removals with the unenrol.
  policy.block_removals = {"the enrolment table returned 0 rows"};
  EXPECT_THAT(Build().items, IsEmpty());
}

TEST_F(PlanTest, KeepActionLeavesLeaverAlone) {
  policy.unenrol_action = UnenrolAction::kKeep;
  MoodleId c = AddCourse("7/En1");
  MoodleId u = AddUser("a@school.test");
  Own(c, u, {5});
  Verified(c, {P(u, {5})});
  Plan p = Build();
  EXPECT_THAT(p.items, IsEmpty());
  EXPECT_THAT(p.forget, IsEmpty());
}

TEST_F(PlanTest, AlreadySuspendedLeaverNeedsNoCall) {
  MoodleId c = AddCourse("7/En1");
  MoodleId u = AddUser("a@school.test");
  Own(c, u, {5}, EnrolStatus::kSuspended);
  Verified(c, {P(u, {5}, false)});
  EXPECT_THAT(Build().items, IsEmpty());
}

TEST_F(PlanTest, SuspendedEnrolmentThatComesBackIsUnsuspended) {
  MoodleId c = AddCourse("7/En1");
  MoodleId u = AddUser("a@school.test");
  Own(c, u, {5}, EnrolStatus::kSuspended);
  Verified(c, {P(u, {5}, false)});
  Row("7/En1", "a@school.test");
  Plan p = Build();
  EXPECT_THAT(Lines(p), ElementsAre("+ unsuspend Course 7/En1: a@school.test"));
  EXPECT_EQ(p.items[0].roleid, 5);
  EXPECT_EQ(p.items[0].reason, "row is back in the feed");
}

// Moodle's "active" covers every enrolment of the user; a meta or self
// enrolment being active says nothing about enrolsync's own.
TEST_F(PlanTest, LeaverWeSuspendedStaysSuspendedWhileAnotherEnrolmentIsActive) {
  MoodleId c = AddCourse("7/En1");
  MoodleId u = AddUser("a@school.test");
  Own(c, u, {5}, EnrolStatus::kSuspended);
  Verified(c, {P(u, {5}, /*active=*/true)});  // active through a meta link
  EXPECT_THAT(Build().items, IsEmpty()) << "no second suspension (and welcome message) on every run";
}

TEST_F(PlanTest, RowComingBackIsUnsuspendedEvenWhileAnotherEnrolmentIsActive) {
  MoodleId c = AddCourse("7/En1");
  MoodleId u = AddUser("a@school.test");
  Own(c, u, {5}, EnrolStatus::kSuspended);
  Verified(c, {P(u, {5}, /*active=*/true)});
  Row("7/En1", "a@school.test");
  Plan p = Build();
  EXPECT_THAT(Lines(p), ElementsAre("+ unsuspend Course 7/En1: a@school.test"));
  EXPECT_EQ(p.items[0].reason, "row is back in the feed");
}

// enrol_manual_enrol_users refuses roleid 0 (wsusercannotassign) and
// role_assigns whatever it is sent.
TEST_F(PlanTest, SuspendWithoutAnyRoleSendsTheDefaultRoleAndTakesItBack) {
  MoodleId c = AddCourse("7/En1");
  MoodleId u = AddUser("a@school.test");
  Own(c, u, {});
  Verified(c, {P(u, {})});
  Plan p = Build();
  EXPECT_THAT(Lines(p), ElementsAre("- suspend Course 7/En1: a@school.test", "~ role Course 7/En1: a@school.test -student"));
  EXPECT_EQ(p.items[0].roleid, 5) << "never roleid 0";
  EXPECT_EQ(p.summary.Removals(), 1);
}

TEST_F(PlanTest, SuspendDoesNotGiveBackARoleRemovedByHand) {
  policy.unenrol_action = UnenrolAction::kSuspendRemoveRoles;
  MoodleId c = AddCourse("8/DT3");
  MoodleId t = AddUser("t@school.test");
  Own(c, t, {3});
  Verified(c, {P(t, {})});  // editingteacher removed by hand in Moodle
  Plan p = Build();
  EXPECT_THAT(Lines(p), ElementsAre("- suspend Course 8/DT3: t@school.test",
                                    "~ role Course 8/DT3: t@school.test -editingteacher"));
  EXPECT_EQ(p.items[0].roleid, 3) << "the enrolment's own role, taken back right after";
}

TEST_F(PlanTest, SuspendNeverSendsARoleHeldThroughAnotherEnrolment) {
  MoodleId c = AddCourse("7/En1");
  MoodleId u = AddUser("a@school.test");
  Own(c, u, {});
  Verified(c, {P(u, {5})});  // student through a meta link; no role of ours left
  Plan p = Build();
  EXPECT_THAT(p.items, IsEmpty()) << "a manual copy of student would outlive the meta link";
  ASSERT_EQ(p.problems.size(), 1u);
  EXPECT_THAT(p.problems[0].reason, HasSubstr("can not suspend 'a@school.test' in course '7/En1'"));
  EXPECT_THAT(p.problems[0].reason, HasSubstr("(student)"));
}

TEST_F(PlanTest, RoleChangeAssignsNewRoleAndUnassignsOld) {
  MoodleId c = AddCourse("8/DT3");
  MoodleId u = AddUser("t@school.test");
  Own(c, u, {3});
  Verified(c, {P(u, {3})});
  Row("8/DT3", "t@school.test", "4");
  Plan p = Build();
  EXPECT_THAT(Lines(p), ElementsAre("~ role Course 8/DT3: t@school.test +teacher",
                                    "~ role Course 8/DT3: t@school.test -editingteacher"));
  EXPECT_EQ(p.summary.Removals(), 0) << "a role change removes no enrolment";
}

TEST_F(PlanTest, SiteSuspendedUserStillMatchesAndKeepsActiveEnrolment) {
  MoodleId c = AddCourse("7/En1");
  MoodleId u = AddUser("a@school.test", /*suspended=*/true);
  Own(c, u, {5});
  Verified(c, {P(u, {5})});
  Row("7/En1", "a@school.test");
  Plan p = Build();
  EXPECT_THAT(p.items, IsEmpty());
  EXPECT_THAT(p.problems, IsEmpty());
}

// ---------------------------------------------------------------- ownership

TEST_F(PlanTest, EnrolmentsFromOtherMethodsAreNeverTouched) {
  policy.unenrol_action = UnenrolAction::kUnenrol;
  MoodleId c = AddCourse("7/En1");
  MoodleId u = AddUser("a@school.test");
  MoodleId teacher_added = AddUser("b@school.test");
  Verified(c, {P(u, {5}), P(teacher_added, {5})});
  Own(c, u, {5});
  Row("7/En1", "a@school.test");
  EXPECT_THAT(Build().items, IsEmpty());
}

TEST_F(PlanTest, ExistingForeignEnrolmentGetsOnlyTheMissingRole) {
  MoodleId c = AddCourse("7/En1");
  MoodleId u = AddUser("a@school.test");
  Verified(c, {P(u, {5}, /*active=*/false)});  // a teacher's suspended manual enrolment
  Row("7/En1", "a@school.test", "3");
  Plan p = Build();
  EXPECT_THAT(Lines(p), ElementsAre("~ role Course 7/En1: a@school.test +editingteacher"));
}

// A user Moodle's reads caught mid-enrolment (listed active, roles not
// seen: Participant::roles_known) is left alone, wanted or leaving: planning
// on "holds no role" assigned a role to what was in fact enrolsync's own
// enrolment, in flight when the last run died, and lost its ownership.
TEST_F(PlanTest, AUserReadMidEnrolmentIsLeftAloneForTheRun) {
  policy.unenrol_action = UnenrolAction::kUnenrol;
  MoodleId c = AddCourse("7/En1");
  MoodleId wanted = AddUser("a@school.test");
  MoodleId leaving = AddUser("b@school.test");
  MoodleId settled = AddUser("c@school.test");
  Own(c, leaving, {5});
  model::Participant unsure_a{wanted, true, {}, /*roles_known=*/false};
  model::Participant unsure_b{leaving, true, {}, /*roles_known=*/false};
  Verified(c, {unsure_a, unsure_b, P(settled, {})});
  Row("7/En1", "a@school.test");
  Row("7/En1", "c@school.test");
  Plan p = Build();
  EXPECT_THAT(Lines(p), ElementsAre("~ role Course 7/En1: c@school.test +student"));
  EXPECT_THAT(p.notes, testing::Contains(HasSubstr("2 user(s) were enrolled while it was being read")));
  EXPECT_THAT(p.forget, IsEmpty());
}

TEST_F(PlanTest, TakeOverExistingAddsOurOwnEnrolmentBesideAnotherMethods) {
  policy.take_over_existing = true;
  MoodleId c = AddCourse("7/En1");
  MoodleId u = AddUser("a@school.test");
  MoodleId t = AddUser("t@school.test");
  Verified(c, {P(u, {5}), P(t, {3})});  // enrolled by enrol_database
  Row("7/En1", "a@school.test");
  Row("7/En1", "t@school.test", "3");
  Row("7/En1", "t@school.test", "4");
  Plan p = Build();
  EXPECT_THAT(Lines(p), ElementsAre("+ enrol Course 7/En1: a@school.test as student",
                                    "+ enrol Course 7/En1: t@school.test as editingteacher",
                                    "~ role Course 7/En1: t@school.test +teacher"));
  EXPECT_THAT(p.items[0].reason, HasSubstr("taking over"));
  // Once ours, nothing more to do.
  Own(c, u, {5});
  Own(c, t, {3, 4});
  Verified(c, {P(u, {5}), P(t, {3, 4})});
  EXPECT_THAT(Build().items, IsEmpty());
}

TEST_F(PlanTest, ForeignEnrolmentLeavingKeepsEnrolmentButLosesOurRoleOnUnenrol) {
  policy.unenrol_action = UnenrolAction::kUnenrol;
  MoodleId c = AddCourse("7/En1");
  MoodleId u = AddUser("a@school.test");
  Own(c, u, {3}, EnrolStatus::kActive, /*owns_enrolment=*/false);
  Verified(c, {P(u, {3, 5})});
  Plan p = Build();
  EXPECT_THAT(Lines(p), ElementsAre("~ role Course 7/En1: a@school.test -editingteacher"));
}

TEST_F(PlanTest, PupilUnenrolledByHandIsEnrolledAgain) {
  MoodleId c = AddCourse("7/En1");
  MoodleId u = AddUser("a@school.test");
  Own(c, u, {5});
  Verified(c);  // Moodle no longer lists the pupil
  Row("7/En1", "a@school.test");
  Plan p = Build();
  ASSERT_EQ(p.items.size(), 1u);
  EXPECT_EQ(p.items[0].action, Action::kEnrol);
  EXPECT_THAT(p.items[0].reason, HasSubstr("drift"));
}

TEST_F(PlanTest, OwnedEnrolmentSuspendedByHandIsReactivated) {
  MoodleId c = AddCourse("7/En1");
  MoodleId u = AddUser("a@school.test");
  Own(c, u, {5});
  Verified(c, {P(u, {5}, false)});
  Row("7/En1", "a@school.test");
  Plan p = Build();
  EXPECT_THAT(Lines(p), ElementsAre("+ unsuspend Course 7/En1: a@school.test"));
  EXPECT_THAT(p.items[0].reason, HasSubstr("drift"));
}

TEST_F(PlanTest, RoleRemovedByHandIsAssignedAgain) {
  MoodleId c = AddCourse("7/En1");
  MoodleId u = AddUser("a@school.test");
  Own(c, u, {5});
  Verified(c, {P(u, {})});
  Row("7/En1", "a@school.test");
  Plan p = Build();
  EXPECT_THAT(Lines(p), ElementsAre("~ role Course 7/En1: a@school.test +student"));
  EXPECT_THAT(p.items[0].reason, HasSubstr("drift"));
}

TEST_F(PlanTest, DeletedCourseIsForgottenAndRecreatedWithItsEnrolments) {
  MoodleId gone = 77;  // an admin deleted it; Moodle no longer lists it
  MoodleId u = AddUser("a@school.test");
  owned.enrolments[{gone, u}] = model::OwnedEnrolment{gone, u, true, EnrolStatus::kActive, {5}, "7/En1", "a@school.test"};
  CourseRow("English - 7/En1", "English - 7/En1", "7/En1", "1");
  Row("7/En1", "a@school.test");
  Plan p = Build();
  ASSERT_EQ(p.forget.size(), 1u);
  EXPECT_EQ(p.forget[0].key.courseid, gone);
  EXPECT_THAT(Lines(p), ElementsAre(HasSubstr("+ course English - 7/En1"), "+ enrol English - 7/En1: a@school.test as student"));
}

TEST_F(PlanTest, OwnedEnrolmentGoneFromMoodleAndFeedIsForgotten) {
  MoodleId c = AddCourse("7/En1");
  MoodleId u = AddUser("a@school.test");
  Own(c, u, {5});
  Verified(c);
  Plan p = Build();
  EXPECT_THAT(p.items, IsEmpty());
  ASSERT_EQ(p.forget.size(), 1u);
}

TEST_F(PlanTest, UnverifiedCourseIsTrustedFromStateAndLeftUntouchedWhenNothingChanged) {
  MoodleId c = AddCourse("7/En1");
  MoodleId u = AddUser("a@school.test");
  Own(c, u, {5});
  Row("7/En1", "a@school.test");
  Plan p = Build();
  EXPECT_THAT(p.items, IsEmpty());
  EXPECT_THAT(p.touched_courses, IsEmpty());
}

TEST_F(PlanTest, UnverifiedCourseWithChangesIsListedAsTouched) {
  MoodleId c = AddCourse("7/En1");
  MoodleId c2 = AddCourse("7/En2");
  MoodleId u = AddUser("a@school.test");
  Own(c, u, {5});
  Own(c2, u, {5});
  Row("7/En1", "a@school.test");  // c2 lost its row
  Plan p = Build();
  EXPECT_THAT(p.touched_courses, ElementsAre(c2));
}

TEST_F(PlanTest, UnresolvableRowStillProtectsTheEnrolmentItMade) {
  MoodleId c = AddCourse("7/En1");
  MoodleId u = AddUser("a@school.test");
  Own(c, u, {5});
  Verified(c, {P(u, {5})});
  Row("7/En1", "a@school.test", "99");  // role typo in the MIS
  Plan p = Build();
  EXPECT_THAT(p.items, IsEmpty()) << "a bad row is not a leaver";
  EXPECT_THAT(p.notes, ElementsAre(HasSubstr("kept a@school.test in '7/En1'")));
}

TEST_F(PlanTest, HiddenCourseIsSkippedWhenIgnoreHiddenCourses) {
  policy.ignore_hidden_courses = true;
  MoodleId c = AddCourse("7/En1", /*visible=*/false);
  MoodleId u = AddUser("a@school.test");
  AddUser("b@school.test");
  Own(c, u, {5});
  Verified(c, {P(u, {5})});
  Row("7/En1", "b@school.test");
  Plan p = Build();
  EXPECT_THAT(p.items, IsEmpty());
  EXPECT_THAT(p.notes, ElementsAre(HasSubstr("hidden")));
  policy.ignore_hidden_courses = false;
  EXPECT_EQ(Build().summary.Changes(), 2);
}

TEST_F(PlanTest, HiddenNewCourseGetsNoEnrolmentsWhenIgnoreHiddenCourses) {
  policy.ignore_hidden_courses = true;
  policy.new_courses_visible = false;
  CourseRow("A", "A", "a", "1");
  AddUser("a@school.test");
  Row("a", "a@school.test");
  Plan p = Build();
  EXPECT_EQ(p.summary.courses_create, 1);
  EXPECT_EQ(p.summary.enrol, 0);
}

TEST_F(PlanTest, NewCourseVisibilityLeftToMoodleIsCheckedBeforeEnrollingWhenIgnoreHiddenCourses) {
  policy.ignore_hidden_courses = true;  // new_courses_visible unset: Moodle's default
  CourseRow("A", "A", "a", "1");
  AddUser("a@school.test");
  Row("a", "a@school.test");
  Plan p = Build();
  EXPECT_EQ(p.summary.enrol, 1);
  EXPECT_TRUE(p.recheck_new_course_visibility) << "the executor reads the new course back first";
  EXPECT_THAT(p.notes, ElementsAre(HasSubstr("Moodle's default visibility")));
  policy.ignore_hidden_courses = false;
  EXPECT_FALSE(Build().recheck_new_course_visibility);
}

// ---------------------------------------------------------------- safety

TEST_F(PlanTest, BlockedRemovalsAreWithheldWhileAdditionsProceed) {
  policy.block_removals = {"enrolment table returned 0 rows"};
  MoodleId c = AddCourse("7/En1");
  MoodleId u = AddUser("a@school.test");
  AddUser("b@school.test");
  Own(c, u, {5});
  Verified(c, {P(u, {5})});
  Row("7/En1", "b@school.test");
  Plan p = Build();
  EXPECT_THAT(Lines(p), ElementsAre("+ enrol Course 7/En1: b@school.test as student"));
  EXPECT_EQ(p.removals_withheld, 1);
  EXPECT_THAT(p.removal_block_reasons, ElementsAre("enrolment table returned 0 rows"));
}

TEST_F(PlanTest, RemovalsOverThePercentageTripTheGuard) {
  policy.max_removals_percent = 10;
  MoodleId c = AddCourse("7/En1");
  std::vector<model::Participant> ps;
  for (int i = 0; i < 20; ++i) {
    MoodleId u = AddUser("p" + std::to_string(i) + "@school.test");
    Own(c, u, {5});
    ps.push_back(P(u, {5}));
    if (i >= 3) Row("7/En1", "p" + std::to_string(i) + "@school.test");  // 3 of 20 leave
  }
  Verified(c, ps);
  Plan p = Build();
  EXPECT_EQ(p.managed_enrolments, 20);
  EXPECT_EQ(p.removal_limit, 2);
  EXPECT_EQ(p.summary.suspend, 3);
  EXPECT_TRUE(p.guard_tripped);
  policy.allow_removals = 3;
  EXPECT_FALSE(Build().guard_tripped) << "--allow-removals 3 approves this run";
  policy.allow_removals = -1;
  policy.max_removals_percent = 15;
  EXPECT_FALSE(Build().guard_tripped);
}

TEST_F(PlanTest, AbsoluteRemovalLimitIsHonoured) {
  policy.max_removals = 0;
  MoodleId c = AddCourse("7/En1");
  MoodleId u = AddUser("a@school.test");
  Own(c, u, {5});
  Verified(c, {P(u, {5})});
  EXPECT_TRUE(Build().guard_tripped);
  policy.unenrol_action = UnenrolAction::kKeep;
  EXPECT_FALSE(Build().guard_tripped);
}

// ---------------------------------------------------------------- output

TEST_F(PlanTest, ItemsComeInApplyOrder) {
  policy.unenrol_action = UnenrolAction::kSuspendRemoveRoles;
  CourseRow("New", "New", "new", "1");
  MoodleId c = AddCourse("old");
  MoodleId a = AddUser("a@school.test");
  MoodleId b = AddUser("b@school.test");
  Own(c, a, {5});
  Verified(c, {P(a, {5})});
  Row("new", "b@school.test");
  Row("old", "b@school.test", "3");
  (void)b;
  Plan p = Build();
  std::vector<Action> actions;
  for (const auto& i : p.items) actions.push_back(i.action);
  EXPECT_THAT(actions, ElementsAre(Action::kCreateCourse, Action::kEnrol, Action::kEnrol, Action::kSuspend,
                                   Action::kRoleUnassign));
}

TEST_F(PlanTest, TraceLinesMatchEnrolDatabase) {
  PlanItem i;
  i.userid = 566;
  i.course_shortname = "Academic Extension - 10/AX1";
  i.role = "editingteacher";
  i.action = Action::kEnrol;
  EXPECT_EQ(MoodleTraceLine(i), "enrolling: 566 ==> Academic Extension - 10/AX1 as editingteacher");
  i.action = Action::kSuspend;
  EXPECT_EQ(MoodleTraceLine(i), "suspending: 566 ==> Academic Extension - 10/AX1");
  i.action = Action::kUnsuspend;
  EXPECT_EQ(MoodleTraceLine(i), "unsuspending: 566 ==> Academic Extension - 10/AX1");
  i.action = Action::kUnenrol;
  EXPECT_EQ(MoodleTraceLine(i), "unenrolling: 566 ==> Academic Extension - 10/AX1");
  i.action = Action::kRoleAssign;
  i.role = "teacher";
  EXPECT_EQ(MoodleTraceLine(i), "assigning roles: 566 ==> Academic Extension - 10/AX1 as teacher");
  i.action = Action::kRoleUnassign;
  EXPECT_EQ(MoodleTraceLine(i), "unsassigning roles: 566 ==> Academic Extension - 10/AX1");
  PlanItem c;
  c.action = Action::kCreateCourse;
  c.courseid = 20;
  c.course_fullname = c.course_shortname = "Academic Extension - 10/AX1";
  c.idnumber = "10/AX1";
  c.categoryid = 6;
  EXPECT_EQ(MoodleTraceLine(c), "creating course: 20, Academic Extension - 10/AX1, Academic Extension - 10/AX1, 10/AX1, 6");
}

TEST_F(PlanTest, NoChangeGivesAnEmptyPlan) {
  MoodleId c = AddCourse("7/En1");
  MoodleId u = AddUser("a@school.test");
  MoodleId t = AddUser("t@school.test");
  Own(c, u, {5});
  Own(c, t, {3, 4});
  Verified(c, {P(u, {5}), P(t, {3, 4})});
  Row("7/En1", "a@school.test");
  Row("7/En1", "t@school.test", "3");
  Row("7/En1", "t@school.test", "4");
  CourseRow("Course 7/En1", "Course 7/En1", "7/En1", "1");
  Plan p = Build();
  EXPECT_FALSE(p.HasChanges());
  EXPECT_THAT(p.problems, IsEmpty());
  EXPECT_THAT(p.forget, IsEmpty());
}

// enrolsync adopt (PlanAdoption): what a lost ledger held is claimed from
// what Moodle shows for the feed's own rows, and nothing else.
TEST_F(PlanTest, AdoptionClaimsFeedRowsMoodleHoldsWithTheirRoleAndNothingElse) {
  MoodleId c = AddCourse("7A/Ma");
  MoodleId unread = AddCourse("7B/Ma");
  AddCourse("hand-made");
  CourseRow("Maths 7A", "Course 7A/Ma", "7A/Ma", "1");
  MoodleId pupil = AddUser("p@school.uk");
  MoodleId suspended = AddUser("s@school.uk");
  MoodleId other_role = AddUser("t@school.uk");
  AddUser("a@school.uk");  // in the feed, not in the course
  MoodleId owned_already = AddUser("o@school.uk");
  MoodleId stranger = AddUser("x@school.uk");  // a participant the feed does not name
  Row("7A/Ma", "p@school.uk");
  Row("7A/Ma", "s@school.uk");
  Row("7A/Ma", "t@school.uk");
  Row("7A/Ma", "a@school.uk");
  Row("7A/Ma", "o@school.uk");
  Row("7B/Ma", "p@school.uk");
  Row("9Z/Ma", "p@school.uk");  // no such course
  Own(c, owned_already, {5});
  Verified(c, {P(pupil, {5}), P(suspended, {5}, false), P(other_role, {3}), P(owned_already, {5}), P(stranger, {5})});

  Adoption a = PlanAdoption(desired, moodle, owned, policy);
  ASSERT_EQ(a.courses.size(), 1u);
  EXPECT_EQ(a.courses[0].courseid, c);
  ASSERT_EQ(a.enrolments.size(), 2u);
  EXPECT_EQ(a.enrolments[0].userid, pupil);
  EXPECT_TRUE(a.enrolments[0].active);
  EXPECT_THAT(a.enrolments[0].role_names, ElementsAre("student"));
  EXPECT_EQ(a.enrolments[0].user_key, "p@school.uk");
  EXPECT_EQ(a.enrolments[1].userid, suspended);
  EXPECT_FALSE(a.enrolments[1].active);
  EXPECT_EQ(a.already_owned, 1);
  EXPECT_EQ(a.without_feed_role, 1);  // t@ holds editingteacher, the row says student
  EXPECT_EQ(a.not_participants, 1);   // a@
  EXPECT_THAT(a.unread_courses, ElementsAre(unread));
  EXPECT_EQ(a.problems.size(), 1u);  // 9Z/Ma
  EXPECT_FALSE(a.Empty());

  // Recorded (as the runner does), nothing is left to adopt.
  owned.created_courses.insert(c);
  for (const auto& e : a.enrolments) Own(e.courseid, e.userid, {5}, e.active ? EnrolStatus::kActive : EnrolStatus::kSuspended);
  Verified(unread);
  Adoption again = PlanAdoption(desired, moodle, owned, policy);
  EXPECT_TRUE(again.Empty());
  EXPECT_EQ(again.already_owned, 3);
  EXPECT_THAT(again.unread_courses, IsEmpty());
  (void)stranger;
}

}  // namespace
}  // namespace enrolsync::plan
