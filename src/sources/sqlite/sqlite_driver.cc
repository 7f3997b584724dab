#include "sources/sqlite/sqlite_driver.h"

#include <sqlite3.h>

#include <filesystem>
#include <system_error>

#include "sources/sql_util.h"

namespace enrolsync::sources {
namespace {

class SqliteStatement {
 public:
  explicit SqliteStatement(sqlite3_stmt* stmt) : stmt_(stmt) {}
  ~SqliteStatement() { sqlite3_finalize(stmt_); }
  SqliteStatement(const SqliteStatement&) = delete;
  SqliteStatement& operator=(const SqliteStatement&) = delete;
  sqlite3_stmt* get() const { return stmt_; }

 private:
  sqlite3_stmt* stmt_;
};

class SqliteConnection final : public SqlConnection {
 public:
  SqliteConnection(sqlite3* db, std::string path) : db_(db), path_(std::move(path)) {}
  ~SqliteConnection() override { sqlite3_close_v2(db_); }

  std::string BackendName() const override { return "sqlite"; }
  std::string LastError() const { return sqlite3_errmsg(db_); }
  std::string QuoteIdentifier(std::string_view name) const override {
    return internal::QuoteParts(name, "\"");
  }
  std::string Placeholder(int index) const override { return "?" + std::to_string(index); }

  Result<SqlResult> QueryFirst(std::string_view sql, const std::vector<SqlValue>& params,
                               std::size_t max_rows) override {
    sqlite3_stmt* raw = nullptr;
    int rc = sqlite3_prepare_v2(db_, sql.data(), static_cast<int>(sql.size()), &raw, nullptr);
    SqliteStatement stmt(raw);
    if (rc != SQLITE_OK) return Error("cannot prepare query");
    if (raw == nullptr) return SqlResult{};  // empty statement
    int expected = sqlite3_bind_parameter_count(raw);
    if (expected != static_cast<int>(params.size())) {
      return Fail(ErrorCode::kInternal, "sqlite: query expects " + std::to_string(expected) +
                                            " parameters, got " + std::to_string(params.size()));
    }
    for (std::size_t i = 0; i < params.size(); ++i) {
      int idx = static_cast<int>(i) + 1;
      rc = params[i] ? sqlite3_bind_text64(raw, idx, params[i]->data(), params[i]->size(),
                                           SQLITE_TRANSIENT, SQLITE_UTF8)
                     : sqlite3_bind_null(raw, idx);
      if (rc != SQLITE_OK) return Error("cannot bind parameter " + std::to_string(idx));
    }
    SqlResult result;
    int ncols = sqlite3_column_count(raw);
    for (int c = 0; c < ncols; ++c) {
      const char* name = sqlite3_column_name(raw, c);
      result.columns.emplace_back(name ? name : "");
    }
    while (result.rows.size() < max_rows) {
      rc = sqlite3_step(raw);
      if (rc == SQLITE_DONE) break;
      if (rc != SQLITE_ROW) return Error("query failed");
      SqlRow row;
      row.reserve(ncols);
      for (int c = 0; c < ncols; ++c) {
        if (sqlite3_column_type(raw, c) == SQLITE_NULL) {
          row.emplace_back(std::nullopt);
          continue;
        }
        // Integers and reals come back as their decimal text.
        const auto* text = reinterpret_cast<const char*>(sqlite3_column_text(raw, c));
        int len = sqlite3_column_bytes(raw, c);
        if (text == nullptr) return Error("out of memory reading a value");
        row.emplace_back(std::string(text, static_cast<std::size_t>(len)));
      }
      result.rows.push_back(std::move(row));
    }
    return result;
  }

  Result<std::vector<std::string>> Columns(std::string_view table) override {
    auto parts = internal::SplitQualifiedName(table);
    Result<SqlResult> r = parts.size() == 2
        ? Query("SELECT name FROM pragma_table_info(?1, ?2) ORDER BY cid", {parts[1], parts[0]})
        : Query("SELECT name FROM pragma_table_info(?1) ORDER BY cid", {std::string(table)});
    if (!r) return Fail(r.error());
    if (r->rows.empty()) {
      return Fail(ErrorCode::kNotFound,
                  "table \"" + std::string(table) + "\" not found (no such table or view)");
    }
    std::vector<std::string> names;
    for (auto& row : r->rows) names.push_back(row[0].value_or(""));
    return names;
  }

 private:
  tl::unexpected<enrolsync::Error> Error(const std::string& what) const {
    return Fail(ErrorCode::kSource, "sqlite " + path_ + ": " + what + ": " + sqlite3_errmsg(db_));
  }

  sqlite3* db_;
  std::string path_;
};

}  // namespace

Result<std::unique_ptr<SqlConnection>> OpenSqlite(const std::string& path) {
  std::error_code ec;
  auto status = std::filesystem::status(path, ec);
  if (!std::filesystem::exists(status)) {
    return Fail(ErrorCode::kNotFound, "sqlite database file \"" + path + "\" does not exist");
  }
  if (std::filesystem::is_directory(status)) {
    return Fail(ErrorCode::kSource, "sqlite database \"" + path + "\" is a directory, not a file");
  }
  sqlite3* db = nullptr;
  int rc = sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, nullptr);
  if (rc != SQLITE_OK) {
    std::string msg = db ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
    sqlite3_close_v2(db);
    return Fail(ErrorCode::kSource, "cannot open sqlite database \"" + path + "\": " + msg);
  }
  sqlite3_busy_timeout(db, 10000);
  sqlite3_extended_result_codes(db, 1);
  auto conn = std::make_unique<SqliteConnection>(db, path);
  // Reading the schema catches "file is not a database" and unreadable files now.
  auto probe = conn->Query("SELECT count(*) FROM sqlite_schema", {});
  if (!probe) {
    return Fail(ErrorCode::kSource,
                "cannot read sqlite database \"" + path + "\": " + conn->LastError());
  }
  return std::unique_ptr<SqlConnection>(std::move(conn));
}

}  // namespace enrolsync::sources
