#include "util/result.h"

namespace enrolsync {

const char* ErrorCodeName(ErrorCode code) {
  switch (code) {
    case ErrorCode::kInvalidArgument: return "invalid argument";
    case ErrorCode::kNotFound: return "not found";
    case ErrorCode::kIo: return "I/O error";
    case ErrorCode::kConfig: return "config error";
    case ErrorCode::kSource: return "source error";
    case ErrorCode::kMoodle: return "Moodle error";
    case ErrorCode::kTransient: return "transient error";
    case ErrorCode::kAuth: return "authentication error";
    case ErrorCode::kInternal: return "internal error";
  }
  return "error";
}

}  // namespace enrolsync
