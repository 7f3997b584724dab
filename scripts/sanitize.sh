#!/usr/bin/env bash
# Builds the module (unit) tests with AddressSanitizer + UndefinedBehavior-
# Sanitizer (-DENROLSYNC_SANITIZE=ON, any finding fatal, build-asan) and runs
# them once with ctest. The end-to-end and real-Moodle tests (tests/, labels
# e2e and realmoodle) are left out: the folder is skipped
# (ENROLSYNC_SKIP_DIRS), so only the tests next to the code under src/ and
# tools/ are built and run.
#
#   scripts/sanitize.sh                 # gcc (the default c++)
#   SANITIZE_CXX=clang++ scripts/sanitize.sh   # fails in src/sandbox for now (clang 14)
set -euo pipefail
cd "$(dirname "$0")/.."
JOBS=${JOBS:-$(nproc)}
BUILD=${SANITIZE_BUILD_DIR:-build-asan}
t0=$SECONDS
# gcc by default (SANITIZE_CXX=clang++ for clang: clang 14 does not compile
# src/sandbox, whose Desc holds a vector of pairs of itself). -O1 with line
# tables only: half the compile time of -O2 -g, and file:line in every report.
CXX_SAN=${SANITIZE_CXX:-c++}
case "$("$CXX_SAN" --version | head -1)" in
  *clang*) OPT="-O1 -gline-tables-only -DNDEBUG" ;;
  *) OPT="-O1 -g1 -DNDEBUG" ;;
esac
cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_COMPILER="$CXX_SAN" \
  -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="$OPT" -DENROLSYNC_SANITIZE=ON \
  -DENROLSYNC_SKIP_DIRS="tests;bench" \
  -DENROLSYNC_SHARED_MOODLE="${ENROLSYNC_SHARED_MOODLE:-$(cd .. && pwd)/shared/moodle}" >/dev/null
# gtest_discover_tests runs each binary at build time: under the sanitizers too.
export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1:strict_string_checks=1:detect_stack_use_after_return=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
# Every test next to the code (target all_tests: each enrolsync_test()), so a
# new test cannot be left out of the list.
cmake --build "$BUILD" -j"$JOBS" --target all_tests
echo "sanitize: build took $((SECONDS - t0)) s"
t1=$SECONDS
cd "$BUILD"
# package_test (cmake/Packaging.cmake) builds and installs the .deb: not a unit test.
ctest --output-on-failure -j"$JOBS" -LE 'e2e|realmoodle|package' --timeout 900
echo "sanitize: tests took $((SECONDS - t1)) s; total $((SECONDS - t0)) s"
