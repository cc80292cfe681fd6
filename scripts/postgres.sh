#!/usr/bin/env bash
# Starts a PostgreSQL server for sked's tests and benchmarks, on loopback only:
# Debian's postgresql package, a cluster of its own named "sked" (port 54329,
# listening on 127.0.0.1), a role and database "sked". Idempotent: installs,
# creates and starts only what is missing. Prints the store url on stdout.
#
#   url=$(scripts/postgres.sh)        # start (or find running)
#   scripts/postgres.sh restart       # restart the server (fault tests)
#   scripts/postgres.sh stop          # stop it (readiness tests; start it again without a verb)
set -euo pipefail

port="${SKED_PG_PORT:-54329}"
cluster=sked
sudo_cmd=()
if [ "$(id -u)" -ne 0 ]; then sudo_cmd=(sudo); fi

if ! dpkg-query -W -f='${Status}' postgresql 2>/dev/null | grep -q '^install ok installed$'; then
  echo "postgres: installing Debian's postgresql" >&2
  export DEBIAN_FRONTEND=noninteractive
  "${sudo_cmd[@]}" apt-get update -q >&2
  "${sudo_cmd[@]}" apt-get install -y -q --no-install-recommends postgresql >&2
fi
version=$(ls /usr/lib/postgresql | sort -V | tail -1)

if ! pg_lsclusters -h | awk '{print $2}' | grep -qx "$cluster"; then
  echo "postgres: creating cluster $version/$cluster on port $port" >&2
  "${sudo_cmd[@]}" pg_createcluster "$version" "$cluster" -p "$port" \
    -- --auth-local=peer --auth-host=scram-sha-256 >&2
  # Loopback only; room for several sked instances and their pools.
  "${sudo_cmd[@]}" tee "/etc/postgresql/$version/$cluster/conf.d/sked.conf" >/dev/null <<CONF
listen_addresses = '127.0.0.1'
max_connections = 300
shared_buffers = 256MB
CONF
fi

status() { pg_lsclusters -h | awk -v c="$cluster" '$2 == c {print $4}'; }
if [ "${1:-}" = stop ]; then
  "${sudo_cmd[@]}" pg_ctlcluster "$version" "$cluster" stop -m fast >&2
  exit 0
fi
if [ "${1:-}" = restart ]; then
  "${sudo_cmd[@]}" pg_ctlcluster "$version" "$cluster" restart -m fast >&2
elif [ "$(status)" != online ]; then
  "${sudo_cmd[@]}" pg_ctlcluster "$version" "$cluster" start >&2
fi
for _ in $(seq 1 60); do
  if pg_isready -q -h 127.0.0.1 -p "$port"; then break; fi
  sleep 0.5
done
pg_isready -q -h 127.0.0.1 -p "$port" || { echo "postgres: server did not start" >&2; exit 1; }

psql_admin() { "${sudo_cmd[@]}" runuser -u postgres -- psql -X -q -p "$port" -v ON_ERROR_STOP=1 "$@"; }
if [ "$(psql_admin -tAc "SELECT 1 FROM pg_roles WHERE rolname = 'sked'")" != 1 ]; then
  psql_admin -c "CREATE ROLE sked LOGIN PASSWORD 'sked'"
fi
if [ "$(psql_admin -tAc "SELECT 1 FROM pg_database WHERE datname = 'sked'")" != 1 ]; then
  psql_admin -c "CREATE DATABASE sked OWNER sked"
fi
echo "postgresql://sked:sked@127.0.0.1:$port/sked"
