// The generated school synced into a real Moodle 5.1, users from a real
// slapd, then rounds of changes. After every round Moodle's own database
// (read with SQL, not through enrolsync's client) must hold exactly the
// users, courses, enrolments and roles an independent model computes, and a
// second run must make no write call and report no problem beyond the
// source's own.
//
// The model: enrol_database's semantics for courses and enrolments (the
// Oracle of school_site.h), auth_ldap's for users (every directory person is
// a user with the directory's names; one removed from the directory is
// suspended, one back is revived).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>

#include "config/config.h"
#include "moodle/client.h"
#include "school_site.h"
#include "schoolgen/schoolgen.h"
#include "real_school.h"
#include "support/moodle_server.h"
#include "support/pg_server.h"
#include "support/slapd_server.h"
#include "sync/runner.h"
#include "util/strings.h"

namespace enrolsync::testing {
namespace {

using testsupport::MoodleServer;
using testsupport::SlapdServer;
using Rows = std::vector<std::vector<std::string>>;

std::string Q(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("''") : std::string(1, c);
  return out + "'";
}

using Person = DirectoryPerson;

std::string Show(const Person& p) {
  return p.firstname + " | " + p.lastname + " | " + p.email + " | " + p.idnumber + (p.suspended ? " | suspended" : "");
}

// The sets the MIS lists and the courses Moodle should hold for them.
struct CourseRow {
  std::string shortname, fullname, category;
  bool operator==(const CourseRow&) const = default;
};

class RealMoodleSchool : public ::testing::Test {
 protected:
  void Start(const schoolgen::Options& size, const std::string& unenrol_action) {
    RealSchoolOptions o;
    o.size = size;
    o.unenrol_action = unenrol_action;
    ENROLSYNC_START_REAL_SCHOOL(site_, o);
    action_ = unenrol_action;
    categories_ = {site_->categories().begin(), site_->categories().end()};
    std::set<std::string> emails;
    for (const auto& [uid, p] : site_->people()) emails.insert(ToLower(p.email));
    oracle_ = std::make_unique<Oracle>(action_, categories_, emails);
  }
  std::map<std::string, Person>& people() { return site_->people(); }
  const schoolgen::School& school() { return site_->school(); }
  static std::string Entry(const std::string& uid, const Person& p) { return RealSchool::Entry(uid, p); }

  sync::RunReport Sync(bool verify_all = false) {
    auto t0 = std::chrono::steady_clock::now();
    auto r = site_->Sync(verify_all);
    double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    int calls = 0, retried = 0;
    for (const auto& [fn, st] : r.calls) calls += st.calls;
    for (const auto& [reason, n] : r.retries) retried += n;
    std::printf("[realmoodle] %s: %.1f s, %d calls, %d writes, %d retried, %zu problems\n", round_.c_str(), secs,
                calls, r.write_calls, retried, r.plan.problems.size());
    std::fflush(stdout);
    return r;
  }

  Rows Sql(const std::string& sql) {
    auto rows = site_->moodle().Query(sql);
    EXPECT_TRUE(rows) << (rows ? "" : rows.error().message);
    return rows ? *rows : Rows{};
  }
  Rows Mis(const std::string& sql) {
    Rows out;
    auto r = testsupport::QuerySqlite(site_->mis_path(), sql);
    EXPECT_TRUE(r) << (r ? "" : r.error().message);
    return r ? *r : out;
  }

  // Moodle's enrolments of any method and its course-context roles, keyed by
  // (course idnumber, lower-case email).
  MoodleState MoodleEnrolments() {
    MoodleState s;
    for (const auto& r : Sql("SELECT c.idnumber, lower(u.email), e.enrol, ue.status FROM mdl_user_enrolments ue "
                             "JOIN mdl_enrol e ON e.id = ue.enrolid JOIN mdl_course c ON c.id = e.courseid "
                             "JOIN mdl_user u ON u.id = ue.userid")) {
      EXPECT_EQ(r[2], "manual") << "enrolment by another method: " << r[0] << " " << r[1];
      s[{r[0], r[1]}].status = std::stoi(r[3]);
    }
    for (const auto& r : Sql("SELECT c.idnumber, lower(u.email), ra.roleid FROM mdl_role_assignments ra "
                             "JOIN mdl_context x ON x.id = ra.contextid AND x.contextlevel = 50 "
                             "JOIN mdl_course c ON c.id = x.instanceid JOIN mdl_user u ON u.id = ra.userid")) {
      s[{r[0], r[1]}].roles.insert(std::stoll(r[2]));
    }
    return s;
  }

  // The feed as enrol_database reads it, emails lower-cased (matching
  // ignores case).
  std::vector<std::tuple<std::string, std::string, int>> EnrolFeed() {
    std::vector<std::tuple<std::string, std::string, int>> out;
    for (const auto& r : Mis("SELECT txtSetCode, txtEmailAddress, intRoleID FROM VwMoodleEnrolData"))
      out.emplace_back(r[0], ToLower(r[1]), std::stoi(r[2]));
    return out;
  }

  // Asserts Moodle against the model after a sync of this round.
  void Expect(const sync::RunReport& r) {
    ASSERT_EQ(r.exit_code, 0) << round_ << ": " << r.error;
    ASSERT_TRUE(r.apply.failures.empty()) << round_ << ": " << r.apply.failures.front().message;
    ASSERT_TRUE(r.users.read_ok) << r.users.read_error;

    // Courses: created once from the first row that named them, never
    // renamed or moved (enrol_database only creates).
    std::vector<std::tuple<std::string, std::string, std::string>> course_feed;
    for (const auto& c : Mis("SELECT txtCourseID, txtShortName, txtFullName, intCategoryID FROM VwMoodleCourseData")) {
      course_feed.emplace_back(c[0], c[1], c[3]);
      if (!courses_.count(c[0]) && (c[3].empty() || categories_.count(c[3])))
        courses_[c[0]] = {c[1], c[2], c[3].empty() ? "2" : c[3]};
    }
    std::map<std::string, CourseRow> in_moodle;
    for (const auto& c : Sql("SELECT idnumber, shortname, fullname, category FROM mdl_course WHERE id <> 1"))
      in_moodle[c[0]] = {c[1], c[2], c[3]};
    EXPECT_EQ(in_moodle.size(), courses_.size()) << round_;
    for (const auto& [idnumber, want] : courses_) {
      auto it = in_moodle.find(idnumber);
      if (it == in_moodle.end()) {
        ADD_FAILURE() << round_ << ": course " << idnumber << " missing";
      } else {
        EXPECT_EQ(it->second, want) << round_ << ": course " << idnumber << " is " << it->second.shortname << " / "
                                    << it->second.fullname << " / " << it->second.category;
      }
    }

    // Users.
    std::map<std::string, Person> users;
    for (const auto& u : Sql("SELECT username, firstname, lastname, email, idnumber, suspended FROM mdl_user "
                             "WHERE deleted = 0 AND auth = 'ldap'"))
      users[u[0]] = {"", u[1], u[2], u[3], u[4], u[5] == "1"};
    EXPECT_EQ(users.size(), people().size()) << round_;
    int shown = 0;
    for (const auto& [uid, p] : people()) {
      Person want = p;
      want.ou.clear();
      auto it = users.find(uid);
      if (it == users.end()) {
        if (shown++ < 10) ADD_FAILURE() << round_ << ": user " << uid << " missing";
      } else if (!(it->second == want) && shown++ < 10) {
        ADD_FAILURE() << round_ << ": user " << uid << " is " << Show(it->second) << ", expected " << Show(want);
      }
    }
    for (const auto& u : Sql("SELECT username, suspended FROM mdl_user WHERE deleted = 0 AND auth <> 'ldap'"))
      EXPECT_EQ(u[1], "0") << round_ << ": " << u[0] << " was suspended";

    // Enrolments and roles.
    oracle_->Sync(course_feed, EnrolFeed());
    auto actual = MoodleEnrolments();
    EXPECT_TRUE(actual == oracle_->state()) << round_ << ":\n" << Describe(oracle_->state(), actual);
  }

  // A second run changes nothing and reports only the source's own problems.
  void ExpectQuiet(const sync::RunReport& first) {
    auto again = Sync();
    ASSERT_EQ(again.exit_code, 0) << again.error;
    EXPECT_EQ(again.write_calls, 0) << round_;
    EXPECT_FALSE(again.plan.HasChanges()) << round_ << ": " << plan::PlanLine(again.plan.items.front());
    EXPECT_EQ(again.users.plan.items.size(), 0u) << round_;
    for (const auto& p : again.plan.problems) EXPECT_TRUE(SourcesOwn(p.reason)) << round_ << ": " << p.reason;
    std::set<std::string> a, b;
    for (const auto& p : first.plan.problems) a.insert(p.reason);
    for (const auto& p : again.plan.problems) b.insert(p.reason);
    EXPECT_EQ(a, b) << round_;
  }

  // A row naming a user who is in neither the directory nor Moodle, or a
  // course whose category Moodle does not have.
  bool SourcesOwn(const std::string& reason) {
    std::set<std::string> known;
    for (const auto& [uid, p] : people()) known.insert(ToLower(p.email));
    auto q1 = reason.find('\'');
    auto q2 = q1 == std::string::npos ? q1 : reason.find('\'', q1 + 1);
    if (q2 == std::string::npos) return false;
    std::string value = ToLower(reason.substr(q1 + 1, q2 - q1 - 1));
    if (reason.find("unknown user") != std::string::npos) return !known.count(value);
    if (reason.find("category") != std::string::npos) return true;
    // Rows of a course that could not be created (its category is unknown).
    if (reason.find("does not exist in Moodle") != std::string::npos) return !courses_.count(reason.substr(q1 + 1, q2 - q1 - 1));
    return false;
  }

  void Round(const std::string& name) {
    round_ = name;
    auto r = Sync();
    ASSERT_NO_FATAL_FAILURE(Expect(r));
    ASSERT_NO_FATAL_FAILURE(ExpectQuiet(r));
  }

  void DayOfChanges(int moves) { ASSERT_TRUE(site_->DayOfChanges(moves)); }

  std::unique_ptr<RealSchool> site_;
  std::string action_, round_;
  std::set<std::string> categories_;
  std::map<std::string, CourseRow> courses_;
  std::unique_ptr<Oracle> oracle_;
};

TEST_F(RealMoodleSchool, RecordedSizeSchoolThenADayOfChangesThenLeavers) {
  ASSERT_NO_FATAL_FAILURE(Start({800, 90}, "suspend"));
  if (!site_) return;
  ASSERT_NO_FATAL_FAILURE(Round("first"));
  ASSERT_GT(oracle_->state().size(), 8000u);
  // The pupil whose directory mail has capitals was matched.
  std::string capitals = people().at(school().people[10].username).email;
  ASSERT_NE(capitals, ToLower(capitals));
  EXPECT_EQ(Sql("SELECT COUNT(*) FROM mdl_user_enrolments ue JOIN mdl_user u ON u.id = ue.userid WHERE u.email = " +
                Q(capitals))[0][0],
            std::to_string(std::count_if(oracle_->state().begin(), oracle_->state().end(), [&](const auto& kv) {
              return kv.first.second == ToLower(capitals);
            })));

  ASSERT_NO_FATAL_FAILURE(DayOfChanges(20));
  ASSERT_NO_FATAL_FAILURE(Round("a day of changes"));
  EXPECT_EQ(Sql("SELECT fullname FROM mdl_course WHERE idnumber = '10/Zz1'")[0][0].find("Art & Design: O'Keeffe"), 0u);

  // Five pupils leave the directory; a member of staff's surname changes
  // (an ampersand, an apostrophe and accents).
  auto leavers = site_->Leave(5);
  ASSERT_TRUE(leavers) << leavers.error().message;
  const std::string staff = school().people.back().username;
  ASSERT_TRUE(site_->Rename(staff, "Smith & O'Neill-Åberg"));
  ASSERT_NO_FATAL_FAILURE(Round("five leavers and a surname change"));

  // Two of them come back.
  for (int k = 0; k < 2; ++k) {
    Person& p = people()[(*leavers)[k]];
    p.suspended = false;
    ASSERT_TRUE(site_->slapd().Add(Entry((*leavers)[k], p)));
  }
  ASSERT_NO_FATAL_FAILURE(Round("two leavers re-added"));
}

class RealMoodleUnenrolAction : public RealMoodleSchool, public ::testing::WithParamInterface<std::string> {};

// Each unenrol action on real Moodle: the sample-size school, then a day of
// changes (which takes pupils and a teacher off sets and deletes a set).
TEST_P(RealMoodleUnenrolAction, RemovalsReachTheExpectedState) {
  ASSERT_NO_FATAL_FAILURE(Start({120, 24}, GetParam()));
  if (!site_) return;
  ASSERT_NO_FATAL_FAILURE(Round("first"));
  ASSERT_NO_FATAL_FAILURE(DayOfChanges(10));
  ASSERT_NO_FATAL_FAILURE(Round("a day of changes"));
}

INSTANTIATE_TEST_SUITE_P(AllUnenrolActions, RealMoodleUnenrolAction,
                         ::testing::Values("unenrol", "keep", "suspend_remove_roles"),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace enrolsync::testing
