// Errors as values. Every module boundary returns Result<T> (or Status);
// adapters catch library exceptions and turn them into an Error here.
#pragma once

#include <string>
#include <utility>

#include <tl/expected.hpp>

namespace enrolsync {

// What kind of failure an Error is. Callers branch on this, never on text.
enum class ErrorCode {
  kInvalidArgument,  // bad input given by the caller (config value, row, flag)
  kNotFound,         // a named thing (table, column, file, course) does not exist
  kIo,               // a file or socket could not be read or written
  kConfig,           // the config file is broken
  kSource,           // an MIS source could not be read (SQL error, bad CSV)
  kMoodle,           // Moodle answered with a web-service exception
  kTransient,        // worth retrying: connection reset, HTTP 5xx, timeout
  kAuth,             // token or password rejected
  kInternal,         // a bug in enrolsync
};

const char* ErrorCodeName(ErrorCode code);

// A failure with a message meant for a school IT admin: it names the file,
// row, field and value involved. It never contains a secret.
struct Error {
  ErrorCode code = ErrorCode::kInternal;
  std::string message;
  // For kMoodle: Moodle's "errorcode" and "exception" fields.
  std::string moodle_errorcode;
  std::string moodle_exception;

  // Prefixes context: Error{..., "no such column"}.Wrap("courses table") ->
  // "courses table: no such column".
  Error Wrap(const std::string& context) const {
    Error e = *this;
    e.message = context + ": " + message;
    return e;
  }
};

template <class T>
using Result = tl::expected<T, Error>;
using Status = tl::expected<void, Error>;

inline tl::unexpected<Error> Fail(ErrorCode code, std::string message) {
  return tl::unexpected<Error>(Error{code, std::move(message), {}, {}});
}
inline tl::unexpected<Error> Fail(Error e) { return tl::unexpected<Error>(std::move(e)); }

inline Status Ok() { return {}; }

}  // namespace enrolsync
