// The one small SQL driver interface shared by the SQLite, PostgreSQL (libpq)
// and ODBC back ends (PowerDNS style: each back end lives in its own folder).
//
// Contract:
// - Every value is text or NULL; drivers convert numbers to their decimal
//   text. Long text columns are read whole (no truncation at the declared
//   column size).
// - Parameters are always bound, never spliced into SQL. A query's
//   placeholders are written with Placeholder(i) (1-based).
// - Identifiers from config go through QuoteIdentifier(); ValidateIdentifier()
//   rejects names that cannot be a table/column name before any SQL is built.
// - No method throws; failures come back as Error{kSource, ...} whose message
//   never contains a password.
// - A connection is used by one thread at a time.
#pragma once

#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "util/result.h"

namespace enrolsync::sources {

using SqlValue = std::optional<std::string>;  // nullopt = SQL NULL
using SqlRow = std::vector<SqlValue>;

struct SqlResult {
  std::vector<std::string> columns;  // as the back end names them
  std::vector<SqlRow> rows;
};

class SqlConnection {
 public:
  virtual ~SqlConnection() = default;

  // "sqlite", "postgresql" or "odbc".
  virtual std::string BackendName() const = 0;

  // Quotes a table or column name for this back end. "schema.table" is split
  // on the dot and each part quoted. Names keep their case (so a mixed-case
  // PostgreSQL view "VwMoodleCourseData" works).
  virtual std::string QuoteIdentifier(std::string_view name) const = 0;

  // The placeholder for parameter `index` (1-based): "?" or "$1".
  virtual std::string Placeholder(int index) const = 0;

  // Runs `sql` with `params` bound in order and returns every row.
  virtual Result<SqlResult> Query(std::string_view sql, const std::vector<SqlValue>& params) {
    return QueryFirst(sql, params, static_cast<std::size_t>(-1));
  }

  // Like Query, but stops fetching after `max_rows` rows (no LIMIT syntax
  // needed, so it works the same on every back end). Used for samples.
  virtual Result<SqlResult> QueryFirst(std::string_view sql, const std::vector<SqlValue>& params,
                                       std::size_t max_rows) = 0;

  // Column names of `table` (a table or a view), in table order, looked up
  // with bound parameters. kNotFound if the table does not exist.
  virtual Result<std::vector<std::string>> Columns(std::string_view table) = 0;
};

// Accepts names made of letters, digits, '_', '$', ' ' and at most one '.'
// (schema.table); rejects empty names, quotes, semicolons and control
// characters. The message names what is wrong and where (`what`, e.g.
// "[courses] table").
Status ValidateIdentifier(std::string_view name, std::string_view what);

}  // namespace enrolsync::sources
