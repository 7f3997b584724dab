#include "sources/odbc/odbc_driver.h"

#include <sql.h>
#include <sqlext.h>

#include <cstring>

#include "sources/sql_util.h"
#include "util/secrets.h"
#include "util/strings.h"

namespace enrolsync::sources {
namespace {

constexpr SQLLEN kChunk = 32768;  // SQLGetData buffer; long values take several calls

struct OdbcEntry {
  std::string key, value;  // value without braces
  bool has_value = true;    // false for a bare word without '='
  std::string raw;          // the entry as written, for messages
};

// Splits "A=1;B={x;y}}z};C=3" into entries, honouring {braced} values.
std::vector<OdbcEntry> ParseConnectionString(const std::string& cs) {
  std::vector<OdbcEntry> out;
  std::size_t i = 0, n = cs.size();
  while (i < n) {
    while (i < n && (cs[i] == ';' || cs[i] == ' ')) ++i;
    if (i >= n) break;
    std::size_t eq = cs.find('=', i);
    std::size_t semi = cs.find(';', i);
    if (eq == std::string::npos || (semi != std::string::npos && semi < eq)) {
      // A bare word without '=': keep it as a key.
      std::size_t end = semi == std::string::npos ? n : semi;
      out.push_back({cs.substr(i, end - i), "", false, cs.substr(i, end - i)});
      i = end;
      continue;
    }
    OdbcEntry e;
    std::size_t entry_start = i;
    e.key = Trim(cs.substr(i, eq - i));
    i = eq + 1;
    if (i < n && cs[i] == '{') {
      ++i;
      while (i < n) {
        if (cs[i] == '}') {
          if (i + 1 < n && cs[i + 1] == '}') {
            e.value += '}';
            i += 2;
            continue;
          }
          ++i;
          break;
        }
        e.value += cs[i++];
      }
      while (i < n && cs[i] != ';') ++i;
    } else {
      std::size_t end = cs.find(';', i);
      if (end == std::string::npos) end = n;
      e.value = cs.substr(i, end - i);
      i = end;
    }
    e.raw = Trim(cs.substr(entry_start, i - entry_start));
    out.push_back(std::move(e));
  }
  return out;
}

bool IsPasswordKey(const std::string& key) { return IEquals(key, "PWD") || IEquals(key, "PASSWORD"); }

std::string Braced(const std::string& value) {
  std::string out = "{";
  for (char c : value) {
    out += c;
    if (c == '}') out += '}';
  }
  return out + "}";
}

// Every diagnostic record of `handle`, "[SQLSTATE] message; ...".
std::string Diagnostics(SQLSMALLINT type, SQLHANDLE handle, std::string* first_state) {
  std::string out;
  for (SQLSMALLINT rec = 1; rec <= 10; ++rec) {
    SQLCHAR state[6] = {0};
    SQLINTEGER native = 0;
    SQLCHAR msg[2048] = {0};
    SQLSMALLINT len = 0;
    SQLRETURN rc = SQLGetDiagRec(type, handle, rec, state, &native, msg, sizeof msg, &len);
    if (!SQL_SUCCEEDED(rc)) break;
    if (rec == 1 && first_state) *first_state = reinterpret_cast<char*>(state);
    if (!out.empty()) out += "; ";
    out += "[" + std::string(reinterpret_cast<char*>(state)) + "] " +
           internal::TrimMessage(reinterpret_cast<char*>(msg));
  }
  return out.empty() ? "no diagnostic from the ODBC driver" : out;
}

bool LooksLikeMissingObject(const std::string& state, const std::string& diag) {
  if (state == "42S02" || state == "42S22" || state == "42P01" || state == "42703") return true;
  std::string lower = ToLower(diag);
  for (const char* needle : {"no such table", "no such column", "does not exist",
                             "invalid object name", "invalid column name", "doesn't exist"}) {
    if (lower.find(needle) != std::string::npos) return true;
  }
  return false;
}

class Statement {
 public:
  explicit Statement(SQLHDBC dbc) {
    if (!SQL_SUCCEEDED(SQLAllocHandle(SQL_HANDLE_STMT, dbc, &stmt_))) stmt_ = SQL_NULL_HSTMT;
  }
  ~Statement() {
    if (stmt_ != SQL_NULL_HSTMT) {
      SQLFreeStmt(stmt_, SQL_CLOSE);
      SQLFreeHandle(SQL_HANDLE_STMT, stmt_);
    }
  }
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;
  SQLHSTMT get() const { return stmt_; }

 private:
  SQLHSTMT stmt_ = SQL_NULL_HSTMT;
};

class OdbcConnection final : public SqlConnection {
 public:
  OdbcConnection(SQLHENV env, SQLHDBC dbc, std::string describe, std::string quote)
      : env_(env), dbc_(dbc), describe_(std::move(describe)), quote_(std::move(quote)) {}
  ~OdbcConnection() override {
    SQLDisconnect(dbc_);
    SQLFreeHandle(SQL_HANDLE_DBC, dbc_);
    SQLFreeHandle(SQL_HANDLE_ENV, env_);
  }

  std::string BackendName() const override { return "odbc"; }
  std::string QuoteIdentifier(std::string_view name) const override {
    return internal::QuoteParts(name, quote_);
  }
  std::string Placeholder(int) const override { return "?"; }

  Result<SqlResult> QueryFirst(std::string_view sql_view, const std::vector<SqlValue>& params,
                               std::size_t max_rows) override {
    Statement stmt(dbc_);
    if (stmt.get() == SQL_NULL_HSTMT) return Error(SQL_HANDLE_DBC, dbc_, "cannot allocate a statement");
    SQLHSTMT h = stmt.get();
    // Buffers must stay put until SQLExecDirect returns.
    std::vector<SQLLEN> lengths(params.size());
    static char empty[1] = {0};
    for (std::size_t i = 0; i < params.size(); ++i) {
      const auto& p = params[i];
      lengths[i] = p ? static_cast<SQLLEN>(p->size()) : SQL_NULL_DATA;
      SQLULEN size = p ? std::max<SQLULEN>(p->size(), 1) : 1;
      SQLSMALLINT sql_type = size > 4000 ? SQL_LONGVARCHAR : SQL_VARCHAR;
      SQLPOINTER data = p ? const_cast<char*>(p->data()) : empty;
      SQLRETURN rc = SQLBindParameter(h, static_cast<SQLUSMALLINT>(i + 1), SQL_PARAM_INPUT,
                                      SQL_C_CHAR, sql_type, size, 0, data,
                                      p ? lengths[i] : 0, &lengths[i]);
      if (!SQL_SUCCEEDED(rc)) {
        return Error(SQL_HANDLE_STMT, h, "cannot bind parameter " + std::to_string(i + 1));
      }
    }
    std::string sql(sql_view);
    SQLRETURN rc = SQLExecDirect(h, reinterpret_cast<SQLCHAR*>(sql.data()),
                                 static_cast<SQLINTEGER>(sql.size()));
    if (rc == SQL_NO_DATA) return SqlResult{};
    if (!SQL_SUCCEEDED(rc)) return Error(SQL_HANDLE_STMT, h, "query failed");

    SqlResult out;
    SQLSMALLINT ncols = 0;
    if (!SQL_SUCCEEDED(SQLNumResultCols(h, &ncols))) {
      return Error(SQL_HANDLE_STMT, h, "cannot count result columns");
    }
    for (SQLSMALLINT c = 1; c <= ncols; ++c) {
      SQLCHAR name[1024] = {0};
      SQLSMALLINT name_len = 0, type = 0, digits = 0, nullable = 0;
      SQLULEN size = 0;
      rc = SQLDescribeCol(h, c, name, sizeof name, &name_len, &type, &size, &digits, &nullable);
      if (!SQL_SUCCEEDED(rc)) return Error(SQL_HANDLE_STMT, h, "cannot describe result column");
      out.columns.emplace_back(reinterpret_cast<char*>(name));
    }
    if (ncols == 0) return out;

    std::vector<char> buf(kChunk);
    while (out.rows.size() < max_rows) {
      rc = SQLFetch(h);
      if (rc == SQL_NO_DATA) break;
      if (!SQL_SUCCEEDED(rc)) return Error(SQL_HANDLE_STMT, h, "cannot fetch a row");
      SqlRow row;
      row.reserve(ncols);
      for (SQLUSMALLINT c = 1; c <= static_cast<SQLUSMALLINT>(ncols); ++c) {
        SqlValue value;
        for (;;) {
          SQLLEN ind = 0;
          rc = SQLGetData(h, c, SQL_C_CHAR, buf.data(), kChunk, &ind);
          if (rc == SQL_NO_DATA) break;  // every chunk already read
          if (!SQL_SUCCEEDED(rc)) {
            return Error(SQL_HANDLE_STMT, h,
                         "cannot read column \"" + out.columns[c - 1] + "\"");
          }
          if (ind == SQL_NULL_DATA) break;  // value stays nullopt
          if (!value) value.emplace();
          bool more = rc == SQL_SUCCESS_WITH_INFO &&
                      (ind == SQL_NO_TOTAL || ind >= kChunk);
          if (more) {
            // Truncated: the buffer holds a NUL-terminated chunk (drivers may
            // stop short of kChunk - 1 to keep multi-byte characters whole).
            value->append(buf.data(), strnlen(buf.data(), kChunk - 1));
            continue;
          }
          value->append(buf.data(), static_cast<std::size_t>(ind));
          break;
        }
        row.push_back(std::move(value));
      }
      out.rows.push_back(std::move(row));
    }
    return out;
  }

  Result<std::vector<std::string>> Columns(std::string_view table) override {
    // Works on every driver (SQLColumns patterns differ in case handling and
    // treat '_' as a wildcard); nothing is read.
    auto r = Query("SELECT * FROM " + QuoteIdentifier(table) + " WHERE 1=0", {});
    if (!r) {
      if (r.error().code == ErrorCode::kNotFound) {
        std::string detail = r.error().message;
        if (detail.rfind(describe_ + ": ", 0) == 0) detail.erase(0, describe_.size() + 2);
        return Fail(ErrorCode::kNotFound,
                    "table \"" + std::string(table) + "\" not found (" + detail + ")");
      }
      return Fail(r.error());
    }
    return r->columns;
  }

 private:
  tl::unexpected<enrolsync::Error> Error(SQLSMALLINT type, SQLHANDLE handle,
                                         const std::string& what) const {
    std::string state;
    std::string diag = Diagnostics(type, handle, &state);
    ErrorCode code = LooksLikeMissingObject(state, diag) ? ErrorCode::kNotFound : ErrorCode::kSource;
    return Fail(code, Redact(describe_ + ": " + what + ": " + diag));
  }

  SQLHENV env_;
  SQLHDBC dbc_;
  std::string describe_;
  std::string quote_;
};

}  // namespace

std::string StripOdbcPassword(const std::string& connection_string) {
  std::string out;
  for (const auto& e : ParseConnectionString(connection_string)) {
    if (IsPasswordKey(e.key)) continue;
    if (!out.empty()) out += ';';
    out += e.raw;
  }
  return out;
}

Result<std::unique_ptr<SqlConnection>> OpenOdbc(const std::string& connection_string,
                                                const std::string& password) {
  RegisterSecret(password);
  std::string full;
  for (const auto& e : ParseConnectionString(connection_string)) {
    if (IsPasswordKey(e.key)) RegisterSecret(e.value);
  }
  std::string describe = "odbc " + StripOdbcPassword(connection_string);
  full = connection_string;
  if (!password.empty()) {
    while (!full.empty() && (full.back() == ' ' || full.back() == ';')) full.pop_back();
    full += ";PWD=" + Braced(password);
  }

  SQLHENV env = SQL_NULL_HENV;
  if (!SQL_SUCCEEDED(SQLAllocHandle(SQL_HANDLE_ENV, SQL_NULL_HANDLE, &env))) {
    return Fail(ErrorCode::kSource, describe + ": cannot allocate an ODBC environment");
  }
  SQLSetEnvAttr(env, SQL_ATTR_ODBC_VERSION, reinterpret_cast<SQLPOINTER>(SQL_OV_ODBC3), 0);
  SQLHDBC dbc = SQL_NULL_HDBC;
  if (!SQL_SUCCEEDED(SQLAllocHandle(SQL_HANDLE_DBC, env, &dbc))) {
    std::string diag = Diagnostics(SQL_HANDLE_ENV, env, nullptr);
    SQLFreeHandle(SQL_HANDLE_ENV, env);
    return Fail(ErrorCode::kSource, describe + ": cannot allocate an ODBC connection: " + diag);
  }
  SQLSetConnectAttr(dbc, SQL_ATTR_LOGIN_TIMEOUT, reinterpret_cast<SQLPOINTER>(10), 0);
  SQLSetConnectAttr(dbc, SQL_ATTR_CONNECTION_TIMEOUT, reinterpret_cast<SQLPOINTER>(10), 0);
  SQLCHAR out_cs[2048];
  SQLSMALLINT out_len = 0;
  SQLRETURN rc = SQLDriverConnect(dbc, nullptr, reinterpret_cast<SQLCHAR*>(full.data()),
                                  static_cast<SQLSMALLINT>(full.size()), out_cs, sizeof out_cs,
                                  &out_len, SQL_DRIVER_NOPROMPT);
  std::memset(out_cs, 0, sizeof out_cs);  // may echo PWD
  std::fill(full.begin(), full.end(), '\0');
  if (!SQL_SUCCEEDED(rc)) {
    std::string diag = Diagnostics(SQL_HANDLE_DBC, dbc, nullptr);
    SQLFreeHandle(SQL_HANDLE_DBC, dbc);
    SQLFreeHandle(SQL_HANDLE_ENV, env);
    return Fail(ErrorCode::kSource, Redact(describe + ": cannot connect: " + diag));
  }
  // Ask the driver how it quotes names (" on most, ` on MySQL, " " = none).
  char quote[8] = {0};
  SQLSMALLINT quote_len = 0;
  std::string q = "\"";
  if (SQL_SUCCEEDED(SQLGetInfo(dbc, SQL_IDENTIFIER_QUOTE_CHAR, quote, sizeof quote, &quote_len))) {
    q = quote;
    if (q == " ") q.clear();
  }
  SQLSetConnectAttr(dbc, SQL_ATTR_ACCESS_MODE, reinterpret_cast<SQLPOINTER>(SQL_MODE_READ_ONLY), 0);
  return std::unique_ptr<SqlConnection>(
      std::make_unique<OdbcConnection>(env, dbc, describe, q));
}

}  // namespace enrolsync::sources
