// PostgreSQL back end (libpq). libpq headers stay in the .cc.
#pragma once

#include <memory>
#include <string>

#include "sources/sql_driver.h"
#include "util/result.h"

namespace enrolsync::sources {

// Connects with libpq. `conninfo` is a keyword/value string or a
// postgresql:// URI; `password` (optional) is passed separately as the
// "password" connection parameter and registered as a secret, as is any
// password inside `conninfo`. A connect_timeout of 10 s applies unless
// conninfo sets one. Errors never contain the password.
Result<std::unique_ptr<SqlConnection>> OpenPostgresql(const std::string& conninfo,
                                                      const std::string& password);

// "postgresql user@host:port/dbname" for messages: no password, no other keys.
std::string DescribePostgresql(const std::string& conninfo);

}  // namespace enrolsync::sources
