#include "support/pg_server.h"

#include "support/process.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <libpq-fe.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <optional>
#include <random>
#include <sstream>
#include <thread>
#include <vector>

namespace enrolsync::testsupport {
namespace fs = std::filesystem;
namespace {




Status RunToCompletion(const std::vector<std::string>& argv, const std::string& log, const std::string& cwd,
                       bool as_other_user, uid_t uid, gid_t gid) {
  return testsupport::RunToCompletion(argv, SpawnOptions{log, cwd, "", SIGQUIT, as_other_user, uid, gid, {}});
}


std::string FindBindir() {
  if (const char* env = std::getenv("ENROLSYNC_PG_BINDIR"); env && *env) return env;
  std::string best;
  int best_version = -1;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator("/usr/lib/postgresql", ec)) {
    auto bin = entry.path() / "bin";
    if (!fs::exists(bin / "initdb") || !fs::exists(bin / "postgres")) continue;
    int version = std::atoi(entry.path().filename().c_str());
    if (version > best_version) {
      best_version = version;
      best = bin.string();
    }
  }
  return best;  // "" = rely on PATH
}

std::string Bin(const std::string& bindir, const std::string& name) {
  return bindir.empty() ? name : bindir + "/" + name;
}

std::string SqlLiteral(const std::string& s) {
  std::string out = "'";
  for (char c : s) {
    out += c;
    if (c == '\'') out += '\'';
  }
  return out + "'";
}

Status PqExec(const std::string& conninfo, const std::string& sql) {
  PGconn* conn = PQconnectdb(conninfo.c_str());
  if (PQstatus(conn) != CONNECTION_OK) {
    std::string msg = PQerrorMessage(conn);
    PQfinish(conn);
    return Fail(ErrorCode::kSource, "cannot connect to the test server: " + msg);
  }
  PGresult* res = PQexec(conn, sql.c_str());
  auto st = PQresultStatus(res);
  std::string msg = PQresultErrorMessage(res);
  PQclear(res);
  PQfinish(conn);
  if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
    return Fail(ErrorCode::kSource, "test server: " + msg);
  }
  return Ok();
}

// Removes enrolsync-pg-* directories left by test processes that were
// killed (their postmaster died with them): older than an hour and without a
// live postmaster.
void SweepStaleServers(const std::string& parent) {
  std::error_code ec;
  auto now = fs::file_time_type::clock::now();
  for (const auto& entry : fs::directory_iterator(parent, ec)) {
    if (entry.path().filename().string().rfind("enrolsync-pg-", 0) != 0) continue;
    auto mtime = fs::last_write_time(entry.path(), ec);
    if (ec || now - mtime < std::chrono::hours(1)) continue;
    std::ifstream pidfile(entry.path() / "data" / "postmaster.pid");
    long pid = 0;
    if (pidfile >> pid && pid > 0 && kill(static_cast<pid_t>(pid), 0) == 0) continue;
    fs::remove_all(entry.path(), ec);
  }
}

}  // namespace

// ---------------------------------------------------------------------------

TempDir::TempDir() {
  const char* tmp = std::getenv("TMPDIR");
  std::string templ = std::string(tmp && *tmp ? tmp : "/tmp") + "/enrolsync-test-XXXXXX";
  std::vector<char> buf(templ.begin(), templ.end());
  buf.push_back('\0');
  if (mkdtemp(buf.data()) != nullptr) path_ = buf.data();
}

TempDir::~TempDir() {
  if (path_.empty()) return;
  std::error_code ec;
  fs::permissions(path_, fs::perms::owner_all, fs::perm_options::add, ec);
  fs::remove_all(path_, ec);
}

Status WriteFile(const std::string& path, const std::string& content) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << content;
  out.close();
  if (!out) return Fail(ErrorCode::kIo, "cannot write " + path);
  return Ok();
}

Status ExecSqlite(const std::string& path, const std::string& sql) {
  sqlite3* db = nullptr;
  if (sqlite3_open(path.c_str(), &db) != SQLITE_OK) {
    std::string msg = db ? sqlite3_errmsg(db) : "out of memory";
    sqlite3_close(db);
    return Fail(ErrorCode::kIo, "cannot open " + path + ": " + msg);
  }
  char* err = nullptr;
  int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err);
  std::string msg = err ? err : "";
  sqlite3_free(err);
  sqlite3_close(db);
  if (rc != SQLITE_OK) return Fail(ErrorCode::kSource, "sqlite " + path + ": " + msg);
  return Ok();
}

Result<std::vector<std::vector<std::string>>> QuerySqlite(const std::string& path, const std::string& sql) {
  sqlite3* db = nullptr;
  if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) != SQLITE_OK) {
    std::string msg = db ? sqlite3_errmsg(db) : "out of memory";
    sqlite3_close(db);
    return Fail(ErrorCode::kIo, "cannot open " + path + ": " + msg);
  }
  std::vector<std::vector<std::string>> out;
  sqlite3_stmt* st = nullptr;
  if (sqlite3_prepare_v2(db, sql.c_str(), -1, &st, nullptr) != SQLITE_OK) {
    std::string msg = sqlite3_errmsg(db);
    sqlite3_close(db);
    return Fail(ErrorCode::kSource, "sqlite " + path + ": " + msg + " in: " + sql);
  }
  int rc;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    std::vector<std::string> row;
    for (int i = 0; i < sqlite3_column_count(st); ++i) {
      const unsigned char* t = sqlite3_column_text(st, i);
      row.emplace_back(t ? reinterpret_cast<const char*>(t) : "");
    }
    out.push_back(std::move(row));
  }
  std::string msg = rc == SQLITE_DONE ? "" : sqlite3_errmsg(db);
  sqlite3_finalize(st);
  sqlite3_close(db);
  if (!msg.empty()) return Fail(ErrorCode::kSource, "sqlite " + path + ": " + msg + " in: " + sql);
  return out;
}

// ---------------------------------------------------------------------------

Result<std::unique_ptr<PgServer>> PgServer::Start(const std::string& locale) {
  std::unique_ptr<PgServer> server(new PgServer());
  if (auto ok = server->Init(locale); !ok) return Fail(ok.error());
  return server;
}

Status PgServer::MakeDir() {
  bindir_ = FindBindir();
  const char* tmp = std::getenv("TMPDIR");
  std::string parent = tmp && *tmp ? tmp : "/tmp";
  SweepStaleServers(parent);
  std::string templ = parent + "/enrolsync-pg-XXXXXX";
  std::vector<char> buf(templ.begin(), templ.end());
  buf.push_back('\0');
  if (mkdtemp(buf.data()) == nullptr) {
    return Fail(ErrorCode::kIo, "mkdtemp " + templ + ": " + std::strerror(errno));
  }
  dir_ = buf.data();
  sockdir_ = dir_ + "/sock";
  fs::create_directory(sockdir_);

  if (geteuid() == 0) {
    // initdb/postgres refuse to run as root: use the postgres account.
    passwd* pw = getpwnam("postgres");
    if (pw == nullptr) pw = getpwnam("nobody");
    if (pw == nullptr) return Fail(ErrorCode::kInternal, "no postgres or nobody user to run the server as");
    as_other_user_ = true;
    run_uid_ = pw->pw_uid;
    run_gid_ = pw->pw_gid;
    if (chown(dir_.c_str(), run_uid_, run_gid_) != 0 ||
        chown(sockdir_.c_str(), run_uid_, run_gid_) != 0) {
      return Fail(ErrorCode::kIo, "chown " + dir_ + ": " + std::strerror(errno));
    }
  }
  return Ok();
}

Status PgServer::Init(const std::string& locale) {
  if (auto ok = MakeDir(); !ok) return ok;
  // A password that needs escaping everywhere: libpq, ODBC braces, SQL.
  password_ = "Pw;{x}}y' " + RandomHex(12);
  std::string log = dir_ + "/initdb.log";
  auto ok = RunToCompletion({Bin(bindir_, "initdb"), "-D", dir_ + "/data", "-U", "postgres",
                             "-E", "UTF8", "--locale=" + locale, "--no-sync", "--auth-local=trust",
                             "--auth-host=scram-sha-256"},
                            log, dir_, as_other_user_, run_uid_, run_gid_);
  if (!ok) return ok;
  {
    std::ofstream hba(dir_ + "/data/pg_hba.conf", std::ios::trunc);
    hba << "local all all trust\n"
           "host all all 127.0.0.1/32 scram-sha-256\n";
    std::ofstream conf(dir_ + "/data/postgresql.conf", std::ios::app);
    conf << "\n# enrolsync test server\n"
            "listen_addresses = '127.0.0.1'\n"
            "unix_socket_directories = '" << sockdir_ << "'\n"
            "fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n"
            "max_connections = 20\nshared_buffers = 16MB\n"
            "password_encryption = 'scram-sha-256'\n"
            "logging_collector = off\n";
    if (!hba || !conf) return Fail(ErrorCode::kIo, "cannot write the test server config in " + dir_);
  }
  if (auto ok = Launch(); !ok) return ok;

  std::string super = "host=" + sockdir_ + " port=" + std::to_string(port_) + " user=postgres";
  if (auto ok = PqExec(super + " dbname=postgres",
                       "CREATE ROLE " + user_ + " LOGIN PASSWORD " + SqlLiteral(password_));
      !ok) {
    return ok;
  }
  if (auto ok = PqExec(super + " dbname=postgres",
                       "CREATE DATABASE " + database_ + " ENCODING 'UTF8' TEMPLATE template0");
      !ok) {
    return ok;
  }
  // The login role only reads: grant it whatever the superuser creates.
  return PqExec(super + " dbname=" + database_,
                "GRANT USAGE ON SCHEMA public TO " + user_ + ";"
                "ALTER DEFAULT PRIVILEGES GRANT SELECT ON TABLES TO " + user_ + ";"
                "ALTER DEFAULT PRIVILEGES GRANT USAGE ON SCHEMAS TO " + user_ + ";");
}

Status PgServer::Launch() {
  std::string log = dir_ + "/postgres.log";
  std::string last_error;
  for (int attempt = 0; attempt < 5; ++attempt) {
    port_ = FreePort();
    if (port_ == 0) return Fail(ErrorCode::kIo, "cannot find a free TCP port");
    pid_ = Spawn({Bin(bindir_, "postgres"), "-D", dir_ + "/data", "-p", std::to_string(port_)},
                 SpawnOptions{log, dir_, "", SIGQUIT, as_other_user_, run_uid_, run_gid_, {}});
    if (pid_ < 0) return Fail(ErrorCode::kIo, "fork failed");
    std::string ping = "host=" + sockdir_ + " port=" + std::to_string(port_) +
                       " user=postgres dbname=postgres connect_timeout=2";
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (std::chrono::steady_clock::now() < deadline) {
      int status = 0;
      if (waitpid(pid_, &status, WNOHANG) == pid_) {  // exited: port taken?
        pid_ = -1;
        last_error = "postgres exited (status " + std::to_string(status) + "); log:\n" + ReadTail(log);
        break;
      }
      if (PQping(ping.c_str()) == PQPING_OK) return Ok();
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    if (pid_ > 0) {
      Stop();
      last_error = "postgres did not become ready in 60 s; log:\n" + ReadTail(log);
    }
  }
  return Fail(ErrorCode::kInternal, "cannot start the test PostgreSQL server: " + last_error);
}

void PgServer::Stop() {
  if (pid_ <= 0) return;
  kill(pid_, SIGINT);  // fast shutdown
  int status = 0;
  for (int i = 0; i < 200; ++i) {
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      return;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  kill(pid_, SIGKILL);
  waitpid(pid_, &status, 0);
  pid_ = -1;
}

PgServer::~PgServer() {
  Stop();
  if (!dir_.empty()) {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
}

std::string PgServer::conninfo() const {
  return "host=127.0.0.1 port=" + std::to_string(port_) + " dbname=" + database_ + " user=" + user_;
}

Status PgServer::Exec(const std::string& sql) const { return ExecIn(database_, sql); }

Status PgServer::ExecIn(const std::string& database, const std::string& sql) const {
  return PqExec(superuser_conninfo(database), sql);
}

std::string PgServer::superuser_conninfo(const std::string& database) const {
  return "host=" + sockdir_ + " port=" + std::to_string(port_) + " user=postgres dbname=" + database;
}

Status PgServer::Snapshot(const std::string& dest) {
  Stop();
  std::error_code ec;
  fs::remove_all(dest, ec);
  fs::copy(dir_ + "/data", dest, fs::copy_options::recursive | fs::copy_options::copy_symlinks, ec);
  if (ec) return Fail(ErrorCode::kIo, "cannot copy " + dir_ + "/data to " + dest + ": " + ec.message());
  fs::remove(fs::path(dest) / "postmaster.pid", ec);
  return Ok();
}

Result<std::unique_ptr<PgServer>> PgServer::StartFromSnapshot(const std::string& snapshot_dir,
                                                              const std::string& password) {
  std::unique_ptr<PgServer> server(new PgServer());
  if (auto ok = server->MakeDir(); !ok) return Fail(ok.error());
  server->password_ = password;
  std::string data = server->dir_ + "/data";
  std::error_code ec;
  fs::copy(snapshot_dir, data, fs::copy_options::recursive | fs::copy_options::copy_symlinks, ec);
  if (ec) return Fail(ErrorCode::kIo, "cannot copy " + snapshot_dir + " to " + data + ": " + ec.message());
  // postgres insists on an 0700 data directory owned by the account it runs as.
  fs::permissions(data, fs::perms::owner_all, fs::perm_options::replace, ec);
  if (server->as_other_user_) {
    for (auto it = fs::recursive_directory_iterator(data, ec); !ec && it != fs::recursive_directory_iterator();
         it.increment(ec)) {
      if (lchown(it->path().c_str(), server->run_uid_, server->run_gid_) != 0) {
        return Fail(ErrorCode::kIo, "chown " + it->path().string() + ": " + std::strerror(errno));
      }
    }
    if (chown(data.c_str(), server->run_uid_, server->run_gid_) != 0) {
      return Fail(ErrorCode::kIo, "chown " + data + ": " + std::strerror(errno));
    }
  }
  {
    // The last setting wins: point the socket at this server's own directory.
    std::ofstream conf(data + "/postgresql.conf", std::ios::app);
    conf << "\nunix_socket_directories = '" << server->sockdir_ << "'\n";
    if (!conf) return Fail(ErrorCode::kIo, "cannot write " + data + "/postgresql.conf");
  }
  if (auto ok = server->Launch(); !ok) return Fail(ok.error());
  return server;
}

Result<PgServer*> SharedPgServer() {
  static std::mutex mu;
  static std::unique_ptr<PgServer> server;
  static std::optional<Error> error;
  std::lock_guard<std::mutex> lock(mu);
  if (server) return server.get();
  if (error) return Fail(*error);
  auto started = PgServer::Start();
  if (!started) {
    error = started.error();
    return Fail(*error);
  }
  server = std::move(*started);
  return server.get();
}

std::string OdbcPostgresqlConnectionString(const PgServer& server) {
  return "DRIVER={PostgreSQL Unicode};SERVER=127.0.0.1;PORT=" + std::to_string(server.port()) +
         ";DATABASE=" + server.database() + ";UID=" + server.user();
}

std::string OdbcSqliteConnectionString(const std::string& path) {
  return "DRIVER=SQLite3;Database=" + path;
}

}  // namespace enrolsync::testsupport
