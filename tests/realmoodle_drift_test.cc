// Hand-made drift on a real Moodle 5.1, corrected by ordinary runs (no
// --verify) within the documented number of runs: the verification rotation
// reads every managed course and every user within R - 1 runs (README "How
// drift is found"). Here verify_max_age_days = 1 and runs_per_day = 3, so
// R = 3 and everything comes round within 2 runs. The drift is made as an
// admin or a teacher would make it, through Moodle's own web services.
#include <gtest/gtest.h>

#include <string>

#include "moodle/client.h"
#include "real_school.h"
#include "util/strings.h"

namespace enrolsync::testing {
namespace {

class RealMoodleDrift : public ::testing::Test {
 protected:
  void SetUp() override {
    RealSchoolOptions o;
    o.size = {40, 8};
    o.capitalised_mail = -1;
    o.max_removals = "1000";
    // No [state] table follows [moodle] in the harness's config.
    o.moodle_extra = "\n[state]\nverify_max_age_days = 1\nruns_per_day = 3\n";
    ENROLSYNC_START_REAL_SCHOOL(site_, o);
    moodle::ClientOptions co;
    co.url = site_->moodle().url();
    co.token = site_->moodle().token();
    admin_ = std::make_unique<moodle::Client>(co);
  }

  std::string One(const std::string& sql) {
    auto rows = site_->moodle().Query(sql);
    EXPECT_TRUE(rows) << sql << ": " << rows.error().message;
    return rows && !rows->empty() && !(*rows)[0].empty() ? (*rows)[0][0] : "";
  }
  // The manual enrolment's status in a course ("" = none), by idnumber and email.
  std::string Status(const std::string& course, const std::string& email) {
    return One("SELECT ue.status FROM mdl_user_enrolments ue JOIN mdl_enrol e ON e.id = ue.enrolid AND "
               "e.enrol = 'manual' JOIN mdl_course c ON c.id = e.courseid JOIN mdl_user u ON u.id = ue.userid "
               "WHERE c.idnumber = '" + course + "' AND lower(u.email) = '" + ToLower(email) + "'");
  }
  long long Id(const std::string& sql) {
    long long v = 0;
    ParseInt64(One(sql), &v);
    return v;
  }

  std::unique_ptr<RealSchool> site_;
  std::unique_ptr<moodle::Client> admin_;
};

TEST_F(RealMoodleDrift, EnrolmentsAndUsersChangedByHandAreRestoredWithinTheRotation) {
  auto first = site_->Sync();
  ASSERT_EQ(first.exit_code, 0) << first.error;
  auto again = site_->Sync();
  ASSERT_EQ(again.exit_code, 0) << again.error;
  EXPECT_EQ(again.write_calls, 0);
  EXPECT_EQ(again.calls.count("core_user_get_users"), 0u) << "a no-change run read every user again";

  // Two pupil rows of two different sets, and a managed user.
  const auto& rows = site_->school().enrol_view;
  const schoolgen::EnrolViewRow* a = nullptr;
  const schoolgen::EnrolViewRow* b = nullptr;
  for (const auto& r : rows) {
    if (r.role_id != 5) continue;
    if (!a) a = &r;
    else if (r.set_code != a->set_code && ToLower(r.email) != ToLower(a->email)) {
      b = &r;
      break;
    }
  }
  ASSERT_TRUE(a && b);
  ASSERT_EQ(Status(a->set_code, a->email), "0");
  ASSERT_EQ(Status(b->set_code, b->email), "0");
  const auto& person = *site_->people().begin();
  const std::string username = person.first, lastname = person.second.lastname;

  const long long course_a = Id("SELECT id FROM mdl_course WHERE idnumber = '" + a->set_code + "'");
  const long long user_a = Id("SELECT id FROM mdl_user WHERE lower(email) = '" + ToLower(a->email) + "'");
  const long long course_b = Id("SELECT id FROM mdl_course WHERE idnumber = '" + b->set_code + "'");
  const long long user_b = Id("SELECT id FROM mdl_user WHERE lower(email) = '" + ToLower(b->email) + "'");
  const long long user_c = Id("SELECT id FROM mdl_user WHERE username = '" + username + "'");
  ASSERT_TRUE(course_a && user_a && course_b && user_b && user_c);
  // A teacher unenrols one pupil, suspends another; an admin renames a user.
  auto un = admin_->UnenrolUsers({{course_a, user_a}});
  ASSERT_TRUE(un.at(0)) << un.at(0).error().message;
  moodle::ManualEnrolment s;
  s.courseid = course_b;
  s.userid = user_b;
  s.roleid = 5;
  s.suspend = true;
  auto sus = admin_->EnrolUsers({s});
  ASSERT_TRUE(sus.at(0)) << sus.at(0).error().message;
  moodle::UserUpdate edit;
  edit.id = user_c;
  edit.fields = {{"lastname", "Edited-by-hand"}};
  auto ed = admin_->UpdateUsers({edit});
  ASSERT_TRUE(ed.at(0)) << ed.at(0).error().message;
  ASSERT_EQ(Status(a->set_code, a->email), "");
  ASSERT_EQ(Status(b->set_code, b->email), "1");

  // R - 1 = 2 ordinary runs put everything back.
  for (int run = 1; run <= 2; ++run) {
    auto r = site_->Sync();
    ASSERT_EQ(r.exit_code, 0) << "run " << run << ": " << r.error;
    EXPECT_EQ(r.calls.count("core_user_get_users"), 0u) << "run " << run;
    EXPECT_EQ(r.calls.count("core_course_get_courses_by_field"), 0u) << "run " << run;
  }
  EXPECT_EQ(Status(a->set_code, a->email), "0") << "the pupil unenrolled by hand";
  EXPECT_EQ(Status(b->set_code, b->email), "0") << "the enrolment suspended by hand";
  EXPECT_EQ(One("SELECT lastname FROM mdl_user WHERE id = " + std::to_string(user_c)), lastname)
      << "the user renamed by hand";
  // And it stays put: the next run changes nothing.
  auto settled = site_->Sync();
  ASSERT_EQ(settled.exit_code, 0) << settled.error;
  EXPECT_EQ(settled.write_calls, 0);
}

}  // namespace
}  // namespace enrolsync::testing
