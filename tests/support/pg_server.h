// Test harness: a throwaway PostgreSQL cluster per test binary, plus small
// helpers for temporary directories, SQLite fixtures and ODBC connection
// strings (no odbc.ini DSN needed; drivers come from odbcinst.ini).
#pragma once

#include <memory>
#include <string>
#include <sys/types.h>

#include "util/result.h"

namespace enrolsync::testsupport {

// A directory under $TMPDIR (or /tmp) removed with everything in it.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string File(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// Writes `content` to `path` byte for byte.
Status WriteFile(const std::string& path, const std::string& content);

// Creates (or opens) the SQLite database at `path` and runs `sql` (several
// statements allowed).
Status ExecSqlite(const std::string& path, const std::string& sql);
// Runs one query against the SQLite database at `path`; every value as
// text, NULL as "".
Result<std::vector<std::vector<std::string>>> QuerySqlite(const std::string& path, const std::string& sql);

// A PostgreSQL server of its own: initdb into a temp dir, postgres on
// 127.0.0.1 at a free port (unix socket in the temp dir), a database and a
// login role with a password (pg_hba: scram-sha-256 on 127.0.0.1, so the
// password really is checked). As root the server runs as the `postgres`
// user. The destructor stops the server and deletes the directory; if the
// test process dies, the server gets SIGQUIT (parent-death signal).
class PgServer {
 public:
  // Set ENROLSYNC_PG_BINDIR to pick the binaries; otherwise the newest
  // /usr/lib/postgresql/*/bin, then PATH. `locale` is initdb's --locale
  // ("C" for the source tests; Moodle's tests use "C.UTF-8" so that ILIKE
  // and lower() fold non-ASCII letters as a production server does).
  static Result<std::unique_ptr<PgServer>> Start(const std::string& locale = "C");
  // Starts a server on a copy of the data directory that Snapshot() wrote
  // (the original is left untouched, so many servers may start from one
  // snapshot). `password` is the login role's password at snapshot time.
  static Result<std::unique_ptr<PgServer>> StartFromSnapshot(const std::string& snapshot_dir,
                                                             const std::string& password);
  ~PgServer();
  PgServer(const PgServer&) = delete;
  PgServer& operator=(const PgServer&) = delete;

  // "host=127.0.0.1 port=N dbname=school user=enrolsync" (no password).
  std::string conninfo() const;
  const std::string& password() const { return password_; }
  int port() const { return port_; }
  const std::string& database() const { return database_; }
  const std::string& user() const { return user_; }

  // Runs `sql` (several statements allowed) in database() as the superuser
  // over the unix socket. Tables it creates are readable by user().
  Status Exec(const std::string& sql) const;
  // The same in another database of this server (e.g. "postgres", for
  // CREATE DATABASE, which cannot run inside a multi-statement string).
  Status ExecIn(const std::string& database, const std::string& sql) const;
  // libpq connection string for the superuser over the unix socket.
  std::string superuser_conninfo(const std::string& database) const;

  // Stops the server cleanly and copies its data directory to `dest`
  // (replaced if present). The server is not running afterwards.
  Status Snapshot(const std::string& dest);

 private:
  PgServer() = default;
  Status Init(const std::string& locale);
  Status MakeDir();
  Status Launch();
  void Stop();

  std::string bindir_, dir_, sockdir_;
  std::string database_ = "school", user_ = "enrolsync", password_;
  int port_ = 0;
  pid_t pid_ = -1;
  uid_t run_uid_ = 0;
  gid_t run_gid_ = 0;
  bool as_other_user_ = false;
};

// The server shared by every test in this binary: started on first use,
// stopped at exit. Returns the startup error on every call if it failed.
Result<PgServer*> SharedPgServer();

// "DRIVER={PostgreSQL Unicode};SERVER=127.0.0.1;PORT=..;DATABASE=..;UID=.."
// (pass server.password() separately to OpenOdbc).
std::string OdbcPostgresqlConnectionString(const PgServer& server);
// "DRIVER=SQLite3;Database=/path"
std::string OdbcSqliteConnectionString(const std::string& path);

}  // namespace enrolsync::testsupport
