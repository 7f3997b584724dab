#include "config/config.h"

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "util/secrets.h"

namespace enrolsync::config {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using ::testing::Not;

// The example from the issue, verbatim apart from URL and paths.
const char* kIssueExample = R"(state_dir = "state"                    # where enrolsync keeps what it owns and its run history

[moodle]
url = "http://127.0.0.1:8099"          # site root; the REST endpoint is /webservice/rest/server.php
token_file = "moodle.token"            # or token_env = "ENROLSYNC_MOODLE_TOKEN"

[source]
type = "sqlite"                        # sqlite | postgresql | odbc | csv
database = "school.db"                 # postgresql: dsn = "host=... dbname=..." + password_env; odbc: connection string; csv: directory

[courses]                              # "Remote new courses table"
table = "VwMoodleCourseData"
fullname = "txtFullName"
shortname = "txtShortName"
idnumber = "txtCourseID"
category = "intCategoryID"
category_field = "id"                  # localcategoryfield: id | idnumber
default_category = 2                   # used when the row has no category

[courses.defaults]                     # Moodle's "Course default settings" for courses we create
visible = false
format = "topics"
coursedisplay = 1                      # one section per page
showreports = true
enablecompletion = true

[enrolments]                           # "Remote user enrolment table"
table = "VwMoodleEnrolData"
course_field = "txtSetCode"            # remotecoursefield
user_field = "txtEmailAddress"         # remoteuserfield
role_field = "intRoleID"               # remoterolefield
local_course_field = "idnumber"        # localcoursefield: id | idnumber | shortname
local_user_field = "email"             # localuserfield: id | idnumber | email | username
local_role_field = "id"                # localrolefield: id | shortname
default_role = "student"
unenrol_action = "suspend"             # unenrol | keep | suspend | suspend_remove_roles ("Disable course enrolment" = suspend)
ignore_hidden_courses = false

[safety]
max_removals = "10%"                   # count or percentage of managed enrolments; over it nothing is removed, exit 3
)";

class ConfigTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("enrolsync-config-" + std::to_string(::getpid()) + "-" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    Write("moodle.token", "s3cr3t-token-value\n");
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string Write(const std::string& name, const std::string& text) {
    std::ofstream(dir_ / name) << text;
    return (dir_ / name).string();
  }
  Result<Config> Load(const std::string& text, EnvLookup env = RealEnv()) {
    return LoadConfig(Write("enrolsync.toml", text), env);
  }
  std::string Replace(std::string text, const std::string& from, const std::string& to) {
    auto pos = text.find(from);
    EXPECT_NE(pos, std::string::npos) << from;
    return text.replace(pos, from.size(), to);
  }
  fs::path dir_;
};

TEST_F(ConfigTest, IssueExampleLoadsAsWritten) {
  auto cfg = Load(kIssueExample);
  ASSERT_TRUE(cfg) << cfg.error().message;
  EXPECT_EQ(cfg->state_dir, (dir_ / "state").string());
  EXPECT_EQ(cfg->moodle.url, "http://127.0.0.1:8099");
  EXPECT_EQ(cfg->moodle.token, "s3cr3t-token-value");
  EXPECT_EQ(cfg->source.type, "sqlite");
  EXPECT_EQ(cfg->source.database, (dir_ / "school.db").string());
  EXPECT_TRUE(cfg->courses.enabled);
  EXPECT_EQ(cfg->courses.category, "intCategoryID");
  EXPECT_EQ(cfg->policy.default_category, "2");
  EXPECT_EQ(cfg->enrolments.role_field, "intRoleID");
  EXPECT_EQ(cfg->policy.local_user_field, plan::LocalUserField::kEmail);
  EXPECT_EQ(cfg->policy.unenrol_action, plan::UnenrolAction::kSuspend);
  EXPECT_DOUBLE_EQ(cfg->policy.max_removals_percent, 10);
  EXPECT_EQ(cfg->policy.max_removals, -1);
  EXPECT_EQ(cfg->policy.new_courses_visible, std::optional<bool>(false));
  using P = std::pair<std::string, std::string>;
  EXPECT_THAT(cfg->courses.fields, ::testing::ElementsAre(P{"visible", "0"}, P{"format", "topics"},
                                                          P{"showreports", "1"}, P{"enablecompletion", "1"}));
  EXPECT_THAT(cfg->courses.format_options, ::testing::ElementsAre(P{"coursedisplay", "1"}, P{"numsections", "4"}))
      << "new courses get sections 0-4 like enrol_database's";
}

// The [users] block from the directory-sync issue, next to the example.
const char* kUsersBlock = R"(
[users]
source = "ldap"                       # ldap | sql | csv
url = "ldap://127.0.0.1:3890"         # ldaps://… or start_tls = true
bind_dn = "cn=admin,dc=school,dc=test"
bind_password_file = "ldap.password"  # or bind_password_env
contexts = ["ou=Students,dc=school,dc=test", "ou=Staff,dc=school,dc=test"]
search_sub = false
user_attribute = "uid"                # AD: sAMAccountName
object_class = "inetOrgPerson"        # AD: user
user_type = "default"                 # default | ad
removed_user_action = "suspend"       # keep | suspend | delete
auth = "ldap"
page_size = 250

[users.map]                           # Moodle field = directory attribute
firstname = "givenName"
lastname = "sn"
email = "mail"
idnumber = "employeeNumber"
)";

TEST_F(ConfigTest, UsersBlockLoadsAsWritten) {
  Write("ldap.password", "ldap-secret-99\n");
  auto cfg = Load(std::string(kIssueExample) + kUsersBlock);
  ASSERT_TRUE(cfg) << cfg.error().message;
  const auto& u = cfg->users;
  EXPECT_TRUE(u.enabled);
  EXPECT_EQ(u.ldap.url, "ldap://127.0.0.1:3890");
  EXPECT_EQ(u.ldap.bind_password, "ldap-secret-99");
  EXPECT_EQ(u.ldap.contexts.size(), 2u);
  EXPECT_EQ(u.ldap.page_size, 250);
  EXPECT_EQ(u.policy.auth, "ldap");
  EXPECT_EQ(u.policy.removed_user_action, plan::RemovedUserAction::kSuspend);
  EXPECT_EQ(u.ldap.map.size(), 4u);
  EXPECT_EQ(u.policy.update_fields.size(), 4u);
  EXPECT_EQ(Redact("bind failed ldap-secret-99"), "bind failed [REDACTED]");
}

TEST_F(ConfigTest, UsersMapNeedsNameAndEmail) {
  Write("ldap.password", "x1234\n");
  std::string text = std::string(kIssueExample) + kUsersBlock;
  text.replace(text.find("email = \"mail\""), 14, "");
  auto cfg = Load(text);
  ASSERT_FALSE(cfg);
  EXPECT_THAT(cfg.error().message, HasSubstr("[users.map] email is required"));
}

TEST_F(ConfigTest, SiteRolesExtendTheStandardRoles) {
  auto cfg = Load(std::string(kIssueExample) + "\n[roles]\nhod = 9\nstudent = 5\n");
  ASSERT_TRUE(cfg) << cfg.error().message;
  bool hod = false;
  for (const auto& r : cfg->roles) hod |= r.shortname == "hod" && r.id == 9;
  EXPECT_TRUE(hod);
  EXPECT_EQ(cfg->roles.size(), 9u);
  auto clash = Load(std::string(kIssueExample) + "\n[roles]\nhod = 3\n");
  ASSERT_FALSE(clash);
  EXPECT_THAT(clash.error().message, HasSubstr("id already belongs to role 'editingteacher'"));
}

TEST_F(ConfigTest, TokenCanComeFromEnvironment) {
  auto text = Replace(kIssueExample, "token_file = \"moodle.token\"", "token_env = \"MY_TOKEN\"");
  auto cfg = Load(text, [](const std::string& n) -> std::optional<std::string> {
    if (n == "MY_TOKEN") return "from-env-token";
    return std::nullopt;
  });
  ASSERT_TRUE(cfg) << cfg.error().message;
  EXPECT_EQ(cfg->moodle.token, "from-env-token");
}

TEST_F(ConfigTest, InlineTokenIsRefusedWithoutEchoingIt) {
  auto text = Replace(kIssueExample, "token_file = \"moodle.token\"", "token = \"inline-secret-123\"");
  auto cfg = Load(text);
  ASSERT_FALSE(cfg);
  EXPECT_THAT(cfg.error().message, HasSubstr("use token_file or token_env"));
  EXPECT_THAT(cfg.error().message, HasSubstr("enrolsync.toml:5"));
  EXPECT_THAT(cfg.error().message, Not(HasSubstr("inline-secret-123")));
}

TEST_F(ConfigTest, UnsetTokenEnvironmentVariableIsNamed) {
  auto text = Replace(kIssueExample, "token_file = \"moodle.token\"", "token_env = \"NOPE_TOKEN\"");
  auto cfg = Load(text, [](const std::string&) { return std::optional<std::string>(); });
  ASSERT_FALSE(cfg);
  EXPECT_THAT(cfg.error().message, HasSubstr("environment variable NOPE_TOKEN is not set"));
}

TEST_F(ConfigTest, MissingTokenFileIsNamed) {
  fs::remove(dir_ / "moodle.token");
  auto cfg = Load(kIssueExample);
  ASSERT_FALSE(cfg);
  EXPECT_THAT(cfg.error().message, HasSubstr("cannot read '" + (dir_ / "moodle.token").string() + "'"));
}

TEST_F(ConfigTest, TokenIsRegisteredAsSecret) {
  ASSERT_TRUE(Load(kIssueExample));
  EXPECT_EQ(Redact("call failed with wstoken=s3cr3t-token-value"), "call failed with wstoken=[REDACTED]");
}

// Findings of the hostile-world run (issue 8): each was accepted or
// misreported; each is now a config error naming the file and line.
TEST_F(ConfigTest, MaxRemovalsTrueIsNotOne) {
  auto cfg = Load(Replace(kIssueExample, "max_removals = \"10%\"", "max_removals = true"));
  ASSERT_FALSE(cfg);
  EXPECT_EQ(cfg.error().code, ErrorCode::kConfig);
  EXPECT_THAT(cfg.error().message, HasSubstr("max_removals must be a count (50) or a percentage"));
  EXPECT_THAT(cfg.error().message, HasSubstr("enrolsync.toml:"));
}

TEST_F(ConfigTest, AMaxRemovalsPercentageOverAHundredSaysSo) {
  auto cfg = Load(Replace(kIssueExample, "max_removals = \"10%\"", "max_removals = \"150%\""));
  ASSERT_FALSE(cfg);
  EXPECT_THAT(cfg.error().message, HasSubstr("\"150%\" is over 100%"));
  EXPECT_THAT(cfg.error().message, HasSubstr("enrolsync.toml:"));
}

TEST_F(ConfigTest, ANonNumericDefaultCategoryIdIsRefused) {
  auto cfg = Load(Replace(kIssueExample, "default_category = 2", "default_category = \"two\""));
  ASSERT_FALSE(cfg);
  EXPECT_THAT(cfg.error().message, HasSubstr("default_category must be a Moodle category id"));
  EXPECT_THAT(cfg.error().message, HasSubstr("'two'"));
  EXPECT_THAT(cfg.error().message, HasSubstr("enrolsync.toml:"));
}

TEST_F(ConfigTest, ADirectoryGivenAsTheConfigIsNamedAsOne) {
  auto cfg = LoadConfig(dir_.string());
  ASSERT_FALSE(cfg);
  EXPECT_EQ(cfg.error().code, ErrorCode::kConfig);
  EXPECT_THAT(cfg.error().message, HasSubstr("is a directory"));
}

TEST_F(ConfigTest, SyntaxErrorNamesFileAndLine) {
  auto cfg = Load("state_dir = \"x\"\n[moodle\nurl = 1\n");
  ASSERT_FALSE(cfg);
  EXPECT_EQ(cfg.error().code, ErrorCode::kConfig);
  EXPECT_THAT(cfg.error().message, HasSubstr("enrolsync.toml:2"));
}

TEST_F(ConfigTest, UnknownKeyIsRejectedWithItsLine) {
  auto text = Replace(kIssueExample, "ignore_hidden_courses = false", "ignore_hiden_courses = false");
  auto cfg = Load(text);
  ASSERT_FALSE(cfg);
  EXPECT_THAT(cfg.error().message, HasSubstr("unknown key 'ignore_hiden_courses' in [enrolments]"));
  EXPECT_THAT(cfg.error().message, HasSubstr("enrolsync.toml:37"));
}

TEST_F(ConfigTest, BadEnumValueListsTheChoices) {
  auto text = Replace(kIssueExample, "unenrol_action = \"suspend\"", "unenrol_action = \"disable\"");
  auto cfg = Load(text);
  ASSERT_FALSE(cfg);
  EXPECT_THAT(cfg.error().message,
              HasSubstr("unenrol_action = \"disable\" is not one of: keep | suspend | suspend_remove_roles | unenrol"));
}

TEST_F(ConfigTest, MaxRemovalsTakesCountOrPercentage) {
  auto cfg = Load(Replace(kIssueExample, "max_removals = \"10%\"", "max_removals = 25"));
  ASSERT_TRUE(cfg) << cfg.error().message;
  EXPECT_EQ(cfg->policy.max_removals, 25);
  EXPECT_LT(cfg->policy.max_removals_percent, 0);
  cfg = Load(Replace(kIssueExample, "max_removals = \"10%\"", "max_removals = \"ten\""));
  ASSERT_FALSE(cfg);
  EXPECT_THAT(cfg.error().message, HasSubstr("max_removals must be a count (50) or a percentage"));
}

TEST_F(ConfigTest, MissingRequiredColumnIsNamed) {
  auto cfg = Load(Replace(kIssueExample, "user_field = \"txtEmailAddress\"", ""));
  ASSERT_FALSE(cfg);
  EXPECT_THAT(cfg.error().message, HasSubstr("[enrolments] user_field is required"));
}

TEST_F(ConfigTest, PostgresqlDsnMustNotCarryAPassword) {
  auto text = Replace(kIssueExample, "type = \"sqlite\"", "type = \"postgresql\"");
  text = Replace(text, "database = \"school.db\"", "dsn = \"host=db password=hunter22\"");
  auto cfg = Load(text);
  ASSERT_FALSE(cfg);
  EXPECT_THAT(cfg.error().message, HasSubstr("dsn must not contain a password"));
  EXPECT_THAT(cfg.error().message, Not(HasSubstr("hunter22")));
}

TEST_F(ConfigTest, CoursesSectionIsOptional) {
  std::string text = kIssueExample;
  auto start = text.find("[courses]");
  auto end = text.find("[enrolments]");
  text.erase(start, end - start);
  auto cfg = Load(text);
  ASSERT_TRUE(cfg) << cfg.error().message;
  EXPECT_FALSE(cfg->courses.enabled);
}

// Moodle's own default applies when visible is left out: it is not sent.
TEST_F(ConfigTest, VisibleLeftOutIsNotSentAndLeftToMoodle) {
  auto cfg = Load(Replace(kIssueExample, "visible = false\n", ""));
  ASSERT_TRUE(cfg) << cfg.error().message;
  EXPECT_FALSE(cfg->courses.visible.has_value());
  EXPECT_FALSE(cfg->policy.new_courses_visible.has_value()) << "not assumed visible";
  for (const auto& [k, v] : cfg->courses.fields) EXPECT_NE(k, "visible");
  auto shown = Load(Replace(kIssueExample, "visible = false", "visible = true"));
  ASSERT_TRUE(shown) << shown.error().message;
  EXPECT_EQ(shown->policy.new_courses_visible, std::optional<bool>(true));
}

TEST_F(ConfigTest, CourseDateColumnsAreOptional) {
  auto cfg = Load(kIssueExample);
  ASSERT_TRUE(cfg) << cfg.error().message;
  EXPECT_EQ(cfg->courses.startdate, "");
  EXPECT_EQ(cfg->courses.enddate, "");
  cfg = Load(Replace(kIssueExample, "category_field = \"id\"",
                     "category_field = \"id\"\nstartdate = \"dtStart\"\nenddate = \"dtEnd\""));
  ASSERT_TRUE(cfg) << cfg.error().message;
  EXPECT_EQ(cfg->courses.startdate, "dtStart");
  EXPECT_EQ(cfg->courses.enddate, "dtEnd");
}

// The runs that size the verification rotation (plan/verify_policy.h).
TEST_F(ConfigTest, ExpectedEnrolmentRunsComeFromTheFullJobOrRunsPerDay) {
  const char* tz = std::getenv("TZ");
  std::string saved = tz ? tz : "";
  ::setenv("TZ", "UTC", 1);
  const long long mon = 1767571200;  // Mon 2026-01-05 00:00 UTC
  const long long week = 7 * 86400;
  // Nothing said: one run a day (a nightly timer).
  auto cfg = Load(kIssueExample);
  ASSERT_TRUE(cfg) << cfg.error().message;
  EXPECT_EQ(cfg->state.runs_per_day, 0);
  EXPECT_EQ(ExpectedEnrolmentRuns(*cfg, mon, mon + week).size(), 7u);
  // The daemon's full job; the users job does not verify courses.
  cfg = Load(std::string(kIssueExample) + "[schedule]\nusers = \"*/10 * * * *\"\nfull = \"0 3,15 * * MON-FRI\"\n");
  ASSERT_TRUE(cfg) << cfg.error().message;
  auto runs = ExpectedEnrolmentRuns(*cfg, mon, mon + week);
  ASSERT_EQ(runs.size(), 10u);
  EXPECT_EQ(runs[0], mon + 3 * 3600);
  EXPECT_EQ(runs[9], mon + 4 * 86400 + 15 * 3600);
  // [state] runs_per_day wins (say the timer is used, not the daemon).
  cfg = Load(std::string(kIssueExample) + "[schedule]\nfull = \"0 3 * * *\"\n[state]\nruns_per_day = 4\n");
  ASSERT_TRUE(cfg) << cfg.error().message;
  runs = ExpectedEnrolmentRuns(*cfg, mon, mon + week);
  ASSERT_EQ(runs.size(), 28u);
  EXPECT_EQ(runs[0], mon + 6 * 3600);
  cfg = Load(std::string(kIssueExample) + "[state]\nruns_per_day = 0\n");
  ASSERT_FALSE(cfg);
  EXPECT_THAT(cfg.error().message, HasSubstr("[state] runs_per_day must be 1-1440"));
  if (tz) {
    ::setenv("TZ", saved.c_str(), 1);
  } else {
    ::unsetenv("TZ");
  }
}

TEST_F(ConfigTest, KeepRunsDefaultsTo30AndIsBounded) {
  auto cfg = Load(kIssueExample);
  ASSERT_TRUE(cfg) << cfg.error().message;
  EXPECT_EQ(cfg->state.keep_runs, 30);
  cfg = Load(std::string(kIssueExample) + "[state]\nkeep_runs = 5\n");
  ASSERT_TRUE(cfg) << cfg.error().message;
  EXPECT_EQ(cfg->state.keep_runs, 5);
  cfg = Load(std::string(kIssueExample) + "[state]\nkeep_runs = 0\n");
  ASSERT_FALSE(cfg);
  EXPECT_THAT(cfg.error().message, HasSubstr("[state] keep_runs must be 1-100000"));
  EXPECT_THAT(cfg.error().message, HasSubstr("enrolsync.toml:"));
}

TEST_F(ConfigTest, MissingFileIsReported) {
  auto cfg = LoadConfig((dir_ / "nope.toml").string());
  ASSERT_FALSE(cfg);
  EXPECT_THAT(cfg.error().message, HasSubstr("nope.toml"));
}

}  // namespace
}  // namespace enrolsync::config
