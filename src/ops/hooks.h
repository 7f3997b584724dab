// Post-sync hooks: commands run after a job, argv form only (no shell), with
// a timeout, their output captured for the log, and the run's id and counts
// passed in the environment.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "util/result.h"

namespace enrolsync::ops {

struct Hook {
  std::string after;                  // job name: "full", "users", "sync" (a manual sync)
  std::vector<std::string> command;   // argv; command[0] is a path or a name looked up in PATH
  std::chrono::seconds timeout{120};
};

struct HookResult {
  std::string command;    // for messages: argv joined by spaces
  int exit_code = -1;     // -1 when killed or not started
  bool timed_out = false;
  bool started = false;
  std::string output;     // stdout and stderr together (capped at 64 KiB)
  std::string error;      // why it could not start, or "timed out after 120 s"
  bool ok() const { return started && !timed_out && exit_code == 0; }
};

// Runs `hook` with `env` added to the environment. Blocks until the command
// exits or the timeout passes; on timeout the whole process group gets
// SIGTERM, then SIGKILL after 5 s. Never throws.
HookResult RunHook(const Hook& hook, const std::map<std::string, std::string>& env);

// Parses "120s", "2m", "1h" or a bare number of seconds.
Result<std::chrono::seconds> ParseDuration(const std::string& text);

}  // namespace enrolsync::ops
