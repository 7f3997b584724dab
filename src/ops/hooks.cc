#include "ops/hooks.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <limits>

#include "util/secrets.h"
#include "util/strings.h"

extern char** environ;

namespace enrolsync::ops {
namespace {

using Clock = std::chrono::steady_clock;
constexpr std::size_t kMaxOutput = 64 * 1024;

}  // namespace

Result<std::chrono::seconds> ParseDuration(const std::string& text) {
  std::string t = Trim(text);
  long long mult = 1;
  if (!t.empty() && (t.back() == 's' || t.back() == 'm' || t.back() == 'h')) {
    mult = t.back() == 's' ? 1 : t.back() == 'm' ? 60 : 3600;
    t.pop_back();
  }
  long long n = 0;
  if (!ParseInt64(t, &n) || n <= 0)
    return Fail(ErrorCode::kInvalidArgument, "duration \"" + text + "\" must look like 120s, 2m or 1h");
  if (n > std::numeric_limits<long long>::max() / mult)  // n * mult would overflow
    return Fail(ErrorCode::kInvalidArgument, "duration \"" + text + "\" is too long");
  return std::chrono::seconds(n * mult);
}

HookResult RunHook(const Hook& hook, const std::map<std::string, std::string>& env) {
  HookResult r;
  r.command = Join(hook.command, " ");
  if (hook.command.empty()) {
    r.error = "empty command";
    return r;
  }
  int pipefd[2];
  if (::pipe2(pipefd, O_CLOEXEC) != 0) {
    r.error = std::string("pipe: ") + std::strerror(errno);
    return r;
  }
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&fa, pipefd[1], 1);
  posix_spawn_file_actions_adddup2(&fa, pipefd[1], 2);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  posix_spawnattr_setpgroup(&attr, 0);
  sigset_t none, all;
  sigemptyset(&none);
  sigfillset(&all);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setsigdefault(&attr, &all);

  std::vector<std::string> env_strings;
  for (char** e = environ; *e; ++e) {
    std::string kv(*e);
    auto eq = kv.find('=');
    if (eq != std::string::npos && env.count(kv.substr(0, eq))) continue;
    env_strings.push_back(std::move(kv));
  }
  for (const auto& [k, v] : env) env_strings.push_back(k + "=" + v);
  std::vector<char*> envp, argv;
  for (auto& s : env_strings) envp.push_back(s.data());
  envp.push_back(nullptr);
  std::vector<std::string> args = hook.command;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);

  pid_t pid = -1;
  int rc = ::posix_spawnp(&pid, argv[0], &fa, &attr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&attr);
  ::close(pipefd[1]);
  if (rc != 0) {
    ::close(pipefd[0]);
    r.error = "cannot start " + hook.command[0] + ": " + std::strerror(rc);
    return r;
  }
  r.started = true;

  auto deadline = Clock::now() + hook.timeout;
  bool term_sent = false;
  Clock::time_point kill_at{};
  bool eof = false;
  char buf[4096];
  int status = 0;
  bool reaped = false;
  while (!reaped) {
    auto now = Clock::now();
    if (!term_sent && now >= deadline) {
      ::kill(-pid, SIGTERM);
      term_sent = true;
      r.timed_out = true;
      kill_at = now + std::chrono::seconds(5);
    } else if (term_sent && now >= kill_at) {
      ::kill(-pid, SIGKILL);
      kill_at = now + std::chrono::hours(1);
    }
    if (!eof) {
      pollfd p{pipefd[0], POLLIN, 0};
      int n = ::poll(&p, 1, 100);
      if (n > 0) {
        ssize_t got = ::read(pipefd[0], buf, sizeof buf);
        if (got > 0) {
          if (r.output.size() < kMaxOutput) r.output.append(buf, static_cast<std::size_t>(got));
        } else if (got == 0) {
          eof = true;
        }
      }
    } else {
      ::usleep(20000);
    }
    pid_t w = ::waitpid(pid, &status, WNOHANG);
    if (w == pid) reaped = true;
  }
  // Drain what is left (children of the hook may still hold the pipe: stop at EOF or 1 s).
  auto drain_until = Clock::now() + std::chrono::seconds(1);
  while (!eof && Clock::now() < drain_until) {
    pollfd p{pipefd[0], POLLIN, 0};
    if (::poll(&p, 1, 50) <= 0) continue;
    ssize_t got = ::read(pipefd[0], buf, sizeof buf);
    if (got <= 0) break;
    if (r.output.size() < kMaxOutput) r.output.append(buf, static_cast<std::size_t>(got));
  }
  ::close(pipefd[0]);
  if (r.timed_out) {
    r.error = "timed out after " + std::to_string(hook.timeout.count()) + " s";
    ::kill(-pid, SIGKILL);
  } else if (WIFEXITED(status)) {
    r.exit_code = WEXITSTATUS(status);
    if (r.exit_code != 0) r.error = "exited with status " + std::to_string(r.exit_code);
  } else if (WIFSIGNALED(status)) {
    r.error = std::string("killed by signal ") + std::to_string(WTERMSIG(status));
  }
  r.output = Redact(r.output);
  return r;
}

}  // namespace enrolsync::ops
