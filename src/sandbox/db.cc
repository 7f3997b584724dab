#include "sandbox/db.h"

#include <sqlite3.h>

namespace enrolsync::sandbox {

Db::Db(const std::string& path) {
  if (sqlite3_open(path.c_str(), &db_) != SQLITE_OK) {
    std::string msg = db_ ? sqlite3_errmsg(db_) : "out of memory";
    sqlite3_close(db_);
    db_ = nullptr;
    throw DbError("cannot open " + path + ": " + msg);
  }
  sqlite3_busy_timeout(db_, 5000);
}

Db::~Db() {
  for (auto& [sql, st] : cache_) sqlite3_finalize(st);
  if (db_) sqlite3_close(db_);
}

void Db::Exec(const std::string& sql) {
  char* err = nullptr;
  if (sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &err) != SQLITE_OK) {
    std::string msg = err ? err : "unknown error";
    sqlite3_free(err);
    throw DbError(msg + " in: " + sql.substr(0, 200));
  }
}

sqlite3_stmt* Db::Prepare(const std::string& sql) {
  auto it = cache_.find(sql);
  if (it != cache_.end()) {
    sqlite3_reset(it->second);
    sqlite3_clear_bindings(it->second);
    return it->second;
  }
  sqlite3_stmt* st = nullptr;
  if (sqlite3_prepare_v2(db_, sql.c_str(), -1, &st, nullptr) != SQLITE_OK) {
    throw DbError(std::string(sqlite3_errmsg(db_)) + " in: " + sql);
  }
  cache_.emplace(sql, st);
  return st;
}

std::vector<Row> Db::Fetch(sqlite3_stmt* st) {
  std::vector<Row> rows;
  for (;;) {
    int rc = sqlite3_step(st);
    if (rc == SQLITE_DONE) break;
    if (rc != SQLITE_ROW) {
      std::string msg = sqlite3_errmsg(db_);
      sqlite3_reset(st);
      throw DbError(msg + " in: " + sqlite3_sql(st));
    }
    int n = sqlite3_column_count(st);
    Row row(n);
    for (int c = 0; c < n; ++c) {
      Val& v = row[c];
      v.null = sqlite3_column_type(st, c) == SQLITE_NULL;
      v.i = sqlite3_column_int64(st, c);
      const unsigned char* t = sqlite3_column_text(st, c);
      if (t) v.s.assign(reinterpret_cast<const char*>(t), sqlite3_column_bytes(st, c));
    }
    rows.push_back(std::move(row));
  }
  sqlite3_reset(st);
  return rows;
}

void Db::Bind(sqlite3_stmt* st, int i, long long v) { sqlite3_bind_int64(st, i, v); }
void Db::Bind(sqlite3_stmt* st, int i, const std::string& v) {
  sqlite3_bind_text(st, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
}
void Db::Bind(sqlite3_stmt* st, int i, std::nullptr_t) { sqlite3_bind_null(st, i); }

long long Db::LastId() { return sqlite3_last_insert_rowid(db_); }
long long Db::Changes() { return sqlite3_changes(db_); }

}  // namespace enrolsync::sandbox
