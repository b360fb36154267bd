#!/usr/bin/env bash
# OTA delivery: the object store's PUT and GET rates beside the disk's own (dd on the same file
# system), then one image delivered over MQTT streams to a fleet downloading at once
# (build/bench/streambench), with the server's memory while it does.
#  - Object store: a SIZE_MB random file PUT (curl -T, presigned SigV4 URL, TLS; hashed, written and
#    fsynced before the answer) and GET (curl to /dev/null). dd writes the same bytes with conv=fsync
#    and reads them back (page cache, as the GET's). MB/s, median of the rounds.
#  - Streams: an IMAGE_KB image, DEVICES devices (plain MQTT, QoS 0) each downloading it in CBOR with
#    PER_REQUEST blocks of BLOCK bytes per GetStream request: time until every device has it, blocks/s,
#    MB/s, and the server's RSS before and at its peak during the download.
# A fresh fleetcore each round (2 workers, embedded SQLite). mosquitto has no object store nor
# streams: there is nothing to run beside it.
#   make build && bench/ota.sh      # SIZE_MB=256 IMAGE_KB=1024 DEVICES=1000 BLOCK=4096 BENCH_ROUNDS=3
set -euo pipefail
cd "$(dirname "$0")/.."
FC=${FC_BIN:-build/src/server/fleetcore}
SB=build/bench/streambench
SIZE_MB=${SIZE_MB:-256}
IMAGE_KB=${IMAGE_KB:-1024}
DEVICES=${DEVICES:-1000}
BLOCK=${BLOCK:-4096}
ROUNDS=${BENCH_ROUNDS:-3}
mkdir -p bench/results
OUT=bench/results/ota-$(date +%Y%m%d-%H%M%S).txt
TMP=$(mktemp -d -p "${BENCH_TMP:-$PWD/build}")  # the data directory's file system, not a tmpfs
PID=""
trap '[ -n "$PID" ] && kill "$PID" 2>/dev/null; rm -rf "$TMP"' EXIT
. bench/lib.sh
ulimit -n 20000 2>/dev/null || true

start() {
  PORT=$(free_port); API=$(free_port)
  "$FC" serve --data-dir "$TMP/fc" --mqtt "127.0.0.1:$PORT" --api "127.0.0.1:$API" --mqtts off --wss off \
    --metrics off --log-level warn --workers 2 2>>"$TMP/fleetcore.log" &
  PID=$!
  wait_port "$PORT" && wait_port "$API"
}
stop() { kill "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; PID=""; }

head -c $((SIZE_MB << 20)) /dev/urandom >"$TMP/big.bin"
head -c $((IMAGE_KB << 10)) /dev/urandom >"$TMP/image.bin"
log "# $(date -u +%FT%TZ) $(nproc) cores; object store ${SIZE_MB} MiB; streams: ${IMAGE_KB} KiB image to $DEVICES devices, ${BLOCK}-byte blocks"
for round in $(seq "$ROUNDS"); do
  rm -rf "$TMP/fc" "$TMP/dd.bin"
  # The disk's own rates, on the same file system.
  t0=$(date +%s.%N); dd if="$TMP/big.bin" of="$TMP/dd.bin" bs=1M conv=fsync status=none; t1=$(date +%s.%N)
  dd if="$TMP/dd.bin" of=/dev/null bs=1M status=none; t2=$(date +%s.%N)
  dd_w=$(echo "$SIZE_MB / ($t1 - $t0)" | bc -l); dd_r=$(echo "$SIZE_MB / ($t2 - $t1)" | bc -l)
  rm -f "$TMP/dd.bin"
  start
  line=$(/usr/bin/python3 - "$TMP" "$API" "$PORT" "$PID" "$SB" "$DEVICES" "$BLOCK" "$SIZE_MB" <<'PY'
import configparser, subprocess, sys, threading, time
import boto3, botocore.config
tmp, api, port, pid, sb, devices, block, size_mb = sys.argv[1:9]
data = f"{tmp}/fc"
c = configparser.ConfigParser(); c.read(f"{data}/aws-credentials")
kw = dict(endpoint_url=f"https://localhost:{api}", region_name="us-east-1", verify=f"{data}/tls/ca.crt",
          aws_access_key_id=c["default"]["aws_access_key_id"], aws_secret_access_key=c["default"]["aws_secret_access_key"])
s3 = boto3.client("s3", config=botocore.config.Config(signature_version="s3v4"), **kw)
iot = boto3.client("iot", **kw)
s3.create_bucket(Bucket="bench")
def curl(*args):
    r = subprocess.run(["curl", "-sf", "--cacert", f"{data}/tls/ca.crt", "-w", "%{time_total}", *args],
                       capture_output=True, text=True, check=True)
    return float(r.stdout.strip().splitlines()[-1])
put_url = s3.generate_presigned_url("put_object", Params={"Bucket": "bench", "Key": "big.bin"}, ExpiresIn=600)
put_s = curl("-o", "/dev/null", "-T", f"{tmp}/big.bin", put_url)
get_url = s3.generate_presigned_url("get_object", Params={"Bucket": "bench", "Key": "big.bin"}, ExpiresIn=600)
get_s = curl("-o", "/dev/null", get_url)
mb = int(size_mb)

# Streams: the image, its stream, the fleet.
s3.upload_file(f"{tmp}/image.bin", "bench", "image.bin")
size = s3.head_object(Bucket="bench", Key="image.bin")["ContentLength"]
iot.create_stream(streamId="bench-stream", roleArn="arn:aws:iam::000000000000:role/bench",
                  files=[{"fileId": 0, "s3Location": {"bucket": "bench", "key": "image.bin"}}])
def rss_kb():
    with open(f"/proc/{pid}/status") as f:
        return next(int(l.split()[1]) for l in f if l.startswith("VmRSS"))
results = []
for per_request in (32, 1):
    bench = subprocess.Popen([sb, "--port", port, "--devices", devices, "--stream", "bench-stream", "--size", str(size),
                              "--block", block, "--per-request", str(per_request)],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert bench.stdout.readline().strip() == "ready", "streambench did not get ready"
    before = rss_kb()
    peak = [before]
    done = threading.Event()
    def sample():
        while not done.is_set():
            peak[0] = max(peak[0], rss_kb())
            time.sleep(0.02)
    t = threading.Thread(target=sample); t.start()
    bench.stdin.write("go\n"); bench.stdin.flush()
    out = bench.communicate(timeout=600)[0].strip()
    done.set(); t.join()
    results.append(f"[{out} rss_before_kb={before} rss_peak_kb={peak[0]}]")
print(f"put_mb_s={mb / put_s:.0f} get_mb_s={mb / get_s:.0f} " + " ".join(results))
PY
)
  log "round=$round dd_write_mb_s=$(printf %.0f "$dd_w") dd_read_mb_s=$(printf %.0f "$dd_r") $line"
  stop
done
echo "raw results: $OUT"
