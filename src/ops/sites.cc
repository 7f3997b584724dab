#include "ops/sites.h"

#include <signal.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <memory>
#include <mutex>
#include <system_error>
#include <thread>

#include "log/log.h"
#include "ops/daemon.h"
#include "ops/stop.h"

namespace enrolsync::ops {
namespace fs = std::filesystem;

namespace {

std::atomic<bool> g_hup{false};

void OnHup(int) {
  g_hup.store(true);
  ReopenLog();
}

struct Site {
  std::string name;
  std::string path;
  std::string state_dir;  // StateDirKey of the running config
  SiteControl ctl;
  std::mutex mu;
  Result<config::Config> pending;  // handed to ctl.load on SIGHUP
  std::thread thread;
};

std::string Join(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& s : v) out += (out.empty() ? "" : ", ") + s;
  return out;
}

}  // namespace

std::string StateDirKey(const std::string& state_dir) {
  std::error_code ec;
  fs::path p = fs::weakly_canonical(fs::absolute(state_dir, ec), ec);
  if (ec) p = fs::path(state_dir).lexically_normal();
  std::string key = p.string();
  while (key.size() > 1 && key.back() == '/') key.pop_back();
  return key;
}

Result<std::vector<SiteFile>> ReadSites(const std::string& dir, bool for_daemon,
                                        const std::map<std::string, std::string>& claimed) {
  std::error_code ec;
  std::vector<fs::path> files;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    const fs::path& p = it->path();
    if (p.extension() != ".toml" || p.stem().empty() || p.filename().string()[0] == '.') continue;
    std::error_code fec;
    if (!fs::is_regular_file(p, fec)) continue;  // follows symlinks
    files.push_back(p);
  }
  if (ec) return Fail(ErrorCode::kConfig, "cannot read the config folder " + dir + ": " + ec.message());
  if (files.empty()) return Fail(ErrorCode::kConfig, dir + ": no *.toml site configs in the folder");
  std::sort(files.begin(), files.end());

  std::vector<SiteFile> sites;
  std::map<std::string, std::pair<std::string, std::string>> used;  // state_dir -> (site, file)
  for (const auto& [key, site] : claimed) used[key] = {site, (fs::path(dir) / (site + ".toml")).string()};
  for (const auto& p : files) {
    SiteFile s;
    s.name = p.stem().string();
    s.path = p.string();
    s.config = config::LoadConfig(s.path);
    if (s.config && for_daemon) {
      if (auto st = CheckDaemonConfig(*s.config); !st) s.config = Fail(st.error());
    }
    if (s.config) {
      std::string key = StateDirKey(s.config->state_dir);
      auto it = used.find(key);
      if (it != used.end() && it->second.first != s.name) {
        s.config = Fail(ErrorCode::kConfig, s.path + ": state_dir " + key + " is also the state_dir of " +
                                                it->second.second + "; each site needs a state_dir of its own");
      } else {
        used[key] = {s.name, s.path};
      }
    }
    sites.push_back(std::move(s));
  }
  return sites;
}

int RunSites(const DaemonOptions& o) {
  auto files = ReadSites(o.config_dir, /*for_daemon=*/true);
  if (!files) {
    LogError(files.error().message);
    return 78;
  }
  const std::atomic<bool>* term = InstallStopSignals();
  {
    struct sigaction sa{};
    sa.sa_handler = OnHup;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    sigaction(SIGHUP, &sa, nullptr);
  }

  std::map<std::string, std::unique_ptr<Site>> sites;
  auto start = [&](SiteFile& f) -> bool {
    LogOptions lo;  // until RunSite sets up the site's own log: stderr, naming the site
    lo.site = f.name;
    auto sink = OpenLogSink(lo);
    if (!sink) {
      LogError("site " + f.name + " not started: " + sink.error().message);
      return false;
    }
    auto s = std::make_unique<Site>();
    s->name = f.name;
    s->path = f.path;
    s->state_dir = StateDirKey(f.config->state_dir);
    s->ctl.stop = term;
    s->ctl.sink = std::move(*sink);
    s->ctl.site = f.name;
    Site* raw = s.get();
    s->ctl.load = [raw]() -> Result<config::Config> {
      std::lock_guard<std::mutex> lock(raw->mu);
      return raw->pending;
    };
    s->thread = std::thread([&o, raw, cfg = std::move(*f.config)]() mutable { RunSite(o, std::move(cfg), raw->ctl); });
    sites[f.name] = std::move(s);
    return true;
  };

  std::vector<std::string> started, skipped;
  for (auto& f : *files) {
    if (!f.config) {
      LogError("site " + f.name + " skipped: " + f.config.error().message);
      skipped.push_back(f.name);
    } else if (start(f)) {
      started.push_back(f.name);
    }
  }
  if (sites.empty()) {
    LogError("no site in " + o.config_dir + " has a usable config; the daemon exits");
    return 78;
  }
  LogInfo("daemon started, " + std::to_string(sites.size()) + " site(s) from " + o.config_dir + ": " + Join(started) +
          (skipped.empty() ? "" : "; skipped: " + Join(skipped)));

  using namespace std::chrono_literals;
  while (!term->load()) {
    std::this_thread::sleep_for(200ms);
    ProcessReopenAll();  // SIGUSR1/SIGHUP: idle sites release their rotated files too
    // Sites whose file was removed, once their run in flight is over.
    for (auto it = sites.begin(); it != sites.end();) {
      if (it->second->ctl.retire.load() && it->second->ctl.done.load()) {
        it->second->thread.join();
        LogInfo("site " + it->first + " stopped (its config file was removed)");
        it = sites.erase(it);
      } else {
        ++it;
      }
    }
    if (term->load() || !g_hup.exchange(false)) continue;

    std::map<std::string, std::string> claimed;
    for (const auto& [name, s] : sites)
      if (!s->ctl.retire.load()) claimed[s->state_dir] = name;
    auto fresh = ReadSites(o.config_dir, /*for_daemon=*/true, claimed);
    if (!fresh) {
      LogError("reload: " + fresh.error().message + "; every site keeps running as it was");
      continue;
    }
    std::vector<std::string> present;
    for (auto& f : *fresh) {
      present.push_back(f.name);
      auto it = sites.find(f.name);
      if (it != sites.end() && !it->second->ctl.retire.load()) {
        Site& s = *it->second;
        {
          std::lock_guard<std::mutex> lock(s.mu);
          if (f.config) s.state_dir = StateDirKey(f.config->state_dir);
          s.pending = f.config;  // an error is logged in the site's own log, its config kept
        }
        s.ctl.reload.store(true);
        s.ctl.wake.store(true);
      } else if (it != sites.end()) {
        LogWarn("site " + f.name + " is still finishing its run after its file was removed; it starts at the next SIGHUP");
      } else if (!f.config) {
        LogError("site " + f.name + " skipped: " + f.config.error().message);
      } else if (start(f)) {
        LogInfo("site " + f.name + " started (" + f.path + ")");
      }
    }
    for (auto& [name, s] : sites) {
      if (std::find(present.begin(), present.end(), name) != present.end() || s->ctl.retire.load()) continue;
      LogInfo("site " + name + ": its config file is gone; it stops after its run in flight");
      s->ctl.retire.store(true);
      s->ctl.wake.store(true);
    }
  }

  // SIGTERM/SIGINT: every site's run in flight stops (its stop flag is
  // `term`) and is recorded; wait for them all.
  for (auto& [name, s] : sites) s->ctl.wake.store(true);
  for (auto& [name, s] : sites) s->thread.join();
  LogInfo("daemon stopped");
  return 0;
}

}  // namespace enrolsync::ops
