// The second look at a dead run's intents (SettleUnsettled), on a real
// SQLite state database.
#include "sync/reconcile.h"

#include <gtest/gtest.h>

namespace enrolsync::sync {
namespace {

class SettleTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto db = state::StateDb::OpenScratch();
    ASSERT_TRUE(db) << db.error().message;
    db_ = std::move(*db);
    state::Intent i;
    i.action = "enrol";
    i.courseid = 10;
    i.userid = 146;
    i.roleid = 5;
    i.source_course = "8/Cs1";
    i.source_user = "p146@school.test";
    auto ids = db_->AddIntents({i});
    ASSERT_TRUE(ids) << ids.error().message;
    i.id = ids->at(0);
    intent_ = i;
  }
  std::size_t Pending() {
    auto all = db_->LoadIntents();
    EXPECT_TRUE(all) << all.error().message;
    return all ? all->size() : 0;
  }

  std::unique_ptr<state::StateDb> db_;
  state::Intent intent_;
  model::Ownership owned_;
};

// Moodle's reads caught the user mid-enrolment (listed active, roles not
// seen): the intent can be neither settled nor dropped, or the enrolment
// the dead run made would read as someone else's for good.
TEST_F(SettleTest, AnIntentAboutAUserReadMidEnrolmentStaysPending) {
  std::map<model::MoodleId, model::Participants> read;
  read[10][146] = model::Participant{146, true, {}, /*roles_known=*/false};
  auto late = SettleUnsettled(*db_, {intent_}, {}, read, owned_, 0);
  ASSERT_TRUE(late) << late.error().message;
  EXPECT_EQ(*late, 0);
  EXPECT_TRUE(owned_.enrolments.empty());
  EXPECT_EQ(Pending(), 1u) << "the next run must look again";

  // The next run's read shows it applied: owned, and the intent goes.
  read[10][146] = model::Participant{146, true, {5}};
  late = SettleUnsettled(*db_, {intent_}, {}, read, owned_, 0);
  ASSERT_TRUE(late) << late.error().message;
  EXPECT_EQ(*late, 1);
  ASSERT_EQ(owned_.enrolments.count({10, 146}), 1u);
  EXPECT_TRUE(owned_.enrolments.at({10, 146}).owns_enrolment);
  EXPECT_EQ(Pending(), 0u);
}

// Read and not there: dropped (this run's plan sends it again).
TEST_F(SettleTest, AnIntentWhoseCourseWasReadWithoutTheUserIsDropped) {
  std::map<model::MoodleId, model::Participants> read;
  read[10];
  auto late = SettleUnsettled(*db_, {intent_}, {}, read, owned_, 0);
  ASSERT_TRUE(late) << late.error().message;
  EXPECT_EQ(*late, 0);
  EXPECT_EQ(Pending(), 0u);
}

}  // namespace
}  // namespace enrolsync::sync
