// Graceful SIGTERM and SIGINT, one mechanism for every command that writes
// (`sync`, the daemon's jobs). The signal only sets a flag the run watches
// (sync::RunOptions::stop): the batch in flight completes, nothing more is
// sent, no hook starts, and the run is recorded with exit 4 and "stopped".
#pragma once

#include <atomic>

namespace enrolsync::ops {

// Installs the SIGTERM and SIGINT handlers and returns the flag they set.
// `also`, when given, is set too (the daemon's wake-up flag).
const std::atomic<bool>* InstallStopSignals(std::atomic<bool>* also = nullptr);

}  // namespace enrolsync::ops
