#include "support/moodle_server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <libpq-fe.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <thread>

#include "support/process.h"

#ifndef ENROLSYNC_SOURCE_DIR
#error "ENROLSYNC_SOURCE_DIR must be defined (the project root)"
#endif
#ifndef ENROLSYNC_BINARY_DIR
#error "ENROLSYNC_BINARY_DIR must be defined (the build directory)"
#endif

namespace enrolsync::testsupport {
namespace fs = std::filesystem;
namespace {

// Bumped whenever the fixture's layout or config.php changes, so an old
// fixture is installed again.
constexpr const char* kFixtureVersion = "3";

// Moodle reads its configuration from here; ours takes everything that
// differs between servers from the environment.
constexpr const char* kConfigPhp = R"(<?php  // enrolsync test harness: one copy of the code, many sites
unset($CFG);
global $CFG;
$CFG = new stdClass();
$CFG->dbtype    = 'pgsql';
$CFG->dblibrary = 'native';
$CFG->dbhost    = '127.0.0.1';
$CFG->dbname    = getenv('ENROLSYNC_MOODLE_DBNAME');
$CFG->dbuser    = getenv('ENROLSYNC_MOODLE_DBUSER');
$CFG->dbpass    = getenv('ENROLSYNC_MOODLE_DBPASS');
$CFG->prefix    = 'mdl_';
$CFG->dboptions = ['dbpersist' => 0, 'dbport' => (int) getenv('ENROLSYNC_MOODLE_DBPORT'), 'dbsocket' => ''];
$CFG->wwwroot   = getenv('ENROLSYNC_MOODLE_WWWROOT');
$CFG->dataroot  = getenv('ENROLSYNC_MOODLE_DATAROOT');
$CFG->admin     = 'admin';
$CFG->directorypermissions = 02777;
// A test site on loopback sends no mail; messages count as delivered, as on
// a site whose mail works.
$CFG->noemailever = true;
require_once(__DIR__ . '/lib/setup.php');
)";

const std::vector<std::string> kPhpSettings = {
    "-d", "max_input_vars=5000", "-d", "memory_limit=512M", "-d", "opcache.enable=1",
    "-d", "opcache.enable_cli=1", "-d", "post_max_size=64M", "-d", "display_errors=stderr"};

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string SetupScript() { return std::string(ENROLSYNC_SOURCE_DIR) + "/tests/support/moodle/setup_site.php"; }

// What was installed: the distribution's identity and our own setup code.
std::string FixtureKey(const std::string& distribution) {
  std::error_code ec;
  std::ostringstream key;
  key << "fixture " << kFixtureVersion << "\ndistribution " << distribution << "\n";
  if (fs::is_regular_file(distribution, ec)) {
    key << "size " << fs::file_size(distribution, ec) << "\nmtime "
        << fs::last_write_time(distribution, ec).time_since_epoch().count() << "\n";
  }
  key << "setup " << std::hash<std::string>{}(ReadFile(SetupScript())) << "\nconfig "
      << std::hash<std::string>{}(kConfigPhp) << "\n";
  return key.str();
}

bool Copy(const std::string& from, const std::string& to, std::string* why) {
  std::error_code ec;
  fs::remove_all(to, ec);
  fs::copy(from, to, fs::copy_options::recursive | fs::copy_options::copy_symlinks, ec);
  if (ec && why) *why = "cannot copy " + from + " to " + to + ": " + ec.message();
  return !ec;
}

// One HTTP/1.0 POST to 127.0.0.1:port; the body of the answer, or "".
std::string HttpPost(int port, const std::string& path, const std::string& body, int timeout_s = 60) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return "";
  timeval tv{timeout_s, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    close(fd);
    return "";
  }
  std::string req = "POST " + path + " HTTP/1.0\r\nHost: 127.0.0.1:" + std::to_string(port) +
                    "\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: " +
                    std::to_string(body.size()) + "\r\n\r\n" + body;
  if (send(fd, req.data(), req.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(req.size())) {
    close(fd);
    return "";
  }
  std::string answer;
  char buf[8192];
  for (ssize_t n; (n = recv(fd, buf, sizeof buf, 0)) > 0;) answer.append(buf, static_cast<std::size_t>(n));
  close(fd);
  auto split = answer.find("\r\n\r\n");
  return split == std::string::npos ? "" : answer.substr(split + 4);
}

// "release":"5.1+ (Build: 20251017)" -> 5.1+ (Build: 20251017)
std::string JsonString(const std::string& json, const std::string& key) {
  auto pos = json.find("\"" + key + "\":\"");
  if (pos == std::string::npos) return "";
  pos += key.size() + 4;
  auto end = json.find('"', pos);
  return end == std::string::npos ? "" : json.substr(pos, end - pos);
}

std::vector<std::string> PhpArgv(const std::vector<std::string>& args) {
  std::vector<std::string> argv = {"php"};
  argv.insert(argv.end(), kPhpSettings.begin(), kPhpSettings.end());
  argv.insert(argv.end(), args.begin(), args.end());
  return argv;
}

std::vector<std::pair<std::string, std::string>> SiteEnv(int dbport, const std::string& dbname,
                                                         const std::string& dbuser, const std::string& dbpass,
                                                         const std::string& dataroot, const std::string& wwwroot) {
  return {{"ENROLSYNC_MOODLE_DBPORT", std::to_string(dbport)},
          {"ENROLSYNC_MOODLE_DBNAME", dbname},
          {"ENROLSYNC_MOODLE_DBUSER", dbuser},
          {"ENROLSYNC_MOODLE_DBPASS", dbpass},
          {"ENROLSYNC_MOODLE_DATAROOT", dataroot},
          {"ENROLSYNC_MOODLE_WWWROOT", wwwroot}};
}

struct Secrets {
  std::string db_password, token;
};

Result<Secrets> ReadSecrets(const std::string& fixture) {
  std::ifstream in(fixture + "/secrets");
  Secrets s;
  if (!std::getline(in, s.db_password) || !std::getline(in, s.token) || s.token.empty()) {
    return Fail(ErrorCode::kIo, "the Moodle fixture in " + fixture + " has no usable secrets file");
  }
  return s;
}

Status Install(const std::string& fixture, const std::string& distribution, const std::string& key,
               std::string* log) {
  auto say = [&](const std::string& line) {
    if (log) *log += line + "\n";
  };
  std::error_code ec;
  for (const char* part : {"READY", "moodle", "pgdata", "dataroot", "secrets", "install.log"}) {
    fs::remove_all(fs::path(fixture) / part, ec);
  }
  const std::string code = fixture + "/moodle";
  const std::string install_log = fixture + "/install.log";
  auto t0 = std::chrono::steady_clock::now();
  auto seconds = [&] {
    return std::to_string(std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now() - t0).count());
  };
  if (fs::is_directory(distribution, ec)) {
    std::string why;
    if (!Copy(distribution, code, &why)) return Fail(ErrorCode::kIo, why);
  } else {
    fs::path staging = fs::path(fixture) / "unpack";
    fs::remove_all(staging, ec);
    fs::create_directories(staging, ec);
    if (auto ok = RunToCompletion({"tar", "-xf", distribution, "-C", staging.string()},
                                  SpawnOptions{install_log, "", "", SIGTERM, false, 0, 0, {}});
        !ok) {
      return ok;
    }
    // The standard distribution unpacks to moodle/; accept any single top folder.
    fs::path top;
    int count = 0;
    for (const auto& e : fs::directory_iterator(staging, ec)) {
      top = e.path();
      ++count;
    }
    if (count != 1 || (!fs::exists(top / "version.php") && !fs::exists(top / "public" / "version.php"))) {
      return Fail(ErrorCode::kIo, distribution + " does not unpack to one Moodle folder (no version.php)");
    }
    fs::rename(top, code, ec);
    if (ec) return Fail(ErrorCode::kIo, "cannot move the unpacked Moodle to " + code + ": " + ec.message());
    fs::remove_all(staging, ec);
  }
  say("realmoodle: unpacked " + distribution + " (" + seconds() + " s)");
  {
    std::ofstream out(code + "/config.php", std::ios::trunc);
    out << kConfigPhp;
    if (!out) return Fail(ErrorCode::kIo, "cannot write " + code + "/config.php");
  }

  auto pg = PgServer::Start("C.UTF-8");
  if (!pg) return Fail(pg.error());
  auto& server = **pg;
  if (auto ok = server.ExecIn("postgres", "CREATE DATABASE moodle OWNER " + server.user() +
                                              " ENCODING 'UTF8' TEMPLATE template0");
      !ok) {
    return ok;
  }
  // Moodle's own defaults are small for a site that takes thousands of writes.
  if (auto ok = server.ExecIn("postgres", "ALTER SYSTEM SET shared_buffers = '128MB'"); !ok) return ok;
  const std::string dataroot = fixture + "/dataroot";
  fs::create_directories(dataroot, ec);
  auto env = SiteEnv(server.port(), "moodle", server.user(), server.password(), dataroot, "http://127.0.0.1");
  SpawnOptions php{install_log, code, "", SIGTERM, false, 0, 0, {}};
  php.env = env;
  // The admin's password is irrelevant (the tests use a token) and dies with
  // this throwaway site; Moodle's installer only takes it on argv.
  if (auto ok = RunToCompletion(PhpArgv({"admin/cli/install_database.php", "--agree-license", "--lang=en",
                                         "--fullname=enrolsync test school", "--shortname=enrolsync",
                                         "--adminuser=admin", "--adminpass=Adm1n-" + RandomHex(16) + "!",
                                         "--adminemail=admin@school.test"}),
                                php);
      !ok) {
    return ok;
  }
  say("realmoodle: installed (" + seconds() + " s)");
  const std::string token_file = fixture + "/token.tmp";
  if (auto ok = RunToCompletion(PhpArgv({SetupScript(), token_file}), php); !ok) return ok;
  std::string token = ReadFile(token_file);
  fs::remove(token_file, ec);
  if (token.empty()) return Fail(ErrorCode::kInternal, "setup_site.php wrote no token; see " + install_log);
  if (auto ok = server.Snapshot(fixture + "/pgdata"); !ok) return ok;
  {
    int fd = open((fixture + "/secrets").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0) return Fail(ErrorCode::kIo, "cannot write " + fixture + "/secrets");
    std::string content = server.password() + "\n" + token + "\n";
    bool ok = write(fd, content.data(), content.size()) == static_cast<ssize_t>(content.size());
    close(fd);
    if (!ok) return Fail(ErrorCode::kIo, "cannot write " + fixture + "/secrets");
  }
  {
    std::ofstream ready(fixture + "/READY", std::ios::trunc);
    ready << key;
    if (!ready) return Fail(ErrorCode::kIo, "cannot write " + fixture + "/READY");
  }
  say("realmoodle: configured and snapshotted in " + fixture + " (" + seconds() + " s)");
  return Ok();
}

}  // namespace

bool RealMoodleRequired() {
  const char* ci = std::getenv("CI");
  return ci && std::string(ci) == "true";
}

Result<std::string> FindMoodleDistribution() {
  std::error_code ec;
  if (const char* t = std::getenv("ENROLSYNC_MOODLE_TARBALL"); t && *t) {
    if (!fs::is_regular_file(t, ec)) return Fail(ErrorCode::kIo, std::string("ENROLSYNC_MOODLE_TARBALL=") + t + " is not a file");
    return std::string(t);
  }
  if (const char* s = std::getenv("ENROLSYNC_MOODLE_SOURCE"); s && *s) {
    if (!fs::exists(fs::path(s) / "version.php", ec) && !fs::exists(fs::path(s) / "public" / "version.php", ec)) {
      return Fail(ErrorCode::kIo, std::string("ENROLSYNC_MOODLE_SOURCE=") + s + " has no version.php");
    }
    return std::string(s);
  }
  fs::path dir = fs::weakly_canonical(fs::path(ENROLSYNC_SOURCE_DIR) / ".." / "shared" / "moodle-src", ec);
  std::string best;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    std::string name = e.path().filename().string();
    if (name.rfind("moodle-", 0) == 0 && name.find(".tar") != std::string::npos && e.path().string() > best) {
      best = e.path().string();
    }
  }
  if (best.empty()) {
    return Fail(ErrorCode::kIo, "no Moodle distribution: no moodle-*.tar.* in " + dir.string() +
                                    ", and neither ENROLSYNC_MOODLE_TARBALL nor ENROLSYNC_MOODLE_SOURCE is set");
  }
  return best;
}

std::string MoodleFixtureDir() {
  if (const char* d = std::getenv("ENROLSYNC_MOODLE_FIXTURE_DIR"); d && *d) return d;
  return std::string(ENROLSYNC_BINARY_DIR) + "/realmoodle";
}

Status EnsureMoodleInstalled(const std::string& fixture, std::string* log) {
  auto distribution = FindMoodleDistribution();
  if (!distribution) return Fail(distribution.error());
  std::error_code ec;
  fs::create_directories(fixture, ec);
  int lock = open((fixture + "/.lock").c_str(), O_RDWR | O_CREAT, 0644);
  if (lock < 0) return Fail(ErrorCode::kIo, "cannot open " + fixture + "/.lock: " + std::strerror(errno));
  while (flock(lock, LOCK_EX) != 0 && errno == EINTR) {
  }
  const std::string key = FixtureKey(*distribution);
  Status result = Ok();
  if (ReadFile(fixture + "/READY") != key) result = Install(fixture, *distribution, key, log);
  close(lock);
  return result;
}

// ---------------------------------------------------------------------------

Result<std::unique_ptr<MoodleServer>> MoodleServer::Start() {
  std::unique_ptr<MoodleServer> s(new MoodleServer());
  s->fixture_ = MoodleFixtureDir();
  if (auto ok = EnsureMoodleInstalled(s->fixture_); !ok) return Fail(ok.error());
  {
    // A shared lock: a reinstall by another process waits for us to copy.
    int lock = open((s->fixture_ + "/.lock").c_str(), O_RDWR | O_CREAT, 0644);
    if (lock >= 0) flock(lock, LOCK_SH);
    auto secrets = ReadSecrets(s->fixture_);
    if (!secrets) {
      if (lock >= 0) close(lock);
      return Fail(secrets.error());
    }
    s->db_password_ = secrets->db_password;
    s->token_ = secrets->token;
    s->code_ = s->fixture_ + "/moodle";
    auto pg = PgServer::StartFromSnapshot(s->fixture_ + "/pgdata", s->db_password_);
    if (!pg) {
      if (lock >= 0) close(lock);
      return Fail(pg.error());
    }
    s->pg_ = std::move(*pg);
    if (lock >= 0) close(lock);
  }
  {
    const char* tmp = std::getenv("TMPDIR");
    std::string templ = std::string(tmp && *tmp ? tmp : "/tmp") + "/enrolsync-moodle-XXXXXX";
    std::vector<char> buf(templ.begin(), templ.end());
    buf.push_back('\0');
    if (mkdtemp(buf.data()) == nullptr) return Fail(ErrorCode::kIo, "mkdtemp " + templ + ": " + std::strerror(errno));
    s->dir_ = buf.data();
  }
  s->dataroot_ = s->dir_ + "/dataroot";
  if (auto ok = s->MakeLiveDatabase(false); !ok) return Fail(ok.error());
  if (auto ok = s->Launch(); !ok) return Fail(ok.error());
  return s;
}

MoodleServer::~MoodleServer() {
  StopWeb();
  pg_.reset();
  if (!dir_.empty()) {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
}

std::vector<std::pair<std::string, std::string>> MoodleServer::Env() const {
  return SiteEnv(pg_->port(), "live", pg_->user(), db_password_, dataroot_, url_);
}

Status MoodleServer::MakeLiveDatabase(bool drop_first) {
  if (drop_first) {
    if (auto ok = pg_->ExecIn("postgres",
                              "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = 'live'");
        !ok) {
      return ok;
    }
    if (auto ok = pg_->ExecIn("postgres", "DROP DATABASE IF EXISTS live"); !ok) return ok;
  }
  if (auto ok = pg_->ExecIn("postgres", "CREATE DATABASE live TEMPLATE moodle OWNER " + pg_->user()); !ok) {
    return ok;
  }
  std::string why;
  if (!Copy(fixture_ + "/dataroot", dataroot_, &why)) return Fail(ErrorCode::kIo, why);
  return Ok();
}

Status MoodleServer::Launch() {
  const std::string log = dir_ + "/php-server.log";
  std::string last;
  for (int attempt = 0; attempt < 3; ++attempt) {
    port_ = FreePort();
    if (port_ == 0) return Fail(ErrorCode::kIo, "cannot find a free TCP port");
    url_ = "http://127.0.0.1:" + std::to_string(port_);
    SpawnOptions o{log, code_ + "/public", "", SIGTERM, false, 0, 0, {}};
    o.env = Env();
    o.env.emplace_back("PHP_CLI_SERVER_WORKERS", "4");
    o.own_process_group = true;  // StopWeb stops the workers too
    web_pid_ = Spawn(PhpArgv({"-S", "127.0.0.1:" + std::to_string(port_), "-t", code_ + "/public"}), o);
    if (web_pid_ < 0) return Fail(ErrorCode::kIo, "fork failed");
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (std::chrono::steady_clock::now() < deadline) {
      int status = 0;
      if (waitpid(web_pid_, &status, WNOHANG) == web_pid_) {
        web_pid_ = -1;
        last = "php -S exited; log:\n" + ReadTail(log);
        break;
      }
      std::string body = HttpPost(port_, "/webservice/rest/server.php?moodlewsrestformat=json",
                                  "wstoken=" + token_ + "&wsfunction=core_webservice_get_site_info", 5);
      if (body.find("\"release\"") != std::string::npos) {
        release_ = JsonString(body, "release");
        return Ok();
      }
      if (body.find("exception") != std::string::npos) {
        StopWeb();
        return Fail(ErrorCode::kInternal, "the test Moodle refused its token: " + body.substr(0, 300));
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    if (web_pid_ > 0) {
      StopWeb();
      last = "the test Moodle did not answer in 60 s; log:\n" + ReadTail(log);
    }
  }
  return Fail(ErrorCode::kInternal, "cannot start the test Moodle: " + last);
}

void MoodleServer::StopWeb() {
  if (web_pid_ <= 0) return;
  // The whole group: the master and its workers (a worker busy with a
  // request outlives a master that is stopped alone).
  kill(-web_pid_, SIGTERM);
  int status = 0;
  for (int i = 0; i < 100; ++i) {
    if (waitpid(web_pid_, &status, WNOHANG) == web_pid_) {
      kill(-web_pid_, SIGKILL);  // any worker left behind (ESRCH when none)
      web_pid_ = -1;
      return;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  kill(-web_pid_, SIGKILL);
  waitpid(web_pid_, &status, 0);
  web_pid_ = -1;
}

Status MoodleServer::Reset() {
  StopWeb();
  if (auto ok = MakeLiveDatabase(true); !ok) return ok;
  return Launch();
}

Result<std::vector<std::vector<std::string>>> MoodleServer::Query(const std::string& sql) const {
  PGconn* conn = PQconnectdb(pg_->superuser_conninfo("live").c_str());
  if (PQstatus(conn) != CONNECTION_OK) {
    std::string msg = PQerrorMessage(conn);
    PQfinish(conn);
    return Fail(ErrorCode::kSource, "cannot connect to the test Moodle's database: " + msg);
  }
  PGresult* res = PQexec(conn, sql.c_str());
  if (PQresultStatus(res) != PGRES_TUPLES_OK && PQresultStatus(res) != PGRES_COMMAND_OK) {
    std::string msg = PQresultErrorMessage(res);
    PQclear(res);
    PQfinish(conn);
    return Fail(ErrorCode::kSource, "test Moodle database: " + msg + " in: " + sql);
  }
  std::vector<std::vector<std::string>> rows;
  int n = PQntuples(res), m = PQnfields(res);
  rows.reserve(static_cast<std::size_t>(n));
  for (int i = 0; i < n; ++i) {
    std::vector<std::string> row;
    for (int j = 0; j < m; ++j) row.emplace_back(PQgetisnull(res, i, j) ? "" : PQgetvalue(res, i, j));
    rows.push_back(std::move(row));
  }
  PQclear(res);
  PQfinish(conn);
  return rows;
}

Status MoodleServer::Exec(const std::string& sql) {
  if (auto ok = pg_->ExecIn("live", sql); !ok) return ok;
  return Php({"admin/cli/purge_caches.php"});
}

Status MoodleServer::Php(const std::vector<std::string>& args) {
  SpawnOptions o{dir_ + "/php-cli.log", code_, "", SIGTERM, false, 0, 0, {}};
  o.env = Env();
  return RunToCompletion(PhpArgv(args), o);
}

std::string MoodleServer::ServerLogTail() const { return ReadTail(dir_ + "/php-server.log"); }

}  // namespace enrolsync::testsupport
