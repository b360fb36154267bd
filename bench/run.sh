#!/usr/bin/env bash
# Side-by-side benchmark of fleetcore and Debian's mosquitto on this machine, in one run, with the same
# load generator (build/bench/fcbench). Every step is bounded in time. Usage:
#   bench/run.sh                 # everything (about 10 minutes)
#   BENCH_ONLY="fanin latency" bench/run.sh   # a subset: fanin fanout pairs latency idle memory connect
#   BENCH_SECONDS=5              # measurement window per throughput run (after a 1 s warm-up)
# Raw lines go to bench/results/<timestamp>.txt; a summary table is printed at the end.
set -euo pipefail
cd "$(dirname "$0")/.."

FC=${FC_BIN:-build/src/server/fleetcore}  # FC_BIN: another build, for before/after runs
FCB=build/bench/fcbench
SECS=${BENCH_SECONDS:-5}
ONLY=${BENCH_ONLY:-"fanin fanout pairs latency idle memory connect"}
WORKERS=${FC_WORKERS:-2}
THREADS=${BENCH_THREADS:-2}
mkdir -p bench/results
OUT=bench/results/$(date +%Y%m%d-%H%M%S).txt
TMP=$(mktemp -d)
ulimit -n "$(ulimit -Hn)" || true
BROKER_PID=""
trap 'stop_broker; rm -rf "$TMP"' EXIT

want() { [[ " $ONLY " == *" $1 "* ]]; }
. bench/lib.sh
rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }

start_broker() {  # $1 = fleetcore|mosquitto; sets BROKER_PID and PORT
  PORT=$(free_port)
  if [ "$1" = fleetcore ]; then
    rm -rf "$TMP/fc"
    # Every benchmark client connects from 127.0.0.1: lift the per-address admission limit (a defence
    # against one address flooding the handshake path), which would otherwise refuse most of 1000
    # simultaneous CONNECTs. mosquitto has no such limit.
    printf '[limits]\nmax_pending_connections = 20000\nmax_pending_connections_per_address = 20000\n' > "$TMP/fc.toml"
    "$FC" serve --config "$TMP/fc.toml" --data-dir "$TMP/fc" --mqtt "127.0.0.1:$PORT" --mqtts off --wss off --metrics off \
      --log-level warn --workers "$WORKERS" 2>>"$TMP/fleetcore.log" &
  else
    printf 'listener %s 127.0.0.1\nallow_anonymous true\npersistence false\nlog_dest none\n' "$PORT" > "$TMP/mosquitto.conf"
    mosquitto -c "$TMP/mosquitto.conf" 2>>"$TMP/mosquitto.log" &
  fi
  BROKER_PID=$!
  for _ in $(seq 200); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then return 0; fi
    sleep 0.05
  done
  echo "broker $1 did not start" >&2; exit 1
}
stop_broker() {
  if [ -n "$BROKER_PID" ]; then kill "$BROKER_PID" 2>/dev/null || true; wait "$BROKER_PID" 2>/dev/null || true; fi
  BROKER_PID=""
}

throughput() {  # scenario clients qos size
  for b in mosquitto fleetcore; do
    start_broker "$b"
    line=$(timeout 120 "$FCB" throughput --port "$PORT" --scenario "$1" --clients "$2" --qos "$3" --size "$4" \
      --seconds "$SECS" --threads "$THREADS")
    log "broker=$b $line"
    stop_broker
  done
}

log "# $(date -u +%FT%TZ) $(nproc) cores; fleetcore workers=$WORKERS; fcbench threads=$THREADS; $(mosquitto -h 2>/dev/null | head -1)"

for qos in 0 1; do
  for size in 64 1024; do
    want fanin && throughput fanin 50 "$qos" "$size"
    want fanout && throughput fanout 100 "$qos" "$size"
    want fanout && throughput fanout 1000 "$qos" "$size"
    want pairs && throughput pairs 100 "$qos" "$size"
    want pairs && throughput pairs 1000 "$qos" "$size"
  done
done

if want latency; then
  for qos in 0 1; do
    for b in mosquitto fleetcore; do
      start_broker "$b"
      line=$(timeout 120 "$FCB" latency --port "$PORT" --clients 100 --rate 20000 --qos "$qos" --size 64 --seconds "$SECS")
      log "broker=$b $line"
      stop_broker
    done
  done
fi

if want idle; then
  for n in 10000 19000; do
    for b in mosquitto fleetcore; do
      start_broker "$b"
      before=$(rss_kb "$BROKER_PID")
      "$FCB" idle --port "$PORT" --clients "$n" --hold 4 > "$TMP/idle.out" &
      gen=$!
      for _ in $(seq 600); do grep -q '^idle connected' "$TMP/idle.out" && break; sleep 0.1; done
      sleep 1  # let the broker settle after the last CONNACK
      after=$(rss_kb "$BROKER_PID")
      wait "$gen" || true
      per=$(( (after - before) * 1024 / n ))
      log "broker=$b idle_connections=$n $(cat "$TMP/idle.out") rss_before_kb=$before rss_after_kb=$after bytes_per_connection=$per"
      stop_broker
    done
  done
fi

if want memory; then
  for b in mosquitto fleetcore; do
    start_broker "$b"
    start_rss=$(rss_kb "$BROKER_PID")
    "$FCB" throughput --port "$PORT" --scenario fanin --clients 50 --qos 1 --size 1024 --seconds 15 --warmup 0 \
      --window 1000 > "$TMP/mem.out" &
    gen=$!
    peak=0
    while kill -0 "$gen" 2>/dev/null; do
      r=$(rss_kb "$BROKER_PID"); [ "$r" -gt "$peak" ] && peak=$r
      sleep 0.25
    done
    log "broker=$b saturated_qos1_fanin_15s rss_start_kb=$start_rss rss_peak_kb=$peak $(cat "$TMP/mem.out")"
    stop_broker
  done
fi

if want connect; then
  for b in mosquitto fleetcore; do
    start_broker "$b"
    line=$(timeout 60 "$FCB" connect --port "$PORT" --clients 50 --seconds "$SECS")
    log "broker=$b $line"
    stop_broker
  done
fi

echo
echo "raw results: $OUT"
/usr/bin/python3 bench/summarize.py "$OUT"
