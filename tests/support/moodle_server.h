// Test harness: a real Moodle (the standard distribution, PHP 8.2's CLI and
// built-in web server, PostgreSQL 15), on loopback, in the style of the
// PostgreSQL and slapd harnesses.
//
// Installing Moodle takes minutes, so it happens once into a fixture
// directory (ENROLSYNC_MOODLE_FIXTURE_DIR, by default <build>/realmoodle):
//   moodle/     the unpacked distribution, with a config.php of ours that
//               takes the database port, database name, dataroot and
//               wwwroot from the environment, so one copy of the code serves
//               every server;
//   pgdata/     a stopped PostgreSQL data directory holding the installed,
//               configured site in database `moodle` (the template);
//   dataroot/   the site's dataroot right after the install;
//   secrets     the database password and the web-service token (0600);
//   READY       written last; holds the key of what was installed (the
//               distribution's identity and our setup script), so a changed
//               distribution is installed again.
// The ctest fixture `realmoodle` (moodle_fixture) runs EnsureInstalled once
// per test run; MoodleServer::Start() also calls it, under a file lock, so
// a test binary run by hand works too.
//
// Every MoodleServer starts its own PostgreSQL from a copy of pgdata/, makes
// database `live` from the template, copies the dataroot and serves the site
// with PHP_CLI_SERVER_WORKERS=4 php -S 127.0.0.1:PORT. Reset() restores the
// freshly installed site in about a second.
//
// Where the distribution comes from: ENROLSYNC_MOODLE_TARBALL (a .tar.xz/.tgz
// of the standard distribution), or ENROLSYNC_MOODLE_SOURCE (an unpacked
// Moodle directory, which is copied), or else the newest
// <project>/../shared/moodle-src/moodle-*.tar.*.
//
// Thread safety: a MoodleServer is used from one thread.
#pragma once

#include <sys/types.h>

#include <memory>
#include <string>
#include <vector>

#include "support/pg_server.h"
#include "util/result.h"

namespace enrolsync::testsupport {

// Where the Moodle distribution is, or an error saying where it was looked
// for. "Not found" is an ordinary outcome on a developer machine without
// ../shared/: callers skip (or, under CI=true, fail) with the message.
Result<std::string> FindMoodleDistribution();

// The fixture directory (ENROLSYNC_MOODLE_FIXTURE_DIR or the build's default).
std::string MoodleFixtureDir();

// Installs and configures Moodle into `fixture_dir` unless READY already
// matches. Idempotent and safe to call from several processes at once.
// `log` receives progress lines (may be null).
Status EnsureMoodleInstalled(const std::string& fixture_dir, std::string* log = nullptr);

// True when the realmoodle tests must not be skipped (CI=true): a missing
// distribution is then a failure.
bool RealMoodleRequired();

class MoodleServer {
 public:
  // Installs the fixture if needed, then starts a private copy of the site.
  static Result<std::unique_ptr<MoodleServer>> Start();
  ~MoodleServer();
  MoodleServer(const MoodleServer&) = delete;
  MoodleServer& operator=(const MoodleServer&) = delete;

  // "http://127.0.0.1:PORT": the site root for enrolsync's [moodle] url.
  const std::string& url() const { return url_; }
  // A permanent token of the site admin for the service "enrolsync", which
  // holds every function enrolsync may call (see moodle/setup_site.php).
  const std::string& token() const { return token_; }
  const std::string& release() const { return release_; }

  // Restores the site as it was right after the install (database and
  // dataroot). The URL and token stay the same.
  Status Reset();

  // Read-only SQL against Moodle's database (tables are prefixed mdl_).
  // Every value as text; NULL as "".
  Result<std::vector<std::vector<std::string>>> Query(const std::string& sql) const;
  // Any SQL (for a test that changes Moodle behind enrolsync's back, e.g. an
  // email stored with capitals). Caches are purged afterwards.
  Status Exec(const std::string& sql);
  // Runs `php <script> args...` from the Moodle root with this site's
  // configuration (e.g. admin/cli/cfg.php, admin/cli/purge_caches.php).
  Status Php(const std::vector<std::string>& args);

  // The PHP built-in server's log (for failure messages).
  std::string ServerLogTail() const;

 private:
  MoodleServer() = default;
  Status Launch();
  void StopWeb();
  Status MakeLiveDatabase(bool drop_first);
  std::vector<std::pair<std::string, std::string>> Env() const;

  std::string fixture_, code_, dir_, dataroot_, db_password_;
  std::string url_, token_, release_;
  std::unique_ptr<PgServer> pg_;
  int port_ = 0;
  pid_t web_pid_ = -1;
};

}  // namespace enrolsync::testsupport
