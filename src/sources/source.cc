#include "sources/source.h"

#include "sources/csv/csv_source.h"
#include "sources/odbc/odbc_driver.h"
#include "sources/postgresql/postgresql_driver.h"
#include "sources/sql_util.h"
#include "sources/sqlite/sqlite_driver.h"
#include "util/secrets.h"
#include "util/strings.h"

namespace enrolsync::sources {
namespace {

// ReadTable/Inspect over any SqlConnection.
class SqlSource final : public Source {
 public:
  SqlSource(std::unique_ptr<SqlConnection> conn, std::string describe)
      : conn_(std::move(conn)), describe_(std::move(describe)) {}

  std::string Describe() const override { return describe_; }

  Result<Table> ReadTable(const std::string& table,
                          const std::vector<std::string>& columns) override {
    if (auto ok = ValidateIdentifier(table, "table"); !ok) return Fail(Wrap(ok.error()));
    for (const auto& c : columns) {
      if (auto ok = ValidateIdentifier(c, "column"); !ok) return Fail(Wrap(ok.error()));
      if (c.find('.') != std::string::npos) {
        return Fail(ErrorCode::kInvalidArgument,
                    "source " + describe_ + ": column \"" + c + "\" must not contain '.'");
      }
    }
    auto available = conn_->Columns(table);
    if (!available) return Fail(Wrap(available.error()));
    std::vector<std::size_t> idx;
    std::string problem;
    if (!internal::MatchColumns(*available, columns, &idx, &problem)) {
      return Fail(ErrorCode::kNotFound,
                  "source " + describe_ + ": table \"" + table + "\" " + problem);
    }
    std::string sql = "SELECT ";
    for (std::size_t i = 0; i < idx.size(); ++i) {
      if (i) sql += ", ";
      sql += conn_->QuoteIdentifier((*available)[idx[i]]);
    }
    if (idx.empty()) sql += "1";
    sql += " FROM " + conn_->QuoteIdentifier(table);
    auto r = conn_->Query(sql, {});
    if (!r) return Fail(Wrap(r.error()));
    Table out;
    out.name = table;
    out.columns = columns;
    out.rows = std::move(r->rows);
    if (idx.empty()) {
      for (auto& row : out.rows) row.clear();
    }
    out.row_numbers.reserve(out.rows.size());
    for (std::size_t i = 0; i < out.rows.size(); ++i) out.row_numbers.push_back(i + 1);
    return out;
  }

  Result<Inspection> Inspect(const std::string& table, int sample) override {
    if (auto ok = ValidateIdentifier(table, "table"); !ok) return Fail(Wrap(ok.error()));
    auto columns = conn_->Columns(table);
    if (!columns) return Fail(Wrap(columns.error()));
    std::string quoted = conn_->QuoteIdentifier(table);
    auto count = conn_->Query("SELECT COUNT(*) FROM " + quoted, {});
    if (!count) return Fail(Wrap(count.error()));
    Inspection out;
    out.columns = std::move(*columns);
    if (!count->rows.empty() && !count->rows[0].empty() && count->rows[0][0]) {
      if (!ParseInt64(*count->rows[0][0], &out.row_count)) {
        return Fail(ErrorCode::kSource, "source " + describe_ + ": COUNT(*) of \"" + table +
                                            "\" returned \"" + *count->rows[0][0] + "\"");
      }
    }
    if (sample > 0) {
      auto rows = conn_->QueryFirst("SELECT * FROM " + quoted, {},
                                    static_cast<std::size_t>(sample));
      if (!rows) return Fail(Wrap(rows.error()));
      out.sample = std::move(rows->rows);
    }
    return out;
  }

 private:
  Error Wrap(const Error& e) const {
    // Driver errors already start with the back end description.
    if (e.message.rfind(describe_, 0) == 0) return e.Wrap("source");
    return e.Wrap("source " + describe_);
  }

  std::unique_ptr<SqlConnection> conn_;
  std::string describe_;
};

Result<std::unique_ptr<Source>> Wrap(Result<std::unique_ptr<SqlConnection>> conn,
                                     std::string describe) {
  if (!conn) return Fail(conn.error());
  return std::unique_ptr<Source>(std::make_unique<SqlSource>(std::move(*conn), std::move(describe)));
}

}  // namespace

Result<std::unique_ptr<Source>> OpenSource(const SourceSettings& s) {
  RegisterSecret(s.password);
  if (s.type == "sqlite") {
    if (s.database.empty()) return Fail(ErrorCode::kConfig, "sqlite source: database (file path) is not set");
    return Wrap(OpenSqlite(s.database), "sqlite " + s.database);
  }
  if (s.type == "postgresql") {
    return Wrap(OpenPostgresql(s.dsn, s.password), DescribePostgresql(s.dsn));
  }
  if (s.type == "odbc") {
    if (s.dsn.empty()) return Fail(ErrorCode::kConfig, "odbc source: dsn (connection string) is not set");
    return Wrap(OpenOdbc(s.dsn, s.password), "odbc " + StripOdbcPassword(s.dsn));
  }
  if (s.type == "csv") {
    if (s.database.empty()) return Fail(ErrorCode::kConfig, "csv source: database (directory) is not set");
    return OpenCsvSource(s.database);
  }
  return Fail(ErrorCode::kConfig, "unknown source type \"" + s.type +
                                      "\" (expected sqlite, postgresql, odbc or csv)");
}

}  // namespace enrolsync::sources
