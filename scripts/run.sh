#!/usr/bin/env bash
# Installs what is missing, builds sked, and shows it working.
# Until the daemon exists this demonstrates the cron engine on examples.
# Idempotent; reuses build/gcc.
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/setup.sh
cmake -S . -B build/gcc -G Ninja -DCMAKE_CXX_COMPILER=g++ -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build/gcc -j "$(nproc)" --target sked

sked=build/gcc/sked
run() {
  local shown="" arg
  for arg in "$@"; do
    case "$arg" in
      *[!A-Za-z0-9_./:+=-]*) shown+=" '$arg'" ;;
      *) shown+=" $arg" ;;
    esac
  done
  printf '\n$ sked%s\n' "$shown"
  "$sked" "$@" || true
}
"$sked" --version
run cron explain '30 2 * * *' --tz America/New_York --from 2026-03-06T12:00:00Z
run cron next '*/30 * * * *' --tz America/New_York --from 2026-11-01T04:50:00Z -n 6
run cron next '0 9 * * MON#2' --tz Europe/Berlin -n 3 --json
run cron validate '15 9 * * 1-5' --tz Asia/Tokyo
run cron validate '30 25 * * *'
run cron validate '0 0 30 2 *'
printf '\nThe binary is %s; try %s --help.\n' "$sked" "$sked"
