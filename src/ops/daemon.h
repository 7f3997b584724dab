// `enrolsync daemon`: runs the [schedule] jobs on their cron times.
//   users: the [users] sync only;  full: users, then courses and enrolments.
// One job at a time; a manual `sync` meanwhile is refused by the run lock (and
// vice versa). SIGTERM/SIGINT: no new batch or job starts, the run in flight
// is recorded, the daemon exits 0. SIGHUP: reload the config (a broken file
// is logged and the old config kept) and reopen the log. SIGUSR1: reopen the
// log (logrotate's postrotate).
#pragma once

#include <string>

namespace enrolsync::ops {

struct DaemonOptions {
  std::string config_path;
  std::string log_format;  // "" = from config
  std::string run_now;     // job to run once at start ("" = none)
  bool log_to_stderr = false;  // foreground: copy log lines to stderr
};

// Returns the process exit code (0 after a graceful stop; 78 for a broken
// config at start).
int RunDaemon(const DaemonOptions& options);

}  // namespace enrolsync::ops
