// A school on a real Moodle (tests/support/moodle_server.h), or on the
// sandbox with a cost model: the generated iSAMS school in SQLite, its
// people in a real slapd, its categories made in Moodle in id order (so the
// view's category ids are Moodle's), and an enrolsync config syncing users
// from the directory and courses and enrolments from the MIS. Used by the
// realmoodle tests and the benchmarks.
//
// Thread safety: one thread.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "sandbox/sandbox.h"
#include "schoolgen/schoolgen.h"
#include "support/moodle_server.h"
#include "support/pg_server.h"
#include "support/slapd_server.h"
#include "sync/runner.h"
#include "util/result.h"

namespace enrolsync::testing {

// A directory entry, as enrolsync should leave its Moodle user.
struct DirectoryPerson {
  std::string ou;  // "Students" or "Staff"
  std::string firstname, lastname, email, idnumber;
  bool suspended = false;  // expected in Moodle (left the directory)
  bool operator==(const DirectoryPerson&) const = default;
};

struct RealSchoolOptions {
  schoolgen::Options size;
  std::string unenrol_action = "suspend";
  std::string max_removals = "\"10%\"";  // TOML value of [safety] max_removals
  // Lines appended to the config's [moodle] table (e.g. enrol_concurrency = 1).
  std::string moodle_extra;
  // The index of a person whose directory mail is stored with capitals
  // (J.Smith@School.test style; the MIS keeps it in lower case); -1: none.
  int capitalised_mail = 10;
  // Where the school lives: a real Moodle, or else the sandbox charging
  // calls by this cost model (sandbox/cost_model.h, e.g. "moodle-5.1").
  bool real_moodle = true;
  std::string sandbox_cost_model;
};

class RealSchool {
 public:
  // Starts Moodle (installing the fixture if needed) or the sandbox, and
  // slapd; writes the school and the config. Not found distribution:
  // kNotFound.
  static Result<std::unique_ptr<RealSchool>> Start(const RealSchoolOptions& options);

  sync::RunReport Sync(bool verify_all = false);

  // The real Moodle (only when options.real_moodle).
  testsupport::MoodleServer& moodle() { return *moodle_; }
  // The sandbox (only when !options.real_moodle).
  sandbox::Sandbox& sandbox() { return *sandbox_; }
  const std::string& url() const { return url_; }
  const std::string& token() const { return token_; }
  testsupport::SlapdServer& slapd() { return *slapd_; }
  const schoolgen::School& school() const { return school_; }
  // username -> what the directory holds now (kept by the caller's changes).
  std::map<std::string, DirectoryPerson>& people() { return people_; }
  // Moodle category ids that exist ("1" and the school's).
  const std::vector<std::string>& categories() const { return categories_; }
  std::string mis_path() const { return dir_.File("school.db"); }
  std::string config_path() const { return dir_.File("enrolsync.toml"); }

  static std::string Dn(const std::string& uid, const DirectoryPerson& p);
  // The LDIF of one entry (ends with a blank line).
  static std::string Entry(const std::string& uid, const DirectoryPerson& p);

  // A day in the MIS: `moves` pupils move to another set of their year, a
  // teacher is taken off a set, three sets are added (names with "&" and an
  // apostrophe), a whole set is deleted, and a pupil's role changes.
  Status DayOfChanges(int moves);
  // The first `n` pupils (but the one with a capitalised mail) leave the
  // directory; people() marks them suspended. Returns their usernames.
  Result<std::vector<std::string>> Leave(int n);
  // The directory changes the surname of `username`.
  Status Rename(const std::string& username, const std::string& lastname);

 private:
  RealSchool() = default;
  Status Setup(const RealSchoolOptions& options);

  Result<std::vector<std::vector<std::string>>> Mis(const std::string& sql);
  Result<std::string> MisOne(const std::string& sql);

  testsupport::TempDir dir_;
  int capitalised_mail_ = -1;
  std::unique_ptr<testsupport::MoodleServer> moodle_;
  std::unique_ptr<sandbox::Sandbox> sandbox_;
  std::string url_, token_;
  std::unique_ptr<testsupport::SlapdServer> slapd_;
  schoolgen::School school_;
  std::map<std::string, DirectoryPerson> people_;
  std::vector<std::string> categories_;
};

}  // namespace enrolsync::testing

// In a gtest fixture's void function: starts a RealSchool into `target` (a
// std::unique_ptr<RealSchool>), skipping the test when no Moodle
// distribution is found (failing instead under CI, RealMoodleRequired()).
#define ENROLSYNC_START_REAL_SCHOOL(target, options)                                           \
  do {                                                                                         \
    auto school_ = ::enrolsync::testing::RealSchool::Start(options);                           \
    if (!school_ && school_.error().code == ::enrolsync::ErrorCode::kNotFound) {               \
      if (::enrolsync::testsupport::RealMoodleRequired()) FAIL() << school_.error().message;   \
      GTEST_SKIP() << school_.error().message;                                                 \
    }                                                                                          \
    ASSERT_TRUE(school_) << school_.error().message;                                           \
    target = std::move(*school_);                                                              \
  } while (0)
