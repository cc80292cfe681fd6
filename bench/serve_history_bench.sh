#!/bin/bash
# `sked serve` on SQLite beside a long run history: one job ("hist", paused)
# holds RUNS settled runs that finished long ago (written with the sqlite3
# shell), a job "tick" fires every second (noop driver), and the daemon runs
# with its defaults: the retention sweep (max_age 90 days, keep_failures 10),
# and the notification dispatcher with its watchdog (a "log" channel is
# declared). A run of a job "long" (sleep driver, an hour) is triggered as the
# daemon starts, so the engine polls for cancellations throughout. After
# SECONDS, prints the fire lag of tick's runs (started_at -
# scheduled_for, from the store) after the first 5 s, how many of its fires
# ran, and how many old runs retention deleted meanwhile.
#
#   bench/serve_history_bench.sh [SKED_BINARY] [RUNS] [SECONDS]
#
# Defaults: build/gcc/sked, 3000000, 25. docs/performance.md has the figures.
set -euo pipefail

sked=${1:-build/gcc/sked}
runs=${2:-3000000}
seconds=${3:-25}
# Both go into SQL and sleep as they are: whole numbers only.
if ! [[ "$runs" =~ ^[1-9][0-9]{0,8}$ && "$seconds" =~ ^[1-9][0-9]{0,4}$ ]]; then
  echo "serve_history_bench.sh: RUNS and SECONDS must be positive whole numbers" >&2
  exit 2
fi
sked=$(realpath "$sked")
dir=$(mktemp -d /tmp/sked-serve-history.XXXXXX)
pid=
trap 'if [ -n "$pid" ]; then kill -TERM "$pid" 2>/dev/null || true; fi; rm -rf "$dir"' EXIT

cat > "$dir/sked.toml" <<EOF
[store]
url = "sqlite://$dir/sked.db"
[scheduler]
workers = 8
min_interval = "1s"
[server]
listen = "127.0.0.1:0"
[log]
level = "warn"
[notify]
channels = ["log"]
[[channel]]
name = "log"
type = "log"
EOF

"$sked" -c "$dir/sked.toml" migrate >/dev/null
"$sked" -c "$dir/sked.toml" job add hist -s 'every 1h' -d noop --paused >/dev/null
hist=$(sqlite3 "$dir/sked.db" "SELECT id FROM jobs WHERE name = 'hist'")
# One settled run a second, from 2023-11-14 on (all older than 90 days).
sqlite3 "$dir/sked.db" "WITH RECURSIVE g(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM g WHERE
  x < $runs) INSERT INTO runs (job_id, scheduled_for, attempt, trigger, status, queued_at,
  not_before, started_at, finished_at, output) SELECT $hist, 1700000000000000 + x * 1000000, 1,
  'schedule', 'succeeded', 1, 1, 1700000000000000 + x * 1000000 + 10,
  1700000000000000 + x * 1000000 + 20, 'some output line of a run' FROM g"
"$sked" -c "$dir/sked.toml" job add tick -s 'every 1s' -d noop >/dev/null
"$sked" -c "$dir/sked.toml" job add long -s 'every 1h' -d sleep --config-json '{"duration": "1h"}' \
  >/dev/null
tick=$(sqlite3 "$dir/sked.db" "SELECT id FROM jobs WHERE name = 'tick'")

"$sked" -c "$dir/sked.toml" serve >"$dir/serve.log" 2>&1 &
pid=$!
"$sked" -c "$dir/sked.toml" job trigger long >/dev/null
from=$(( $(date +%s%6N) + 5000000 ))
sleep "$seconds"
kill -TERM "$pid"
wait "$pid" || true
pid=

sqlite3 -separator ' ' "$dir/sked.db" "SELECT 'tick fires', count(*), 'ran', count(started_at),
  'lag ms: avg', round(avg(started_at - scheduled_for) / 1000.0, 3), 'max',
  round(max(started_at - scheduled_for) / 1000.0, 3) FROM runs WHERE job_id = $tick AND
  scheduled_for > $from; SELECT 'not run:', status, reason, count(*) FROM runs WHERE
  job_id = $tick AND scheduled_for > $from AND started_at IS NULL GROUP BY status, reason;
  SELECT 'old runs deleted', $runs - count(*) FROM runs WHERE
  job_id = $hist; SELECT 'long runs started', count(started_at) FROM runs r JOIN jobs j ON
  j.id = r.job_id WHERE j.name = 'long'"
