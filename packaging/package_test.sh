#!/usr/bin/env bash
# The Debian package end to end (ctest -L package):
#   1. cpack builds the .deb into a temporary folder;
#   2. its control data, file list and modes are as intended;
#   3. as root only (else SKIP, exit 77): dpkg -i, the binaries run, `check`
#      passes against the installed sandbox, the system user exists;
#      dpkg -r keeps the config, dpkg -P removes the user and the data.
# The package is never left installed, whatever fails.
#
#   package_test.sh BUILD_DIR [CPACK] [VERSION]
set -uo pipefail

BUILD=${1:?usage: package_test.sh BUILD_DIR [CPACK] [VERSION]}
CPACK=${2:-cpack}
VERSION=${3:-}
BUILD=$(cd "$BUILD" && pwd)

TMP=$(mktemp -d /tmp/enrolsync-pkgtest.XXXXXX)
SANDBOX_PID=""
WE_INSTALLED=0
FAILED=0

# shellcheck disable=SC2317  # run by the trap
cleanup() {
  local rc=$?
  if [ -n "$SANDBOX_PID" ]; then
    kill "$SANDBOX_PID" 2>/dev/null
    wait "$SANDBOX_PID" 2>/dev/null
  fi
  if [ "$WE_INSTALLED" = 1 ] && [ "$(pkg_status)" != not-installed ]; then
    echo "cleanup: purging the enrolsync package"
    dpkg -P enrolsync >/dev/null 2>&1 || echo "cleanup: dpkg -P enrolsync failed" >&2
  fi
  rm -rf "$TMP"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

fail() {
  echo "FAIL: $*" >&2
  FAILED=1
}
die() {
  echo "FAIL: $*" >&2
  exit 1
}
pass() { echo "ok:   $*"; }
# installed | config-files | half-installed | ... | not-installed
pkg_status() {
  local st
  st=$(dpkg-query -W -f='${db:Status-Status}' enrolsync 2>/dev/null)
  echo "${st:-not-installed}"
}

for tool in dpkg-deb dpkg-shlibdeps; do
  command -v "$tool" >/dev/null || die "$tool not found (apt install dpkg-dev)"
done

# --- 1. build the package ---------------------------------------------------
[ -f "$BUILD/CPackConfig.cmake" ] || die "$BUILD/CPackConfig.cmake missing: configure the build first"
echo "== cpack -G DEB"
if ! "$CPACK" -G DEB --config "$BUILD/CPackConfig.cmake" -B "$TMP/pkg" >"$TMP/cpack.log" 2>&1; then
  cat "$TMP/cpack.log" >&2
  die "cpack failed"
fi
shopt -s nullglob
debs=("$TMP"/pkg/*.deb)
shopt -u nullglob
[ ${#debs[@]} -eq 1 ] || die "expected one .deb, found ${#debs[@]}"
DEB=${debs[0]}
echo "package: $(basename "$DEB")"

# --- 2. what is in it ---------------------------------------------------------
echo "== control data"
field() { dpkg-deb -f "$DEB" "$1"; }
[ "$(field Package)" = enrolsync ] || fail "Package is '$(field Package)'"
if [ -n "$VERSION" ]; then
  [ "$(field Version)" = "$VERSION-1" ] || fail "Version is '$(field Version)', want $VERSION-1"
fi
[ "$(field Section)" = admin ] || fail "Section is '$(field Section)'"
[ "$(field Maintainer)" = "enrolsync developers <dev@enrolsync.invalid>" ] || fail "Maintainer is '$(field Maintainer)'"
depends=$(field Depends)
echo "Depends: $depends"
dep_names=$(tr -s ',|' '\n' <<<"$depends" | awk 'NF {print $1}')
for dep in libc6 libstdc++6 libsqlite3-0 adduser; do
  grep -qxF "$dep" <<<"$dep_names" || fail "Depends lacks $dep (dpkg-shlibdeps not run?)"
done
[ $FAILED = 0 ] && pass "Package, Version, Section, Maintainer, Depends"

dpkg-deb -e "$DEB" "$TMP/control"
[ "$(sort "$TMP/control/conffiles" 2>/dev/null | tr '\n' ' ')" = "/etc/enrolsync/enrolsync.toml /etc/logrotate.d/enrolsync " ] ||
  fail "conffiles is not exactly /etc/enrolsync/enrolsync.toml and /etc/logrotate.d/enrolsync"
for s in postinst prerm postrm; do
  [ -x "$TMP/control/$s" ] || fail "maintainer script $s missing or not executable"
  sh -n "$TMP/control/$s" || fail "maintainer script $s: syntax error"
done
pass "conffiles and maintainer scripts"

echo "== file list and modes"
dpkg-deb -c "$DEB" >"$TMP/contents"
expect() {  # MODE PATH
  local line
  line=$(awk -v p="./${2#/}" '$6 == p' "$TMP/contents")
  if [ -z "$line" ]; then
    fail "$2 is not in the package"
  elif [ "$(awk '{print $1}' <<<"$line")" != "$1" ] || [ "$(awk '{print $2}' <<<"$line")" != root/root ]; then
    fail "$2: $(awk '{print $1, $2}' <<<"$line"), want $1 root/root"
  else
    pass "$1 $2"
  fi
}
expect -rwxr-xr-x /usr/bin/enrolsync
expect -rwxr-xr-x /usr/bin/enrolsync-sandbox
expect -rwxr-xr-x /usr/bin/enrolsync-gen-school
expect -rw-r--r-- /usr/share/man/man1/enrolsync.1.gz
expect -rw-r----- /etc/enrolsync/enrolsync.toml
expect -rw-r--r-- /etc/logrotate.d/enrolsync
expect -rw-r--r-- /lib/systemd/system/enrolsync.service
expect -rw-r--r-- /lib/systemd/system/enrolsync-sync.service
expect -rw-r--r-- /lib/systemd/system/enrolsync-sync.timer
expect -rw-r--r-- /usr/share/doc/enrolsync/README.Debian
# Nothing of the build tree or a test may slip in.
unexpected=$(awk '$1 !~ /^d/ {print $6}' "$TMP/contents" | grep -vxE '\./usr/bin/enrolsync(-sandbox|-gen-school)?|\./usr/share/man/man1/enrolsync\.1\.gz|\./etc/enrolsync/enrolsync\.toml|\./etc/logrotate\.d/enrolsync|\./lib/systemd/system/enrolsync(-sync)?\.(service|timer)|\./usr/share/doc/enrolsync/README\.Debian')
[ -z "$unexpected" ] || fail "unexpected files in the package: $unexpected"

dpkg-deb -x "$DEB" "$TMP/root"
man_text=$(gzip -dc "$TMP/root/usr/share/man/man1/enrolsync.1.gz") || fail "the man page is not valid gzip"
for want in '^\.SH EXIT STATUS' '^78	config' '^\.SH FILES' '/var/lib/enrolsync' '^\.SH SEE ALSO'; do
  grep -qE "$want" <<<"$man_text" || fail "man page lacks $want"
done
cfg="$TMP/root/etc/enrolsync/enrolsync.toml"
for want in '^state_dir = "/var/lib/enrolsync"' '^token_file = "/etc/enrolsync/moodle.token"' \
            '^file = "/var/log/enrolsync/enrolsync.log"' '^# users = "0 8,13 \* \* \*"' '^# full = "0 3 \* \* \*"'; do
  grep -qE "$want" "$cfg" || fail "example config lacks $want"
done
unit="$TMP/root/lib/systemd/system/enrolsync.service"
grep -qx 'ExecStart=/usr/bin/enrolsync daemon --config /etc/enrolsync/enrolsync.toml' "$unit" || fail "enrolsync.service ExecStart"
grep -qx 'User=enrolsync' "$unit" || fail "enrolsync.service User"
[ $FAILED = 0 ] || die "the package's contents are wrong (above)"
pass "man page, example config, units"

# --- 3. install, use, remove, purge (root only) ----------------------------------
if [ "$(id -u)" -ne 0 ]; then
  echo "SKIP: install/remove/purge need root (the contents checks above passed)"
  exit 77
fi
if [ "$(pkg_status)" != not-installed ]; then
  echo "SKIP: the enrolsync package is on this machine ($(pkg_status)); not touching it"
  exit 77
fi
if getent passwd enrolsync >/dev/null || getent group enrolsync >/dev/null; then
  echo "SKIP: an 'enrolsync' user or group already exists here; purge would delete it"
  exit 77
fi

echo "== dpkg -i"
WE_INSTALLED=1
if ! DEBIAN_FRONTEND=noninteractive dpkg -i "$DEB" >"$TMP/dpkg-i.log" 2>&1; then
  cat "$TMP/dpkg-i.log" >&2
  die "dpkg -i failed"
fi
pass "dpkg -i"

ver=$(/usr/bin/enrolsync --version 2>&1) || fail "enrolsync --version exited non-zero"
grep -q "^enrolsync ${VERSION:-[0-9]}" <<<"$ver" || fail "enrolsync --version printed '$ver'"
pass "$ver"

getent passwd enrolsync >/dev/null || fail "no enrolsync user after install"
getent group enrolsync >/dev/null || fail "no enrolsync group after install"
[ "$(id -gn enrolsync 2>/dev/null)" = enrolsync ] || fail "enrolsync's primary group is not enrolsync"
uid=$(id -u enrolsync 2>/dev/null || echo 0)
if [ "$uid" -le 0 ] || [ "$uid" -ge 1000 ]; then fail "enrolsync is not a system user (uid $uid)"; fi
perm() { stat -c '%U:%G %a' "$1" 2>/dev/null; }
[ "$(perm /etc/enrolsync/enrolsync.toml)" = "root:enrolsync 640" ] ||
  fail "/etc/enrolsync/enrolsync.toml is '$(perm /etc/enrolsync/enrolsync.toml)', want root:enrolsync 640"
for d in /var/lib/enrolsync /var/log/enrolsync; do
  [ "$(perm "$d")" = "enrolsync:enrolsync 750" ] || fail "$d is '$(perm "$d")', want enrolsync:enrolsync 750"
done
[ $FAILED = 0 ] && pass "system user, group, directories and config ownership"

echo "== enrolsync check against the installed sandbox"
mkdir -p "$TMP/site/moodle"
(umask 077 && head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$TMP/site/moodle.token")
/usr/bin/enrolsync-gen-school --pupils 40 --staff 8 --csv "$TMP/site/school" >"$TMP/gen.log" 2>&1 ||
  { cat "$TMP/gen.log" >&2; fail "enrolsync-gen-school --csv failed"; }
# Port 0: the sandbox binds a free loopback port and prints its URL.
/usr/bin/enrolsync-sandbox --listen 127.0.0.1:0 --state "$TMP/site/moodle" \
  --token-file "$TMP/site/moodle.token" >"$TMP/sandbox.log" 2>&1 &
SANDBOX_PID=$!
url=""
for _ in $(seq 100); do
  url=$(sed -n 's/^enrolsync-sandbox listening on \(http:[^ ]*\).*/\1/p' "$TMP/sandbox.log")
  [ -n "$url" ] && break
  kill -0 "$SANDBOX_PID" 2>/dev/null || break
  sleep 0.1
done
[ -n "$url" ] || { cat "$TMP/sandbox.log" >&2; die "the sandbox did not start"; }
echo "sandbox: $url"
cat >"$TMP/site/enrolsync.toml" <<EOF
state_dir = "state"

[moodle]
url = "$url"
token_file = "moodle.token"

[source]
type = "csv"
database = "school"

[courses]
table = "VwMoodleCourseData"
fullname = "txtFullName"
shortname = "txtShortName"
idnumber = "txtCourseID"
default_category = 1

[enrolments]
table = "VwMoodleEnrolData"
course_field = "txtSetCode"
user_field = "txtEmailAddress"
role_field = "intRoleID"
EOF
/usr/bin/enrolsync check --config "$TMP/site/enrolsync.toml" >"$TMP/check.log" 2>&1
rc=$?
if [ $rc -ne 0 ]; then
  cat "$TMP/check.log" >&2
  fail "enrolsync check exited $rc, want 0"
else
  pass "enrolsync check: $(tail -n 1 "$TMP/check.log")"
fi
kill "$SANDBOX_PID" 2>/dev/null
wait "$SANDBOX_PID" 2>/dev/null
SANDBOX_PID=""

# The shipped config must be one this enrolsync accepts: with its token and
# password files present, `check` may fail to reach the example hosts (exit 1)
# but must not call the config broken (exit 78).
mkdir -p "$TMP/etc"
echo token >"$TMP/etc/moodle.token"
echo password >"$TMP/etc/mis.password"
sed "s|/etc/enrolsync/|$TMP/etc/|g; s|^state_dir = .*|state_dir = \"$TMP/etc/state\"|; s|^file = \"/var/log/enrolsync/|file = \"$TMP/etc/|" \
  /etc/enrolsync/enrolsync.toml >"$TMP/etc/enrolsync.toml"
timeout 60 /usr/bin/enrolsync check --config "$TMP/etc/enrolsync.toml" >"$TMP/check-etc.log" 2>&1
rc=$?
if [ $rc -eq 78 ]; then
  cat "$TMP/check-etc.log" >&2
  fail "enrolsync rejects the shipped /etc/enrolsync/enrolsync.toml (exit 78)"
else
  pass "the shipped config parses (check exit $rc against the example hosts)"
fi
# Its commented [schedule] must be valid once uncommented.
sed 's/^# \[schedule\]/[schedule]/; s/^# users = /users = /; s/^# full = /full = /' \
  "$TMP/etc/enrolsync.toml" >"$TMP/etc/scheduled.toml"
if /usr/bin/enrolsync schedule --config "$TMP/etc/scheduled.toml" >"$TMP/schedule.log" 2>&1 &&
   grep -q users "$TMP/schedule.log" && grep -q full "$TMP/schedule.log"; then
  pass "the shipped [schedule], uncommented, is valid"
else
  cat "$TMP/schedule.log" >&2
  fail "enrolsync schedule rejects the shipped [schedule] once uncommented"
fi

if command -v systemd-analyze >/dev/null 2>&1; then
  echo "== systemd-analyze verify"
  # Documentation=man:enrolsync(1) is checked only where man can find it
  # (Docker images often leave /usr/share/man out of dpkg installs).
  man_opt=--man=no
  if command -v man >/dev/null 2>&1 && man -w enrolsync >/dev/null 2>&1; then man_opt=--man=yes; fi
  if systemd-analyze verify "$man_opt" /lib/systemd/system/enrolsync.service /lib/systemd/system/enrolsync-sync.service \
       /lib/systemd/system/enrolsync-sync.timer >"$TMP/verify.log" 2>&1; then
    pass "systemd-analyze verify: 3 units"
  else
    cat "$TMP/verify.log" >&2
    fail "systemd-analyze verify"
  fi
fi

echo "== dpkg -r"
if ! dpkg -r enrolsync >"$TMP/dpkg-r.log" 2>&1; then
  cat "$TMP/dpkg-r.log" >&2
  die "dpkg -r failed"
fi
for f in /usr/bin/enrolsync /usr/bin/enrolsync-sandbox /usr/bin/enrolsync-gen-school /lib/systemd/system/enrolsync.service; do
  [ ! -e "$f" ] || fail "$f is still there after dpkg -r"
done
[ -f /etc/enrolsync/enrolsync.toml ] || fail "dpkg -r removed the conffile (only purge should)"
getent passwd enrolsync >/dev/null || fail "dpkg -r removed the user (only purge should)"
[ $FAILED = 0 ] && pass "dpkg -r: binaries gone; config and user kept"

echo "== dpkg -P"
if ! dpkg -P enrolsync >"$TMP/dpkg-P.log" 2>&1; then
  cat "$TMP/dpkg-P.log" >&2
  die "dpkg -P failed"
fi
WE_INSTALLED=0
! getent passwd enrolsync >/dev/null || fail "the enrolsync user is still there after purge"
! getent group enrolsync >/dev/null || fail "the enrolsync group is still there after purge"
for p in /etc/enrolsync/enrolsync.toml /var/lib/enrolsync /var/log/enrolsync /usr/bin/enrolsync; do
  [ ! -e "$p" ] || fail "$p is still there after purge"
done
[ "$(pkg_status)" = not-installed ] || fail "dpkg still lists enrolsync ($(pkg_status))"
[ $FAILED = 0 ] && pass "dpkg -P: user, group, config and data gone"

if [ $FAILED != 0 ]; then
  echo "package_test: FAILED" >&2
  exit 1
fi
echo "package_test: all good"
exit 0
