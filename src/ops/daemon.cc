#include "ops/daemon.h"

#include <signal.h>

#include <atomic>
#include <ctime>

#include "config/config.h"
#include "log/log.h"
#include "ops/stop.h"
#include "schedule/scheduler.h"
#include "sync/runner.h"
#include "util/secrets.h"

namespace enrolsync::ops {
namespace {

std::atomic<bool> g_wake{false};    // term or reload: leave the scheduler loop
std::atomic<bool> g_reload{false};
const std::atomic<bool>* g_term = nullptr;  // ops/stop.h: SIGTERM, SIGINT

bool Terminating() { return g_term && g_term->load(); }

void OnHup(int) {
  g_reload.store(true);
  g_wake.store(true);
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

Status SetupLog(const config::Config& cfg, const DaemonOptions& o) {
  LogOptions lo;
  lo.file = cfg.log.file;
  lo.format = o.log_format.empty() ? cfg.log.format : o.log_format;
  lo.level = cfg.log.level;
  lo.also_stderr = o.log_to_stderr && !cfg.log.file.empty();
  return InitLog(lo);
}

void RunJob(const config::Config& cfg, const std::string& job, const std::string& trigger) {
  ProcessReopen();
  sync::RunOptions opt;
  opt.apply = true;
  opt.trigger = trigger;
  opt.job = job;
  opt.users = true;
  opt.enrolments = job == "full";
  opt.stop = g_term;
  sync::RunReport r = sync::RunOnce(cfg, opt);
  if (r.exit_code != sync::kExitOk)
    LogWarn("job " + job + " ended with exit code " + std::to_string(r.exit_code) +
            (r.error.empty() ? "" : ": " + r.error));
}

}  // namespace

int RunDaemon(const DaemonOptions& o) {
  auto cfg = config::LoadConfig(o.config_path);
  if (!cfg) {
    LogError(cfg.error().message);
    return 78;
  }
  if (auto st = SetupLog(*cfg, o); !st) {
    LogError(st.error().message);
    return 78;
  }
  auto jobs = Jobs(*cfg);
  if (!jobs) {
    LogError(jobs.error().message);
    return 78;
  }
  g_term = InstallStopSignals(&g_wake);
  Install(SIGHUP, OnHup);
  LogInfo("daemon started, config " + cfg->path);

  if (!o.run_now.empty() && !Terminating()) RunJob(*cfg, o.run_now, "startup");

  schedule::RealClock clock;
  while (!Terminating()) {
    schedule::Scheduler sched(*jobs, clock);
    for (const auto& [job, when] : sched.Upcoming(static_cast<int>(jobs->size())))
      LogInfo("next " + job + " run: " + LocalTime(when));
    sched.OnMissed([](const std::string& job, std::time_t first, std::time_t next) {
      LogWarn("job " + job + " missed its " + LocalTime(first) + " run (the previous run was still going); next at " +
              LocalTime(next));
    });
    sched.Run([&](const std::string& job, std::time_t) { RunJob(*cfg, job, "schedule"); }, g_wake);
    if (Terminating()) break;
    if (g_reload.exchange(false)) {
      g_wake.store(false);
      auto fresh = config::LoadConfig(o.config_path);
      if (!fresh) {
        LogError("reload failed, keeping the running config: " + fresh.error().message);
        continue;
      }
      auto fresh_jobs = Jobs(*fresh);
      if (!fresh_jobs) {
        LogError("reload failed, keeping the running config: " + fresh_jobs.error().message);
        continue;
      }
      cfg = std::move(fresh);
      jobs = std::move(fresh_jobs);
      if (auto st = SetupLog(*cfg, o); !st) LogError(st.error().message);
      LogInfo("config reloaded");
    } else {
      g_wake.store(false);
    }
  }
  LogInfo("daemon stopped");
  return 0;
}

}  // namespace enrolsync::ops
