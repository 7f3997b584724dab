// Many sites from one daemon: `enrolsync daemon --config-dir DIR` and
// `enrolsync status --config-dir DIR`. Every *.toml in DIR, sorted by name,
// is one site, named after its file without ".toml"; each keeps its own
// state_dir (ledger, run lock, history), schedule and log, as its config says.
//
// Design: one thread per site, each running the single-site loop
// (ops/daemon.h RunSite) with its own log sink bound to it (log/log.h). A
// single scheduler over every site's next times would run one site's job at
// a time: a site whose Moodle is slow or unreachable (a run can wait out
// timeouts and retries for minutes) would delay every other site's runs and
// turn their occurrences into "missed" ones. Threads keep the sites
// independent with no new scheduling code, the runs' stop flag and run lock
// work unchanged, and a site's log lines stay on the thread that binds its
// sink. The cost is one mostly sleeping thread per site; runs of different
// sites may overlap, which only their Moodles and sources see.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "config/config.h"
#include "util/result.h"

namespace enrolsync::ops {

struct DaemonOptions;

struct SiteFile {
  std::string name;  // the file name without ".toml"
  std::string path;
  Result<config::Config> config;  // the loaded config, or why this site cannot run
};

// Every *.toml in `dir`, sorted by name, each loaded (and, with `for_daemon`,
// checked to have a runnable [schedule]). A state_dir already used by an
// earlier file, or listed in `claimed` (state_dir -> site name: the sites
// running now) for another site, is an error for the later site naming both
// files. Fails only when the folder cannot be read or holds no *.toml.
Result<std::vector<SiteFile>> ReadSites(const std::string& dir, bool for_daemon,
                                        const std::map<std::string, std::string>& claimed = {});

// The canonical form of a state_dir, as ReadSites compares them.
std::string StateDirKey(const std::string& state_dir);

// `daemon --config-dir`: runs every site until SIGTERM/SIGINT (exit 0);
// SIGHUP re-reads the folder (new files start, removed ones stop after their
// run in flight, the others reload); SIGUSR1 reopens every log. Exit 78 when
// no site has a usable config at start.
int RunSites(const DaemonOptions& options);

}  // namespace enrolsync::ops
