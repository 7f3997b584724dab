// The errors a Moodle web-service call answers with (HTTP 200, JSON body
// {"exception", "errorcode", "message"}), as recorded with debugging off.
#pragma once

#include <exception>
#include <string>

namespace enrolsync::sandbox {

struct WsError {
  std::string exception;  // PHP class, e.g. core\exception\moodle_exception
  std::string errorcode;
  std::string message;
};

// Thrown inside function handlers; the dispatcher rolls the call back and
// answers with `error`.
struct WsException : std::exception {
  explicit WsException(WsError e) : error(std::move(e)) {}
  const char* what() const noexcept override { return error.errorcode.c_str(); }
  WsError error;
};

// invalid_parameter_exception: every validation failure looks the same.
inline WsError InvalidParameter() {
  return {"core\\exception\\invalid_parameter_exception", "invalidparameter",
          "Invalid parameter value detected"};
}
// dml_missing_record_exception from a MUST_EXIST lookup (debug off).
inline WsError MissingRecord() {
  return {"dml_missing_record_exception", "invalidrecordunknown",
          "Can't find data record in database."};
}
// moodle_exception with a language string; without one Moodle shows
// "error/<code>" as the message.
inline WsError MoodleError(std::string code, std::string message = "") {
  if (message.empty()) message = "error/" + code;
  return {"core\\exception\\moodle_exception", std::move(code), std::move(message)};
}
inline WsError CodingError(const std::string& detail) {
  return {"core\\exception\\coding_exception", "codingerror",
          "Coding error detected, it must be fixed by a programmer: " + detail};
}

[[noreturn]] inline void Throw(WsError e) { throw WsException(std::move(e)); }

}  // namespace enrolsync::sandbox
