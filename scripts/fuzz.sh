#!/usr/bin/env bash
# Builds the libFuzzer targets (clang, ASan + UBSan, build-fuzz) and runs each
# for FUZZ_SECONDS (default 60) from a copy of its seed corpus in
# fuzz/corpus/<target>/, with its dictionary in fuzz/dict/ when there is one.
# Runs $JOBS targets at a time. Fails if any target finds a crash, a
# sanitizer report, a timeout or an out-of-memory; the input is left in
# $FUZZ_OUT/artifacts/ (reproduce with build-fuzz/fuzz/<target> <file>).
#
#   scripts/fuzz.sh                      # all five, 60 s each
#   FUZZ_SECONDS=600 scripts/fuzz.sh cron_fuzz
#
# New inputs the runs find stay in $FUZZ_OUT/corpus/<target>/; the seed
# corpus in the repo is not changed (add a found input there by hand).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
FUZZ_SECONDS=${FUZZ_SECONDS:-60}
JOBS=${JOBS:-$(nproc)}
BUILD=${FUZZ_BUILD_DIR:-build-fuzz}
FUZZ_OUT=${FUZZ_OUT:-$ROOT/$BUILD/fuzz-run}
TARGETS=("$@")
[ ${#TARGETS[@]} -gt 0 ] || TARGETS=(config_fuzz csv_fuzz ws_response_fuzz cron_fuzz ldap_attr_fuzz)
CXX_CLANG=${CXX_CLANG:-clang++}
command -v "$CXX_CLANG" >/dev/null || { echo "fuzz: $CXX_CLANG not found (scripts/install-deps.sh installs clang)" >&2; exit 1; }

t0=$SECONDS
cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_COMPILER="$CXX_CLANG" \
  -DENROLSYNC_FUZZ=ON -DBUILD_TESTING=OFF >/dev/null
cmake --build "$BUILD" -j"$JOBS" --target "${TARGETS[@]}"
echo "fuzz: build took $((SECONDS - t0)) s"

# Any finding aborts the target with a report; leaks count too.
export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1:allocator_may_return_null=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

rm -rf "$FUZZ_OUT"
mkdir -p "$FUZZ_OUT/artifacts"

# One target: its log in $FUZZ_OUT/<target>.log, exit status in <target>.rc.
run_one() {
  local t=$1 corpus="$FUZZ_OUT/corpus/$1" dict="$ROOT/fuzz/dict/${1%_fuzz}.dict" rc=0
  mkdir -p "$corpus"
  cp -r "fuzz/corpus/$t/." "$corpus/"
  local args=(-max_total_time="$FUZZ_SECONDS" -timeout=10 -rss_limit_mb=2048 -max_len=65536
              -print_final_stats=1 -artifact_prefix="$FUZZ_OUT/artifacts/$t-")
  [ -f "$dict" ] && args+=(-dict="$dict")
  echo "fuzz: $t for $FUZZ_SECONDS s from $(find "$corpus" -type f | wc -l) seeds"
  (cd "$FUZZ_OUT" && "$ROOT/$BUILD/fuzz/$t" "${args[@]}" "$corpus") >"$FUZZ_OUT/$t.log" 2>&1 || rc=$?
  echo "$rc" >"$FUZZ_OUT/$t.rc"
}

# $JOBS targets at a time (each libFuzzer process uses one core).
t1=$SECONDS
running=0
for t in "${TARGETS[@]}"; do
  if [ "$running" -ge "$JOBS" ]; then
    wait -n || true
    running=$((running - 1))
  fi
  run_one "$t" &
  running=$((running + 1))
done
wait || true
echo "fuzz: fuzzing took $((SECONDS - t1)) s"

failed=()
for t in "${TARGETS[@]}"; do
  rc=$(cat "$FUZZ_OUT/$t.rc" 2>/dev/null || echo 99)
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$FUZZ_OUT/$t.log")
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$FUZZ_OUT/$t.log")
  rss=$(sed -n 's/^stat::peak_rss_mb: *//p' "$FUZZ_OUT/$t.log")
  echo "fuzz: $t: ${execs:-?} runs, ${rate:-?}/s, corpus $(find "$FUZZ_OUT/corpus/$t" -type f | wc -l) inputs" \
       "(seeds $(find "fuzz/corpus/$t" -type f | wc -l)), peak RSS ${rss:-?} MB, exit $rc"
  if [ "$rc" -ne 0 ] || ls "$FUZZ_OUT/artifacts/$t-"* >/dev/null 2>&1; then
    echo "fuzz: $t FAILED; the end of $FUZZ_OUT/$t.log:" >&2
    grep -v '^#[0-9]' "$FUZZ_OUT/$t.log" | tail -40 >&2
    ls "$FUZZ_OUT/artifacts/$t-"* >&2 2>/dev/null || true
    failed+=("$t")
  fi
done
echo "fuzz: total $((SECONDS - t0)) s"
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz: findings in: ${failed[*]}" >&2
  exit 1
fi
echo "fuzz: 0 crashes in ${TARGETS[*]}"
