#!/usr/bin/env bash
# Jobs at fleet scale: a SNAPSHOT job for THINGS things (one thing group) of which DEVICES are
# connected over MQTT (build/bench/jobsbench). Reports CreateJob's latency (boto3, every execution
# stored before the answer), the time from the CreateJob request until every connected device has its
# notify-next (rollout unlimited; the others stay QUEUED), then durable execution updates per second
# (IN_PROGRESS updates, each accepted only once stored). A fresh fleetcore each round (2 workers,
# embedded SQLite, fsync on); mosquitto has no jobs, so there is nothing to run beside it.
# The things are seeded into the store before the server starts (what bulk registration will do),
# so that the run measures jobs, not 100,000 CreateThing calls.
#   make build && bench/jobs.sh      # THINGS=100000 DEVICES=19000 BENCH_SECONDS=5 BENCH_ROUNDS=3
set -euo pipefail
cd "$(dirname "$0")/.."
FC=${FC_BIN:-build/src/server/fleetcore}
JB=build/bench/jobsbench
THINGS=${THINGS:-100000}
DEVICES=${DEVICES:-19000}
SECS=${BENCH_SECONDS:-5}
ROUNDS=${BENCH_ROUNDS:-3}
mkdir -p bench/results
OUT=bench/results/jobs-$(date +%Y%m%d-%H%M%S).txt
TMP=$(mktemp -d)
PID=""
trap '[ -n "$PID" ] && kill "$PID" 2>/dev/null; rm -rf "$TMP"' EXIT
. bench/lib.sh
ulimit -n 20000 2>/dev/null || true  # the machine's limit: one connection per device, per process

start() {
  PORT=$(free_port); API=$(free_port)
  # Every device subscribes to 2 filters; the per-address limit of pending connections stays as it is.
  "$FC" serve --data-dir "$TMP/fc" --mqtt "127.0.0.1:$PORT" --api "127.0.0.1:$API" --mqtts off --wss off \
    --metrics off --log-level warn --workers 2 2>>"$TMP/fleetcore.log" &
  PID=$!
  wait_port "$PORT" && wait_port "$API"
}
stop() { kill "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; PID=""; }

log "# $(date -u +%FT%TZ) $(nproc) cores; jobsbench; $THINGS things in one group, $DEVICES connected"
for round in $(seq "$ROUNDS"); do
  rm -rf "$TMP/fc"
  start
  /usr/bin/python3 - "$TMP/fc" "$API" <<'PY'
import sys, configparser, boto3
data, port = sys.argv[1], sys.argv[2]
c = configparser.ConfigParser(); c.read(f"{data}/aws-credentials")
iot = boto3.client("iot", endpoint_url=f"https://localhost:{port}", region_name="us-east-1", verify=f"{data}/tls/ca.crt",
                   aws_access_key_id=c["default"]["aws_access_key_id"], aws_secret_access_key=c["default"]["aws_secret_access_key"])
iot.create_thing_group(thingGroupName="fleet")
PY
  stop
  /usr/bin/python3 - "$TMP/fc/db/fleetcore.db" "$THINGS" <<'PY'
import sys, json, sqlite3, uuid
db, n = sqlite3.connect(sys.argv[1]), int(sys.argv[2])
rows = []
for k in range(n):
    name = f"bench-{k}"
    rows.append(("thing", name, json.dumps({"name": name, "id": str(uuid.uuid4()), "type": "", "attributes": {}, "version": 1})))
    rows.append(("group_member", f"fleet\t{name}", json.dumps({"membershipId": str(uuid.uuid4())})))
db.executemany("INSERT INTO documents(kind, key, body) VALUES (?, ?, ?)", rows)
db.commit()
PY
  start
  line=$(/usr/bin/python3 - "$TMP/fc" "$API" "$JB" "$PORT" "$DEVICES" "$SECS" <<'PY'
import sys, time, subprocess, configparser, boto3
data, api, jb, port, devices, secs = sys.argv[1:7]
c = configparser.ConfigParser(); c.read(f"{data}/aws-credentials")
iot = boto3.client("iot", endpoint_url=f"https://localhost:{api}", region_name="us-east-1", verify=f"{data}/tls/ca.crt",
                   aws_access_key_id=c["default"]["aws_access_key_id"], aws_secret_access_key=c["default"]["aws_secret_access_key"])
group = iot.describe_thing_group(thingGroupName="fleet")["thingGroupArn"]
bench = subprocess.Popen([jb, "--port", port, "--devices", devices, "--job", "fleet-job", "--seconds", secs],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
assert bench.stdout.readline().strip() == "ready", "jobsbench did not get ready"
bench.stdin.write("go\n"); bench.stdin.flush()
t0 = time.monotonic()
iot.create_job(jobId="fleet-job", targets=[group], document='{"operation":"update","version":"2.0"}')
create_s = time.monotonic() - t0
out = bench.communicate(timeout=300)[0].strip()
counts = iot.describe_job(jobId="fleet-job")["job"]["jobProcessDetails"]
print(f"{out} create_job_s={create_s:.2f} queued={counts['numberOfQueuedThings']} in_progress={counts['numberOfInProgressThings']}")
PY
)
  log "round=$round things=$THINGS $line rss_kb=$(awk '/^VmHWM/ {print $2}' /proc/$PID/status)"
  stop
done
echo "raw results: $OUT"
