#!/usr/bin/env bash
# Reconnect storm beside mosquitto (issue 15): STORM_DEVICES mutual-TLS devices (build/bench/stormbench,
# ECDSA P-256 certificate from fleetcore's CA, a policy allowing iot:*) connect; the broker is killed
# with -9 and started again at once; every device reconnects within a 1 s jitter, with back-off on
# failure. Reports the time until all are connected again, and the attempts that failed. The same for
# mosquitto 2.0 (require_certificate, same CA and server certificate, set_tcp_nodelay).
# Usage: bench/storm.sh   (STORM_DEVICES=19000, STORM_RAMP=20 seconds to connect them at first,
#                         STORM_TLS=1.3, FC_BIN=another fleetcore binary, FC_LOG_LEVEL=info to keep
#                         fleetcore's log beside the results)
set -euo pipefail
cd "$(dirname "$0")/.."

FC=${FC_BIN:-build/src/server/fleetcore}
DEVICES=${STORM_DEVICES:-19000}
RAMP=${STORM_RAMP:-20}
TLS=${STORM_TLS:-1.3}
WORKERS=${FC_WORKERS:-2}
mkdir -p bench/results
OUT=bench/results/storm-$(date +%Y%m%d-%H%M%S).txt
TMP=$(mktemp -d)
PIDS=()
trap '{ for p in "${PIDS[@]}"; do kill -9 "$p" || true; done; wait; } 2>/dev/null; rm -rf "$TMP"' EXIT
. bench/lib.sh
ulimit -n 20000 2>/dev/null || true

MQTTS=$(free_port); API=$(free_port); MPORT=$(free_port)
# Every device connects from 127.0.0.1: lift the per-address admission limit as bench/run.sh does.
printf '[limits]\nmax_pending_connections = 20000\nmax_pending_connections_per_address = 20000\n' >"$TMP/fc.toml"
start_fc() {
  "$FC" serve --config "$TMP/fc.toml" --data-dir "$TMP/fc" --mqtt off --mqtts "127.0.0.1:$MQTTS" --wss off \
    --metrics off --api "localhost:$API" --log-level "${FC_LOG_LEVEL:-warn}" --workers "$WORKERS" 2>>"$TMP/fleetcore.log" &
  FC_PID=$!
  PIDS+=($FC_PID)
}
start_fc
wait_port "$MQTTS"; wait_port "$API"
allow_all_device "$TMP/fc" "$API" "$TMP" storm

mosquitto_mtls_conf "$MPORT" "$TMP" >"$TMP/mosquitto.conf"
start_mq() {
  mosquitto -c "$TMP/mosquitto.conf" 2>/dev/null &
  MQ_PID=$!
  PIDS+=($MQ_PID)
}

# storm <name> <port> <start function> <pid variable>: connects the fleet, kills the broker once all
# are connected, starts it again, and logs stormbench's line.
storm() {
  local name=$1 port=$2 starter=$3 pidvar=$4
  build/bench/stormbench --port "$port" --ca "$TMP/ca.crt" --cert "$TMP/dev.crt" --key "$TMP/dev.key" \
    --devices "$DEVICES" --ramp "$RAMP" --jitter 1 --tls "$TLS" --seconds $((RAMP * 3 + 120)) \
    >"$TMP/storm.$name" 2>"$TMP/storm.$name.progress" &
  local sb=$!
  for _ in $(seq $((RAMP * 3 + 60))); do
    grep -q "connected=$DEVICES " "$TMP/storm.$name.progress" 2>/dev/null && break
    sleep 1
  done
  local rss
  rss=$(awk '/VmRSS/ {print $2}' "/proc/${!pidvar}/status")
  kill -9 "${!pidvar}"; wait "${!pidvar}" 2>/dev/null || true
  "$starter"
  wait "$sb" || true
  log "$name: $(cat "$TMP/storm.$name") rss_before_kill_kib=$rss"
  grep "^device" "$TMP/storm.$name.progress" | sed "s/^/  $name /" | tee -a "$OUT" || true
}

log "# $(date -u +%FT%TZ) $(nproc) cores, $(openssl version), $DEVICES devices, TLS $TLS, ramp ${RAMP}s, jitter 1s"
# mosquitto binds its port now: once 19,000 client sockets are open, a free port found earlier may
# have become one of their ephemeral ports.
start_mq
wait_port "$MPORT"
storm fleetcore "$MQTTS" start_fc FC_PID
storm mosquitto "$MPORT" start_mq MQ_PID
[ -z "${FC_LOG_LEVEL:-}" ] || cp "$TMP/fleetcore.log" "${OUT%.txt}-fleetcore.log"
echo "results: $OUT"
