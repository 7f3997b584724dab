// Process helpers shared by the throwaway servers of the test harness
// (PostgreSQL, slapd): random secrets, free loopback ports, fork/exec with
// logs, and the tail of a log for error messages.
#pragma once

#include <signal.h>
#include <sys/types.h>

#include <string>
#include <utility>
#include <vector>

#include "util/result.h"

namespace enrolsync::testsupport {

std::string RandomHex(int n);
// The last `max` bytes of a file ("..." in front when cut).
std::string ReadTail(const std::string& path, std::size_t max = 3000);
// A TCP port on 127.0.0.1 that was free a moment ago (0 on failure).
int FreePort();

struct SpawnOptions {
  std::string log;          // stdout and stderr are appended here
  std::string cwd;          // "" = inherit
  std::string input_file;   // stdin; "" = /dev/null
  int death_signal = SIGTERM;  // sent to the child when the spawning thread dies
  bool as_other_user = false;  // run through setpriv as uid/gid (root only)
  uid_t uid = 0;
  gid_t gid = 0;
  // Set in the child's environment before exec (added to what it inherits).
  std::vector<std::pair<std::string, std::string>> env;
  // The child leads a process group of its own, so that kill(-pid, sig)
  // also reaches what it forks (php -S with PHP_CLI_SERVER_WORKERS leaves
  // its workers running when only the master is killed).
  bool own_process_group = false;
};

// fork + exec `argv` (looked up in PATH). Returns the pid, or -1.
pid_t Spawn(const std::vector<std::string>& argv, const SpawnOptions& options);
// Spawns and waits; a non-zero exit is an error quoting the log's tail.
Status RunToCompletion(const std::vector<std::string>& argv, const SpawnOptions& options);

}  // namespace enrolsync::testsupport
