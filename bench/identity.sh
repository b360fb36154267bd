#!/usr/bin/env bash
# TLS handshakes per second with ECDSA P-256 client certificates: fleetcore (certificate checked
# against its registry) beside mosquitto (require_certificate, same CA, same server certificate),
# with `openssl speed` for the same primitives on this machine; then policy checks per second.
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
log() { echo "$*" | tee -a "$OUT"; }
free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 200); do (echo >"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.05; done; return 1; }

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
CERT=$TMP/dev/bench-dev.cert.pem KEY=$TMP/dev/bench-dev.private.key CA=$TMP/fc/tls/ca.crt

# mosquitto with the same CA and server certificate, client certificates required.
MPORT=$(free_port)
cat > "$TMP/mosquitto.conf" <<CONF
listener $MPORT 127.0.0.1
cafile $CA
certfile $TMP/fc/tls/server.crt
keyfile $TMP/fc/tls/server.key
require_certificate true
allow_anonymous true
log_dest none
user $(id -un)
CONF
mosquitto -c "$TMP/mosquitto.conf" 2>/dev/null &
MQ_PID=$!
PIDS+=($MQ_PID)
wait_port "$MPORT"

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

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

log "## policy checks (build/bench/policy_bench)"
build/bench/policy_bench --benchmark_min_time=1 2>/dev/null | grep -E "check" | tee -a "$OUT"
echo "results: $OUT"
