// enrolsync: keeps Moodle in step with a school's MIS. See README.md.
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <iostream>

#include <CLI/CLI.hpp>

#include "cli/adopt.h"
#include "cli/check.h"
#include "cli/output.h"
#include "log/log.h"
#include "ops/daemon.h"
#include "ops/status.h"
#include "ops/stop.h"
#include "config/config.h"
#include "sync/runner.h"
#include "util/secrets.h"

#ifndef ENROLSYNC_VERSION
#define ENROLSYNC_VERSION "0.0.0"
#endif

namespace {

using namespace enrolsync;

const char* kExitCodes =
    "Exit codes:\n"
    "  0   success (with --detailed-exitcode: no changes)\n"
    "  1   error: nothing was changed that should not have been; see the message\n"
    "  2   --detailed-exitcode: the plan has changes\n"
    "  3   removal guard: more removals than [safety] max_removals; nothing applied\n"
    "  4   partial: some changes failed (listed), or SIGTERM/SIGINT stopped the run (recorded)\n"
    "  64  usage: bad command line\n"
    "  78  config: the config file is broken\n";

struct Flags {
  std::string config;
  std::string config_dir;
  bool json = false;
  bool verbose = false;
  bool dry_run = false;
  bool detailed = false;
  bool verify = false;
  long long allow_removals = -1;
  bool first_run = false;
  std::string debug;
  std::string log_format;
  std::string run_now;
  bool foreground = false;
  int count = 5;
  int limit = 20;
};

class ProgressLine {
 public:
  explicit ProgressLine(bool on) : on_(on) {}
  ~ProgressLine() {
    if (shown_) std::fputs("\r\033[K", stderr);
  }
  void operator()(std::size_t done, std::size_t total) {
    if (!on_ || total == 0) return;
    std::fprintf(stderr, "\r  applying %zu/%zu (%zu%%)", done, total, done * 100 / total);
    std::fflush(stderr);
    shown_ = true;
  }

 private:
  bool on_;
  bool shown_ = false;
};

int RunPlanOrSync(const config::Config& cfg, const Flags& f, bool apply) {
  const std::string command = apply ? "sync" : "plan";
  sync::RunOptions opt;
  opt.apply = apply && !f.dry_run;
  opt.verify_all = f.verify;
  opt.allow_removals = f.allow_removals;
  opt.first_run = f.first_run;
  bool tty = ::isatty(STDERR_FILENO) && !f.json;
  ProgressLine progress(tty && opt.apply);
  if (opt.apply) opt.progress = [&progress](std::size_t d, std::size_t t) { progress(d, t); };
  // -v with --json: the lines go into the JSON object's "trace" array.
  std::vector<std::string> trace;
  if (apply && f.verbose && !f.json) opt.trace = [](const std::string& line) { std::cout << "  " << line << "\n"; };
  if (apply && f.verbose && f.json) opt.trace = [&trace](const std::string& line) { trace.push_back(line); };

  // SIGTERM (systemctl stop, a shutdown) or Ctrl-C while applying: the
  // batch in flight completes, nothing more is sent, the run is recorded
  // with exit 4 (ops/stop.h, as the daemon does).
  if (opt.apply) opt.stop = ops::InstallStopSignals();
  sync::RunReport r = sync::RunOnce(cfg, opt);
  if (f.json) {
    cli::PrintReportJson(r, command, std::cout, f.verbose && apply ? &trace : nullptr);
  } else if (r.exit_code == sync::kExitError) {
    std::cerr << "enrolsync " << command << ": " << r.error << "\n";
  } else {
    if (!apply || f.dry_run) {
      cli::PrintPlan(r, std::cout, f.debug == "explain");
    } else {
      if (r.users_ran) std::cout << cli::UserSummaryLine(r) << "\n";
      if (!f.verbose && !r.plan.problems.empty()) {
        std::cout << r.plan.problems.size() << " problem rows (run `enrolsync plan` or sync -v to list them)\n";
      }
      std::cout << cli::PlanSummaryLine(r.plan) << "\n";
    }
    if (r.exit_code == sync::kExitRemovalGuard) cli::PrintGuard(r, std::cout);
    if (r.applied) cli::PrintRunSummary(r, std::cout);
    else if (r.stopped) std::cout << cli::StoppedLine(r) << "\n";
    else if (!apply || f.dry_run) {
      std::cout << cli::MoodleCostLine(r) << "; " << r.courses_verified << " courses verified\n";
    }
    for (const auto& w : r.warnings) std::cerr << "warning: " << w << "\n";
  }
  if (r.exit_code == sync::kExitOk && f.detailed && r.plan.HasChanges() && (!apply || f.dry_run))
    return sync::kExitChanges;
  return r.exit_code;
}

}  // namespace

int main(int argc, char** argv) {
  // logrotate's postrotate may SIGUSR1 every enrolsync process: reopen, never die.
  enrolsync::InstallReopenSignal(SIGUSR1);
  CLI::App app{"enrolsync: keeps Moodle's courses and enrolments in step with the school MIS", "enrolsync"};
  app.footer(kExitCodes);
  app.set_version_flag("--version", "enrolsync " ENROLSYNC_VERSION);
  app.require_subcommand(1);
  Flags f;

  auto add_common = [&](CLI::App* sub) {
    sub->add_option("--config,-c", f.config, "the enrolsync.toml file")->required();
    sub->add_flag("--json", f.json, "print one JSON object instead of text");
  };
  app.add_option("--log-format", f.log_format, "log file line format (overrides [log] format)")
      ->check(CLI::IsMember({"text", "json"}));
  auto* check = app.add_subcommand("check", "test the sources, the mappings and the Moodle token; change nothing");
  add_common(check);
  auto* plan = app.add_subcommand("plan", "show what a sync would change; change nothing");
  add_common(plan);
  plan->add_flag("--detailed-exitcode", f.detailed, "exit 0 when there is no change, 2 when there are changes");
  plan->add_flag("--verify", f.verify, "read every managed course's participants from Moodle (slow, finds all drift)");
  plan->add_option("-d", f.debug, "debug mode: 'explain' shows why each change is planned")
      ->check(CLI::IsMember({"explain"}));
  plan->add_option("--allow-removals", f.allow_removals, "approve up to N removals for this run");
  auto* syncc = app.add_subcommand("sync", "plan, then apply the plan to Moodle");
  add_common(syncc);
  syncc->add_flag("-v,--verbose", f.verbose, "print each change as Moodle's enrol_database does");
  syncc->add_flag("-n,--dry-run", f.dry_run, "plan only (same as `plan`)");
  syncc->add_flag("--detailed-exitcode", f.detailed, "with --dry-run: exit 2 when there are changes");
  syncc->add_flag("--verify", f.verify, "read every managed course's participants from Moodle (slow, finds all drift)");
  syncc->add_option("--allow-removals", f.allow_removals, "approve up to N removals for this run");
  syncc->add_flag("--first-run", f.first_run,
                  "this state.db's first sync on a site that already holds the feed's enrolments: leave them to "
                  "whoever made them (see `enrolsync adopt`)");

  auto* adopt = app.add_subcommand(
      "adopt", "rebuild ownership from Moodle after a lost state.db: show it, or record it with --apply");
  add_common(adopt);
  bool adopt_apply = false;
  adopt->add_flag("--apply", adopt_apply, "record the ownership shown (nothing is sent to Moodle)");
  adopt->add_flag("--detailed-exitcode", f.detailed, "without --apply: exit 2 when there is something to record");

  auto* daemon = app.add_subcommand("daemon", "run the [schedule] jobs on their cron times until SIGTERM");
  // Exactly one of --config and --config-dir (checked after parsing).
  auto* daemon_config = daemon->add_option("--config,-c", f.config, "the enrolsync.toml file");
  daemon->add_option("--config-dir", f.config_dir, "a folder of site configs: every *.toml in it is one site")
      ->excludes(daemon_config);
  daemon->add_option("--run-now", f.run_now, "run this job (full | users) once at start")
      ->check(CLI::IsMember({"full", "users"}));
  daemon->add_flag("--foreground", f.foreground, "also copy log lines to stderr");
  auto* sched = app.add_subcommand("schedule", "print the next run times of the [schedule] jobs");
  sched->add_option("--config,-c", f.config, "the enrolsync.toml file")->required();
  sched->add_option("-n,--count", f.count, "runs to show per job");
  auto* status = app.add_subcommand("status", "last runs, next scheduled runs and the last failure");
  auto* status_config = status->add_option("--config,-c", f.config, "the enrolsync.toml file");
  status->add_option("--config-dir", f.config_dir, "a folder of site configs: show every site")
      ->excludes(status_config);
  status->add_flag("--json", f.json, "print one JSON object instead of text");
  auto* history = app.add_subcommand("history", "the recorded runs, newest first");
  add_common(history);
  history->add_option("-n,--limit", f.limit, "how many runs");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    return rc == 0 ? 0 : sync::kExitUsage;
  }

  if ((daemon->parsed() || status->parsed()) && f.config.empty() == f.config_dir.empty()) {
    std::cerr << "enrolsync " << (daemon->parsed() ? "daemon" : "status")
              << ": give exactly one of --config FILE and --config-dir DIR\n";
    return sync::kExitUsage;
  }
  if (status->parsed() && !f.config_dir.empty()) return ops::PrintSitesStatus(f.config_dir, std::cout, f.json);
  if (daemon->parsed()) {
    ops::DaemonOptions o;
    o.config_path = f.config;
    o.config_dir = f.config_dir;
    o.log_format = f.log_format;
    o.run_now = f.run_now;
    o.log_to_stderr = f.foreground;
    return ops::RunDaemon(o);
  }
  auto cfg = config::LoadConfig(f.config);
  if (!cfg) {
    std::cerr << "enrolsync: " << Redact(cfg.error().message) << "\n";
    return sync::kExitConfig;
  }
  if (sched->parsed()) return ops::PrintSchedule(*cfg, std::cout, f.count);
  if (status->parsed()) return ops::PrintStatus(*cfg, std::cout, f.json);
  if (history->parsed()) return ops::PrintHistory(*cfg, std::cout, f.json, f.limit);
  // Runs also write to the [log] file when one is configured; the terminal
  // gets the normal output.
  if (!cfg->log.file.empty()) {
    LogOptions lo;
    lo.file = cfg->log.file;
    lo.format = f.log_format.empty() ? cfg->log.format : f.log_format;
    lo.level = cfg->log.level;
    if (auto st = InitLog(lo); !st) {
      std::cerr << "enrolsync: " << st.error().message << "\n";
      return sync::kExitConfig;
    }
  } else {
    // No log file: the terminal output already says everything the log
    // would, so log lines are discarded rather than doubled on stderr.
    LogOptions quiet;
    quiet.file = "/dev/null";
    (void)InitLog(quiet);
  }
  if (check->parsed()) {
    sync::RunOptions opt;
    return cli::RunCheck(*cfg, std::cout, opt);
  }
  if (adopt->parsed()) {
    sync::RunOptions opt;
    opt.adopt = true;
    opt.apply = adopt_apply;
    sync::RunReport r = sync::RunOnce(*cfg, opt);
    if (f.json) {
      std::cout << cli::AdoptionJson(r, adopt_apply) << "\n";
      return r.exit_code;
    }
    return cli::PrintAdoption(r, adopt_apply, f.detailed, std::cout, std::cerr);
  }
  if (plan->parsed()) return RunPlanOrSync(*cfg, f, false);
  return RunPlanOrSync(*cfg, f, true);
}
