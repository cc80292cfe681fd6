#!/usr/bin/env bash
# The quick start: installs what is missing, builds sked, and starts
# `sked serve` in the background on an SQLite file with the example jobs
# (examples/sked.toml, copied to var/sked.toml). Idempotent: a sked started by
# an earlier run is stopped gracefully first; the database is kept.
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/setup.sh
cmake -S . -B build/gcc -G Ninja -DCMAKE_CXX_COMPILER=g++ -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build/gcc -j "$(nproc)" --target sked

sked="$PWD/build/gcc/sked"
mkdir -p var
cp examples/sked.toml var/sked.toml
config="$PWD/var/sked.toml"

# Stop the sked an earlier run started (bounded wait), then start this build.
if [ -f var/sked.pid ] && kill -0 "$(cat var/sked.pid)" 2>/dev/null; then
  echo "run: stopping the sked started earlier (pid $(cat var/sked.pid))"
  kill -TERM "$(cat var/sked.pid)"
  for _ in $(seq 1 200); do
    kill -0 "$(cat var/sked.pid)" 2>/dev/null || break
    sleep 0.1
  done
fi
"$sked" --version
# The schema first (serve would too), so the quick start's API token can be made.
"$sked" migrate --config "$config" >/dev/null
# A fresh admin token for the quick start each run (the previous one is revoked:
# a token is shown only when it is made, and only its hash is stored).
"$sked" token revoke quickstart --config "$config" >/dev/null 2>&1 || true
token="$("$sked" token create --name quickstart --role admin --config "$config" 2>/dev/null)"
nohup "$sked" serve --config "$config" >>var/sked.log 2>&1 &
echo $! >var/sked.pid

# Wait (at most 15 s) for the first runs to be on record.
for _ in $(seq 1 150); do
  if ! kill -0 "$(cat var/sked.pid)" 2>/dev/null; then
    echo "run: sked serve exited; its log:" >&2
    tail -n 20 var/sked.log >&2
    exit 1
  fi
  if [ "$("$sked" run list --config "$config" --json 2>/dev/null | grep -c '"status": "succeeded"')" -ge 2 ]; then
    break
  fi
  sleep 0.1
done

printf '\n$ sked job list\n'
"$sked" job list --config "$config"
printf '\n$ sked run list\n'
"$sked" run list --config "$config"
cat <<MSG

sked is serving var/sked.toml in the background (pid $(cat var/sked.pid), log var/sked.log).

Dashboard: http://127.0.0.1:8080/ui/  (sign in with the token below; docs/dashboard.md)
REST API:  http://127.0.0.1:8080/api/v1  (docs/api.md)   metrics: http://127.0.0.1:8080/metrics
API token (admin, shown once; \`sked token revoke quickstart\` to revoke):
  $token
Try:
  curl -s -H "Authorization: Bearer $token" http://127.0.0.1:8080/api/v1/jobs

Or the CLI, with --config $config:
  $sked run list            # runs as they happen (flaky retries, too-slow times out)
  $sked notify list         # flaky's final failures, to the log and var/alerts.jsonl
  $sked run show ID         # one run with its output
  $sked job trigger hello --wait
  $sked job add greet --schedule '*/5 * * * * *' --command 'echo hi'
  $sked health
Stop it with: kill \$(cat var/sked.pid)    (graceful; a second signal forces)
MSG
