#include "support/process.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <random>
#include <sstream>

namespace enrolsync::testsupport {

std::string RandomHex(int n) {
  std::random_device rd;
  std::mt19937_64 gen(rd() ^ static_cast<unsigned long long>(
                                  std::chrono::steady_clock::now().time_since_epoch().count()));
  static const char* hex = "0123456789abcdef";
  std::string out;
  for (int i = 0; i < n; ++i) out += hex[gen() % 16];
  return out;
}

std::string ReadTail(const std::string& path, std::size_t max) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  std::string s = ss.str();
  return s.size() > max ? "..." + s.substr(s.size() - max) : s;
}

int FreePort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return 0;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof addr;
  int port = 0;
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 &&
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
    port = ntohs(addr.sin_port);
  }
  close(fd);
  return port;
}

pid_t Spawn(const std::vector<std::string>& argv_in, const SpawnOptions& o) {
  std::vector<std::string> argv;
  if (o.as_other_user) {
    argv = {"setpriv", "--reuid=" + std::to_string(o.uid), "--regid=" + std::to_string(o.gid), "--init-groups",
            "--pdeathsig=" + std::string(o.death_signal == SIGQUIT ? "SIGQUIT" : "SIGTERM"), "--"};
  }
  argv.insert(argv.end(), argv_in.begin(), argv_in.end());
  std::vector<char*> cargv;
  for (auto& a : argv) cargv.push_back(a.data());
  cargv.push_back(nullptr);
  pid_t parent = getpid();
  pid_t pid = fork();
  if (pid != 0) return pid;
  // Child.
  if (o.own_process_group) setpgid(0, 0);
  prctl(PR_SET_PDEATHSIG, o.death_signal);
  if (getppid() != parent) _exit(127);
  int fd = open(o.log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  if (fd >= 0) {
    dup2(fd, 1);
    dup2(fd, 2);
    close(fd);
  }
  int in = open(o.input_file.empty() ? "/dev/null" : o.input_file.c_str(), O_RDONLY);
  if (in >= 0) {
    dup2(in, 0);
    close(in);
  }
  if (!o.cwd.empty() && chdir(o.cwd.c_str()) != 0) _exit(126);
  for (const auto& [name, value] : o.env) setenv(name.c_str(), value.c_str(), 1);
  execvp(cargv[0], cargv.data());
  _exit(127);
}

Status RunToCompletion(const std::vector<std::string>& argv, const SpawnOptions& o) {
  pid_t pid = Spawn(argv, o);
  if (pid < 0) return Fail(ErrorCode::kIo, "fork failed: " + std::string(std::strerror(errno)));
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return Ok();
  std::string cmd;
  for (const auto& a : argv) cmd += (cmd.empty() ? "" : " ") + a;
  return Fail(ErrorCode::kInternal, cmd + " failed (status " + std::to_string(status) + "); log " + o.log + ":\n" +
                                        ReadTail(o.log));
}

}  // namespace enrolsync::testsupport
