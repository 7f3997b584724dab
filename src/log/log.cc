// A small hand-written logger rather than spdlog: spdlog's file sinks write
// through a stdio FILE* buffer (a line can straddle two fwrite flushes, i.e.
// two files across a rotation) and have no async-signal-safe "reopen by path"
// hook. Here one log call = one buffer = one write(2) on an O_APPEND fd under
// a mutex, and the reopen is a flag the signal handler sets.
#include "log/log.h"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <ctime>
#include <mutex>
#include <vector>

#include <nlohmann/json.hpp>

#include "util/secrets.h"
#include "util/strings.h"

namespace enrolsync {
namespace {

enum class Format { kText, kJson };

// Bumped by the signal handler; each sink reopens when it sees a generation
// it has not handled yet. Lock-free so the increment is async-signal-safe.
std::atomic<unsigned> g_reopen_generation{0};
static_assert(std::atomic<unsigned>::is_always_lock_free);

}  // namespace

class LogSink {
 public:
  std::mutex mu;
  std::string path;  // "" = no file
  int fd = -1;
  Format format = Format::kText;
  bool to_stderr = true;
  std::string site;
  std::string run_id;
  // Read without the mutex so filtered-out lines cost nothing.
  std::atomic<int> min_level{static_cast<int>(Level::kInfo)};
  unsigned seen_generation = g_reopen_generation.load();
  bool reopen_pending = false;
  std::chrono::steady_clock::time_point last_failed_reopen{};
  bool reopen_failed = false;
  bool write_failed = false;

  LogSink();
  ~LogSink();
};

namespace {

// Every sink alive, for ProcessReopenAll().
std::mutex& RegistryMu() {
  static std::mutex* mu = new std::mutex;
  return *mu;
}
std::vector<LogSink*>& Registry() {
  static auto* v = new std::vector<LogSink*>;
  return *v;
}

LogSink& Default() {
  static LogSink* s = new LogSink;  // never destroyed: usable from atexit paths
  return *s;
}

thread_local LogSink* t_sink = nullptr;

LogSink& S() { return t_sink ? *t_sink : Default(); }

int OpenLogFile(const std::string& path) {
  int fd;
  do {
    fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY, 0640);
  } while (fd < 0 && errno == EINTR);
  return fd;
}

// Writes all of `data`; whole-line writes on O_APPEND are one write(2) for
// any sane size, the loop only covers signals and short writes.
bool WriteAll(int fd, std::string_view data) {
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    data.remove_prefix(static_cast<std::size_t>(n));
  }
  return true;
}

void StderrNote(std::string_view text) {
  std::string line = "enrolsync: log: " + Redact(text) + "\n";
  WriteAll(STDERR_FILENO, line);
}

// "2026-11-25T03:00:01.123+00:00" in local time.
std::string Timestamp() {
  auto now = std::chrono::system_clock::now();
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count();
  std::time_t secs = static_cast<std::time_t>(ms / 1000);
  int millis = static_cast<int>(ms % 1000);
  if (millis < 0) {
    millis += 1000;
    --secs;
  }
  std::tm tm{};
  localtime_r(&secs, &tm);
  char buf[64];
  std::size_t n = std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  long off = tm.tm_gmtoff;
  char sign = off < 0 ? '-' : '+';
  if (off < 0) off = -off;
  std::snprintf(buf + n, sizeof buf - n, ".%03d%c%02ld:%02ld", millis, sign, off / 3600,
                (off % 3600) / 60);
  return buf;
}

const char* TextLevel(Level level) {
  switch (level) {
    case Level::kDebug: return "DEBUG";
    case Level::kInfo: return "INFO ";
    case Level::kWarn: return "WARN ";
    case Level::kError: return "ERROR";
  }
  return "?    ";
}

const char* JsonLevel(Level level) {
  switch (level) {
    case Level::kDebug: return "debug";
    case Level::kInfo: return "info";
    case Level::kWarn: return "warn";
    case Level::kError: return "error";
  }
  return "unknown";
}

// Called with the mutex held. On failure the reopen stays pending.
void ReopenLocked(LogSink& s, bool forced) {
  if (s.path.empty()) {
    s.reopen_failed = false;
    s.reopen_pending = false;
    return;
  }
  auto now = std::chrono::steady_clock::now();
  if (!forced && s.reopen_failed && now - s.last_failed_reopen < std::chrono::seconds(5)) {
    s.reopen_pending = true;  // try again later
    return;
  }
  int fd = OpenLogFile(s.path);
  if (fd < 0) {
    int err = errno;
    if (!s.reopen_failed) {
      StderrNote("cannot reopen log file " + s.path + ": " + std::strerror(err) +
                 " (still writing to the previous file)");
    }
    s.reopen_failed = true;
    s.last_failed_reopen = now;
    s.reopen_pending = true;
    return;
  }
  if (s.fd >= 0) ::close(s.fd);
  s.fd = fd;
  s.reopen_failed = false;
  s.reopen_pending = false;
}

// Whether a reopen was asked for (a new signal, or an earlier failure).
bool ReopenWantedLocked(LogSink& s) {
  unsigned gen = g_reopen_generation.load(std::memory_order_relaxed);
  if (gen != s.seen_generation) {
    s.seen_generation = gen;
    s.reopen_pending = true;
  }
  return s.reopen_pending;
}

void MaybeReopenLocked(LogSink& s) {
  if (ReopenWantedLocked(s)) ReopenLocked(s, /*forced=*/false);
}

extern "C" void ReopenSignalHandler(int) { g_reopen_generation.fetch_add(1); }

struct Parsed {
  Level level;
  Format format;
  int fd;
};

Result<Parsed> Parse(const LogOptions& options) {
  auto level = ParseLogLevel(options.level);
  if (!level) return Fail(level.error());
  std::string format_name = ToLower(Trim(options.format));
  Format format;
  if (format_name == "text" || format_name.empty()) {
    format = Format::kText;
  } else if (format_name == "json") {
    format = Format::kJson;
  } else {
    return Fail(ErrorCode::kInvalidArgument,
                "log format \"" + options.format + "\" is not one of text, json");
  }
  int fd = -1;
  if (!options.file.empty()) {
    fd = OpenLogFile(options.file);
    if (fd < 0) {
      int err = errno;
      return Fail(ErrorCode::kIo, "cannot open log file " + options.file + " for appending: " +
                                      std::strerror(err));
    }
  }
  return Parsed{*level, format, fd};
}

void Apply(LogSink& s, const LogOptions& options, const Parsed& p) {
  std::lock_guard<std::mutex> lock(s.mu);
  if (s.fd >= 0) ::close(s.fd);
  s.fd = p.fd;
  s.path = options.file;
  s.format = p.format;
  s.site = options.site;
  s.to_stderr = options.file.empty() || options.also_stderr;
  s.reopen_failed = false;
  s.reopen_pending = false;
  s.seen_generation = g_reopen_generation.load();
  s.min_level.store(static_cast<int>(p.level));
}

}  // namespace

LogSink::LogSink() {
  std::lock_guard<std::mutex> lock(RegistryMu());
  Registry().push_back(this);
}

LogSink::~LogSink() {
  {
    std::lock_guard<std::mutex> lock(RegistryMu());
    auto& r = Registry();
    r.erase(std::remove(r.begin(), r.end(), this), r.end());
  }
  if (fd >= 0) ::close(fd);
}

Result<Level> ParseLogLevel(std::string_view name) {
  std::string n = ToLower(Trim(name));
  if (n == "debug") return Level::kDebug;
  if (n == "info") return Level::kInfo;
  if (n == "warn" || n == "warning") return Level::kWarn;
  if (n == "error") return Level::kError;
  return Fail(ErrorCode::kInvalidArgument,
              "log level \"" + std::string(name) + "\" is not one of debug, info, warn, error");
}

Status InitLog(const LogOptions& options) {
  auto p = Parse(options);
  if (!p) return Fail(p.error());
  Apply(Default(), options, *p);
  return Ok();
}

Result<std::shared_ptr<LogSink>> OpenLogSink(const LogOptions& options) {
  auto p = Parse(options);
  if (!p) return Fail(p.error());
  auto sink = std::make_shared<LogSink>();
  Apply(*sink, options, *p);
  return sink;
}

Status ConfigureLogSink(LogSink& sink, const LogOptions& options) {
  auto p = Parse(options);
  if (!p) return Fail(p.error());
  Apply(sink, options, *p);
  return Ok();
}

ScopedLogSink::ScopedLogSink(std::shared_ptr<LogSink> sink) : sink_(std::move(sink)), previous_(t_sink) {
  t_sink = sink_.get();
}

ScopedLogSink::~ScopedLogSink() { t_sink = previous_; }

void CloseLog() {
  LogSink& s = Default();
  std::lock_guard<std::mutex> lock(s.mu);
  if (s.fd >= 0) ::close(s.fd);
  s.fd = -1;
  s.path.clear();
  s.format = Format::kText;
  s.to_stderr = true;
  s.site.clear();
  s.reopen_failed = false;
  s.reopen_pending = false;
  s.min_level.store(static_cast<int>(Level::kInfo));
}

void SetRunId(std::string run_id) {
  LogSink& s = S();
  std::lock_guard<std::mutex> lock(s.mu);
  s.run_id = std::move(run_id);
}

bool LogEnabled(Level level) {
  return static_cast<int>(level) >= S().min_level.load(std::memory_order_relaxed);
}

void Log(Level level, std::string_view message) {
  if (!LogEnabled(level)) return;
  std::string msg = Redact(message);
  // A trailing newline does not make an empty extra line.
  while (!msg.empty() && (msg.back() == '\n' || msg.back() == '\r')) msg.pop_back();

  LogSink& s = S();
  std::lock_guard<std::mutex> lock(s.mu);
  MaybeReopenLocked(s);

  std::string ts = Timestamp();
  std::string out;
  if (s.format == Format::kJson) {
    nlohmann::json j = {{"ts", ts}, {"level", JsonLevel(level)}, {"run", Redact(s.run_id)},
                        {"msg", msg}};
    if (!s.site.empty()) j["site"] = s.site;
    // Invalid UTF-8 becomes U+FFFD instead of throwing.
    out = j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    out += '\n';
  } else {
    std::string prefix = ts + " " + TextLevel(level) + " ";
    if (!s.site.empty()) prefix += "[site " + s.site + "] ";
    if (!s.run_id.empty()) prefix += "[run " + Redact(s.run_id) + "] ";
    std::string_view rest = msg;
    out.reserve(msg.size() + prefix.size() + 8);
    while (true) {
      std::size_t nl = rest.find('\n');
      std::string_view line = rest.substr(0, nl);
      if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
      out += prefix;
      out += line;
      out += '\n';
      if (nl == std::string_view::npos) break;
      rest.remove_prefix(nl + 1);
    }
  }

  if (s.fd >= 0) {
    if (WriteAll(s.fd, out)) {
      s.write_failed = false;
    } else {
      // Nothing sensible to do but tell stderr (the journal, under systemd),
      // once per failure streak, and keep the line there.
      int err = errno;
      if (!s.write_failed) {
        StderrNote("cannot write to log file " + s.path + ": " + std::strerror(err));
      }
      s.write_failed = true;
      if (!s.to_stderr) WriteAll(STDERR_FILENO, out);
    }
  }
  if (s.to_stderr) WriteAll(STDERR_FILENO, out);
}

void ReopenLog() { g_reopen_generation.fetch_add(1); }

void ProcessReopen() {
  LogSink& s = S();
  std::lock_guard<std::mutex> lock(s.mu);
  if (ReopenWantedLocked(s)) ReopenLocked(s, /*forced=*/true);
}

void ProcessReopenAll() {
  std::lock_guard<std::mutex> registry(RegistryMu());
  for (LogSink* s : Registry()) {
    std::lock_guard<std::mutex> lock(s->mu);
    if (ReopenWantedLocked(*s)) ReopenLocked(*s, /*forced=*/false);
  }
}

void InstallReopenSignal(int signo) {
  struct sigaction sa;
  std::memset(&sa, 0, sizeof sa);
  sa.sa_handler = ReopenSignalHandler;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  if (::sigaction(signo, &sa, nullptr) != 0) {
    StderrNote("cannot install the log-reopen handler for signal " + std::to_string(signo) + ": " +
               std::strerror(errno));
  }
}

}  // namespace enrolsync
