#!/usr/bin/env bash
# TLS handshakes per second with ECDSA P-256 client certificates: fleetcore (certificate checked
# against its registry) beside mosquitto (require_certificate, same CA, same server certificate),
# with `openssl speed` for the same primitives on this machine; then MQTT connections over mutual TLS
# (build/bench/tlsbench), full and resumed handshakes; then policy checks per second.
# Usage: bench/identity.sh   (BENCH_SECONDS=10 per handshake run, BENCH_CLIENTS=2 parallel clients,
#                            FC_BIN=another fleetcore binary, e.g. a build before a change)
set -euo pipefail
cd "$(dirname "$0")/.."

FC=${FC_BIN:-build/src/server/fleetcore}
SECS=${BENCH_SECONDS:-10}
CLIENTS=${BENCH_CLIENTS:-2}
WORKERS=${FC_WORKERS:-2}
mkdir -p bench/results
OUT=bench/results/identity-$(date +%Y%m%d-%H%M%S).txt
TMP=$(mktemp -d)
PIDS=()
trap 'for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$TMP"' EXIT
. bench/lib.sh

log "# $(date -u +%FT%TZ) $(nproc) cores, $(openssl version)"
log "## openssl speed (one core)"
openssl speed -seconds 3 ecdsap256 ecdhp256 2>/dev/null | grep -E "^ *256 bits ecdsa|^ *256 bits ecdh|nistp256" | tee -a "$OUT"

# fleetcore with a registered device certificate.
MQTTS=$(free_port); API=$(free_port)
"$FC" serve --data-dir "$TMP/fc" --mqtt off --mqtts "127.0.0.1:$MQTTS" --wss off --metrics off --api "127.0.0.1:$API" \
  --log-level warn --workers "$WORKERS" 2>>"$TMP/fc.log" &
FC_PID=$!
PIDS+=($FC_PID)
wait_port "$MQTTS"; wait_port "$API"
for _ in $(seq 100); do [ -f "$TMP/fc/listeners.json" ] && break; sleep 0.05; done
"$FC" device create --name bench-dev --out "$TMP/dev" --data-dir "$TMP/fc" >/dev/null
"$FC" device create --name bench-dev2 --out "$TMP/dev" --data-dir "$TMP/fc" >/dev/null
CERT=$TMP/dev/bench-dev.cert.pem KEY=$TMP/dev/bench-dev.private.key CA=$TMP/fc/tls/ca.crt

# mosquitto with the same CA and server certificate, client certificates required (bench/lib.sh).
MPORT=$(free_port)
mosquitto_mtls_conf "$MPORT" "$TMP/fc/tls" >"$TMP/mosquitto.conf"
mosquitto -c "$TMP/mosquitto.conf" 2>/dev/null &
MQ_PID=$!
PIDS+=($MQ_PID)
wait_port "$MPORT"


handshakes() {  # $1 = port, $2 = server pid; prints "handshakes/s server-CPU-µs/handshake"
  local port=$1 pid=$2 total=0 before after
  before=$(cpu_ticks "$pid")
  for i in $(seq "$CLIENTS"); do
    openssl s_time -connect "127.0.0.1:$port" -new -cert "$CERT" -key "$KEY" -CAfile "$CA" -time "$SECS" \
      >"$TMP/stime.$i" 2>&1 &
  done
  wait $(jobs -p | tail -n "$CLIENTS") 2>/dev/null || true
  for i in $(seq "$CLIENTS"); do
    n=$(awk '/connections in .* real seconds/ {print $1; exit}' "$TMP/stime.$i")
    total=$((total + ${n:-0}))
  done
  after=$(cpu_ticks "$pid")
  echo "$(echo "scale=1; $total / $SECS" | bc)/s server-cpu=$(echo "scale=0; ($after - $before) * 1000000 / $(getconf CLK_TCK) / $total" | bc)us"
}

log "## TLS 1.3 handshakes/s, ECDSA P-256 server and client certificates, $CLIENTS parallel clients, ${SECS}s"
for round in 1 2 3; do
  fc=$(handshakes "$MQTTS" "$FC_PID"); mq=$(handshakes "$MPORT" "$MQ_PID")
  log "round $round: fleetcore $fc  mosquitto $mq"
done

connections() {  # $1 = port, $2 = server pid, then tlsbench options; prints "N/s resumed=R server-CPU-µs/connection"
  local port=$1 pid=$2 before after total=0 resumed=0 n r waiting=()
  shift 2
  before=$(cpu_ticks "$pid")
  for d in bench-dev bench-dev2; do  # one client per device: a client id is connected once at a time
    build/bench/tlsbench --port "$port" --ca "$CA" --cert "$TMP/dev/$d.cert.pem" --key "$TMP/dev/$d.private.key" \
      --client-id "$d" --threads 1 --seconds "$SECS" "$@" >"$TMP/tls.$d" 2>&1 &
    waiting+=($!)
  done
  wait "${waiting[@]}" || true
  after=$(cpu_ticks "$pid")
  for d in bench-dev bench-dev2; do
    n=$(sed -n 's/.* connections=\([0-9]*\).*/\1/p' "$TMP/tls.$d"); r=$(sed -n 's/.* resumed=\([0-9]*\).*/\1/p' "$TMP/tls.$d")
    total=$((total + ${n:-0})); resumed=$((resumed + ${r:-0}))
  done
  [ "$total" -gt 0 ] || { echo "no connections: $(cat "$TMP"/tls.*)"; return; }
  echo "$(echo "scale=1; $total / $SECS" | bc)/s resumed=$resumed server-cpu=$(echo "scale=0; ($after - $before) * 1000000 / $(getconf CLK_TCK) / $total" | bc)us"
}

log "## MQTT connections/s over mutual TLS (tlsbench: leaf certificate, CONNECT/CONNACK, close), 2 devices, ${SECS}s"
for round in 1 2 3; do
  for mode in "--tls 1.3" "--tls 1.3 --resume" "--tls 1.2 --resume"; do
    # shellcheck disable=SC2086
    fc=$(connections "$MQTTS" "$FC_PID" $mode); mq=$(connections "$MPORT" "$MQ_PID" $mode)
    log "round $round ${mode}: fleetcore $fc  mosquitto $mq"
  done
done

log "## policy checks (build/bench/policy_bench)"
build/bench/policy_bench --benchmark_min_time=1 2>/dev/null | grep -E "check" | tee -a "$OUT"
echo "results: $OUT"
