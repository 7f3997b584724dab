// The cron parser (schedule/cron.h): ParseCron on any text; for what it
// accepts, Describe, and NextRun in Europe/London (DST both ways) from a
// start time taken from the input.
// Properties: a parsed expression re-parses from its own `expr` to the same
// schedule; NextRun is strictly after its start; Describe says something.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <string>
#include <string_view>

#include "fuzz_check.h"
#include "schedule/cron.h"

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  setenv("TZ", "Europe/London", 1);
  tzset();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  // Optional prefix: 4 bytes choosing the start time within 2024-2031.
  std::time_t start = 1767225600;  // 2026-01-01 00:00 UTC
  std::string_view text(reinterpret_cast<const char*>(data), size);
  if (size >= 5 && data[0] == 0xFF) {
    std::uint32_t off = 0;
    std::memcpy(&off, data + 1, 4);
    start = 1704067200 + static_cast<std::time_t>(off % (8u * 366u * 86400u));
    text.remove_prefix(5);
  }
  if (text.size() > 512) return 0;  // config values are one line

  auto s = enrolsync::schedule::ParseCron(text);
  if (!s) {
    FUZZ_CHECK(!s.error().message.empty());
    return 0;
  }
  auto again = enrolsync::schedule::ParseCron(s->expr);
  FUZZ_CHECK(again);
  FUZZ_CHECK(*again == *s);
  FUZZ_CHECK(!enrolsync::schedule::Describe(*s).empty());

  std::time_t t = start;
  for (int i = 0; i < 3; ++i) {
    auto next = enrolsync::schedule::NextRun(*s, t);
    if (!next) break;
    FUZZ_CHECK(*next > t);
    t = *next;
  }
  return 0;
}
