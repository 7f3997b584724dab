#!/usr/bin/env bash
# Installs every Debian 12 package enrolsync needs to build, run and test.
# Idempotent; safe to run on every CI run. Needs root (or sudo).
set -euo pipefail
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
PKGS=(
  build-essential cmake ninja-build pkg-config
  clang libclang-rt-14-dev                       # scripts/fuzz.sh: libFuzzer and the sanitizer runtimes
  libsqlite3-dev sqlite3 libpq-dev unixodbc-dev unixodbc
  libcpp-httplib-dev libssl-dev nlohmann-json3-dev libtomlplusplus-dev
  libcli11-dev libspdlog-dev libfmt-dev libexpected-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  postgresql postgresql-client
  odbc-postgresql libsqliteodbc tdsodbc
  libldap2-dev slapd ldap-utils openssl ca-certificates curl
  logrotate
  dpkg-dev
  xz-utils
  php8.2-cli php8.2-pgsql php8.2-xml php8.2-mbstring php8.2-curl php8.2-zip php8.2-gd php8.2-intl
  php8.2-soap php8.2-opcache
)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "install-deps: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
# Debian starts a cluster and slapd on install; the tests run their own on loopback.
if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
  $SUDO systemctl stop slapd postgresql >/dev/null 2>&1 || true
fi
echo "install-deps: all packages present"
