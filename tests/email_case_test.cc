// Emails are matched ignoring case end to end: through the lookup calls
// enrolsync makes, not just in the planner. Moodle's
// core_user_get_users_by_field is case-sensitive on PostgreSQL (probe 103),
// so a Moodle email stored with capitals (an AD `mail` such as
// J.Smith@School.org) was an "unknown user" on every run.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "moodle/client.h"
#include "school_site.h"
#include "util/strings.h"

namespace enrolsync::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

TEST(EmailCase, MoodleEmailsWithCapitalsMatchTheFeedWhateverItsCase) {
  SchoolSite site;
  auto st = site.Setup();
  ASSERT_TRUE(st) << st.error().message;
  auto feed = site.EnrolFeed();
  ASSERT_FALSE(feed.empty());
  // Two pupils with enrolments: one whose feed email is lower-case (the
  // lower-case lookup used to save it only if Moodle's was lower-case too),
  // and one whose feed email is upper-case in the MIS.
  std::string a = ToLower(std::get<1>(feed[0])), b;
  for (const auto& row : feed) {
    if (ToLower(std::get<1>(row)) != a && std::get<2>(row) == 5) {
      b = ToLower(std::get<1>(row));
      break;
    }
  }
  ASSERT_FALSE(b.empty());
  std::map<std::string, model::MoodleId> ids;
  for (const auto& u : site.moodle().Users()) ids[ToLower(u.email)] = u.id;
  ASSERT_TRUE(ids.count(a) && ids.count(b));
  moodle::ClientOptions co;
  co.url = site.moodle().url();
  co.token = site.token();
  moodle::Client client(co);
  for (const auto& e : {a, b}) {
    auto r = client.Call("core_user_update_users",
                         {{"users[0][id]", std::to_string(ids[e])}, {"users[0][email]", CapitalisedEmail(e)}});
    ASSERT_TRUE(r) << r.error().message;
  }
  ASSERT_TRUE(site.Exec("UPDATE TblPupilManagementPupils SET txtEmailAddress = upper(txtEmailAddress) "
                        "WHERE lower(txtEmailAddress) = '" + b + "'"));
  std::set<std::string> sets_a, sets_b;
  for (const auto& [set, email, role] : site.EnrolFeed()) {
    if (ToLower(email) == a) sets_a.insert(set);
    if (ToLower(email) == b) {
      sets_b.insert(set);
      ASSERT_NE(email, b) << "the MIS should now hold it in capitals";
    }
  }
  ASSERT_FALSE(sets_a.empty());
  ASSERT_FALSE(sets_b.empty());

  auto r = site.Sync();
  ASSERT_EQ(r.exit_code, 0) << r.error;
  for (const auto& p : r.plan.problems) {
    EXPECT_THAT(ToLower(p.reason), Not(HasSubstr(a))) << p.reason;
    EXPECT_THAT(ToLower(p.reason), Not(HasSubstr(b))) << p.reason;
  }
  std::size_t held_a = 0, held_b = 0;
  for (const auto& [key, held] : site.Moodle()) {
    if (held.status != 0) continue;
    held_a += key.second == CapitalisedEmail(a);
    held_b += key.second == CapitalisedEmail(b);
  }
  EXPECT_EQ(held_a, sets_a.size());
  EXPECT_EQ(held_b, sets_b.size());

  auto again = site.Sync();
  ASSERT_EQ(again.exit_code, 0) << again.error;
  EXPECT_EQ(again.write_calls, 0);
}

}  // namespace
}  // namespace enrolsync::testing
