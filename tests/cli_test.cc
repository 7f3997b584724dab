// The enrolsync binary as an admin runs it: exit codes, text and JSON output,
// and no secret in anything it prints.
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <fstream>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "school_site.h"

namespace enrolsync::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

CliOutput Enrolsync(const std::string& args) { return RunEnrolsync(args); }

class CliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    site_ = std::make_unique<SchoolSite>();
    auto st = site_->Setup();
    ASSERT_TRUE(st) << st.error().message;
    cfg_ = "--config " + site_->config_path();
  }
  std::unique_ptr<SchoolSite> site_;
  std::string cfg_;
};

TEST_F(CliTest, VersionAndUsage) {
  auto v = Enrolsync("--version");
  EXPECT_EQ(v.exit_code, 0);
  EXPECT_THAT(v.out, HasSubstr("enrolsync 0."));
  EXPECT_EQ(Enrolsync("frobnicate").exit_code, 64);
  EXPECT_EQ(Enrolsync("plan").exit_code, 64) << "--config is required";
  auto help = Enrolsync("--help");
  EXPECT_THAT(help.out, HasSubstr("3   removal guard"));
}

TEST_F(CliTest, PlanDetailedExitcodeSaysWhetherThereAreChanges) {
  auto p = Enrolsync("plan " + cfg_ + " --detailed-exitcode");
  EXPECT_EQ(p.exit_code, 2) << p.out;
  EXPECT_THAT(p.out, HasSubstr("+ course "));
  EXPECT_THAT(p.out, HasSubstr("+ enrol "));
  EXPECT_THAT(p.out, HasSubstr("Plan: "));
  EXPECT_THAT(p.out, HasSubstr("invalid category id '999'"));
  EXPECT_TRUE(site_->moodle().Enrolments().empty()) << "plan changes nothing";
  auto s = Enrolsync("sync " + cfg_);
  EXPECT_EQ(s.exit_code, 0) << s.out;
  auto again = Enrolsync("plan " + cfg_ + " --detailed-exitcode");
  EXPECT_EQ(again.exit_code, 0) << again.out;
  EXPECT_THAT(again.out, HasSubstr("Plan: 0 to create, 0 to enrol"));
}

TEST_F(CliTest, PlanJsonHasTheDocumentedSummaryKeys) {
  auto p = Enrolsync("plan " + cfg_ + " --json");
  ASSERT_EQ(p.exit_code, 0) << p.out;
  auto j = nlohmann::json::parse(p.out);
  for (const char* key : {"courses.create", "enrolments.enrol", "enrolments.unsuspend", "enrolments.suspend",
                          "enrolments.unenrol", "enrolments.role_assign", "enrolments.role_unassign"})
    EXPECT_TRUE(j["summary"].contains(key)) << key;
  EXPECT_GT(j["summary"]["courses.create"].get<int>(), 50);
  EXPECT_EQ(j["items"].size(), j["summary"]["courses.create"].get<std::size_t>() +
                                   j["summary"]["enrolments.enrol"].get<std::size_t>() +
                                   j["summary"]["enrolments.role_assign"].get<std::size_t>());
  bool found = false;
  for (const auto& pr : j["problems"]) {
    if (pr["reason"].get<std::string>().find("999") != std::string::npos) {
      found = true;
      EXPECT_EQ(pr["table"], "VwMoodleCourseData");
      EXPECT_EQ(pr["values"]["intCategoryID"], "999");
    }
  }
  EXPECT_TRUE(found);
  EXPECT_TRUE(j["calls"]["by_function"].contains("core_webservice_get_site_info"));
  EXPECT_TRUE(j["timings"].contains("sources_s"));
}

TEST_F(CliTest, VerboseSyncPrintsMoodleLinesAndASummaryButNeverTheToken) {
  auto s = Enrolsync("sync -v " + cfg_);
  EXPECT_EQ(s.exit_code, 0) << s.out;
  EXPECT_THAT(s.out, HasSubstr("  creating course: "));
  EXPECT_THAT(s.out, HasSubstr("  enrolling: "));
  EXPECT_THAT(s.out, HasSubstr("  error: invalid category id '999'"));
  // The cost to Moodle, every time: calls, writes, retries, time waited.
  EXPECT_THAT(s.out, ::testing::ContainsRegex("Moodle calls: [0-9]+ \\([0-9]+ writes, 0 retried, [0-9.]+s waiting on "
                                              "Moodle\\): "));
  EXPECT_THAT(s.out, HasSubstr("Time: sources "));
  EXPECT_THAT(s.out, Not(HasSubstr(site_->token())));
  auto plan = Enrolsync("plan " + cfg_);
  EXPECT_THAT(plan.out, ::testing::ContainsRegex("Moodle calls: [0-9]+ \\(0 writes, 0 retried, [0-9.]+s waiting on "
                                                 "Moodle\\); [0-9]+ courses verified"));
  auto json = Enrolsync("sync " + cfg_ + " --json");
  EXPECT_THAT(json.out, Not(HasSubstr(site_->token())));
  auto doc = nlohmann::json::parse(json.out.substr(json.out.find('{')), nullptr, false);
  ASSERT_FALSE(doc.is_discarded()) << json.out;
  EXPECT_TRUE(doc["calls"]["waiting_s"].is_number()) << doc["calls"].dump();
  EXPECT_GT(doc["calls"]["waiting_s"].get<double>(), 0.0);
  // A rejected token is named as such and still not printed.
  std::ofstream(site_->dir() + "/moodle.token") << "bad-" << site_->token() << "\n";
  auto bad = Enrolsync("sync -v " + cfg_);
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_THAT(bad.out, HasSubstr("invalidtoken"));
  EXPECT_THAT(bad.out, Not(HasSubstr(site_->token())));
}

TEST_F(CliTest, BrokenConfigExits78NamingFileAndLine) {
  std::ofstream(site_->config_path(), std::ios::app) << "\n[enrolments\n";
  auto r = Enrolsync("plan " + cfg_);
  EXPECT_EQ(r.exit_code, 78);
  EXPECT_THAT(r.out, HasSubstr("enrolsync.toml:"));
}

TEST_F(CliTest, RemovalGuardExits3AndListsWhatWouldGo) {
  ASSERT_EQ(Enrolsync("sync " + cfg_).exit_code, 0);
  ASSERT_TRUE(site_->Exec("DELETE FROM TblTeachingManagerSetLists WHERE TblTeachingManagerSetListsID % 2 = 0"));
  auto r = Enrolsync("sync " + cfg_);
  EXPECT_EQ(r.exit_code, 3) << r.out;
  EXPECT_THAT(r.out, HasSubstr("Refusing to apply"));
  EXPECT_THAT(r.out, HasSubstr("- suspend "));
  EXPECT_THAT(r.out, HasSubstr("--allow-removals"));
}

TEST_F(CliTest, CheckValidatesSourcesMappingsAndToken) {
  auto ok = Enrolsync("check " + cfg_);
  EXPECT_EQ(ok.exit_code, 0) << ok.out;
  EXPECT_THAT(ok.out, HasSubstr("txtEmailAddress"));
  EXPECT_THAT(ok.out, HasSubstr("sample"));
  EXPECT_THAT(ok.out, HasSubstr("5.1+"));
  EXPECT_THAT(ok.out, HasSubstr("welcome message"));
  EXPECT_THAT(ok.out, HasSubstr("category '999'"));
  std::string text;
  {
    std::ifstream in(site_->config_path());
    text.assign(std::istreambuf_iterator<char>(in), {});
  }
  text.replace(text.find("role_field = \"intRoleID\""), 24, "role_field = \"introleid\"");
  std::ofstream(site_->config_path()) << text;
  auto bad = Enrolsync("check " + cfg_);
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_THAT(bad.out, HasSubstr("FAIL  role_field = \"introleid\""));
  EXPECT_THAT(bad.out, HasSubstr("did you mean \"intRoleID\""));
}

// Moodle rolls a deadlocked call back; enrolsync sends it again and says so
// in the summary, the JSON and the log, instead of hiding the failed calls.
TEST_F(CliTest, RetriedCallsAreReportedInTextAndJson) {
  sandbox::Sandbox::Fault f;
  f.function = "enrol_manual_enrol_users";
  f.skip = 1;
  f.times = 1;  // the call sent again succeeds
  f.kind = sandbox::Sandbox::Fault::kException;
  f.errorcode = "dmlwriteexception";
  site_->moodle().InjectFault(f);
  auto s = Enrolsync("sync " + cfg_);
  EXPECT_EQ(s.exit_code, 0) << s.out;
  EXPECT_THAT(s.out, HasSubstr("1 call retried: database error (Moodle rolled them back; each was sent again)"));
  auto again = Enrolsync("sync " + cfg_);
  EXPECT_THAT(again.out, Not(HasSubstr(" retried: ")));
  EXPECT_THAT(again.out, HasSubstr("0 retried"));

  site_->moodle().InjectFault(f);
  ASSERT_TRUE(site_->Exec("DELETE FROM TblTeachingManagerSetLists WHERE TblTeachingManagerSetListsID IN "
                          "(SELECT TblTeachingManagerSetListsID FROM TblTeachingManagerSetLists LIMIT 3)"));
  std::ofstream(site_->config_path(), std::ios::app) << "\n";
  auto j = Enrolsync("sync -v --json " + cfg_);
  auto doc = nlohmann::json::parse(j.out.substr(j.out.find('{')), nullptr, false);
  ASSERT_FALSE(doc.is_discarded()) << j.out;
  EXPECT_EQ(doc["calls"]["retried"]["total"], 0) << "the removal-only run makes no enrol call";
  ASSERT_TRUE(doc.contains("trace")) << "-v with --json puts the lines in \"trace\"";
  bool listed = false;
  for (const auto& line : doc["trace"]) listed |= line.get<std::string>().find("suspending") != std::string::npos;
  EXPECT_TRUE(listed) << doc["trace"].dump();
}

}  // namespace
}  // namespace enrolsync::testing
