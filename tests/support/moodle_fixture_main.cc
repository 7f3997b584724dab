// The ctest fixture `realmoodle`: installs the real Moodle once per build
// (EnsureMoodleInstalled), so the realmoodle tests that run after it only
// copy the snapshot. Without a distribution it exits 0 with the reason
// (the tests then skip), or 1 under CI=true.
#include <cstdio>
#include <string>

#include "support/moodle_server.h"

int main() {
  using namespace enrolsync::testsupport;
  auto dist = FindMoodleDistribution();
  if (!dist) {
    std::printf("realmoodle: %s\n", dist.error().message.c_str());
    return RealMoodleRequired() ? 1 : 0;
  }
  std::string log;
  auto ok = EnsureMoodleInstalled(MoodleFixtureDir(), &log);
  std::fputs(log.c_str(), stdout);
  if (!ok) {
    std::printf("realmoodle: install failed: %s\n", ok.error().message.c_str());
    return 1;
  }
  std::printf("realmoodle: fixture ready in %s\n", MoodleFixtureDir().c_str());
  return 0;
}
