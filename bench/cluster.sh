#!/usr/bin/env bash
# Publish throughput and latency of fleetcore as one node on SQLite, one node on PostgreSQL and three
# nodes (scripts/cluster.sh: PostgreSQL, nats-server, HAProxy), beside mosquitto, in one run:
#   bench/cluster.sh                     # BENCH_SECONDS=3 per run (after a 1 s warm-up), about 5 minutes
# In the three-node runs the publishers are on node n0 and the subscribers on n1: every message crosses
# nodes through NATS. Everything shares this machine's cores (the nodes, NATS, PostgreSQL and the load
# generator), so the three-node figures show what crossing nodes costs, not what three machines give.
# Raw lines go to bench/results/cluster-<timestamp>.txt.
set -euo pipefail
cd "$(dirname "$0")/.."

FC=${FLEETCORE:-$(pwd)/build/src/server/fleetcore}
FCB=build/bench/fcbench
SECS=${BENCH_SECONDS:-3}
mkdir -p bench/results
OUT=bench/results/cluster-$(date +%Y%m%d-%H%M%S).txt
TMP=$(mktemp -d)
ulimit -n "$(ulimit -Hn)" || true
BROKER_PID=""
export FC_CLUSTER_DIR=$TMP/cluster FC_CLUSTER_BASE=${FC_CLUSTER_BASE:-20000}
trap 'stop_single; scripts/cluster.sh stop; rm -rf "$TMP"' EXIT
. bench/lib.sh

PG=$(scripts/postgres.sh start)
fresh_db() {  # prints a --storage value for a new database
  psql -q -v ON_ERROR_STOP=1 "$PG dbname=postgres" -c "DROP DATABASE IF EXISTS fc_bench WITH (FORCE)" \
    -c "CREATE DATABASE fc_bench" >/dev/null 2>&1
  echo "postgresql:$PG dbname=fc_bench"
}

start_single() {  # sqlite|postgresql|mosquitto; sets PUB_PORT and SUB_PORT
  PUB_PORT=$(free_port)
  SUB_PORT=$PUB_PORT
  rm -rf "$TMP/fc"
  if [ "$1" = mosquitto ]; then
    printf 'listener %s 127.0.0.1\nallow_anonymous true\npersistence false\nlog_dest none\n' "$PUB_PORT" >"$TMP/mosquitto.conf"
    mosquitto -c "$TMP/mosquitto.conf" 2>>"$TMP/mosquitto.log" &
  else
    local storage=()
    [ "$1" = postgresql ] && storage=(--storage "$(fresh_db)")
    "$FC" serve --data-dir "$TMP/fc" "${storage[@]}" --mqtt "127.0.0.1:$PUB_PORT" --mqtts off --wss off --api off \
      --metrics off --log-level warn --workers 2 2>>"$TMP/fleetcore.log" &
  fi
  BROKER_PID=$!
  wait_port "$PUB_PORT" || { echo "$1 did not start" >&2; exit 1; }
}
stop_single() {
  if [ -n "$BROKER_PID" ]; then kill "$BROKER_PID" 2>/dev/null || true; wait "$BROKER_PID" 2>/dev/null || true; fi
  BROKER_PID=""
}
start_cluster() {
  scripts/cluster.sh start 3 >/dev/null
  PUB_PORT=$((1884 + FC_CLUSTER_BASE))
  SUB_PORT=$((1885 + FC_CLUSTER_BASE))
  # Every node hears of the others before the run.
  for m in 9101 9102 9103; do
    for _ in $(seq 100); do
      curl -s "http://127.0.0.1:$((m + FC_CLUSTER_BASE))/metrics" | grep -q '^fleetcore_cluster_peers 2' && break
      sleep 0.1
    done
  done
}

run() {  # setup label fcbench-args...
  local setup=$1 label=$2
  shift 2
  if [ "$setup" = cluster ]; then start_cluster; else start_single "$setup"; fi
  line=$(timeout 120 "$FCB" "$@" --port "$PUB_PORT" --sub-port "$SUB_PORT" --seconds "$SECS" || echo "failed")
  log "setup=$setup $label $line"
  if [ "$setup" = cluster ]; then scripts/cluster.sh stop; else stop_single; fi
}

for setup in mosquitto sqlite postgresql cluster; do
  run "$setup" "pairs-qos0" throughput --scenario pairs --clients 50 --qos 0 --size 64 --threads 2
  run "$setup" "pairs-qos1" throughput --scenario pairs --clients 50 --qos 1 --size 64 --threads 2
  run "$setup" "fanin-qos1" throughput --scenario fanin --clients 50 --qos 1 --size 64 --threads 2
  run "$setup" "latency-qos1" latency --clients 20 --rate 5000 --qos 1 --size 64
done
echo "results: $OUT"
