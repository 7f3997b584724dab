// A bad value in the MIS is a problem of its own row, not of the run.
// Moodle's core_user_get_users_by_field cleans every value with
// clean_param(PARAM_EMAIL) and throws invalid_parameter_exception for the
// whole call when one does not survive (the sandbox models it): one pupil's
// email with stray spaces, a quote or a line break in it used to stop the
// whole run with exit 1, naming no row.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "school_site.h"
#include "util/strings.h"

namespace enrolsync::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

// The sets (course idnumbers) each feed email is in, lower-cased.
std::map<std::string, std::set<std::string>> SetsByEmail(SchoolSite& site) {
  std::map<std::string, std::set<std::string>> out;
  for (const auto& [set, email, role] : site.EnrolFeed())
    if (role == 5) out[ToLower(email)].insert(set);
  return out;
}

std::size_t Active(const MoodleState& state, const std::string& email, const std::set<std::string>& sets) {
  std::size_t n = 0;
  for (const auto& set : sets) {
    auto it = state.find({set, email});
    n += it != state.end() && it->second.status == 0;
  }
  return n;
}

const plan::Problem* ProblemFor(const sync::RunReport& r, const std::string& needle) {
  for (const auto& p : r.plan.problems)
    for (const auto& [column, value] : p.values)
      if (value.find(needle) != std::string::npos) return &p;
  return nullptr;
}

std::string Sql(const std::string& email) { return "lower(txtEmailAddress) = '" + email + "'"; }

TEST(BadValues, MalformedEmailsAreRowProblemsAndTheRestOfTheRunApplies) {
  SchoolSite site;
  auto st = site.Setup();
  ASSERT_TRUE(st) << st.error().message;
  auto sets = SetsByEmail(site);
  // Four pupils with sets, and with no other role in them (each is in the
  // pupil table once).
  std::vector<std::string> pupils;
  for (const auto& [email, s] : sets) {
    if (s.size() < 2 || email.find('@') == std::string::npos || email.find('@') < 4) continue;
    if (site.Query("SELECT count(*) FROM TblPupilManagementPupils WHERE " + Sql(email))[0][0] != "1") continue;
    pupils.push_back(email);
    if (pupils.size() == 4) break;
  }
  ASSERT_EQ(pupils.size(), 4u);
  const std::string a = pupils[0], b = pupils[1], c = pupils[2], d = pupils[3];

  // 1. Spaces around an email (common in MIS exports) are trimmed: enrolled.
  ASSERT_TRUE(site.Exec("UPDATE TblPupilManagementPupils SET txtEmailAddress = '  ' || txtEmailAddress || ' ' "
                        "WHERE " + Sql(a)));
  auto first = site.Sync();
  ASSERT_EQ(first.exit_code, 0) << first.error;
  auto moodle = site.Moodle();
  EXPECT_EQ(Active(moodle, a, sets[a]), sets[a].size()) << "' " << a << " ' should be enrolled in every set";
  EXPECT_EQ(Active(moodle, b, sets[b]), sets[b].size());
  EXPECT_EQ(Active(moodle, c, sets[c]), sets[c].size());
  for (const auto& p : first.plan.problems) EXPECT_THAT(ToLower(p.reason), Not(HasSubstr(a))) << p.reason;

  // 2. Then three rows go bad: a '"' inside, a line break inside, and a 1 MB
  // value. Each is a problem naming its table, row, column and value, and
  // the rest of the run applies.
  ASSERT_TRUE(site.Exec("UPDATE TblPupilManagementPupils SET txtEmailAddress = "
                        "substr(txtEmailAddress, 1, 3) || '\"' || substr(txtEmailAddress, 4) WHERE " + Sql(b)));
  ASSERT_TRUE(site.Exec("UPDATE TblPupilManagementPupils SET txtEmailAddress = "
                        "substr(txtEmailAddress, 1, 3) || char(10) || substr(txtEmailAddress, 4) WHERE " + Sql(c)));
  ASSERT_TRUE(site.Exec("UPDATE TblPupilManagementPupils SET txtEmailAddress = "
                        "replace(hex(zeroblob(524288)), '0', 'x') || txtEmailAddress WHERE " + Sql(d)));
  const auto before = site.Moodle();

  auto second = site.Sync();
  ASSERT_EQ(second.exit_code, 0) << second.error;
  const std::string b_bad = b.substr(0, 3) + "\"" + b.substr(3);
  const plan::Problem* pb = ProblemFor(second, b_bad);
  ASSERT_NE(pb, nullptr) << "no problem names '" << b_bad << "'";
  const plan::Problem* pc = ProblemFor(second, c.substr(0, 3) + "\\n" + c.substr(3));
  ASSERT_NE(pc, nullptr) << "no problem names the email with a line break (printed as \\n)";
  const plan::Problem* pd = ProblemFor(second, "xxxxxxxx");
  ASSERT_NE(pd, nullptr) << "no problem names the 1 MB email";
  for (const plan::Problem* p : {pb, pc, pd}) {
    EXPECT_FALSE(p->table.empty());
    EXPECT_GT(p->row, 0u);
    EXPECT_TRUE(p->skipped);
    EXPECT_THAT(p->reason, HasSubstr("column 'txtEmailAddress'")) << p->reason;
  }
  EXPECT_THAT(pb->reason, HasSubstr("PARAM_EMAIL"));
  // Printed truncated, with the length shown; never whole, anywhere.
  EXPECT_THAT(pd->reason, HasSubstr("characters"));
  const std::size_t d_length = 1048576 + d.size();
  EXPECT_THAT(pd->reason, HasSubstr(std::to_string(d_length))) << pd->reason.substr(0, 400);
  for (const auto& p : second.plan.problems) {
    EXPECT_LT(p.reason.size(), 1000u);
    for (const auto& [column, value] : p.values) EXPECT_LT(value.size(), 400u) << column;
  }
  ASSERT_FALSE(second.report_file.empty());
  {
    std::ifstream in(second.report_file);
    std::stringstream json;
    json << in.rdbuf();
    EXPECT_LT(json.str().size(), 200000u) << "the run report holds the 1 MB value";
  }

  // The rows that went bad still protect what they made: nothing of b's or
  // c's is suspended or removed. a stays enrolled.
  auto after = site.Moodle();
  EXPECT_EQ(Active(after, b, sets[b]), sets[b].size());
  EXPECT_EQ(Active(after, c, sets[c]), sets[c].size());
  EXPECT_EQ(Active(after, a, sets[a]), sets[a].size());
  // d's value names no one it enrolled: d left the sets, and that was applied.
  EXPECT_EQ(Active(after, d, sets[d]), 0u);
  EXPECT_GT(second.write_calls, 0);
  // Everyone else is as before: the run applied around the bad rows.
  for (const auto& [key, held] : before) {
    if (key.second == d) continue;
    auto it = after.find(key);
    ASSERT_NE(it, after.end()) << key.first << " " << key.second;
    EXPECT_EQ(it->second, held) << key.first << " " << key.second;
  }

  // A rerun has nothing left to do.
  auto third = site.Sync();
  ASSERT_EQ(third.exit_code, 0) << third.error;
  EXPECT_EQ(third.write_calls, 0);
}

// The user sync (users from an MIS table): an email with spaces around it is
// trimmed; a person with an email Moodle refuses, or a name longer than its
// column, is a problem, neither created nor updated, and not suspended for
// it. The lookups used to send the bad email and fail the whole user step.
TEST(BadValues, UserSyncReportsBadValuesPerPersonAndCreatesTheRest) {
  SiteOptions o;
  o.extra_config =
      "[users]\nsource = \"sql\"\ntable = \"people\"\nusername = \"login\"\nauth = \"manual\"\n"
      "removed_user_action = \"suspend\"\n[users.map]\nfirstname = \"first\"\nlastname = \"last\"\n"
      "email = \"mail\"\n";
  SchoolSite site(o);
  auto st = site.Setup();
  ASSERT_TRUE(st) << st.error().message;
  ASSERT_TRUE(site.Exec("CREATE TABLE people (login TEXT, first TEXT, last TEXT, mail TEXT);"
                        "INSERT INTO people VALUES ('newpupil1', 'Ann', 'Ash', '  newpupil1@school.test ');"
                        "INSERT INTO people VALUES ('newpupil2', 'Bob', 'Birch', 'newpupil2\"@school.test');"
                        "INSERT INTO people VALUES ('newpupil3', replace(hex(zeroblob(524288)), '0', 'x'), 'Cole', "
                        "'newpupil3@school.test');"
                        "INSERT INTO people VALUES ('newpupil4', 'Dee', 'Dale', 'newpupil4@school.test');"));
  auto r = site.Sync();
  ASSERT_TRUE(r.users.read_ok) << r.users.read_error;
  EXPECT_TRUE(r.users.apply.failures.empty()) << r.users.apply.failures.front();
  EXPECT_EQ(r.exit_code, 0) << r.error;
  EXPECT_EQ(r.users.apply.applied.create, 2);
  std::map<std::string, model::User> made;
  for (const auto& u : site.moodle().Users())
    if (u.auth == "manual") made[u.username] = u;
  ASSERT_EQ(made.count("newpupil1"), 1u);
  EXPECT_EQ(made.at("newpupil1").email, "newpupil1@school.test");
  EXPECT_EQ(made.count("newpupil2"), 0u);
  EXPECT_EQ(made.count("newpupil3"), 0u);
  EXPECT_EQ(made.count("newpupil4"), 1u);
  std::string problems;
  for (const auto& p : r.users.plan.problems) {
    EXPECT_LT(p.reason.size(), 1000u);
    problems += p.reason + "\n";
  }
  EXPECT_THAT(problems, HasSubstr("people row 2: column 'mail' (email) = 'newpupil2\"@school.test': not an email "
                                  "address Moodle accepts (PARAM_EMAIL)"));
  EXPECT_THAT(problems, HasSubstr("people row 3: column 'first' (firstname) = 'xxxx"));
  EXPECT_THAT(problems, HasSubstr("… (1048576 characters)': 1048576 characters, longer than Moodle's 100"));

  // newpupil4's email goes bad: a problem, and newpupil4 is not suspended.
  ASSERT_TRUE(site.Exec("UPDATE people SET mail = 'new' || char(10) || 'pupil4@school.test' WHERE login = 'newpupil4'"));
  auto again = site.Sync();
  ASSERT_TRUE(again.users.read_ok) << again.users.read_error;
  EXPECT_EQ(again.exit_code, 0) << again.error;
  EXPECT_EQ(again.users.plan.summary.suspend, 0);
  bool problem = false;
  for (const auto& p : again.users.plan.problems) problem |= p.reason.find("'new\\npupil4@school.test'") != std::string::npos;
  EXPECT_TRUE(problem);
  for (const auto& u : site.moodle().Users())
    if (u.username == "newpupil4") {
      EXPECT_FALSE(u.suspended);
    }
}

// A value Moodle takes whole (a department of 1 MB: the user sync checks
// no length for it) used to be printed whole, twice: the plan's change line
// showed it as "from" and as "to", and every run report stored it whole.
// Printed values are cut to 200 characters, with the length shown.
TEST(BadValues, AHugeValueIsPrintedCutWithItsLengthNotWholeTwice) {
  SiteOptions o;
  o.extra_config =
      "[users]\nsource = \"sql\"\ntable = \"people\"\nusername = \"login\"\nauth = \"manual\"\n"
      "[users.map]\nfirstname = \"first\"\nlastname = \"last\"\nemail = \"mail\"\ndepartment = \"dept\"\n";
  SchoolSite site(o);
  auto st = site.Setup();
  ASSERT_TRUE(st) << st.error().message;
  ASSERT_TRUE(site.Exec("CREATE TABLE people (login TEXT, first TEXT, last TEXT, mail TEXT, dept TEXT);"
                        "INSERT INTO people VALUES ('newpupil1', 'Ann', 'Ash', 'newpupil1@school.test', "
                        "replace(hex(zeroblob(524288)), '0', 'x'));"));
  auto first = site.Sync();
  ASSERT_EQ(first.exit_code, 0) << first.error;
  ASSERT_EQ(first.users.apply.applied.create, 1);
  ASSERT_TRUE(site.Exec("UPDATE people SET dept = replace(hex(zeroblob(524288)), '0', 'y')"));

  auto plan = RunEnrolsync("plan --config " + site.config_path());
  EXPECT_EQ(plan.exit_code, 0) << plan.out.substr(0, 2000);
  EXPECT_LT(plan.out.size(), 20000u) << "the 1 MB value is printed whole";
  EXPECT_THAT(plan.out, HasSubstr("~ user newpupil1 department: xxxxxxxx"));
  EXPECT_THAT(plan.out, HasSubstr("x… (1048576 characters) -> yyyy"));
  EXPECT_THAT(plan.out, HasSubstr("y… (1048576 characters)\n"));

  auto json = RunEnrolsync("plan --json --config " + site.config_path());
  EXPECT_EQ(json.exit_code, 0);
  EXPECT_LT(json.out.size(), 200000u) << "the JSON holds the 1 MB value";
  EXPECT_THAT(json.out, HasSubstr("(1048576 characters)"));

  auto second = site.Sync();
  ASSERT_EQ(second.exit_code, 0) << second.error;
  EXPECT_EQ(second.users.apply.applied.update, 1);
  ASSERT_FALSE(second.report_file.empty());
  std::ifstream in(second.report_file);
  std::stringstream report;
  report << in.rdbuf();
  EXPECT_LT(report.str().size(), 200000u) << "the run report holds the 1 MB value";
}

}  // namespace
}  // namespace enrolsync::testing
