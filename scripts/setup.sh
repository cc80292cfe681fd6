#!/usr/bin/env bash
# Installs the build and test dependencies of sked from Debian 12 packages;
# `--browser` adds the dashboard's browser tests' (Chromium, its driver,
# Selenium: scripts/test.sh asks for them, the quick start does not).
# Idempotent: installs only what is missing; safe to run again. Needs root (or sudo).
set -euo pipefail

packages=(
  build-essential cmake ninja-build ccache pkg-config git
  g++ clang clang-tidy clang-format libclang-rt-14-dev llvm
  libhowardhinnant-date-dev tzdata libsqlite3-dev sqlite3
  libcli11-dev nlohmann-json3-dev libtomlplusplus-dev libpq-dev
  googletest libgtest-dev libgmock-dev libbenchmark-dev
  libcpp-httplib-dev libssl-dev libcurl4-openssl-dev python3 python3-prometheus-client curl openssl
  python3-aiosmtpd
  libjs-chart.js
)
for arg in "$@"; do
  case "$arg" in
    --browser) packages+=(chromium chromium-driver python3-selenium) ;;
    *) echo "setup: unknown argument $arg (known: --browser)" >&2; exit 2 ;;
  esac
done

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q '^install ok installed$'; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "setup: all ${#packages[@]} packages present"
  exit 0
fi

echo "setup: installing ${missing[*]}"
sudo_cmd=()
if [ "$(id -u)" -ne 0 ]; then sudo_cmd=(sudo); fi
export DEBIAN_FRONTEND=noninteractive
"${sudo_cmd[@]}" apt-get update -q
"${sudo_cmd[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"
