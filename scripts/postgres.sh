#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for the tests, reachable only on a Unix socket (no TCP port).
#   scripts/postgres.sh start   starts it if it is not running, prints its libpq conninfo
#   scripts/postgres.sh restart restarts it (fast: connections are ended), as a failover would
#   scripts/postgres.sh stop    stops it and deletes it
# Its directory is under /tmp, named after this checkout, so two checkouts do not share one. As root
# the cluster runs as the `postgres` user (PostgreSQL refuses to run as root).
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${FC_PG_DIR:-/tmp/fc-pg-$(pwd | md5sum | cut -c1-8)}
bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
as_pg() { if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
running() { [ -f "$dir/data/postmaster.pid" ] && as_pg "$bin/pg_ctl" -D "$dir/data" status >/dev/null 2>&1; }

case ${1:-} in
  start)
    if ! running; then
      rm -rf "$dir"
      mkdir -p "$dir"
      chmod 700 "$dir"
      [ "$(id -u)" -ne 0 ] || chown postgres: "$dir"
      as_pg "$bin/initdb" -D "$dir/data" -U postgres -A trust -E UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 ||
        { cat "$dir/initdb.log" >&2; exit 1; }
      # Tests need no durability from the test cluster itself (fleetcore asks for synchronous commits;
      # fsync off only spares this machine's disk). Benchmarks set FC_PG_FSYNC=on.
      as_pg "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w \
        -o "-k $dir -c listen_addresses= -c fsync=${FC_PG_FSYNC:-off} -c max_connections=200" start >/dev/null ||
        { cat "$dir/server.log" >&2; exit 1; }
    fi
    echo "host=$dir port=5432 user=postgres"
    ;;
  restart)
    # What a PostgreSQL failover or upgrade looks like to fleetcore: every connection is ended.
    as_pg "$bin/pg_ctl" -D "$dir/data" -m fast -w restart >/dev/null
    ;;
  stop)
    if running; then as_pg "$bin/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null; fi
    rm -rf "$dir"
    ;;
  *)
    echo "usage: $0 start|restart|stop" >&2
    exit 2
    ;;
esac
