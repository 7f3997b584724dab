// The real-Moodle harness itself: a private copy of the installed site
// answers with its token, Moodle's database is readable, and Reset() brings
// back the freshly installed site.
#include <gtest/gtest.h>

#include "support/moodle_server.h"

namespace enrolsync::testsupport {
namespace {

class RealMoodle : public ::testing::Test {
 protected:
  void SetUp() override {
    auto dist = FindMoodleDistribution();
    if (!dist) {
      if (RealMoodleRequired()) FAIL() << dist.error().message;
      GTEST_SKIP() << dist.error().message;
    }
    auto server = MoodleServer::Start();
    ASSERT_TRUE(server) << server.error().message;
    moodle_ = std::move(*server);
  }
  std::string One(const std::string& sql) {
    auto rows = moodle_->Query(sql);
    EXPECT_TRUE(rows) << (rows ? "" : rows.error().message);
    return rows && !rows->empty() ? (*rows)[0][0] : "";
  }
  std::unique_ptr<MoodleServer> moodle_;
};

TEST_F(RealMoodle, ServesTheInstalledSiteAndResetRestoresIt) {
  EXPECT_NE(moodle_->release().find("5.1"), std::string::npos) << moodle_->release();
  // The guide's course defaults and the welcome message off, as setup_site.php set them.
  EXPECT_EQ(One("SELECT value FROM mdl_config_plugins WHERE plugin = 'moodlecourse' AND name = 'visible'"), "0");
  EXPECT_EQ(One("SELECT value FROM mdl_config_plugins WHERE plugin = 'enrol_manual' AND "
                "name = 'sendcoursewelcomemessage'"),
            "0");
  EXPECT_EQ(One("SELECT value FROM mdl_config WHERE name = 'enablewebservices'"), "1");
  ASSERT_TRUE(moodle_->Exec("INSERT INTO mdl_course_categories (name, idnumber, description, parent, sortorder, "
                            "coursecount, visible, visibleold, timemodified, depth, path) VALUES "
                            "('Harness probe', 'probe', '', 0, 20000, 0, 1, 1, 0, 1, '/99')"));
  EXPECT_EQ(One("SELECT COUNT(*) FROM mdl_course_categories WHERE idnumber = 'probe'"), "1");
  std::string url = moodle_->url();
  ASSERT_TRUE(moodle_->Reset());
  EXPECT_EQ(One("SELECT COUNT(*) FROM mdl_course_categories WHERE idnumber = 'probe'"), "0");
  EXPECT_FALSE(moodle_->release().empty());
}

}  // namespace
}  // namespace enrolsync::testsupport
