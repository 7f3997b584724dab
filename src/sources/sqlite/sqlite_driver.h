// SQLite back end (libsqlite3). The database file is opened read-only and is
// never created.
#pragma once

#include <memory>
#include <string>

#include "sources/sql_driver.h"
#include "util/result.h"

namespace enrolsync::sources {

// Opens `path` read-only. A missing file is kNotFound naming the path; a file
// that is not an SQLite database is kSource.
Result<std::unique_ptr<SqlConnection>> OpenSqlite(const std::string& path);

}  // namespace enrolsync::sources
