#include "state/state_db.h"

#include <fcntl.h>
#include <sqlite3.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <unordered_map>
#include <cerrno>
#include <cstring>
#include <filesystem>

#include "util/strings.h"

namespace enrolsync::state {
namespace fs = std::filesystem;

namespace {

const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS owned_enrolment (
  courseid INTEGER NOT NULL,
  userid INTEGER NOT NULL,
  owns_enrolment INTEGER NOT NULL,
  status INTEGER NOT NULL,          -- 0 active, 1 suspended (as enrolsync last set it)
  source_course TEXT NOT NULL,
  source_user TEXT NOT NULL,
  PRIMARY KEY (courseid, userid)
);
CREATE TABLE IF NOT EXISTS owned_role (
  courseid INTEGER NOT NULL,
  userid INTEGER NOT NULL,
  roleid INTEGER NOT NULL,
  PRIMARY KEY (courseid, userid, roleid)
);
CREATE TABLE IF NOT EXISTS created_course (
  courseid INTEGER PRIMARY KEY,
  shortname TEXT NOT NULL,
  created INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS managed_user (
  userid INTEGER PRIMARY KEY,
  username TEXT NOT NULL,
  created INTEGER NOT NULL,         -- 1: enrolsync created it; 0: adopted
  suspended_reason INTEGER NOT NULL -- 0 none, 1 left the directory, 2 disabled in the directory
);
CREATE TABLE IF NOT EXISTS course_verified (
  courseid INTEGER PRIMARY KEY,
  verified INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS run (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  started INTEGER NOT NULL,
  ended INTEGER NOT NULL DEFAULT 0,
  trigger TEXT NOT NULL,
  command TEXT NOT NULL,
  exit_code INTEGER NOT NULL DEFAULT -1,
  summary_json TEXT NOT NULL DEFAULT ''
);
-- The mirror (schema 2): what enrolsync last read or wrote of Moodle's users
-- and courses, so that a run plans against it and reads only what it cannot
-- know (see sync/mirror.h). checked: when the record was last read from
-- Moodle or written by enrolsync.
CREATE TABLE IF NOT EXISTS mirror_user (
  userid INTEGER PRIMARY KEY,
  username TEXT NOT NULL,
  email TEXT NOT NULL,
  idnumber TEXT NOT NULL,
  auth TEXT NOT NULL,
  suspended INTEGER NOT NULL,
  checked INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS mirror_user_field (
  userid INTEGER NOT NULL,
  field TEXT NOT NULL,
  value TEXT NOT NULL,
  PRIMARY KEY (userid, field)
);
CREATE TABLE IF NOT EXISTS mirror_course (
  courseid INTEGER PRIMARY KEY,
  fullname TEXT NOT NULL,
  shortname TEXT NOT NULL,
  idnumber TEXT NOT NULL,
  categoryid INTEGER NOT NULL,
  visible INTEGER NOT NULL,
  checked INTEGER NOT NULL
);
-- Lookup values (an enrolment row's email, username...) Moodle had no user
-- for, and when it last said so.
CREATE TABLE IF NOT EXISTS mirror_missing (
  value TEXT PRIMARY KEY,
  checked INTEGER NOT NULL
);
-- Changes a run is about to send (schema 3): written before each step's
-- calls, removed as each batch is answered. Rows left behind mean a run
-- died with them in flight; the next one reconciles them against Moodle
-- (sync/reconcile.h) before it plans.
CREATE TABLE IF NOT EXISTS pending_intent (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  action TEXT NOT NULL,
  courseid INTEGER NOT NULL,
  userid INTEGER NOT NULL,
  roleid INTEGER NOT NULL,
  shortname TEXT NOT NULL,
  idnumber TEXT NOT NULL,
  source_course TEXT NOT NULL,
  source_user TEXT NOT NULL,
  owns_enrolment INTEGER NOT NULL
);
-- Writes Moodle refused in the last sync: sent alone first by the next.
CREATE TABLE IF NOT EXISTS failed_item (
  function TEXT NOT NULL,
  courseid INTEGER NOT NULL,
  userid INTEGER NOT NULL,
  PRIMARY KEY (function, courseid, userid)
);
INSERT OR IGNORE INTO meta(key, value) VALUES ('schema_version', '1');
UPDATE meta SET value = '2' WHERE key = 'schema_version' AND value = '1';
UPDATE meta SET value = '3' WHERE key = 'schema_version' AND value = '2';
UPDATE meta SET value = '4' WHERE key = 'schema_version' AND value = '3';
)sql";

// Write statements prepared once per database and reused (reset and
// unbound between uses), keyed by the address of their SQL literal.
class StmtCache {
 public:
  ~StmtCache() { Clear(); }
  sqlite3_stmt* Get(sqlite3* db, const char* sql, int* rc) {
    auto [it, inserted] = stmts_.try_emplace(sql, nullptr);
    if (inserted || !it->second) {
      *rc = sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, &it->second, nullptr);
    } else {
      sqlite3_reset(it->second);
      sqlite3_clear_bindings(it->second);
      *rc = SQLITE_OK;
    }
    return it->second;
  }
  void Clear() {
    for (auto& [sql, stmt] : stmts_) sqlite3_finalize(stmt);
    stmts_.clear();
  }

 private:
  std::unordered_map<const char*, sqlite3_stmt*> stmts_;
};

class Stmt {
 public:
  Stmt(sqlite3* db, const char* sql) { rc_ = sqlite3_prepare_v2(db, sql, -1, &s_, nullptr); }
  // Borrowed from `cache`: not finalized, reset when done.
  Stmt(StmtCache& cache, sqlite3* db, const char* sql) : borrowed_(true) { s_ = cache.Get(db, sql, &rc_); }
  ~Stmt() {
    if (!borrowed_) sqlite3_finalize(s_);
    else if (s_) sqlite3_reset(s_);
  }
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;
  bool ok() const { return rc_ == SQLITE_OK; }
  Stmt& Bind(int i, long long v) {
    sqlite3_bind_int64(s_, i, v);
    return *this;
  }
  Stmt& Bind(int i, const std::string& v) {
    sqlite3_bind_text(s_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
    return *this;
  }
  int Step() { return sqlite3_step(s_); }
  sqlite3_stmt* raw() { return s_; }
  long long Int(int col) const { return sqlite3_column_int64(s_, col); }
  std::string Text(int col) const {
    auto p = sqlite3_column_text(s_, col);
    return p ? reinterpret_cast<const char*>(p) : "";
  }

 private:
  sqlite3_stmt* s_ = nullptr;
  int rc_ = SQLITE_OK;
  bool borrowed_ = false;
};

}  // namespace

struct StateDb::Impl {
  sqlite3* db = nullptr;
  std::string path;
  StmtCache cache;
  ~Impl() {
    cache.Clear();
    if (db) sqlite3_close(db);
  }
  // `body` in one transaction, unless the caller already holds one (then
  // the caller's transaction decides).
  template <typename Body>
  Status Bulk(Body body) {
    if (!sqlite3_get_autocommit(db)) return body();
    if (auto st = Exec("BEGIN IMMEDIATE"); !st) return st;
    Status st = body();
    if (!st) {
      (void)Exec("ROLLBACK");
      return st;
    }
    return Exec("COMMIT");
  }
  Error Err(const std::string& what) const {
    return Error{ErrorCode::kIo, "state database " + path + ": " + what + ": " + sqlite3_errmsg(db), {}, {}};
  }
  Status Exec(const char* sql) {
    char* msg = nullptr;
    if (sqlite3_exec(db, sql, nullptr, nullptr, &msg) != SQLITE_OK) {
      std::string m = msg ? msg : "";
      sqlite3_free(msg);
      return Fail(ErrorCode::kIo, "state database " + path + ": " + m);
    }
    return Ok();
  }
  Status Run(Stmt& s, const std::string& what) {
    if (!s.ok()) return Fail(Err(what));
    int rc = s.Step();
    if (rc != SQLITE_DONE && rc != SQLITE_ROW) return Fail(Err(what));
    return Ok();
  }
};

namespace {

// The refusal of a lost ledger, or "" when `state_dir` has none.
std::string LostLedgerMessage(const std::string& state_dir) {
  std::error_code ec;
  const fs::path db_path = fs::path(state_dir) / "state.db";
  // A missing or empty state.db where earlier runs left reports or copies
  // is a lost ledger, not a first run: refuse rather than start owning
  // nothing (no leaver would ever be suspended again).
  if (fs::exists(db_path, ec) && fs::file_size(db_path, ec) != 0) return "";
  std::string evidence;
  std::string newest;
  for (const char* sub : {"reports", "backups"}) {
    fs::path d = fs::path(state_dir) / sub;
    if (!fs::is_directory(d, ec)) continue;
    int n = 0;
    for (const auto& e : fs::directory_iterator(d, ec)) {
      ++n;
      if (std::string(sub) == "backups" && e.path().string() > newest) newest = e.path().string();
    }
    if (n > 0) evidence += (evidence.empty() ? "" : " and ") + std::to_string(n) + " file(s) in " + d.string();
  }
  if (evidence.empty()) return "";
  return "the state database " + db_path.string() + " is " + (fs::exists(db_path, ec) ? "empty" : "missing") +
         ", but earlier runs left " + evidence + ". Without it enrolsync would own nothing and never suspend a leaver. " +
         (newest.empty() ? std::string("Restore state.db from your backups")
                         : "Restore the newest copy: cp " + newest + " " + db_path.string()) +
         " (the copy is taken at the start of each sync; changes since are read back from Moodle as drift). With "
         "no copy, `enrolsync adopt` shows the ownership it can rebuild from Moodle for the feed's rows, and "
         "`enrolsync adopt --apply` records it. If this really is a fresh start, remove " +
         (fs::path(state_dir) / "reports").string() + " and " + (fs::path(state_dir) / "backups").string() +
         " first.";
}

}  // namespace

bool StateDb::IsLostLedger(const std::string& state_dir) { return !LostLedgerMessage(state_dir).empty(); }

Result<std::unique_ptr<StateDb>> StateDb::OpenScratch() {
  std::unique_ptr<StateDb> s(new StateDb());
  s->impl_ = std::make_unique<Impl>();
  s->path_ = ":memory:";
  s->impl_->path = s->path_;
  if (sqlite3_open_v2(":memory:", &s->impl_->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr) != SQLITE_OK)
    return Fail(ErrorCode::kIo, "cannot open a state database in memory");
  if (auto st = s->impl_->Exec(kSchema); !st) return Fail(st.error());
  return s;
}

Result<std::unique_ptr<StateDb>> StateDb::Open(const std::string& state_dir, OpenMode mode) {
  std::error_code ec;
  fs::create_directories(state_dir, ec);
  if (ec) return Fail(ErrorCode::kIo, "cannot create state_dir '" + state_dir + "': " + ec.message());
  fs::permissions(state_dir, fs::perms::owner_all, fs::perm_options::replace, ec);
  const fs::path db_path = fs::path(state_dir) / "state.db";
  if (mode == kRefuseLostLedger)
    if (std::string lost = LostLedgerMessage(state_dir); !lost.empty()) return Fail(ErrorCode::kIo, lost);
  std::unique_ptr<StateDb> s(new StateDb());
  s->impl_ = std::make_unique<Impl>();
  s->path_ = db_path.string();
  s->impl_->path = s->path_;
  if (sqlite3_open_v2(s->path_.c_str(), &s->impl_->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr) !=
      SQLITE_OK) {
    return Fail(ErrorCode::kIo, "cannot open state database " + s->path_ + ": " +
                                    (s->impl_->db ? sqlite3_errmsg(s->impl_->db) : "out of memory"));
  }
  sqlite3_busy_timeout(s->impl_->db, 5000);
  if (auto st = s->impl_->Exec("PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;"); !st) return Fail(st.error());
  if (auto st = s->impl_->Exec(kSchema); !st) return Fail(st.error());
  return s;
}

StateDb::~StateDb() = default;

Result<model::Ownership> StateDb::LoadOwnership() {
  model::Ownership o;
  {
    Stmt s(impl_->db,
           "SELECT courseid, userid, owns_enrolment, status, source_course, source_user FROM owned_enrolment");
    if (!s.ok()) return Fail(impl_->Err("reading owned enrolments"));
    while (s.Step() == SQLITE_ROW) {
      model::OwnedEnrolment e;
      e.courseid = s.Int(0);
      e.userid = s.Int(1);
      e.owns_enrolment = s.Int(2) != 0;
      e.status = s.Int(3) ? model::EnrolStatus::kSuspended : model::EnrolStatus::kActive;
      e.source_course = s.Text(4);
      e.source_user = s.Text(5);
      o.enrolments[{e.courseid, e.userid}] = std::move(e);
    }
  }
  {
    Stmt s(impl_->db, "SELECT courseid, userid, roleid FROM owned_role");
    if (!s.ok()) return Fail(impl_->Err("reading owned roles"));
    while (s.Step() == SQLITE_ROW) {
      auto it = o.enrolments.find({s.Int(0), s.Int(1)});
      if (it != o.enrolments.end()) it->second.roles.insert(s.Int(2));
    }
  }
  {
    Stmt s(impl_->db, "SELECT userid, username, created, suspended_reason FROM managed_user");
    if (!s.ok()) return Fail(impl_->Err("reading managed users"));
    while (s.Step() == SQLITE_ROW) {
      model::ManagedUser u;
      u.userid = s.Int(0);
      u.username = s.Text(1);
      u.created = s.Int(2) != 0;
      u.suspended_by_us = static_cast<model::SuspendReason>(s.Int(3));
      o.users[u.userid] = u;
    }
  }
  {
    Stmt s(impl_->db, "SELECT courseid FROM created_course");
    if (!s.ok()) return Fail(impl_->Err("reading created courses"));
    while (s.Step() == SQLITE_ROW) o.created_courses.insert(s.Int(0));
  }
  return o;
}

Status StateDb::UpsertEnrolment(const model::OwnedEnrolment& e) {
  Stmt s(impl_->cache, impl_->db,
         "INSERT INTO owned_enrolment(courseid, userid, owns_enrolment, status, source_course, source_user) "
         "VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT(courseid, userid) DO UPDATE SET "
         "owns_enrolment = excluded.owns_enrolment, status = excluded.status, "
         "source_course = excluded.source_course, source_user = excluded.source_user");
  s.Bind(1, e.courseid).Bind(2, e.userid).Bind(3, e.owns_enrolment ? 1 : 0)
      .Bind(4, e.status == model::EnrolStatus::kSuspended ? 1 : 0).Bind(5, e.source_course).Bind(6, e.source_user);
  if (auto st = impl_->Run(s, "recording an enrolment"); !st) return st;
  Stmt del(impl_->cache, impl_->db, "DELETE FROM owned_role WHERE courseid = ?1 AND userid = ?2");
  del.Bind(1, e.courseid).Bind(2, e.userid);
  if (auto st = impl_->Run(del, "recording roles"); !st) return st;
  for (MoodleId r : e.roles) {
    Stmt ins(impl_->cache, impl_->db, "INSERT OR IGNORE INTO owned_role(courseid, userid, roleid) VALUES (?1, ?2, ?3)");
    ins.Bind(1, e.courseid).Bind(2, e.userid).Bind(3, r);
    if (auto st = impl_->Run(ins, "recording a role"); !st) return st;
  }
  return Ok();
}

Status StateDb::DeleteEnrolment(model::CourseUser key) {
  Stmt s(impl_->cache, impl_->db, "DELETE FROM owned_enrolment WHERE courseid = ?1 AND userid = ?2");
  s.Bind(1, key.courseid).Bind(2, key.userid);
  if (auto st = impl_->Run(s, "forgetting an enrolment"); !st) return st;
  Stmt r(impl_->cache, impl_->db, "DELETE FROM owned_role WHERE courseid = ?1 AND userid = ?2");
  r.Bind(1, key.courseid).Bind(2, key.userid);
  return impl_->Run(r, "forgetting roles");
}

Status StateDb::RecordCreatedCourse(MoodleId courseid, const std::string& shortname, long long now) {
  Stmt s(impl_->cache, impl_->db, "INSERT OR REPLACE INTO created_course(courseid, shortname, created) VALUES (?1, ?2, ?3)");
  s.Bind(1, courseid).Bind(2, shortname).Bind(3, now);
  return impl_->Run(s, "recording a created course");
}

Result<std::vector<long long>> StateDb::AddIntents(const std::vector<Intent>& intents) {
  std::vector<long long> ids;
  ids.reserve(intents.size());
  Stmt s(impl_->cache, impl_->db,
         "INSERT INTO pending_intent(action, courseid, userid, roleid, shortname, idnumber, source_course, "
         "source_user, owns_enrolment) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)");
  if (!s.ok()) return Fail(impl_->Err("recording pending changes"));
  for (const Intent& i : intents) {
    sqlite3_reset(s.raw());
    s.Bind(1, i.action).Bind(2, i.courseid).Bind(3, i.userid).Bind(4, i.roleid).Bind(5, i.shortname)
        .Bind(6, i.idnumber).Bind(7, i.source_course).Bind(8, i.source_user).Bind(9, i.owns_enrolment ? 1 : 0);
    if (s.Step() != SQLITE_DONE) return Fail(impl_->Err("recording pending changes"));
    ids.push_back(sqlite3_last_insert_rowid(impl_->db));
  }
  return ids;
}

Status StateDb::DropIntents(const std::vector<long long>& ids) {
  return impl_->Bulk([&]() -> Status {
    Stmt s(impl_->cache, impl_->db, "DELETE FROM pending_intent WHERE id = ?1");
    if (!s.ok()) return Fail(impl_->Err("clearing pending changes"));
    for (long long id : ids) {
      sqlite3_reset(s.raw());
      s.Bind(1, id);
      if (s.Step() != SQLITE_DONE) return Fail(impl_->Err("clearing pending changes"));
    }
    return Ok();
  });
}

Result<std::vector<Intent>> StateDb::LoadIntents() {
  std::vector<Intent> out;
  Stmt s(impl_->db,
         "SELECT id, action, courseid, userid, roleid, shortname, idnumber, source_course, source_user, "
         "owns_enrolment FROM pending_intent ORDER BY id");
  if (!s.ok()) return Fail(impl_->Err("reading pending changes"));
  while (s.Step() == SQLITE_ROW) {
    Intent i;
    i.id = s.Int(0);
    i.action = s.Text(1);
    i.courseid = s.Int(2);
    i.userid = s.Int(3);
    i.roleid = s.Int(4);
    i.shortname = s.Text(5);
    i.idnumber = s.Text(6);
    i.source_course = s.Text(7);
    i.source_user = s.Text(8);
    i.owns_enrolment = s.Int(9) != 0;
    out.push_back(std::move(i));
  }
  return out;
}

Result<std::vector<FailedItem>> StateDb::LoadFailedItems() {
  std::vector<FailedItem> out;
  Stmt s(impl_->db, "SELECT function, courseid, userid FROM failed_item ORDER BY function, courseid, userid");
  if (!s.ok()) return Fail(impl_->Err("reading the last run's failures"));
  int rc;
  while ((rc = s.Step()) == SQLITE_ROW) out.push_back({s.Text(0), s.Int(1), s.Int(2)});
  if (rc != SQLITE_DONE) return Fail(impl_->Err("reading the last run's failures"));
  return out;
}

Status StateDb::ReplaceFailedItems(const std::vector<FailedItem>& items) {
  return impl_->Bulk([&]() -> Status {
    Stmt del(impl_->cache, impl_->db, "DELETE FROM failed_item");
    if (auto st = impl_->Run(del, "recording this run's failures"); !st) return st;
    for (const auto& i : items) {
      Stmt ins(impl_->cache, impl_->db,
               "INSERT OR IGNORE INTO failed_item(function, courseid, userid) VALUES (?1, ?2, ?3)");
      ins.Bind(1, i.function).Bind(2, i.courseid).Bind(3, i.userid);
      if (auto st = impl_->Run(ins, "recording this run's failures"); !st) return st;
    }
    return Ok();
  });
}

Status StateDb::UpsertManagedUser(const model::ManagedUser& u) {
  Stmt s(impl_->cache, impl_->db,
         "INSERT OR REPLACE INTO managed_user(userid, username, created, suspended_reason) VALUES (?1, ?2, ?3, ?4)");
  s.Bind(1, u.userid).Bind(2, u.username).Bind(3, u.created ? 1 : 0).Bind(4, static_cast<long long>(u.suspended_by_us));
  return impl_->Run(s, "recording a managed user");
}

Status StateDb::DeleteManagedUser(MoodleId userid) {
  Stmt s(impl_->cache, impl_->db, "DELETE FROM managed_user WHERE userid = ?1");
  s.Bind(1, userid);
  return impl_->Run(s, "forgetting a managed user");
}

Result<Mirror> StateDb::LoadMirror() {
  Mirror m;
  {
    Stmt s(impl_->db, "SELECT userid, username, email, idnumber, auth, suspended, checked FROM mirror_user");
    if (!s.ok()) return Fail(impl_->Err("reading the user mirror"));
    while (s.Step() == SQLITE_ROW) {
      model::User u;
      u.id = s.Int(0);
      u.username = s.Text(1);
      u.email = s.Text(2);
      u.idnumber = s.Text(3);
      u.auth = s.Text(4);
      u.suspended = s.Int(5) != 0;
      m.user_checked[u.id] = s.Int(6);
      m.users[u.id] = std::move(u);
    }
  }
  {
    Stmt s(impl_->db, "SELECT userid, field, value FROM mirror_user_field");
    if (!s.ok()) return Fail(impl_->Err("reading the user mirror"));
    while (s.Step() == SQLITE_ROW) {
      auto it = m.users.find(s.Int(0));
      if (it != m.users.end()) it->second.profile[s.Text(1)] = s.Text(2);
    }
  }
  {
    Stmt s(impl_->db, "SELECT courseid, fullname, shortname, idnumber, categoryid, visible, checked FROM mirror_course");
    if (!s.ok()) return Fail(impl_->Err("reading the course mirror"));
    while (s.Step() == SQLITE_ROW) {
      model::Course c{s.Int(0), s.Text(1), s.Text(2), s.Text(3), s.Int(4), s.Int(5) != 0};
      m.course_checked[c.id] = s.Int(6);
      m.courses[c.id] = std::move(c);
    }
  }
  {
    Stmt s(impl_->db, "SELECT value, checked FROM mirror_missing");
    if (!s.ok()) return Fail(impl_->Err("reading the user mirror"));
    while (s.Step() == SQLITE_ROW) m.missing[s.Text(0)] = s.Int(1);
  }
  {
    Stmt s(impl_->db, "SELECT key, value FROM meta WHERE key LIKE 'mirror_%'");
    if (!s.ok()) return Fail(impl_->Err("reading the mirror"));
    while (s.Step() == SQLITE_ROW) {
      long long v = 0;
      ParseInt64(s.Text(1), &v);
      const std::string k = s.Text(0);
      if (k == "mirror_users_complete") m.users_complete = v;
      else if (k == "mirror_courses_complete") m.courses_complete = v;
      else if (k == "mirror_max_userid") m.max_userid = v;
      else if (k == "mirror_max_courseid") m.max_courseid = v;
    }
  }
  return m;
}

Status StateDb::SaveMirrorUsers(const std::vector<model::User>& users, long long checked) {
  return impl_->Bulk([&]() -> Status {
    for (const auto& u : users) {
      Stmt s(impl_->cache, impl_->db,
             "INSERT OR REPLACE INTO mirror_user(userid, username, email, idnumber, auth, suspended, checked) "
             "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)");
      s.Bind(1, u.id).Bind(2, u.username).Bind(3, u.email).Bind(4, u.idnumber).Bind(5, u.auth)
          .Bind(6, u.suspended ? 1 : 0).Bind(7, checked);
      if (auto st = impl_->Run(s, "recording a user in the mirror"); !st) return st;
      Stmt del(impl_->cache, impl_->db, "DELETE FROM mirror_user_field WHERE userid = ?1");
      del.Bind(1, u.id);
      if (auto st = impl_->Run(del, "recording a user in the mirror"); !st) return st;
      for (const auto& [field, value] : u.profile) {
        Stmt f(impl_->cache, impl_->db, "INSERT INTO mirror_user_field(userid, field, value) VALUES (?1, ?2, ?3)");
        f.Bind(1, u.id).Bind(2, field).Bind(3, value);
        if (auto st = impl_->Run(f, "recording a user in the mirror"); !st) return st;
      }
    }
    return Ok();
  });
}

Status StateDb::DropMirrorUsers(const std::vector<MoodleId>& ids) {
  return impl_->Bulk([&]() -> Status {
    for (MoodleId id : ids) {
      for (const char* sql : {"DELETE FROM mirror_user WHERE userid = ?1", "DELETE FROM mirror_user_field WHERE userid = ?1"}) {
        Stmt s(impl_->cache, impl_->db, sql);
        s.Bind(1, id);
        if (auto st = impl_->Run(s, "dropping a user from the mirror"); !st) return st;
      }
    }
    return Ok();
  });
}

Status StateDb::SaveMirrorCourses(const std::vector<model::Course>& courses, long long checked) {
  return impl_->Bulk([&]() -> Status {
    for (const auto& c : courses) {
      Stmt s(impl_->cache, impl_->db,
             "INSERT OR REPLACE INTO mirror_course(courseid, fullname, shortname, idnumber, categoryid, visible, checked) "
             "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)");
      s.Bind(1, c.id).Bind(2, c.fullname).Bind(3, c.shortname).Bind(4, c.idnumber).Bind(5, c.categoryid)
          .Bind(6, c.visible ? 1 : 0).Bind(7, checked);
      if (auto st = impl_->Run(s, "recording a course in the mirror"); !st) return st;
    }
    return Ok();
  });
}

Status StateDb::DropMirrorCourses(const std::vector<MoodleId>& ids) {
  return impl_->Bulk([&]() -> Status {
    for (MoodleId id : ids) {
      Stmt s(impl_->cache, impl_->db, "DELETE FROM mirror_course WHERE courseid = ?1");
      s.Bind(1, id);
      if (auto st = impl_->Run(s, "dropping a course from the mirror"); !st) return st;
    }
    return Ok();
  });
}

Status StateDb::SaveMirrorMissing(const std::vector<std::string>& values, long long checked) {
  return impl_->Bulk([&]() -> Status {
    for (const auto& v : values) {
      Stmt s(impl_->cache, impl_->db, "INSERT OR REPLACE INTO mirror_missing(value, checked) VALUES (?1, ?2)");
      s.Bind(1, v).Bind(2, checked);
      if (auto st = impl_->Run(s, "recording a missing user"); !st) return st;
    }
    return Ok();
  });
}

Status StateDb::DropMirrorMissing(const std::vector<std::string>& values) {
  return impl_->Bulk([&]() -> Status {
    for (const auto& v : values) {
      Stmt s(impl_->cache, impl_->db, "DELETE FROM mirror_missing WHERE value = ?1");
      s.Bind(1, v);
      if (auto st = impl_->Run(s, "forgetting a missing user"); !st) return st;
    }
    return Ok();
  });
}

Status StateDb::SetMirrorMeta(const std::string& key, long long value) {
  Stmt s(impl_->cache, impl_->db, "INSERT OR REPLACE INTO meta(key, value) VALUES (?1, ?2)");
  s.Bind(1, "mirror_" + key).Bind(2, std::to_string(value));
  return impl_->Run(s, "recording the mirror's state");
}

Result<std::string> StateDb::GetMeta(const std::string& key) {
  Stmt s(impl_->db, "SELECT value FROM meta WHERE key = ?1");
  if (!s.ok()) return Fail(impl_->Err("reading " + key));
  s.Bind(1, key);
  int rc = s.Step();
  if (rc == SQLITE_ROW) return s.Text(0);
  if (rc != SQLITE_DONE) return Fail(impl_->Err("reading " + key));
  return std::string();
}

Status StateDb::SetMeta(const std::string& key, const std::string& value) {
  Stmt s(impl_->cache, impl_->db, "INSERT OR REPLACE INTO meta(key, value) VALUES (?1, ?2)");
  s.Bind(1, key).Bind(2, value);
  return impl_->Run(s, "recording " + key);
}

Status StateDb::Begin() { return impl_->Exec("BEGIN IMMEDIATE"); }
Status StateDb::Commit() { return impl_->Exec("COMMIT"); }
Status StateDb::Rollback() { return impl_->Exec("ROLLBACK"); }

Result<std::string> StateDb::Backup(const std::string& stamp, int keep) {
  std::error_code ec;
  const fs::path dir = fs::path(path_).parent_path() / "backups";
  fs::create_directories(dir, ec);
  if (ec) return Fail(ErrorCode::kIo, "cannot create " + dir.string() + ": " + ec.message());
  const std::string target = (dir / ("state-" + stamp + ".db")).string();
  fs::remove(target, ec);
  Stmt s(impl_->db, "VACUUM INTO ?1");
  s.Bind(1, target);
  if (auto st = impl_->Run(s, "copying the state database to " + target); !st) return Fail(st.error());
  std::vector<std::string> copies;
  for (const auto& e : fs::directory_iterator(dir, ec))
    if (e.path().filename().string().rfind("state-", 0) == 0) copies.push_back(e.path().string());
  std::sort(copies.begin(), copies.end());
  for (std::size_t i = 0; i + static_cast<std::size_t>(std::max(1, keep)) < copies.size(); ++i) fs::remove(copies[i], ec);
  return target;
}

Result<std::map<MoodleId, long long>> StateDb::LastVerified() {
  std::map<MoodleId, long long> out;
  Stmt s(impl_->db, "SELECT courseid, verified FROM course_verified");
  if (!s.ok()) return Fail(impl_->Err("reading verification times"));
  while (s.Step() == SQLITE_ROW) out[s.Int(0)] = s.Int(1);
  return out;
}

Status StateDb::MarkVerified(const std::vector<MoodleId>& courseids, long long now) {
  return impl_->Bulk([&]() -> Status {
    for (MoodleId c : courseids) {
      Stmt s(impl_->cache, impl_->db, "INSERT OR REPLACE INTO course_verified(courseid, verified) VALUES (?1, ?2)");
      s.Bind(1, c).Bind(2, now);
      if (auto st = impl_->Run(s, "recording a verification"); !st) return st;
    }
    return Ok();
  });
}

Result<long long> StateDb::BeginRun(const std::string& trigger, const std::string& command, long long now) {
  Stmt s(impl_->cache, impl_->db, "INSERT INTO run(started, trigger, command) VALUES (?1, ?2, ?3)");
  s.Bind(1, now).Bind(2, trigger).Bind(3, command);
  if (auto st = impl_->Run(s, "recording a run"); !st) return Fail(st.error());
  return static_cast<long long>(sqlite3_last_insert_rowid(impl_->db));
}

Status StateDb::FinishRun(long long id, long long now, int exit_code, const std::string& summary_json,
                          int keep_runs) {
  if (auto st = impl_->Exec("BEGIN IMMEDIATE"); !st) return st;
  Status st = Ok();
  {
    Stmt s(impl_->cache, impl_->db, "UPDATE run SET ended = ?2, exit_code = ?3, summary_json = ?4 WHERE id = ?1");
    s.Bind(1, id).Bind(2, now).Bind(3, exit_code).Bind(4, summary_json);
    st = impl_->Run(s, "finishing a run");
  }
  if (st) {
    // SQLite's JSON functions (built in since 3.38). Only reports that still
    // hold items are rewritten, so each run is compacted once.
    Stmt s(impl_->cache, impl_->db,
           "UPDATE run SET summary_json = json_set(json_remove(summary_json, '$.items', '$.problems', '$.failures', "
           "'$.notes', '$.trace'), '$.problems_count', coalesce(json_array_length(summary_json, '$.problems'), 0)) "
           "WHERE id <= (SELECT max(id) FROM run) - ?1 AND json_valid(summary_json) AND "
           "json_type(summary_json, '$.items') IS NOT NULL");
    s.Bind(1, static_cast<long long>(std::max(keep_runs, 1)));
    st = impl_->Run(s, "pruning old run reports");
  }
  if (!st) {
    (void)impl_->Exec("ROLLBACK");
    return st;
  }
  return impl_->Exec("COMMIT");
}

Result<std::vector<RunRecord>> StateDb::RecentRuns(int limit) {
  std::vector<RunRecord> out;
  Stmt s(impl_->db,
         "SELECT id, started, ended, trigger, command, exit_code, summary_json FROM run ORDER BY id DESC LIMIT ?1");
  if (!s.ok()) return Fail(impl_->Err("reading runs"));
  s.Bind(1, limit);
  while (s.Step() == SQLITE_ROW)
    out.push_back({s.Int(0), s.Int(1), s.Int(2), s.Text(3), s.Text(4), static_cast<int>(s.Int(5)), s.Text(6)});
  return out;
}

Result<std::unique_ptr<RunLock>> RunLock::Acquire(const std::string& state_dir) {
  std::error_code ec;
  fs::create_directories(state_dir, ec);
  std::string path = (fs::path(state_dir) / "lock").string();
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return Fail(ErrorCode::kIo, "cannot open lock file " + path + ": " + std::strerror(errno));
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    ::close(fd);
    return Fail(ErrorCode::kIo, "another enrolsync run holds " + path + "; not starting a second one");
  }
  std::unique_ptr<RunLock> lock(new RunLock());
  lock->fd_ = fd;
  return lock;
}

RunLock::~RunLock() {
  if (fd_ >= 0) ::close(fd_);
}

}  // namespace enrolsync::state
