// Reading the MIS tables. A Source hands out whole tables as text; mapping
// columns onto CourseRow/EnrolmentRow happens once, in desired.h.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "sources/sql_driver.h"
#include "util/result.h"

namespace enrolsync::sources {

// Which back end and how to reach it. Secrets are already resolved (from a
// *_file or *_env key) by the config loader; they never appear in errors.
struct SourceSettings {
  std::string type;        // "sqlite" | "postgresql" | "odbc" | "csv"
  std::string database;    // sqlite: file path; csv: directory
  std::string dsn;         // postgresql: libpq conninfo; odbc: connection string
  std::string password;    // postgresql/odbc password (optional), resolved
};

// A table read from a source: the requested columns, in the requested order.
struct Table {
  std::string name;                  // for messages: "VwMoodleEnrolData" or "enrol.csv"
  std::vector<std::string> columns;  // the requested column names
  std::vector<SqlRow> rows;
  std::vector<std::size_t> row_numbers;  // 1-based source row (CSV: file line)
};

class Source {
 public:
  virtual ~Source() = default;
  virtual std::string Describe() const = 0;  // "sqlite school.db", no secrets

  // Reads `columns` of `table`. kNotFound names the missing table or column.
  virtual Result<Table> ReadTable(const std::string& table, const std::vector<std::string>& columns) = 0;

  // For `enrolsync check`: every column of `table`, its row count and up to
  // `sample` rows.
  struct Inspection {
    std::vector<std::string> columns;
    long long row_count = 0;
    std::vector<SqlRow> sample;
  };
  virtual Result<Inspection> Inspect(const std::string& table, int sample) = 0;
};

// Opens the configured source (connects for SQL back ends).
Result<std::unique_ptr<Source>> OpenSource(const SourceSettings& settings);

}  // namespace enrolsync::sources
