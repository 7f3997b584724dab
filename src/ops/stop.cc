#include "ops/stop.h"

#include <signal.h>

namespace enrolsync::ops {
namespace {

std::atomic<bool> g_stop{false};
std::atomic<std::atomic<bool>*> g_also{nullptr};
static_assert(std::atomic<bool>::is_always_lock_free && std::atomic<std::atomic<bool>*>::is_always_lock_free,
              "set from a signal handler");

void OnStop(int) {
  g_stop.store(true);
  if (auto* also = g_also.load()) also->store(true);
}

}  // namespace

const std::atomic<bool>* InstallStopSignals(std::atomic<bool>* also) {
  g_also.store(also);
  struct sigaction sa{};
  sa.sa_handler = OnStop;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;  // a read or write in flight carries on
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGINT, &sa, nullptr);
  return &g_stop;
}

}  // namespace enrolsync::ops
