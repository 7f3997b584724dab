#include "ops/hooks.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace enrolsync::ops {
namespace {

using ::testing::HasSubstr;

TEST(HooksTest, HookGetsRunIdAndCountsInItsEnvironmentAndNoShell) {
  Hook h{"full", {"/bin/sh", "-c", "echo run=$ENROLSYNC_RUN_ID enrol=$ENROLSYNC_ENROL; echo 'not $expanded' >&2"}, std::chrono::seconds(10)};
  auto r = RunHook(h, {{"ENROLSYNC_RUN_ID", "42"}, {"ENROLSYNC_ENROL", "17"}});
  EXPECT_TRUE(r.ok()) << r.error;
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_THAT(r.output, HasSubstr("run=42 enrol=17"));
  EXPECT_THAT(r.output, HasSubstr("not $expanded"));
  // argv is passed as is: a ';' is an argument, not a command separator.
  Hook echo{"full", {"/bin/echo", "a;", "touch", "/tmp/enrolsync-hook-should-not-exist"}, std::chrono::seconds(10)};
  auto e = RunHook(echo, {});
  EXPECT_TRUE(e.ok());
  EXPECT_THAT(e.output, HasSubstr("a; touch /tmp/enrolsync-hook-should-not-exist"));
  EXPECT_NE(::access("/tmp/enrolsync-hook-should-not-exist", F_OK), 0);
}

TEST(HooksTest, FailingHookReportsItsExitStatus) {
  Hook h{"full", {"/bin/sh", "-c", "echo purging; exit 3"}, std::chrono::seconds(10)};
  auto r = RunHook(h, {});
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_EQ(r.error, "exited with status 3");
  EXPECT_THAT(r.output, HasSubstr("purging"));
}

TEST(HooksTest, TimeoutIsEnforcedOnTheWholeProcessGroup) {
  Hook h{"full", {"/bin/sh", "-c", "sleep 30 & sleep 30"}, std::chrono::seconds(1)};
  auto start = std::chrono::steady_clock::now();
  auto r = RunHook(h, {});
  auto took = std::chrono::steady_clock::now() - start;
  EXPECT_TRUE(r.timed_out);
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(r.error, "timed out after 1 s");
  EXPECT_LT(took, std::chrono::seconds(5));
}

TEST(HooksTest, MissingCommandIsAClearError) {
  Hook h{"full", {"/nonexistent/purge_caches"}, std::chrono::seconds(5)};
  auto r = RunHook(h, {});
  EXPECT_FALSE(r.started);
  EXPECT_THAT(r.error, HasSubstr("cannot start /nonexistent/purge_caches"));
}

TEST(HooksTest, DurationsParse) {
  EXPECT_EQ(*ParseDuration("120s"), std::chrono::seconds(120));
  EXPECT_EQ(*ParseDuration("2m"), std::chrono::seconds(120));
  EXPECT_EQ(*ParseDuration("1h"), std::chrono::seconds(3600));
  EXPECT_EQ(*ParseDuration("45"), std::chrono::seconds(45));
  EXPECT_FALSE(ParseDuration("soon"));
  EXPECT_FALSE(ParseDuration("-5s"));
}

// Found with fuzz/config_fuzz ([[hooks]] timeout): n * 3600 overflowed (UBSan).
TEST(HooksTest, DurationTooLongForSecondsIsAnErrorNotAnOverflow) {
  EXPECT_FALSE(ParseDuration("9223372036854775807h"));
  EXPECT_FALSE(ParseDuration("153722867280912931m"));
  EXPECT_EQ(*ParseDuration("2562047788015215h"), std::chrono::seconds(2562047788015215LL * 3600));
  EXPECT_EQ(*ParseDuration("9223372036854775807s"), std::chrono::seconds(9223372036854775807LL));
  auto r = ParseDuration("9223372036854775807h");
  ASSERT_FALSE(r);
  EXPECT_THAT(r.error().message, HasSubstr("is too long"));
}

}  // namespace
}  // namespace enrolsync::ops
