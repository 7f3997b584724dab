// ODBC back end (unixODBC). sql.h/sqlext.h stay in the .cc.
#pragma once

#include <memory>
#include <string>

#include "sources/sql_driver.h"
#include "util/result.h"

namespace enrolsync::sources {

// Connects with SQLDriverConnect (no prompt, 10 s login timeout).
// `connection_string` is e.g. "DRIVER={PostgreSQL Unicode};SERVER=..;UID=..";
// `password` (optional) is appended as PWD={..} internally only and
// registered as a secret. Errors never echo the connection string with the
// password. Text is read as SQL_C_CHAR: configure the driver for UTF-8
// (FreeTDS: ClientCharset=UTF-8).
Result<std::unique_ptr<SqlConnection>> OpenOdbc(const std::string& connection_string,
                                                const std::string& password);

// The connection string without PWD/PASSWORD entries, for messages.
std::string StripOdbcPassword(const std::string& connection_string);

}  // namespace enrolsync::sources
