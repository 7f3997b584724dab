// The config loader (config/config.h): LoadConfig on any bytes. LoadConfig
// reads a file (toml::parse_file, then paths relative to its folder), so
// each input is written to enrolsync.toml in a private temporary folder that
// also holds the secret files the seeds name (moodle.token, ldap.password).
// *_env keys see a fixed environment. For a config that loads, the expected
// enrolment runs of the next two days are computed as a run would.
// Properties: a failure always says why; a loaded config has at least the
// standard roles and a state_dir.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <optional>
#include <string>

#include "config/config.h"
#include "fuzz_check.h"
#include "util/secrets.h"

namespace {

std::string g_dir;
std::string g_file;
bool g_verbose = false;  // FUZZ_VERBOSE=1: print why each input was refused

void Write(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  const char* tmp = std::getenv("TMPDIR");
  std::string templ = std::string(tmp && *tmp ? tmp : "/tmp") + "/enrolsync-config-fuzz-XXXXXX";
  if (!mkdtemp(templ.data())) {
    std::perror("mkdtemp");
    std::abort();
  }
  g_dir = templ;
  g_verbose = std::getenv("FUZZ_VERBOSE") != nullptr;
  g_file = g_dir + "/enrolsync.toml";
  Write(g_dir + "/moodle.token", "0123456789abcdef0123456789abcdef\n");
  Write(g_dir + "/ldap.password", "directory-secret\n");
  std::atexit([] {
    std::remove((g_dir + "/moodle.token").c_str());
    std::remove((g_dir + "/ldap.password").c_str());
    std::remove(g_file.c_str());
    rmdir(g_dir.c_str());
  });
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size > 64 * 1024) return 0;
  Write(g_file, std::string(reinterpret_cast<const char*>(data), size));
  auto env = [](const std::string& name) -> std::optional<std::string> {
    if (name == "ENROLSYNC_MOODLE_TOKEN") return std::string("fedcba9876543210fedcba9876543210");
    if (name == "ENROLSYNC_EMPTY") return std::string();
    if (name.rfind("ENROLSYNC_", 0) == 0) return std::string("secret-from-environment");
    return std::nullopt;
  };
  auto cfg = enrolsync::config::LoadConfig(g_file, env);
  // LoadConfig registers the secrets it reads, and the registry keeps every
  // registration: forget them, or it grows with every input.
  enrolsync::ClearSecretsForTesting();
  if (!cfg) {
    FUZZ_CHECK(!cfg.error().message.empty());
    if (g_verbose) std::fprintf(stderr, "refused: %s\n", cfg.error().message.c_str());
    return 0;
  }
  if (g_verbose) std::fprintf(stderr, "loaded\n");
  FUZZ_CHECK(cfg->roles.size() >= 8);
  FUZZ_CHECK(!cfg->state_dir.empty());
  const long long now = 1774740000;  // 2026-03-28 23:20 UTC, before a DST change
  auto runs = enrolsync::config::ExpectedEnrolmentRuns(*cfg, now, now + 2 * 86400);
  long long last = now;
  for (long long t : runs) {
    FUZZ_CHECK(t > last);
    last = t;
  }
  return 0;
}
