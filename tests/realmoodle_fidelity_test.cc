// enrol_database's behaviours that depend on how Moodle itself treats a
// manual enrolment beside another one (tests/fidelity_test.cc has the same
// cases on the sandbox), on a real Moodle 5.1: a meta link keeps a teacher
// in the course, and enrolsync must still take back its roles, suspend once,
// re-activate, and never give a role back with a suspension.
#include <gtest/gtest.h>

#include <fstream>
#include <set>
#include <sstream>

#include "moodle/client.h"
#include "real_school.h"
#include "support/pg_server.h"
#include "util/strings.h"

namespace enrolsync::testing {
namespace {

std::string Q(const std::string& s) { return "'" + s + "'"; }

class RealMoodleFidelity : public ::testing::Test {
 protected:
  void Start(const std::string& unenrol_action) {
    RealSchoolOptions o;
    o.size = {12, 4};
    o.unenrol_action = unenrol_action;
    o.capitalised_mail = -1;
    o.max_removals = "1000";  // one removal is most of this tiny school
    ENROLSYNC_START_REAL_SCHOOL(site_, o);
    ASSERT_TRUE(Mis("CREATE TABLE Feed (txtSetCode TEXT, txtEmailAddress TEXT, intRoleID INTEGER); "
                    "DROP VIEW VwMoodleEnrolData; CREATE VIEW VwMoodleEnrolData AS "
                    "SELECT txtSetCode, txtEmailAddress, intRoleID FROM Feed"));
    const auto& sets = site_->school().course_view;
    ASSERT_GE(sets.size(), 3u);
    a_ = sets[0].idnumber;
    b_ = sets[1].idnumber;
    c_ = sets[2].idnumber;
    for (const auto& p : site_->school().people) (p.staff ? staff_ : pupils_).push_back(ToLower(p.email));
    teacher_ = staff_.at(0);
  }
  Status Mis(const std::string& sql) { return testsupport::ExecSqlite(site_->mis_path(), sql); }
  void EditConfig(const std::string& from, const std::string& to) {
    std::ifstream in(site_->config_path());
    std::stringstream text;
    text << in.rdbuf();
    std::string cfg = text.str();
    auto pos = cfg.find(from);
    ASSERT_NE(pos, std::string::npos) << from;
    cfg.replace(pos, from.size(), to);
    std::ofstream(site_->config_path()) << cfg;
  }

  // Replaces the feed; a pupil row in set C always stays (an empty feed
  // withholds every removal).
  void Feed(const std::vector<std::tuple<std::string, std::string, int>>& rows) {
    std::string sql = "DELETE FROM Feed; INSERT INTO Feed VALUES (" + Q(c_) + ", " + Q(pupils_.at(2)) + ", 5);";
    for (const auto& [set, email, role] : rows)
      sql += "INSERT INTO Feed VALUES (" + Q(set) + ", " + Q(email) + ", " + std::to_string(role) + ");";
    ASSERT_TRUE(Mis(sql));
  }
  sync::RunReport SyncOk(const std::string& what) {
    auto r = site_->Sync(/*verify_all=*/true);
    EXPECT_EQ(r.exit_code, 0) << what << ": " << r.error;
    for (const auto& f : r.apply.failures) ADD_FAILURE() << what << ": " << f.message;
    return r;
  }
  void ExpectConverged(const std::string& what) {
    auto r = site_->Sync(/*verify_all=*/true);
    EXPECT_EQ(r.exit_code, 0) << what << ": " << r.error;
    EXPECT_FALSE(r.plan.HasChanges()) << what << ": " << plan::PlanLine(r.plan.items.front());
    EXPECT_EQ(r.write_calls, 0) << what;
  }

  std::string One(const std::string& sql) {
    auto rows = site_->moodle().Query(sql);
    EXPECT_TRUE(rows) << (rows ? "" : rows.error().message);
    return rows && !rows->empty() ? (*rows)[0][0] : "";
  }
  std::string CourseId(const std::string& idnumber) {
    return One("SELECT id FROM mdl_course WHERE idnumber = " + Q(idnumber));
  }
  std::string UserId(const std::string& email) {
    return One("SELECT id FROM mdl_user WHERE lower(email) = " + Q(email) + " AND deleted = 0");
  }
  // The status of the user's enrolment by `method` in the course; -1: none.
  int EnrolStatus(const std::string& set, const std::string& email, const std::string& method = "manual") {
    std::string s = One("SELECT ue.status FROM mdl_user_enrolments ue JOIN mdl_enrol e ON e.id = ue.enrolid "
                        "WHERE e.courseid = " + CourseId(set) + " AND e.enrol = " + Q(method) +
                        " AND ue.userid = " + UserId(email));
    return s.empty() ? -1 : std::stoi(s);
  }
  std::set<int> Roles(const std::string& set, const std::string& email) {
    std::set<int> out;
    auto rows = site_->moodle().Query(
        "SELECT ra.roleid FROM mdl_role_assignments ra JOIN mdl_context x ON x.id = ra.contextid "
        "AND x.contextlevel = 50 WHERE x.instanceid = " + CourseId(set) + " AND ra.userid = " + UserId(email));
    EXPECT_TRUE(rows);
    if (rows)
      for (const auto& r : *rows) out.insert(std::stoi(r[0]));
    return out;
  }
  moodle::Client Client() {
    moodle::ClientOptions co;
    co.url = site_->moodle().url();
    co.token = site_->moodle().token();
    return moodle::Client(co);
  }
  // Course `parent` gets everyone in `child`, with their roles (enrol_meta;
  // Moodle syncs the link inside the call).
  void MetaLink(const std::string& parent, const std::string& child) {
    auto r = Client().Call("enrol_meta_add_instances", {{"instances[0][metacourseid]", CourseId(parent)},
                                                        {"instances[0][courseid]", CourseId(child)}});
    ASSERT_TRUE(r) << r.error().message;
  }

  std::unique_ptr<RealSchool> site_;
  std::string a_, b_, c_, teacher_;
  std::vector<std::string> pupils_, staff_;
};

TEST_F(RealMoodleFidelity, UnenrolTakesBackEditingteacherWhileAMetaLinkKeepsTheTeacherInTheCourse) {
  ASSERT_NO_FATAL_FAILURE(Start("unenrol"));
  if (!site_) return;
  Feed({{a_, teacher_, 3}, {b_, teacher_, 5}, {a_, pupils_[0], 5}});
  SyncOk("initial");
  MetaLink(a_, b_);
  ASSERT_EQ(EnrolStatus(a_, teacher_, "meta"), 0);
  ASSERT_EQ(Roles(a_, teacher_), (std::set<int>{3, 5}));

  Feed({{b_, teacher_, 5}, {a_, pupils_[0], 5}});
  auto r = SyncOk("teacher taken off set A");
  EXPECT_EQ(r.apply.applied.unenrol, 1);
  EXPECT_EQ(EnrolStatus(a_, teacher_), -1) << "enrolsync's manual enrolment is gone";
  EXPECT_EQ(EnrolStatus(a_, teacher_, "meta"), 0) << "the meta enrolment is not ours";
  EXPECT_EQ(Roles(a_, teacher_), (std::set<int>{5})) << "Moodle keeps manual roles while the meta enrolment remains";
  ExpectConverged("after the unenrol");
}

TEST_F(RealMoodleFidelity, LeaverWithAMetaEnrolmentIsSuspendedOnceAndReactivatedWhenBack) {
  ASSERT_NO_FATAL_FAILURE(Start("suspend"));
  if (!site_) return;
  Feed({{a_, teacher_, 3}, {b_, teacher_, 5}, {a_, pupils_[0], 5}});
  SyncOk("initial");
  MetaLink(a_, b_);

  Feed({{b_, teacher_, 5}, {a_, pupils_[0], 5}});
  auto r = SyncOk("teacher taken off set A");
  EXPECT_EQ(r.apply.applied.suspend, 1);
  EXPECT_EQ(EnrolStatus(a_, teacher_), 1);
  EXPECT_EQ(Roles(a_, teacher_), (std::set<int>{3, 5})) << "a suspension keeps roles";
  ExpectConverged("suspended while the meta enrolment is active");

  Feed({{a_, teacher_, 3}, {b_, teacher_, 5}, {a_, pupils_[0], 5}});
  r = SyncOk("teacher back in set A");
  EXPECT_EQ(r.apply.applied.unsuspend, 1);
  EXPECT_EQ(EnrolStatus(a_, teacher_), 0) << "enrolsync's own enrolment must be active again";
  ExpectConverged("back");
}

TEST_F(RealMoodleFidelity, ASuspensionNeverGivesBackARoleRemovedByHand) {
  ASSERT_NO_FATAL_FAILURE(Start("suspend_remove_roles"));
  if (!site_) return;
  Feed({{a_, teacher_, 3}, {a_, pupils_[0], 5}});
  SyncOk("initial");
  auto client = Client();
  auto removed = client.UnassignRoles({{std::stoll(CourseId(a_)), std::stoll(UserId(teacher_)), 3}});
  ASSERT_TRUE(removed.front()) << removed.front().error().message;
  ASSERT_EQ(Roles(a_, teacher_), (std::set<int>{}));

  Feed({{a_, pupils_[0], 5}});
  SyncOk("teacher taken off set A");
  EXPECT_EQ(EnrolStatus(a_, teacher_), 1);
  EXPECT_EQ(Roles(a_, teacher_), (std::set<int>{})) << "enrol_manual_enrol_users role_assigns the role it is sent";
  ExpectConverged("after the suspension");
}

// [courses.defaults] visible left out is not sent: Moodle applies the site's
// course default (the harness site's, like the guide's, is hidden), and with
// ignore_hidden_courses nobody is enrolled in those courses.
TEST_F(RealMoodleFidelity, VisibleLeftOutTakesTheSiteDefaultAndHiddenCoursesGetNoEnrolments) {
  ASSERT_NO_FATAL_FAILURE(Start("suspend"));
  if (!site_) return;
  ASSERT_EQ(One("SELECT value FROM mdl_config_plugins WHERE plugin = 'moodlecourse' AND name = 'visible'"), "0");
  EditConfig("visible = false\n", "");
  EditConfig("ignore_hidden_courses = false", "ignore_hidden_courses = true");
  Feed({{a_, teacher_, 3}, {a_, pupils_[0], 5}, {b_, pupils_[1], 5}});
  auto r = SyncOk("initial");
  EXPECT_GT(r.apply.applied.courses_create, 3);
  EXPECT_EQ(One("SELECT COUNT(*) FROM mdl_course WHERE id <> 1 AND visible = 1"), "0");
  EXPECT_EQ(One("SELECT COUNT(*) FROM mdl_user_enrolments"), "0") << "no one is enrolled in a hidden course";
  ExpectConverged("hidden courses skipped");
}

// The default category missing in Moodle: enrol_database's fallback, the
// first category in Moodle's sort order ("Category 1" on a fresh site).
TEST_F(RealMoodleFidelity, MissingDefaultCategoryFallsBackToMoodlesFirstCategory) {
  ASSERT_NO_FATAL_FAILURE(Start("suspend"));
  if (!site_) return;
  EditConfig("default_category = 2", "default_category = 4242");
  Feed({});
  SyncOk("initial");
  std::string first = One("SELECT id FROM mdl_course_categories ORDER BY sortorder LIMIT 1");
  int without = 0;
  for (const auto& c : site_->school().course_view) {
    if (!c.category.empty()) continue;
    ++without;
    EXPECT_EQ(One("SELECT category FROM mdl_course WHERE idnumber = " + Q(c.idnumber)), first) << c.idnumber;
  }
  EXPECT_GT(without, 0) << "the school has courses without a category";
}

// enrol_database's newcoursestartdate / newcourseenddate, on the course
// Moodle creates.
TEST_F(RealMoodleFidelity, CourseDatesFromTheCourseTableReachTheNewCourse) {
  ASSERT_NO_FATAL_FAILURE(Start("suspend"));
  if (!site_) return;
  auto view = testsupport::QuerySqlite(site_->mis_path(), "SELECT sql FROM sqlite_master WHERE name = 'VwMoodleCourseData'");
  ASSERT_TRUE(view && !view->empty());
  std::string sql = (*view)[0][0];
  sql.replace(sql.find("VwMoodleCourseData"), std::string("VwMoodleCourseData").size(), "CourseBase");
  ASSERT_TRUE(Mis("DROP VIEW VwMoodleCourseData; " + sql +
                  "; CREATE VIEW VwMoodleCourseData AS SELECT *, CASE txtCourseID WHEN " + Q(a_) +
                  " THEN '2026-09-01 08:00:00+01:00' END AS dtStart, CASE txtCourseID WHEN " + Q(a_) +
                  " THEN '1815609600' END AS dtEnd FROM CourseBase"));
  EditConfig("category_field = \"id\"", "category_field = \"id\"\nstartdate = \"dtStart\"\nenddate = \"dtEnd\"");
  Feed({});
  SyncOk("initial");
  EXPECT_EQ(One("SELECT startdate || ' ' || enddate FROM mdl_course WHERE idnumber = " + Q(a_)), "1788246000 1815609600");
  EXPECT_NE(One("SELECT startdate FROM mdl_course WHERE idnumber = " + Q(b_)), "1788246000") << "no date: Moodle's";
}

}  // namespace
}  // namespace enrolsync::testing
