#include "plan/first_run.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace enrolsync::plan {
namespace {

using ::testing::HasSubstr;

model::DesiredState Feed(int courses, int pupils) {
  model::DesiredState d;
  for (int c = 0; c < courses; ++c)
    for (int p = 0; p < pupils; ++p)
      d.enrolments.push_back({d.enrolments.size() + 1, "7/S" + std::to_string(c), "p" + std::to_string(p) + "@s", {}});
  return d;
}

std::vector<model::Course> Courses(int n, int first_id = 10) {
  std::vector<model::Course> out;
  for (int c = 0; c < n; ++c)
    out.push_back({first_id + c, "Set " + std::to_string(c), "S" + std::to_string(c), "7/S" + std::to_string(c), 1, true});
  return out;
}

TEST(FirstRunTest, ANewSiteHasNoneOfTheFeedsCourses) {
  auto feed = FeedCoursesInMoodle(Feed(4, 25), {}, LocalCourseField::kIdnumber);
  EXPECT_EQ(feed.total_rows, 100);
  EXPECT_TRUE(feed.rows.empty());
  EXPECT_FALSE(CheckFirstRun(feed, {}).refuse);
}

TEST(FirstRunTest, ASiteHoldingMostOfTheFeedIsRefusedWithTheWaysOn) {
  auto feed = FeedCoursesInMoodle(Feed(4, 25), Courses(4), LocalCourseField::kIdnumber);
  ASSERT_EQ(feed.rows.size(), 4u);
  EXPECT_EQ(feed.rows.at(10), 25);
  // A lost ledger (or enrol_database's enrolments): every set is full; one
  // course has a teacher added by hand, not counted beyond its rows.
  auto check = CheckFirstRun(feed, {{10, 26}, {11, 25}, {12, 25}, {13, 25}});
  EXPECT_TRUE(check.refuse);
  EXPECT_EQ(check.held, 100);
  EXPECT_EQ(check.courses, 4);
  EXPECT_THAT(check.message, HasSubstr("already holds 100 of the feed's 100 enrolments, in 4 of its courses"));
  EXPECT_THAT(check.message, HasSubstr("enrolsync adopt"));
  EXPECT_THAT(check.message, HasSubstr("take_over_existing = true"));
  EXPECT_THAT(check.message, HasSubstr("--first-run"));
}

TEST(FirstRunTest, AFewCoursesMadeByHandBeforeGoingLiveAreNoReasonToRefuse) {
  // Two of four sets exist, with their teachers only; then exactly half.
  auto feed = FeedCoursesInMoodle(Feed(4, 25), Courses(2), LocalCourseField::kIdnumber);
  EXPECT_FALSE(CheckFirstRun(feed, {{10, 1}, {11, 1}}).refuse);
  EXPECT_FALSE(CheckFirstRun(feed, {{10, 25}, {11, 25}}).refuse) << "half is not more than half";
  EXPECT_TRUE(CheckFirstRun(FeedCoursesInMoodle(Feed(4, 25), Courses(3), LocalCourseField::kIdnumber),
                            {{10, 25}, {11, 25}, {12, 1}})
                  .refuse);
}

TEST(FirstRunTest, CoursesAreMatchedByTheConfiguredField) {
  auto by_short = FeedCoursesInMoodle(Feed(2, 3), Courses(2), LocalCourseField::kShortname);
  EXPECT_TRUE(by_short.rows.empty()) << "the feed names idnumbers, not shortnames";
  model::DesiredState d;
  d.enrolments = {{1, "10", "a@s", {}}, {2, "11", "b@s", {}}, {3, "", "c@s", {}}, {4, "10", " ", {}}};
  auto by_id = FeedCoursesInMoodle(d, Courses(1), LocalCourseField::kId);
  EXPECT_EQ(by_id.total_rows, 2) << "rows without a course or user value do not count";
  ASSERT_EQ(by_id.rows.size(), 1u);
  EXPECT_EQ(by_id.rows.at(10), 1);
}

}  // namespace
}  // namespace enrolsync::plan
