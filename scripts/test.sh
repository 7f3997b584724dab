#!/usr/bin/env bash
# Installs what the tests need, builds everything with warnings as errors and
# runs the whole suite. The tests start their own PostgreSQL servers and the
# Moodle sandbox on loopback; nothing else needs to be running.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
JOBS=${JOBS:-$(nproc)}
cmake -S . -B build-test -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DENROLSYNC_WERROR=ON \
  -DENROLSYNC_SHARED_MOODLE="${ENROLSYNC_SHARED_MOODLE:-$(cd .. && pwd)/shared/moodle}"
cmake --build build-test -j"$JOBS"
cd build-test
ctest --output-on-failure -j"$JOBS" --timeout 1500
cd ..
# Then the module tests once more under ASan + UBSan (build-asan), and each
# fuzz target for FUZZ_SECONDS (build-fuzz); README "Fuzzing and sanitizers".
# SANITIZE=0 or FUZZ_SECONDS=0 leaves one out.
if [ "${SANITIZE:-1}" != 0 ]; then
  JOBS="$JOBS" bash scripts/sanitize.sh
fi
if [ "${FUZZ_SECONDS:-60}" != 0 ]; then
  JOBS="$JOBS" FUZZ_SECONDS="${FUZZ_SECONDS:-60}" bash scripts/fuzz.sh
fi
