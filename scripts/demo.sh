#!/usr/bin/env bash
# The whole demo on a fresh Debian 12 machine: install, build, start the
# Moodle sandbox, and sync the bundled sample school into it, showing the
# plan and then the result. Re-running starts from a clean site.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
SAMPLE=$ROOT/examples/sample-school
PORT=${ENROLSYNC_DEMO_PORT:-8099}

bash scripts/install-deps.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build --target enrolsync enrolsync-sandbox enrolsync-gen-school -j"$(nproc)"
BIN=$ROOT/build

echo "== Generating the sample school (SQLite, iSAMS-shaped tables and views)"
rm -rf "$SAMPLE/state" "$SAMPLE/moodle" "$SAMPLE/school.db"
"$BIN/tools/enrolsync-gen-school" --sqlite "$SAMPLE/school.db"

echo "== Starting the Moodle sandbox on 127.0.0.1:$PORT"
umask 077
head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$SAMPLE/moodle.token"
"$BIN/src/sandbox/enrolsync-sandbox" --listen "127.0.0.1:$PORT" --state "$SAMPLE/moodle" \
  --token-file "$SAMPLE/moodle.token" --seed-users "$SAMPLE/users.csv" > "$SAMPLE/sandbox.log" 2>&1 &
SANDBOX=$!
trap 'kill $SANDBOX 2>/dev/null || true' EXIT
for _ in $(seq 50); do grep -q listening "$SAMPLE/sandbox.log" && break; sleep 0.1; done
cat "$SAMPLE/sandbox.log"

# The school's course categories, created through the web service as an admin
# would. The token goes in a file body, never on a command line.
tail -n +2 "$SAMPLE/categories.csv" | while IFS=, read -r id name; do
  body=$(mktemp)
  printf 'wstoken=%s&wsfunction=core_course_create_categories&moodlewsrestformat=json&categories%%5B0%%5D%%5Bname%%5D=%s&categories%%5B0%%5D%%5Bparent%%5D=0' \
    "$(cat "$SAMPLE/moodle.token")" "${name// /+}" > "$body"
  curl -s --data-binary "@$body" -H 'Content-Type: application/x-www-form-urlencoded' \
    "http://127.0.0.1:$PORT/webservice/rest/server.php" > /dev/null
  rm -f "$body"
done
# The tracked config points at port 8099; the demo runs on a copy.
CONFIG="$SAMPLE/demo.toml"
sed "s|^url = .*|url = \"http://127.0.0.1:$PORT\"          # the local Moodle sandbox|" "$SAMPLE/enrolsync.toml" > "$CONFIG"

ES="$BIN/src/cli/enrolsync"
echo; echo "== enrolsync check"
"$ES" check --config "$CONFIG" || true
echo; echo "== enrolsync plan"
"$ES" plan --config "$CONFIG" | tail -n 25
echo; echo "== enrolsync sync -v"
"$ES" sync -v --config "$CONFIG" | (head -n 12; echo "  ..."; tail -n 8)
echo; echo "== enrolsync sync (again: nothing to do)"
"$ES" sync --config "$CONFIG"
echo
echo "Done. The sandbox stops now; its site is kept in $SAMPLE/moodle."
