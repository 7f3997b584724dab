// Log lines to stderr and/or a log file that logrotate may rotate under us.
//
// Every line is built in memory and handed to the kernel with whole-line
// write(2) calls on an O_APPEND descriptor while a mutex is held, so a line is
// never split or interleaved, and never lost across a rotation: logrotate
// renames the file (we keep appending to the renamed inode), then its
// postrotate sends SIGUSR1; the handler only sets a flag, and the next Log()
// (or ProcessReopen()) opens a fresh file by path.
//
// Every message passes through Redact() (util/secrets.h) before it is written.
// Thread-safe. Not callable from a signal handler (except ReopenLog()).
//
// One process-wide sink (InitLog) serves every command. The multi-site daemon
// (ops/sites.h) gives each site a LogSink of its own and binds it to that
// site's thread (ScopedLogSink): every function below then acts on the bound
// sink — Log, LogEnabled, SetRunId, ProcessReopen. A run logs only from the
// thread that runs it (the Moodle client's worker threads never log; progress
// is reported on the calling thread), so a site's lines all reach its file.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "util/result.h"

namespace enrolsync {

enum class Level { kDebug = 0, kInfo = 1, kWarn = 2, kError = 3 };

struct LogOptions {
  std::string file;              // "" = stderr only
  std::string format = "text";   // "text" | "json"
  std::string level = "info";    // "debug" | "info" | "warn" (or "warning") | "error"
  bool also_stderr = false;      // with a file: copy every line to stderr too
  std::string site{};            // "" = none; else every line names it ("[site a] ", "site":"a")
};

// A log destination of its own (file, format, level, run id). Opaque.
class LogSink;

// A new sink configured as InitLog would configure the process-wide one
// (same errors).
Result<std::shared_ptr<LogSink>> OpenLogSink(const LogOptions& options);

// Reconfigures `sink` (a reloaded config); on error it stays as it was.
Status ConfigureLogSink(LogSink& sink, const LogOptions& options);

// While alive, the calling thread logs to `sink` instead of the process-wide
// sink (nesting restores the previous one). The guard keeps the sink alive.
class ScopedLogSink {
 public:
  explicit ScopedLogSink(std::shared_ptr<LogSink> sink);
  ~ScopedLogSink();
  ScopedLogSink(const ScopedLogSink&) = delete;
  ScopedLogSink& operator=(const ScopedLogSink&) = delete;

 private:
  std::shared_ptr<LogSink> sink_;
  LogSink* previous_;
};

// "debug", "info", "warn"/"warning", "error" (ASCII case-insensitive).
Result<Level> ParseLogLevel(std::string_view name);

// (Re)configures logging. Opens `file` for appending (created 0640 if
// missing; the parent directory is never created). On error (bad format,
// level, unopenable file: kInvalidArgument / kIo, message names the value or
// path) the previous configuration stays in effect. Before the first
// successful InitLog, lines go to stderr as text at level info.
Status InitLog(const LogOptions& options);

// Closes the log file; later lines go to stderr only (text, info). Tests, shutdown.
void CloseLog();

// The run id included in every line of the calling thread's sink ("r42", a short random id); "" outside runs.
void SetRunId(std::string run_id);

// Whether a line at `level` would be written (skip expensive formatting).
bool LogEnabled(Level level);

// Writes `message` (redacted). Text: one line per line of the message, each
// "2026-11-25T03:00:01.123+00:00 INFO  [run r42] message". JSON: one object
// {"ts":…,"level":"info","run":"r42","msg":…} per message, on one line.
void Log(Level level, std::string_view message);
inline void LogDebug(std::string_view m) { Log(Level::kDebug, m); }
inline void LogInfo(std::string_view m) { Log(Level::kInfo, m); }
inline void LogWarn(std::string_view m) { Log(Level::kWarn, m); }
inline void LogError(std::string_view m) { Log(Level::kError, m); }

// Async-signal-safe: only sets an atomic flag asking for the log file to be
// reopened by path. The reopen happens in the next Log() or ProcessReopen().
void ReopenLog();

// Performs a requested reopen now (call it from the daemon's main loop after
// a wake-up, so an idle daemon releases the rotated file promptly). If the
// path cannot be opened, logging continues to the old descriptor, a warning
// goes to stderr, and the reopen stays pending (retried at most every 5 s).
void ProcessReopen();

// ProcessReopen() for every sink alive (the process-wide one and each
// LogSink), from any thread: the multi-site daemon's main loop calls it after
// SIGUSR1 so idle sites release their rotated files promptly.
void ProcessReopenAll();

// Installs a handler for `signo` (SA_RESTART) that calls ReopenLog().
// Install it early in main() of every enrolsync process: the shipped
// logrotate postrotate may `pkill -USR1 -x enrolsync`, and SIGUSR1's default
// action terminates the process.
void InstallReopenSignal(int signo);

}  // namespace enrolsync
