#!/usr/bin/env bash
# Idle mutual-TLS connections: broker memory per connection beside mosquitto (issue 15 §1).
# IDLE_DEVICES devices (build/bench/stormbench: ECDSA P-256 certificate from fleetcore's CA, a policy
# allowing iot:*, MQTT 3.1.1 CONNECT, then idle) connect over IDLE_RAMP seconds; once all are
# connected and a few seconds have passed, the broker's RSS grown since before the first connection,
# divided by the count, is its memory per idle connection. The same for mosquitto 2.0
# (require_certificate, same CA and server certificate). Then the same over MQTT over WebSocket on
# that TLS (wss, /mqtt, subprotocol mqtt; mosquitto's `protocol websockets` listener).
# Usage: bench/idle_tls.sh   (IDLE_DEVICES="10000 19000", IDLE_RAMP=20 seconds (within what both brokers handshake per second), STORM_TLS=1.3,
#                            IDLE_WSS_DEVICES=10000, FC_BIN=another fleetcore binary)
set -euo pipefail
cd "$(dirname "$0")/.."

FC=${FC_BIN:-build/src/server/fleetcore}
COUNTS=${IDLE_DEVICES:-10000 19000}
WSS_COUNTS=${IDLE_WSS_DEVICES:-10000}
RAMP=${IDLE_RAMP:-20}
TLS=${STORM_TLS:-1.3}
WORKERS=${FC_WORKERS:-2}
mkdir -p bench/results
OUT=bench/results/idle-tls-$(date +%Y%m%d-%H%M%S).txt
TMP=$(mktemp -d)
PIDS=()
trap '{ for p in "${PIDS[@]}"; do kill -9 "$p" || true; done; wait; } 2>/dev/null; rm -rf "$TMP"' EXIT
. bench/lib.sh
ulimit -n 20000 2>/dev/null || true
rss_kib() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }

# Ports are picked again before each start: after thousands of client sockets, a port picked
# earlier may have become one of their ephemeral ports.
MQTTS=$(free_port); WSS=$(free_port); API=$(free_port)
printf '[limits]\nmax_pending_connections = 20000\nmax_pending_connections_per_address = 20000\n' >"$TMP/fc.toml"
start_fc() {
  MQTTS=$(free_port); WSS=$(free_port); API=$(free_port)
  "$FC" serve --config "$TMP/fc.toml" --data-dir "$TMP/fc" --mqtt off --mqtts "127.0.0.1:$MQTTS" --wss "127.0.0.1:$WSS" \
    --metrics off --api "localhost:$API" --log-level warn --workers "$WORKERS" 2>>"$TMP/fleetcore.log" &
  PID=$!
  PIDS+=($PID)
}
start_mq() {
  MQTTS=$(free_port); WSS=$(free_port)
  mosquitto_mtls_conf "$MQTTS" "$TMP" >"$TMP/mosquitto.conf"
  { mosquitto_mtls_conf "$WSS" "$TMP" | sed -n '1,5p'; echo "protocol websockets"; } >>"$TMP/mosquitto.conf"
  mosquitto -c "$TMP/mosquitto.conf" 2>/dev/null &
  PID=$!
  PIDS+=($PID)
}

start_fc
wait_port "$MQTTS"; wait_port "$API"
allow_all_device "$TMP/fc" "$API" "$TMP" idle
kill "$PID"; wait "$PID" 2>/dev/null || true

# idle <name> <start function> <devices> [--ws]: a fresh broker, N idle connections, RSS per
# connection.
idle() {
  local name=$1 starter=$2 n=$3 ws=${4:-} kind=mtls port
  "$starter"
  port=$MQTTS
  [ -z "$ws" ] || { kind=wss; port=$WSS; }
  wait_port "$port" || { log "broker=$name: not listening on $port"; return; }
  sleep 1
  local before after
  before=$(rss_kib "$PID")
  build/bench/stormbench --port "$port" --ca "$TMP/ca.crt" --cert "$TMP/dev.crt" --key "$TMP/dev.key" \
    --devices "$n" --ramp "$RAMP" --jitter 1 --tls "$TLS" --seconds $((RAMP * 3 + 30)) $ws \
    >/dev/null 2>"$TMP/idle.progress" &
  local sb=$!
  for _ in $(seq $((RAMP * 3 + 20))); do
    grep -q "connected=$n " "$TMP/idle.progress" 2>/dev/null && break
    sleep 1
  done
  sleep 3
  after=$(rss_kib "$PID")
  local connected
  connected=$(tail -1 "$TMP/idle.progress" | sed -n 's/.*connected=\([0-9]*\).*/\1/p')
  log "broker=$name idle_${kind}_connections=$n connected=$connected rss_before_kib=$before rss_after_kib=$after" \
    "bytes_per_connection=$(( (after - before) * 1024 / n ))"
  kill -9 "$sb" "$PID" 2>/dev/null || true
  wait "$sb" "$PID" 2>/dev/null || true
}

log "# $(date -u +%FT%TZ) $(nproc) cores, $(openssl version), TLS $TLS, ramp ${RAMP}s, $FC at $(git rev-parse --short HEAD)"
for n in $COUNTS; do
  idle fleetcore start_fc "$n"
  idle mosquitto start_mq "$n"
done
for n in $WSS_COUNTS; do
  idle fleetcore start_fc "$n" --ws
  idle mosquitto start_mq "$n" --ws
done
echo "results: $OUT"
