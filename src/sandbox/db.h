// A thin SQLite wrapper for the sandbox's state: prepared-statement cache,
// variadic binding, rows fetched eagerly. Errors throw DbError (internal
// to the sandbox; the public API turns them into Result errors).
#pragma once

#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <vector>

struct sqlite3;
struct sqlite3_stmt;

namespace enrolsync::sandbox {

struct DbError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// One column value; both the integer and the text form are filled.
struct Val {
  bool null = true;
  long long i = 0;
  std::string s;
};
using Row = std::vector<Val>;

class Db {
 public:
  // Opens (creating if needed) the database file. Throws DbError.
  explicit Db(const std::string& path);
  ~Db();
  Db(const Db&) = delete;
  Db& operator=(const Db&) = delete;

  void Exec(const std::string& sql);  // several statements, no parameters

  template <class... A>
  std::vector<Row> All(const std::string& sql, const A&... args) {
    sqlite3_stmt* st = Prepare(sql);
    BindAll(st, 1, args...);
    return Fetch(st);
  }
  template <class... A>
  std::optional<Row> One(const std::string& sql, const A&... args) {
    auto rows = All(sql, args...);
    if (rows.empty()) return std::nullopt;
    return std::move(rows.front());
  }
  // First column of the first row as an integer; `def` when there is no row.
  template <class... A>
  long long Int(const std::string& sql, const A&... args) {
    auto r = One(sql, args...);
    return r && !r->empty() ? (*r)[0].i : 0;
  }
  // Executes a statement; returns the number of changed rows.
  template <class... A>
  long long Run(const std::string& sql, const A&... args) {
    sqlite3_stmt* st = Prepare(sql);
    BindAll(st, 1, args...);
    Fetch(st);
    return Changes();
  }
  long long LastId();
  long long Changes();

 private:
  sqlite3_stmt* Prepare(const std::string& sql);
  std::vector<Row> Fetch(sqlite3_stmt* st);
  void Bind(sqlite3_stmt* st, int i, long long v);
  void Bind(sqlite3_stmt* st, int i, const std::string& v);
  void Bind(sqlite3_stmt* st, int i, std::nullptr_t);
  void Bind(sqlite3_stmt* st, int i, int v) { Bind(st, i, static_cast<long long>(v)); }
  void Bind(sqlite3_stmt* st, int i, bool v) { Bind(st, i, static_cast<long long>(v ? 1 : 0)); }
  void Bind(sqlite3_stmt* st, int i, const char* v) { Bind(st, i, std::string(v)); }
  void Bind(sqlite3_stmt* st, int i, const std::optional<long long>& v) {
    if (v) Bind(st, i, *v); else Bind(st, i, nullptr);
  }
  void BindAll(sqlite3_stmt*, int) {}
  template <class T, class... R>
  void BindAll(sqlite3_stmt* st, int i, const T& v, const R&... rest) {
    Bind(st, i, v);
    BindAll(st, i + 1, rest...);
  }

  sqlite3* db_ = nullptr;
  std::unordered_map<std::string, sqlite3_stmt*> cache_;
};

}  // namespace enrolsync::sandbox
