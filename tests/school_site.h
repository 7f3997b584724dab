// End-to-end harness: a generated iSAMS school in SQLite, a running Moodle
// sandbox seeded with the school's categories and users (as auth_ldap would
// have left them), and an enrolsync config pointing at both.
#pragma once

#include <map>
#include <memory>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "config/config.h"
#include "sandbox/sandbox.h"
#include "schoolgen/schoolgen.h"
#include "support/pg_server.h"
#include "sync/runner.h"

namespace enrolsync::testing {

struct SiteOptions {
  schoolgen::Options school;
  std::string unenrol_action = "suspend";
  std::string max_removals = "\"10%\"";
  int latency_ms = 0;
  int max_input_vars = 5000;
  std::string extra_config;  // appended to enrolsync.toml
};

// What Moodle holds for one (course idnumber, email): the manual enrolment's
// status and every role in the course context.
struct Held {
  int status = 0;  // 0 active, 1 suspended
  std::set<long long> roles;
  bool operator==(const Held&) const = default;
};
using MoodleState = std::map<std::pair<std::string, std::string>, Held>;

class SchoolSite {
 public:
  explicit SchoolSite(SiteOptions options = {});
  ~SchoolSite();

  // Generates the school, starts the sandbox, seeds it, writes the config.
  Status Setup();

  sync::RunReport Sync(bool apply = true, long long allow_removals = -1, bool verify_all = false,
                       std::vector<std::string>* trace = nullptr);
  Result<config::Config> Config() const;
  sandbox::Sandbox& moodle() { return *sandbox_; }
  // Starts the sandbox again on the same port and site (after moodle().Stop()).
  Status RestartMoodle();
  const schoolgen::School& school() const { return school_; }
  const std::string& dir() const { return dir_.path(); }
  std::string config_path() const { return dir_.File("enrolsync.toml"); }
  std::string token() const { return token_; }
  // Runs SQL against the school database (the MIS).
  Status Exec(const std::string& sql);
  // Runs a query against the school database; every value as text ("" for NULL).
  std::vector<std::vector<std::string>> Query(const std::string& sql);
  // The two views as the MIS returns them now.
  std::vector<std::tuple<std::string, std::string, int>> EnrolFeed();
  std::vector<std::tuple<std::string, std::string, std::string>> CourseFeed();  // idnumber, shortname, category

  // Moodle's manual enrolments and course-context roles, keyed by names.
  MoodleState Moodle();
  void WriteConfig(const std::string& extra = "");

 private:
  SiteOptions options_;
  testsupport::TempDir dir_;
  std::string token_;
  schoolgen::School school_;
  std::unique_ptr<sandbox::Sandbox> sandbox_;
};

// An independent model of what enrol_database semantics leave in Moodle
// after each sync, given the feed. Tests compare the sandbox to it.
class Oracle {
 public:
  Oracle(std::string unenrol_action, std::set<std::string> known_categories, std::set<std::string> users)
      : action_(std::move(unenrol_action)), categories_(std::move(known_categories)), users_(std::move(users)) {}
  void Sync(const std::vector<std::tuple<std::string, std::string, std::string>>& courses,
            const std::vector<std::tuple<std::string, std::string, int>>& enrols);
  const MoodleState& state() const { return state_; }

 private:
  std::string action_;
  std::set<std::string> categories_;
  std::set<std::string> users_;  // known emails
  std::set<std::string> created_;  // course idnumbers that exist
  MoodleState state_;
};

std::string Describe(const MoodleState& expected, const MoodleState& actual);

// "anna.smith@school.test" -> "Anna.Smith@School.test": an address as Active
// Directory often stores it (capital after the start, '.' and '@').
std::string CapitalisedEmail(const std::string& email);

// Runs the built enrolsync binary with `args` (a shell-quoted string) and
// returns its exit code and its stdout and stderr together.
struct CliOutput {
  int exit_code = -1;
  std::string out;
};
CliOutput RunEnrolsync(const std::string& args);

}  // namespace enrolsync::testing
