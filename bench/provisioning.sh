#!/usr/bin/env bash
# Fleet provisioning by claim, end to end (issue 14): devices provisioned per second with
# build/bench/provbench. Each round starts a fresh fleetcore (2 workers, embedded SQLite with fsync,
# mqtts and the API on loopback), creates with the aws CLI the policy `device-policy` (iot:*), the
# fleet template `bench` of tests/integration/test_provisioning.py (enabled) and a claim certificate
# (create-keys-and-certificate --set-as-active, the policy attached), then provisions DEVICES devices
# with at most CONCURRENCY in progress: TLS with the claim certificate, CreateKeysAndCertificate,
# RegisterThing, then a new TLS connection with the new certificate and CONNECT as the thing.
# Reported per round and as medians: devices/s, p50/p99 per-device latency, the server's CPU seconds
# per device (user + system from /proc/<pid>/stat), its busiest threads, storage commits per device
# (/metrics), its RSS; and, as a reference on the same server, the same client doing only TLS with the
# claim certificate + CONNECT (what a reconnect alone costs), and this file system's fsync latency.
# mosquitto has no fleet provisioning (no certificate authority, no templates, no registry): there is
# nothing to run beside it.
#   make bench-provisioning     # DEVICES=2000 CONCURRENCY=64 BENCH_THREADS=1 BENCH_SECONDS=60 BENCH_ROUNDS=3
#   BUILD=build-bench bench/provisioning.sh     # binaries of another build directory
#   TRACE=1 bench/provisioning.sh   # also `perf trace -s` of the server for 5 s of round 1's provisioning:
#                                   # time each thread spent blocked (futex), idle (epoll_wait), in fdatasync
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
FC=${FC_BIN:-$BUILD/src/server/fleetcore}
PB=${PB_BIN:-$BUILD/bench/provbench}
DEVICES=${DEVICES:-2000}
CONCURRENCY=${CONCURRENCY:-64}
THREADS=${BENCH_THREADS:-1}
SECS=${BENCH_SECONDS:-60}
ROUNDS=${BENCH_ROUNDS:-3}
WORKERS=${FC_WORKERS:-2}
TRACE=${TRACE:-}
if [ ! -x "$FC" ] || [ ! -x "$PB" ]; then
  cmake --build "$BUILD" --target fleetcore provbench
fi
mkdir -p bench/results
OUT=bench/results/provisioning-$(date +%Y%m%d-%H%M%S).txt
TMP=$(mktemp -d -p "${BENCH_TMP:-$BUILD}")  # the data directory's file system, not a tmpfs
PID=""
trap '[ -n "$PID" ] && kill "$PID" 2>/dev/null; rm -rf "$TMP"' EXIT
. bench/lib.sh
ulimit -n 20000 2>/dev/null || true

start() {
  rm -rf "$TMP/fc"
  mkdir -p "$TMP/fc"
  # Every device connects from 127.0.0.1: lift the per-address admission limit as bench/run.sh does.
  printf '[limits]\nmax_pending_connections = 20000\nmax_pending_connections_per_address = 20000\n' >"$TMP/fc.toml"
  "$FC" serve --config "$TMP/fc.toml" --data-dir "$TMP/fc" --mqtt off --mqtts 127.0.0.1:0 --wss off \
    --metrics 127.0.0.1:0 --api localhost:0 --log-level warn --workers "$WORKERS" 2>>"$TMP/fleetcore.log" &
  PID=$!
  for _ in $(seq 400); do [ -s "$TMP/fc/listeners.json" ] && break; sleep 0.05; done
  [ -s "$TMP/fc/listeners.json" ] || { echo "fleetcore did not start:"; tail "$TMP/fleetcore.log"; exit 1; }
  read -r MQTTS API METRICS < <(/usr/bin/python3 -c '
import json, sys
b = json.load(open(sys.argv[1]))
print(*(b[k].rsplit(":", 1)[1] for k in ("mqtts", "api", "metrics")))' "$TMP/fc/listeners.json")
}
stop() { kill "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; PID=""; }

aws_() {
  AWS_SHARED_CREDENTIALS_FILE="$TMP/fc/aws-credentials" AWS_CONFIG_FILE=/dev/null AWS_CA_BUNDLE="$TMP/fc/tls/ca.crt" \
    AWS_PAGER="" /usr/bin/aws --endpoint-url "https://localhost:$API" --region us-east-1 --output json "$@"
}

# The policy, the fleet template (FLEET_TEMPLATE of tests/integration/test_provisioning.py) and the
# claim certificate with the policy attached.
setup() {
  aws_ iot create-policy --policy-name device-policy --policy-document \
    '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iot:*","Resource":"*"}]}' >/dev/null
  cat >"$TMP/template.json" <<'JSON'
{"Parameters": {"SerialNumber": {"Type": "String"}, "AWS::IoT::Certificate::Id": {"Type": "String"}},
 "Resources": {
   "thing": {"Type": "AWS::IoT::Thing",
             "Properties": {"ThingName": {"Fn::Join": ["", ["ThingPrefix_", {"Ref": "SerialNumber"}]]},
                            "AttributePayload": {"version": "v1", "serialNumber": {"Ref": "SerialNumber"}}},
             "OverrideSettings": {"AttributePayload": "MERGE"}},
   "certificate": {"Type": "AWS::IoT::Certificate",
                   "Properties": {"CertificateId": {"Ref": "AWS::IoT::Certificate::Id"}, "Status": "Active"}},
   "policy": {"Type": "AWS::IoT::Policy", "Properties": {"PolicyName": "device-policy"}}},
 "DeviceConfiguration": {"Fleet": "lamps"}}
JSON
  aws_ iot create-provisioning-template --template-name bench --provisioning-role-arn \
    arn:aws:iam::000000000000:role/provisioning --template-body "file://$TMP/template.json" --enabled >/dev/null
  local arn
  arn=$(aws_ iot create-keys-and-certificate --set-as-active --certificate-pem-outfile "$TMP/claim.crt" \
    --private-key-outfile "$TMP/claim.key" --query certificateArn --output text)
  aws_ iot attach-policy --policy-name device-policy --target "$arn"
}

thread_ticks() { for t in /proc/"$1"/task/*; do awk '{print FILENAME, $14 + $15}' "$t/stat" 2>/dev/null; done; }
metric() { curl -s "http://127.0.0.1:$METRICS/metrics" | awk -v n="$1" '$1 == n {print $2}'; }
# The busiest server threads over a run: "a%,b%,c%" of the wall time, from two thread_ticks files.
busiest() {
  /usr/bin/python3 - "$1" "$2" "$3" "$(getconf CLK_TCK)" <<'PY'
import sys
def load(p):
    return {l.split()[0]: int(l.split()[1]) for l in open(p) if l.strip()}
a, b, wall, hz = load(sys.argv[1]), load(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
d = sorted((b[k] - a.get(k, 0) for k in b), reverse=True)[:3]
print(",".join(f"{100 * x / hz / wall:.0f}%" for x in d))
PY
}

# Runs provbench ($@ after the common options) against the running server; prints its line followed
# by the server's CPU ms per device, its busiest threads, storage commits and registry calls per device.
measure() {
  local before after t0 t1 c0 c1 r0 r1 line done_n wall
  c0=$(metric fleetcore_storage_commits_total); r0=$(metric fleetcore_registry_calls_total)
  thread_ticks "$PID" >"$TMP/threads.0"
  before=$(cpu_ticks "$PID")
  t0=$(date +%s.%N)
  line=$(timeout $((SECS + 120)) "$PB" --port "$MQTTS" --ca "$TMP/fc/tls/ca.crt" --claim-cert "$TMP/claim.crt" \
    --claim-key "$TMP/claim.key" --template bench --devices "$DEVICES" --concurrency "$CONCURRENCY" \
    --threads "$THREADS" --seconds "$SECS" "$@" 2>>"$TMP/provbench.err") || true
  t1=$(date +%s.%N)
  after=$(cpu_ticks "$PID")
  thread_ticks "$PID" >"$TMP/threads.1"
  c1=$(metric fleetcore_storage_commits_total); r1=$(metric fleetcore_registry_calls_total)
  [ -n "$line" ] || line="provbench printed nothing (see below)"
  done_n=$(sed -n 's/.* done=\([0-9]*\).*/\1/p' <<<"$line"); done_n=${done_n:-0}
  wall=$(echo "$t1 - $t0" | bc -l)
  if [ "$done_n" -gt 0 ]; then
    echo "$line server_cpu_ms_per_device=$(echo "scale=2; ($after - $before) * 1000 / $(getconf CLK_TCK) / $done_n" | bc) \
server_cpu_share=$(echo "scale=2; ($after - $before) / $(getconf CLK_TCK) / $wall" | bc) \
busiest_threads=$(busiest "$TMP/threads.0" "$TMP/threads.1" "$wall") \
commits_per_device=$(echo "scale=2; (${c1:-0} - ${c0:-0}) / $done_n" | bc) \
registry_calls_per_device=$(echo "scale=2; (${r1:-0} - ${r0:-0}) / $done_n" | bc)"
  else
    echo "$line"
  fi
}

# fsync latency of the data directory's file system: what each synchronous storage commit waits for.
fsync_ms() {
  /usr/bin/python3 - "$TMP/fsync.probe" <<'PY'
import os, statistics, sys, time
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT, 0o600)
samples = []
for i in range(200):
    os.pwrite(fd, os.urandom(4096), (i % 16) * 4096)
    t = time.perf_counter(); os.fsync(fd); samples.append((time.perf_counter() - t) * 1000)
os.close(fd); os.unlink(sys.argv[1])
samples.sort()
print(f"fsync_p50_ms={statistics.median(samples):.2f} fsync_p90_ms={samples[int(0.9 * len(samples))]:.2f}")
PY
}

log "# $(date -u +%FT%TZ) $(nproc) cores, $(openssl version | cut -d' ' -f1-2); fleet provisioning by claim: $DEVICES devices, concurrency $CONCURRENCY, $THREADS client thread(s), fleetcore --workers $WORKERS"
log "# $FC built $(date -u -r "$FC" +%FT%TZ); tree at $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- src || echo ' (src/ modified)'); loadavg $(cut -d' ' -f1-3 /proc/loadavg)"
log "# no mosquitto run: mosquitto has no fleet provisioning (no CA, templates nor registry) to compare with"
for round in $(seq "$ROUNDS"); do
  start
  setup
  if [ -n "$TRACE" ] && [ "$round" = 1 ]; then
    (sleep 1; timeout -s INT 5 perf trace -s -p "$PID" -o "$TMP/trace.txt" 2>/dev/null) &
    TRACER=$!
  fi
  prov=$(measure)
  if [ -n "$TRACE" ] && [ "$round" = 1 ]; then
    wait "$TRACER" || true
    log "# perf trace -s of the server, 5 s of round 1 (msec: calls, total, avg):"
    awk '/^ fleetcore \(/ {t=$2; gsub(/[(),]/, "", t)} /^ +(futex|epoll_wait|fdatasync|pwrite64) / {printf "#   thread %s %s calls=%s total_ms=%s avg_ms=%s\n", t, $1, $2, $4, $6}' \
      "$TMP/trace.txt" | tee -a "$OUT"
  fi
  rss=$(awk '/^VmRSS/ {print $2}' "/proc/$PID/status"); hwm=$(awk '/^VmHWM/ {print $2}' "/proc/$PID/status")
  provisioned=$(metric fleetcore_provisioning_provisioned_total)
  log "round=$round $prov provisioned_metric=${provisioned:-0} rss_kb=$rss peak_rss_kb=$hwm loadavg_1m=$(cut -d' ' -f1 /proc/loadavg)"
  log "round=$round reference $(measure --connect-only) $(fsync_ms)"
  stop
done
if [ -s "$TMP/provbench.err" ]; then
  log "# provbench's first failures:"
  head -n 20 "$TMP/provbench.err" | sed 's/^/#   /' | tee -a "$OUT"
fi
# Medians over the rounds of every numeric field, for the provisioning lines and the reference lines.
/usr/bin/python3 - "$OUT" <<'PY' | tee -a "$OUT"
import re, statistics, sys
rows = {"provision": [], "connect": []}
for line in open(sys.argv[1]):
    if not line.startswith("round="):
        continue
    kind = "connect" if " reference " in line else "provision"
    rows[kind].append({k: float(v) for k, v in re.findall(r"(\w+)=([0-9.]+)(?=\s|$)", line)})
for kind, rs in rows.items():
    if not rs:
        continue
    keys = [k for k in rs[0] if k != "round" and all(k in r for r in rs)]
    print(f"median {kind} " + " ".join(f"{k}={statistics.median(r[k] for r in rs):g}" for k in keys))
PY
echo "raw results: $OUT"
