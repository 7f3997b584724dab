// `enrolsync daemon`: runs the [schedule] jobs on their cron times.
//   users: the [users] sync only;  full: users, then courses and enrolments.
// One job at a time; a manual `sync` meanwhile is refused by the run lock (and
// vice versa). SIGTERM/SIGINT: no new batch or job starts, the run in flight
// is recorded, the daemon exits 0. SIGHUP: reload the config (a broken file
// is logged and the old config kept) and reopen the log. SIGUSR1: reopen the
// log (logrotate's postrotate).
//
// With --config-dir, ops/sites.h runs one RunSite loop per site.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <string>

#include "config/config.h"
#include "util/result.h"

namespace enrolsync {
class LogSink;
}

namespace enrolsync::ops {

struct DaemonOptions {
  std::string config_path;
  std::string config_dir;  // `daemon --config-dir`: every *.toml in it is a site (ops/sites.h)
  std::string log_format;  // "" = from config
  std::string run_now;     // job to run once at start ("" = none)
  bool log_to_stderr = false;  // foreground: copy log lines to stderr
};

// Returns the process exit code (0 after a graceful stop; 78 for a broken
// config at start).
int RunDaemon(const DaemonOptions& options);

// How the owner of one site's loop talks to it (from another thread, or a
// signal handler for the atomics).
struct SiteControl {
  const std::atomic<bool>* stop = nullptr;  // SIGTERM: the run in flight stops (recorded); the loop returns
  std::atomic<bool> wake{false};            // leave the scheduler's sleep to look at the flags
  std::atomic<bool> reload{false};          // call `reload` and use its config
  std::atomic<bool> retire{false};          // return after the run in flight (a site's file was removed)
  std::atomic<bool> done{false};            // set by RunSite when it returns
  // A fresh config for `reload`: its error is logged and the running config kept.
  std::function<Result<config::Config>()> load;
  // The site's own log sink (multi-site); null = the process-wide log (InitLog).
  std::shared_ptr<LogSink> sink;
  std::string site;  // the site's name in its log lines ("" = none)
};

// Checks that `cfg` can be run by the daemon ([schedule] has jobs, valid cron).
Status CheckDaemonConfig(const config::Config& cfg);

// One site's daemon, on the calling thread: sets up its log, runs
// options.run_now once, then its schedule until *ctl.stop or ctl.retire;
// reloads on ctl.reload. `cfg` must have passed CheckDaemonConfig. Logs
// "daemon started"/"daemon stopped" (or "site stopped" when retired).
void RunSite(const DaemonOptions& options, config::Config cfg, SiteControl& ctl);

}  // namespace enrolsync::ops
