#!/usr/bin/env bash
# Durable shadow updates per second and update-to-accepted latency (build/bench/shadowbench) with
# 1k and 100k things, against a fresh fleetcore each run (2 workers, embedded SQLite, fsync on).
# mosquitto has no shadow service, so there is nothing to run beside it here.
# Usage: bench/shadow.sh   (BENCH_SECONDS=5 per run, BENCH_ROUNDS=3, BENCH_THINGS="1000 100000",
#                          FC_STORAGE=postgresql: the server on a fresh database of a local PostgreSQL
#                          cluster with fsync on, scripts/postgres.sh in /tmp/fc-pg-bench)
set -euo pipefail
cd "$(dirname "$0")/.."

FC=build/src/server/fleetcore
SB=build/bench/shadowbench
SECS=${BENCH_SECONDS:-5}
ROUNDS=${BENCH_ROUNDS:-3}
mkdir -p bench/results
OUT=bench/results/shadow-$(date +%Y%m%d-%H%M%S).txt
TMP=$(mktemp -d)
PID=""
trap '[ -n "$PID" ] && kill "$PID" 2>/dev/null; rm -rf "$TMP"' EXIT
. bench/lib.sh

# Each benchmark client subscribes to two response topics per thing it owns.
printf '[limits]\nmax_subscriptions_per_client = 200000\n' > "$TMP/fc.toml"
# AWS refuses more than 10 requests in flight per connection (429): the load uses 64 connections x 8
# for throughput and 20 x 2 for latency.
log "# $(date -u +%FT%TZ) $(nproc) cores; shadowbench; window = update requests in flight per client"
STORAGE=${FC_STORAGE:-sqlite}
PG=""
[ "$STORAGE" = sqlite ] || PG=$(FC_PG_DIR=/tmp/fc-pg-bench FC_PG_FSYNC=on scripts/postgres.sh start)
# The --storage of a fresh run: nothing (embedded SQLite in the data directory) or a new database.
storage_args() {
  [ -n "$PG" ] || return 0
  psql -q -c "DROP DATABASE IF EXISTS bench_shadow WITH (FORCE)" -c "CREATE DATABASE bench_shadow" "$PG dbname=postgres" >/dev/null
  echo "--storage"
  echo "postgresql:$PG dbname=bench_shadow"
}
log "# storage=$STORAGE"
for things in ${BENCH_THINGS:-1000 100000}; do
  for load in 64x8 20x2; do
    clients=${load%x*} window=${load#*x}
    for round in $(seq "$ROUNDS"); do
      PORT=$(free_port)
      rm -rf "$TMP/data"
      mapfile -t store < <(storage_args)
      "$FC" serve "${store[@]}" --config "$TMP/fc.toml" --data-dir "$TMP/data" --mqtt "127.0.0.1:$PORT" --mqtts off --wss off \
        --metrics off --api off --log-level warn --workers 2 2>>"$TMP/fc.log" &
      PID=$!
      for _ in $(seq 200); do (echo >"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break; sleep 0.05; done
      line=$(timeout 300 "$SB" --port "$PORT" --things "$things" --clients "$clients" --window "$window" --seconds "$SECS" || echo "failed")
      log "round=$round $line rss_kb=$(awk '/^VmHWM/ {print $2}' /proc/$PID/status)"
      kill "$PID"; wait "$PID" 2>/dev/null || true; PID=""
    done
  done
done
echo "results: $OUT"
