// The cost model: what each call is charged, and a cost-modelled sandbox
// serving no more calls at once than the model's workers.
#include "sandbox/cost_model.h"

#include <gtest/gtest.h>
#include <httplib.h>

#include <chrono>
#include <filesystem>
#include <thread>
#include <vector>

#include "sandbox/sandbox.h"

namespace enrolsync::sandbox {
namespace {

CostModel Model() {
  auto m = FindCostModel("moodle-5.1");
  EXPECT_TRUE(m.has_value());
  return m ? *m : CostModel{};
}

Json Array(int n, const Json& element) {
  Json a = Json::array();
  for (int i = 0; i < n; ++i) a.push_back(element);
  return a;
}

TEST(CostModel, UnknownNamesAreNotFound) {
  EXPECT_FALSE(FindCostModel("moodle-4.0"));
  EXPECT_FALSE(FindCostModel(""));
}

TEST(CostModel, AWriteCostsTheBootstrapPlusEachItem) {
  CostModel m = Model();
  Json params = {{"enrolments", Array(100, {{"roleid", 5}, {"userid", 3}, {"courseid", 2}})}};
  EXPECT_EQ(MeasureCall("enrol_manual_enrol_users", params, nullptr).items, 100);
  EXPECT_NEAR(CallSeconds(m, "enrol_manual_enrol_users", params, nullptr),
              m.bootstrap + 100 * m.functions.at("enrol_manual_enrol_users").per_item, 1e-9);
  // Twice the items cost more, but the bootstrap is paid once.
  Json twice = {{"enrolments", Array(200, params["enrolments"][0])}};
  double one = CallSeconds(m, "enrol_manual_enrol_users", params, nullptr);
  double two = CallSeconds(m, "enrol_manual_enrol_users", twice, nullptr);
  EXPECT_NEAR(two - one, one - m.bootstrap, 1e-9);
}

TEST(CostModel, AReadCostsEachRecordItReturnsNotEachIdAskedFor) {
  CostModel m = Model();
  Json params = {{"field", "id"}, {"values", Array(500, "7")}};
  Json three = Array(3, {{"id", 7}, {"username", "a"}});
  CallSize size = MeasureCall("core_user_get_users_by_field", params, three);
  EXPECT_EQ(size.records, 3);
  double s = CallSeconds(m, "core_user_get_users_by_field", params, three);
  EXPECT_NEAR(s, m.bootstrap + 3 * m.functions.at("core_user_get_users_by_field").per_record, 1e-9);
  // Each course of the users returned costs too (the sandbox's handler
  // counts them).
  const FunctionCost& c = m.functions.at("core_user_get_users_by_field");
  EXPECT_GT(c.per_unit, 0);
  EXPECT_NEAR(CallSeconds(m, "core_user_get_users_by_field", params, three, 30) - s, 30 * c.per_unit, 1e-9);
  // core_user_get_users answers {"users": [...], "warnings": [...]}.
  Json users = {{"users", Array(890, {{"id", 1}})}, {"warnings", Json::array()}};
  EXPECT_EQ(MeasureCall("core_user_get_users", {{"criteria", Array(1, {{"key", "auth"}})}}, users).records, 890);
}

TEST(CostModel, ParticipantsAreCountedAcrossCoursesAndCostMoreWithUserDetails) {
  CostModel m = Model();
  auto params = [](const std::string& fields) {
    return Json{{"coursecapabilities", Array(2, {{"courseid", 2}, {"capabilities", Array(1, "")}})},
                {"options", Json::array({{{"name", "userfields"}, {"value", fields}}})}};
  };
  Json result = Json::array({{{"courseid", 2}, {"users", Array(10, {{"id", 1}})}},
                             {{"courseid", 3}, {"users", Array(30, {{"id", 1}})}}});
  const char* fn = "core_enrol_get_enrolled_users_with_capability";
  CallSize size = MeasureCall(fn, params("id,roles"), result);
  EXPECT_EQ(size.items, 2);
  EXPECT_EQ(size.records, 40);
  double roles = CallSeconds(m, fn, params("id,roles"), result);
  double ids = CallSeconds(m, fn, params("id"), result);
  double details = CallSeconds(m, fn, params("id,firstname,email"), result);
  EXPECT_LT(ids, roles);
  EXPECT_LT(roles, details);
  const FunctionCost& c = m.functions.at(fn);
  EXPECT_NEAR(roles, m.bootstrap + 2 * c.per_item + 40 * c.per_record, 1e-9);
}

TEST(CostModel, AFailedCallCostsTheBootstrapOnly) {
  CostModel m = Model();
  Json params = {{"courses", Array(50, {{"fullname", "x"}})}};
  Json error = {{"exception", "invalid_parameter_exception"}, {"errorcode", "invalidparameter"}, {"message", "x"}};
  EXPECT_DOUBLE_EQ(CallSeconds(m, "core_course_create_courses", params, error), m.bootstrap);
  EXPECT_GT(CallSeconds(m, "core_course_create_courses", params, Json::array()), 50 * 0.01);
}

// --- the sandbox under the model -------------------------------------------

class CostModelledSandbox : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("enrolsync-cost-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
  }
  void TearDown() override {
    sb_.reset();
    std::filesystem::remove_all(dir_);
  }
  Options Opts(const std::string& model) {
    Options o;
    o.state_dir = dir_.string();
    o.cost_model = model;
    return o;
  }
  std::string SiteInfo() {
    httplib::Client c("127.0.0.1", sb_->port());
    c.set_read_timeout(30, 0);
    auto r = c.Post("/webservice/rest/server.php",
                    "wstoken=sandbox-token&wsfunction=core_webservice_get_site_info&moodlewsrestformat=json",
                    "application/x-www-form-urlencoded");
    return r ? r->body : "";
  }
  std::filesystem::path dir_;
  std::unique_ptr<Sandbox> sb_;
};

TEST_F(CostModelledSandbox, AnUnknownModelIsRefused) {
  auto s = Sandbox::Start(Opts("moodle-9"));
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().code, ErrorCode::kInvalidArgument);
  EXPECT_NE(s.error().message.find("moodle-9"), std::string::npos);
}

TEST_F(CostModelledSandbox, ServesAtMostTheModelsWorkersAtOnceAndChargesEveryCall) {
  auto s = Sandbox::Start(Opts("moodle-5.1"));
  ASSERT_TRUE(s) << s.error().message;
  sb_ = std::move(*s);
  const CostModel m = Model();
  constexpr int kCalls = 6;
  std::vector<std::string> bodies(kCalls);
  auto t0 = std::chrono::steady_clock::now();
  std::vector<std::thread> threads;
  for (int i = 0; i < kCalls; ++i) threads.emplace_back([&, i] { bodies[i] = SiteInfo(); });
  for (auto& t : threads) t.join();
  double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  for (const auto& b : bodies) EXPECT_NE(b.find("\"sitename\""), std::string::npos) << b;
  EXPECT_EQ(sb_->PeakConcurrentCalls(), m.workers);
  EXPECT_NEAR(sb_->ChargedSeconds(), kCalls * m.bootstrap, 1e-6);
  // Six calls through two workers take at least three bootstraps end to end.
  EXPECT_GE(wall, kCalls / m.workers * m.bootstrap);
}

TEST_F(CostModelledSandbox, WithoutAModelNothingIsCharged) {
  auto s = Sandbox::Start(Opts(""));
  ASSERT_TRUE(s) << s.error().message;
  sb_ = std::move(*s);
  EXPECT_NE(SiteInfo().find("\"sitename\""), std::string::npos);
  EXPECT_EQ(sb_->ChargedSeconds(), 0);
  EXPECT_EQ(sb_->PeakConcurrentCalls(), 0);
}

}  // namespace
}  // namespace enrolsync::sandbox
