#include "sources/postgresql/postgresql_driver.h"

#include <libpq-fe.h>

#include <map>

#include "sources/sql_util.h"
#include "util/secrets.h"

namespace enrolsync::sources {
namespace {

struct PgResultDeleter {
  void operator()(PGresult* r) const { PQclear(r); }
};
using PgResultPtr = std::unique_ptr<PGresult, PgResultDeleter>;

// Parsed conninfo keywords that have a value (URI or keyword/value form).
// Returns false and sets *error when libpq cannot parse it.
bool ParseConninfo(const std::string& conninfo, std::map<std::string, std::string>* out,
                   std::string* error) {
  char* err = nullptr;
  PQconninfoOption* opts = PQconninfoParse(conninfo.c_str(), &err);
  if (opts == nullptr) {
    *error = err ? internal::TrimMessage(err) : "out of memory";
    if (err) PQfreemem(err);
    return false;
  }
  for (PQconninfoOption* o = opts; o->keyword != nullptr; ++o) {
    if (o->val != nullptr && *o->val != '\0') (*out)[o->keyword] = o->val;
  }
  PQconninfoFree(opts);
  return true;
}

std::string DescribeOptions(const std::map<std::string, std::string>& opts) {
  auto get = [&](const char* key) {
    auto it = opts.find(key);
    return it == opts.end() ? std::string() : it->second;
  };
  std::string out = "postgresql ";
  std::string user = get("user");
  if (!user.empty()) out += user + "@";
  std::string host = get("host");
  if (host.empty()) host = get("hostaddr");
  out += host.empty() ? "localhost" : host;
  std::string port = get("port");
  if (!port.empty()) out += ":" + port;
  std::string db = get("dbname");
  if (!db.empty()) out += "/" + db;
  return out;
}

class PgConnection final : public SqlConnection {
 public:
  PgConnection(PGconn* conn, std::string describe) : conn_(conn), describe_(std::move(describe)) {}
  ~PgConnection() override { PQfinish(conn_); }

  std::string BackendName() const override { return "postgresql"; }
  std::string QuoteIdentifier(std::string_view name) const override {
    return internal::QuoteParts(name, "\"");
  }
  std::string Placeholder(int index) const override { return "$" + std::to_string(index); }

  Result<SqlResult> QueryFirst(std::string_view sql_view, const std::vector<SqlValue>& params,
                               std::size_t max_rows) override {
    if (PQstatus(conn_) != CONNECTION_OK) {
      PQreset(conn_);
      if (PQstatus(conn_) != CONNECTION_OK) return ConnError("connection lost");
    }
    std::string sql(sql_view);
    std::vector<const char*> values;
    values.reserve(params.size());
    for (const auto& p : params) values.push_back(p ? p->c_str() : nullptr);
    int n = static_cast<int>(params.size());
    if (max_rows == internal::kAllRows) {
      PgResultPtr res(PQexecParams(conn_, sql.c_str(), n, nullptr, values.data(), nullptr,
                                   nullptr, 0));
      if (!res) return ConnError("query failed");
      if (PQresultStatus(res.get()) != PGRES_TUPLES_OK &&
          PQresultStatus(res.get()) != PGRES_COMMAND_OK) {
        return ResultError(res.get());
      }
      SqlResult out;
      AppendColumns(res.get(), &out);
      AppendRows(res.get(), &out, internal::kAllRows);
      return out;
    }
    // Sample: single-row mode, cancel once we have enough.
    if (!PQsendQueryParams(conn_, sql.c_str(), n, nullptr, values.data(), nullptr, nullptr, 0)) {
      return ConnError("cannot send query");
    }
    PQsetSingleRowMode(conn_);
    SqlResult out;
    std::optional<enrolsync::Error> error;
    bool have_columns = false, cancelled = false;
    while (PGresult* raw = PQgetResult(conn_)) {
      PgResultPtr res(raw);
      auto st = PQresultStatus(raw);
      if (st == PGRES_SINGLE_TUPLE || st == PGRES_TUPLES_OK) {
        if (!have_columns) {
          AppendColumns(raw, &out);
          have_columns = true;
        }
        AppendRows(raw, &out, max_rows);
        if (out.rows.size() >= max_rows && !cancelled && st == PGRES_SINGLE_TUPLE) {
          if (PGcancel* c = PQgetCancel(conn_)) {
            char buf[256];
            PQcancel(c, buf, sizeof buf);
            PQfreeCancel(c);
          }
          cancelled = true;
        }
      } else if (st != PGRES_COMMAND_OK && !cancelled && !error) {
        error = ResultError(raw).value();
      }
    }
    if (error) return Fail(*error);
    return out;
  }

  Result<std::vector<std::string>> Columns(std::string_view table) override {
    // to_regclass resolves the name exactly like the SELECT will (quoted
    // parts keep their case, unqualified names follow search_path).
    std::string quoted = QuoteIdentifier(table);
    auto cols = Query(
        "SELECT a.attname FROM pg_catalog.pg_attribute a"
        " WHERE a.attrelid = pg_catalog.to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped"
        " ORDER BY a.attnum",
        {quoted});
    if (!cols) return Fail(cols.error());
    if (cols->rows.empty()) {
      auto exists = Query("SELECT pg_catalog.to_regclass($1) IS NOT NULL", {quoted});
      if (!exists) return Fail(exists.error());
      if (exists->rows.empty() || exists->rows[0][0].value_or("f") != "t") {
        return Fail(ErrorCode::kNotFound,
                    "table \"" + std::string(table) + "\" not found (no such table or view)");
      }
    }
    std::vector<std::string> names;
    for (auto& row : cols->rows) names.push_back(row[0].value_or(""));
    return names;
  }

 private:
  static void AppendColumns(const PGresult* res, SqlResult* out) {
    int ncols = PQnfields(res);
    for (int c = 0; c < ncols; ++c) out->columns.emplace_back(PQfname(res, c));
  }
  static void AppendRows(const PGresult* res, SqlResult* out, std::size_t max_rows) {
    int nrows = PQntuples(res), ncols = PQnfields(res);
    for (int r = 0; r < nrows && out->rows.size() < max_rows; ++r) {
      SqlRow row;
      row.reserve(ncols);
      for (int c = 0; c < ncols; ++c) {
        if (PQgetisnull(res, r, c)) {
          row.emplace_back(std::nullopt);
        } else {
          row.emplace_back(std::string(PQgetvalue(res, r, c),
                                       static_cast<std::size_t>(PQgetlength(res, r, c))));
        }
      }
      out->rows.push_back(std::move(row));
    }
  }

  tl::unexpected<enrolsync::Error> ConnError(const std::string& what) const {
    return Fail(ErrorCode::kSource,
                Redact(describe_ + ": " + what + ": " + internal::TrimMessage(PQerrorMessage(conn_))));
  }
  tl::unexpected<enrolsync::Error> ResultError(const PGresult* res) const {
    const char* state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
    const char* primary = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
    std::string msg = primary ? primary : internal::TrimMessage(PQresultErrorMessage(res));
    std::string code = state ? state : "";
    // 42P01 undefined_table, 42703 undefined_column, 3F000 invalid_schema_name.
    ErrorCode ec = (code == "42P01" || code == "42703" || code == "3F000") ? ErrorCode::kNotFound
                                                                           : ErrorCode::kSource;
    if (!code.empty()) msg += " (SQLSTATE " + code + ")";
    return Fail(ec, Redact(describe_ + ": " + msg));
  }

  PGconn* conn_;
  std::string describe_;
};

}  // namespace

std::string DescribePostgresql(const std::string& conninfo) {
  std::map<std::string, std::string> opts;
  std::string err;
  if (!ParseConninfo(conninfo, &opts, &err)) return "postgresql (unparsable conninfo)";
  return DescribeOptions(opts);
}

Result<std::unique_ptr<SqlConnection>> OpenPostgresql(const std::string& conninfo,
                                                      const std::string& password) {
  RegisterSecret(password);
  std::map<std::string, std::string> opts;
  std::string err;
  if (!ParseConninfo(conninfo, &opts, &err)) {
    // libpq's parse errors quote the offending keyword, not the values.
    return Fail(ErrorCode::kConfig, Redact("postgresql connection string is invalid: " + err));
  }
  if (auto it = opts.find("password"); it != opts.end()) RegisterSecret(it->second);
  std::string describe = DescribeOptions(opts);

  // Keywords are processed in order and later ones win: defaults first, then
  // the user's conninfo (expanded from "dbname"), then the password.
  std::vector<const char*> keys = {"connect_timeout", "client_encoding",
                                   "fallback_application_name", "dbname"};
  std::vector<const char*> values = {"10", "UTF8", "enrolsync", conninfo.c_str()};
  if (!password.empty()) {
    keys.push_back("password");
    values.push_back(password.c_str());
  }
  keys.push_back(nullptr);
  values.push_back(nullptr);
  PGconn* conn = PQconnectdbParams(keys.data(), values.data(), /*expand_dbname=*/1);
  if (conn == nullptr) return Fail(ErrorCode::kSource, describe + ": out of memory");
  if (PQstatus(conn) != CONNECTION_OK) {
    std::string msg = internal::TrimMessage(PQerrorMessage(conn));
    bool needs_password = PQconnectionNeedsPassword(conn);
    PQfinish(conn);
    if (needs_password) msg += " (no password was given: set the source password)";
    return Fail(ErrorCode::kSource, Redact(describe + ": cannot connect: " + msg));
  }
  // Read everything as UTF-8 whatever the server's default is.
  PgResultPtr res(PQexec(conn, "SET client_encoding TO 'UTF8'"));
  if (!res || PQresultStatus(res.get()) != PGRES_COMMAND_OK) {
    std::string msg = internal::TrimMessage(PQerrorMessage(conn));
    PQfinish(conn);
    return Fail(ErrorCode::kSource, Redact(describe + ": cannot set client_encoding: " + msg));
  }
  return std::unique_ptr<SqlConnection>(std::make_unique<PgConnection>(conn, describe));
}

}  // namespace enrolsync::sources
