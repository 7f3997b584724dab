// Test helpers for code that works in local time: set TZ for one scope, and
// read "2026-03-29 01:00[:30]" as UTC. Tests only.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <string>

#include <gtest/gtest.h>

namespace enrolsync::schedule::testing {

// Sets TZ for one test and restores the previous value afterwards.
class ScopedTz {
 public:
  explicit ScopedTz(const char* tz) {
    if (const char* old = std::getenv("TZ")) {
      had_ = true;
      old_ = old;
    }
    ::setenv("TZ", tz, 1);
    ::tzset();
  }
  ~ScopedTz() {
    if (had_) {
      ::setenv("TZ", old_.c_str(), 1);
    } else {
      ::unsetenv("TZ");
    }
    ::tzset();
  }
  ScopedTz(const ScopedTz&) = delete;
  ScopedTz& operator=(const ScopedTz&) = delete;

 private:
  bool had_ = false;
  std::string old_;
};

// "2026-03-29 01:00" or "2026-03-29 01:00:30", read as UTC.
inline std::time_t Utc(const char* text) {
  std::tm t{};
  int sec = 0;
  int n = std::sscanf(text, "%d-%d-%d %d:%d:%d", &t.tm_year, &t.tm_mon, &t.tm_mday, &t.tm_hour, &t.tm_min, &sec);
  EXPECT_GE(n, 5) << text;
  t.tm_year -= 1900;
  t.tm_mon -= 1;
  t.tm_sec = sec;
  return ::timegm(&t);
}

}  // namespace enrolsync::schedule::testing
