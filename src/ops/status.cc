#include "ops/status.h"

#include <algorithm>
#include <ctime>

#include <nlohmann/json.hpp>

#include "ops/sites.h"
#include "schedule/cron.h"
#include "state/state_db.h"
#include "util/secrets.h"

namespace enrolsync::ops {
namespace {

using nlohmann::json;

std::string Iso(long long t) {
  if (t <= 0) return "";
  std::time_t tt = static_cast<std::time_t>(t);
  std::tm tm{};
  localtime_r(&tt, &tm);
  char buf[64];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S%z", &tm);
  return buf;
}

std::string Short(long long t) {
  std::time_t tt = static_cast<std::time_t>(t);
  std::tm tm{};
  localtime_r(&tt, &tm);
  char buf[64];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S", &tm);
  return buf;
}

json RunJson(const state::RunRecord& r) {
  json j{{"id", r.id},
         {"started", Iso(r.started)},
         {"ended", Iso(r.ended)},
         {"trigger", r.trigger},
         {"command", r.command},
         {"exit_code", r.exit_code}};
  auto report = json::parse(r.summary_json, nullptr, false);
  if (!report.is_discarded()) {
    j["summary"] = report.value("summary", json::object());
    // Older runs keep only a count (StateDb::FinishRun, keep_runs).
    j["problems"] = report.contains("problems") ? report["problems"].size()
                                                : report.value("problems_count", std::size_t{0});
    if (report.contains("error")) j["error"] = report["error"];
    if (report.contains("warnings")) j["warnings"] = report["warnings"];
    if (report.contains("applied")) j["applied"] = report["applied"];
    if (report.contains("users")) j["users"] = report["users"].value("applied", json::object());
  }
  if (r.ended == 0) j["state"] = "running or interrupted";
  return j;
}

// Why a run failed, in one line.
std::string Reason(const json& run) {
  if (run.contains("error")) return run["error"].get<std::string>();
  if (run.contains("warnings") && !run["warnings"].empty()) return run["warnings"][0].get<std::string>();
  switch (run.value("exit_code", -1)) {
    case 3: return "removal guard: more removals than max_removals";
    case 4: return "some changes failed (see the run's report)";
    default: return "exit code " + std::to_string(run.value("exit_code", -1));
  }
}

std::vector<std::pair<std::string, std::time_t>> Next(const config::Config& cfg, int per_job) {
  std::vector<std::pair<std::string, std::time_t>> out;
  std::time_t now = std::time(nullptr);
  for (const auto& [name, expr] : cfg.schedule.jobs) {
    auto c = schedule::ParseCron(expr);
    if (!c) continue;
    std::time_t t = now;
    for (int i = 0; i < per_job; ++i) {
      auto n = schedule::NextRun(*c, t);
      if (!n) break;
      out.emplace_back(name, *n);
      t = *n;
    }
  }
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.second < b.second; });
  return out;
}

}  // namespace

int PrintHistory(const config::Config& cfg, std::ostream& out, bool as_json, int limit) {
  auto db = state::StateDb::Open(cfg.state_dir);
  if (!db) {
    out << "enrolsync: " << db.error().message << "\n";
    return 1;
  }
  auto runs = (*db)->RecentRuns(limit);
  if (!runs) {
    out << "enrolsync: " << runs.error().message << "\n";
    return 1;
  }
  if (as_json) {
    json arr = json::array();
    for (const auto& r : *runs) arr.push_back(RunJson(r));
    out << arr.dump(2) << "\n";
    return 0;
  }
  for (const auto& r : *runs) {
    json j = RunJson(r);
    out << "#" << r.id << "  " << Short(r.started) << "  " << r.trigger << " " << r.command << "  exit "
        << r.exit_code;
    if (j.contains("summary")) {
      const auto& s = j["summary"];
      out << "  create=" << s.value("courses.create", 0) << " enrol=" << s.value("enrolments.enrol", 0)
          << " suspend=" << s.value("enrolments.suspend", 0) << " unenrol=" << s.value("enrolments.unenrol", 0)
          << " problems=" << s.value("problems", 0);
    }
    if (r.exit_code != 0 && r.exit_code != 2) out << "  (" << Reason(j) << ")";
    out << "\n";
  }
  return 0;
}

namespace {

// {"last_runs":…, "next_runs":…, "last_failure":…}, or why the state
// database could not be read.
Result<json> StatusJson(const config::Config& cfg) {
  auto db = state::StateDb::Open(cfg.state_dir);
  if (!db) return Fail(db.error());
  auto runs = (*db)->RecentRuns(200);
  if (!runs) return Fail(runs.error());
  json last = json::array();
  json failure;
  for (std::size_t i = 0; i < runs->size(); ++i) {
    json j = RunJson((*runs)[i]);
    if (i < 10) last.push_back(j);
    int code = (*runs)[i].exit_code;
    if (failure.is_null() && code != 0 && code != 2) {
      failure = j;
      failure["reason"] = Reason(j);
    }
  }
  json next = json::array();
  for (const auto& [job, t] : Next(cfg, 2)) next.push_back(json{{"job", job}, {"at", Iso(t)}});
  return json{{"last_runs", last}, {"next_runs", next}, {"last_failure", failure}};
}

void PrintStatusText(const json& st, std::ostream& out, const std::string& indent) {
  const json& last = st["last_runs"];
  const json& next = st["next_runs"];
  const json& failure = st["last_failure"];
  out << indent << "Last runs:\n";
  if (last.empty()) out << indent << "  (none yet)\n";
  for (const auto& r : last) {
    out << indent << "  #" << r["id"] << "  " << r["started"].get<std::string>() << "  "
        << r["trigger"].get<std::string>() << " " << r["command"].get<std::string>() << "  exit " << r["exit_code"];
    if (r.contains("summary")) {
      const auto& s = r["summary"];
      out << "  enrol=" << s.value("enrolments.enrol", 0) << " suspend=" << s.value("enrolments.suspend", 0)
          << " problems=" << s.value("problems", 0);
    }
    out << "\n";
  }
  out << indent << "Next scheduled runs:\n";
  if (next.empty()) out << indent << "  (no [schedule] in the config)\n";
  for (const auto& n : next)
    out << indent << "  " << n["job"].get<std::string>() << "  " << n["at"].get<std::string>() << "\n";
  out << indent << "Last failure: ";
  if (failure.is_null()) {
    out << "none\n";
  } else {
    out << "#" << failure["id"] << " " << failure["started"].get<std::string>() << " exit " << failure["exit_code"]
        << ": " << failure["reason"].get<std::string>() << "\n";
  }
}

}  // namespace

int PrintStatus(const config::Config& cfg, std::ostream& out, bool as_json) {
  auto st = StatusJson(cfg);
  if (!st) {
    out << "enrolsync: " << st.error().message << "\n";
    return 1;
  }
  if (as_json) {
    out << st->dump(2) << "\n";
    return 0;
  }
  PrintStatusText(*st, out, "");
  return 0;
}

int PrintSitesStatus(const std::string& config_dir, std::ostream& out, bool as_json) {
  auto sites = ReadSites(config_dir, /*for_daemon=*/false);
  if (!sites) {
    out << "enrolsync: " << Redact(sites.error().message) << "\n";
    return 78;
  }
  int rc = 0;
  json all = json::array();
  for (const auto& site : *sites) {
    json j{{"site", site.name}, {"config", site.path}};
    Result<json> st = site.config ? StatusJson(*site.config) : Result<json>(Fail(site.config.error()));
    if (!site.config) {
      j["config_error"] = Redact(site.config.error().message);
      rc = 78;
    } else if (!st) {
      j["error"] = Redact(st.error().message);
      if (rc == 0) rc = 1;
    } else {
      j.update(*st);
    }
    if (as_json) {
      all.push_back(j);
      continue;
    }
    out << "Site " << site.name << " (" << site.path << "):\n";
    if (j.contains("config_error")) out << "  config error: " << j["config_error"].get<std::string>() << "\n";
    else if (j.contains("error")) out << "  enrolsync: " << j["error"].get<std::string>() << "\n";
    else PrintStatusText(j, out, "  ");
  }
  if (as_json) out << json{{"sites", all}}.dump(2) << "\n";
  return rc;
}

int PrintSchedule(const config::Config& cfg, std::ostream& out, int count) {
  if (cfg.schedule.jobs.empty()) {
    out << "no [schedule] in " << cfg.path << "\n";
    return 1;
  }
  for (const auto& [name, expr] : cfg.schedule.jobs) {
    auto c = schedule::ParseCron(expr);
    if (!c) continue;
    out << name << " = \"" << expr << "\" (" << schedule::Describe(*c) << ")\n";
  }
  for (const auto& [job, t] : Next(cfg, count)) out << "  " << Short(t) << "  " << job << "\n";
  return 0;
}

}  // namespace enrolsync::ops
