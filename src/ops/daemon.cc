#include "ops/daemon.h"

#include <signal.h>

#include <atomic>
#include <ctime>

#include "config/config.h"
#include "log/log.h"
#include "ops/sites.h"
#include "ops/stop.h"
#include "schedule/scheduler.h"
#include "sync/runner.h"
#include "util/secrets.h"

namespace enrolsync::ops {
namespace {

// The single-site daemon's control, for the SIGHUP handler.
std::atomic<SiteControl*> g_single{nullptr};
static_assert(std::atomic<SiteControl*>::is_always_lock_free, "read in a signal handler");

void OnHup(int) {
  if (SiteControl* c = g_single.load()) {
    c->reload.store(true);
    c->wake.store(true);
  }
  ReopenLog();
}

void Install(int signo, void (*fn)(int)) {
  struct sigaction sa{};
  sa.sa_handler = fn;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  sigaction(signo, &sa, nullptr);
}

std::string LocalTime(std::time_t t) {
  std::tm tm{};
  localtime_r(&t, &tm);
  char buf[64];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M %Z", &tm);
  return buf;
}

Result<std::vector<schedule::Job>> Jobs(const config::Config& cfg) {
  std::vector<schedule::Job> jobs;
  for (const auto& [name, expr] : cfg.schedule.jobs) {
    auto c = schedule::ParseCron(expr);
    if (!c) return Fail(c.error());
    jobs.push_back({name, *c});
  }
  if (jobs.empty()) return Fail(ErrorCode::kConfig, cfg.path + ": [schedule] has no jobs (users = \"…\", full = \"…\")");
  return jobs;
}

Status SetupLog(const config::Config& cfg, const DaemonOptions& o, SiteControl& ctl) {
  LogOptions lo;
  lo.file = cfg.log.file;
  lo.format = o.log_format.empty() ? cfg.log.format : o.log_format;
  lo.level = cfg.log.level;
  lo.also_stderr = o.log_to_stderr && !cfg.log.file.empty();
  // A site's lines that reach stderr (no log file, or --foreground) mix
  // there with the other sites': they name their site.
  if (ctl.sink && (cfg.log.file.empty() || lo.also_stderr)) lo.site = ctl.site;
  return ctl.sink ? ConfigureLogSink(*ctl.sink, lo) : InitLog(lo);
}

bool Stopping(const SiteControl& ctl) { return (ctl.stop && ctl.stop->load()) || ctl.retire.load(); }

void RunJob(const config::Config& cfg, const std::string& job, const std::string& trigger, const SiteControl& ctl) {
  ProcessReopen();
  sync::RunOptions opt;
  opt.apply = true;
  opt.trigger = trigger;
  opt.job = job;
  opt.users = true;
  opt.enrolments = job == "full";
  opt.stop = ctl.stop;
  sync::RunReport r = sync::RunOnce(cfg, opt);
  if (r.exit_code != sync::kExitOk)
    LogWarn("job " + job + " ended with exit code " + std::to_string(r.exit_code) +
            (r.error.empty() ? "" : ": " + r.error));
}

}  // namespace

Status CheckDaemonConfig(const config::Config& cfg) {
  auto jobs = Jobs(cfg);
  if (!jobs) return Fail(jobs.error());
  return Ok();
}

void RunSite(const DaemonOptions& o, config::Config cfg, SiteControl& ctl) {
  std::unique_ptr<ScopedLogSink> bound;
  if (ctl.sink) bound = std::make_unique<ScopedLogSink>(ctl.sink);
  if (auto st = SetupLog(cfg, o, ctl); !st) LogError(st.error().message);
  auto jobs = Jobs(cfg);  // checked by the caller
  LogInfo("daemon started, config " + cfg.path);

  if (!o.run_now.empty() && !Stopping(ctl)) RunJob(cfg, o.run_now, "startup", ctl);

  schedule::RealClock clock;
  while (jobs && !Stopping(ctl)) {
    schedule::Scheduler sched(*jobs, clock);
    for (const auto& [job, when] : sched.Upcoming(static_cast<int>(jobs->size())))
      LogInfo("next " + job + " run: " + LocalTime(when));
    sched.OnMissed([](const std::string& job, std::time_t first, std::time_t next) {
      LogWarn("job " + job + " missed its " + LocalTime(first) + " run (the previous run was still going); next at " +
              LocalTime(next));
    });
    sched.Run([&](const std::string& job, std::time_t) { RunJob(cfg, job, "schedule", ctl); }, ctl.wake);
    ctl.wake.store(false);
    if (Stopping(ctl)) break;
    ProcessReopen();
    if (ctl.reload.exchange(false) && ctl.load) {
      auto fresh = ctl.load();
      if (!fresh) {
        LogError("reload failed, keeping the running config: " + fresh.error().message);
        continue;
      }
      auto fresh_jobs = Jobs(*fresh);
      if (!fresh_jobs) {
        LogError("reload failed, keeping the running config: " + fresh_jobs.error().message);
        continue;
      }
      cfg = std::move(*fresh);
      jobs = std::move(fresh_jobs);
      if (auto st = SetupLog(cfg, o, ctl); !st) LogError(st.error().message);
      LogInfo("config reloaded");
    }
  }
  LogInfo(ctl.retire.load() && !(ctl.stop && ctl.stop->load()) ? "site stopped: its config file was removed"
                                                                : "daemon stopped");
  ctl.done.store(true);
}

int RunDaemon(const DaemonOptions& o) {
  if (!o.config_dir.empty()) return RunSites(o);
  auto cfg = config::LoadConfig(o.config_path);
  if (!cfg) {
    LogError(cfg.error().message);
    return 78;
  }
  static SiteControl ctl;  // reached from the SIGHUP handler
  if (auto st = SetupLog(*cfg, o, ctl); !st) {
    LogError(st.error().message);
    return 78;
  }
  if (auto st = CheckDaemonConfig(*cfg); !st) {
    LogError(st.error().message);
    return 78;
  }
  ctl.load = [path = o.config_path] { return config::LoadConfig(path); };
  ctl.stop = InstallStopSignals(&ctl.wake);
  g_single.store(&ctl);
  Install(SIGHUP, OnHup);
  RunSite(o, std::move(*cfg), ctl);
  return 0;
}

}  // namespace enrolsync::ops
