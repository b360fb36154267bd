#!/usr/bin/env bash
# Bulk registration: how long StartThingRegistrationTask takes over LINES devices (one JSON parameter
# map per line in the object store), for two templates: things only (a thing with attributes and a
# group), and the Guide's template with a CSR per device (a certificate signed, a policy attached, the
# thing in its group). From the task's start to Completed as DescribeThingRegistrationTask reports it
# (polled every 0.2 s), lines/s, and the server's CPU seconds per 1,000 lines. A fresh fleetcore each
# round (embedded SQLite, on the file system of build/). mosquitto has no registry: nothing to run
# beside it.
#   make build && bench/bulk.sh            # LINES=100000 CSR_LINES=20000 BENCH_ROUNDS=3
set -euo pipefail
cd "$(dirname "$0")/.."
FC=${FC_BIN:-build/src/server/fleetcore}
LINES=${LINES:-100000}
CSR_LINES=${CSR_LINES:-20000}
ROUNDS=${BENCH_ROUNDS:-3}
mkdir -p bench/results
OUT=bench/results/bulk-$(date +%Y%m%d-%H%M%S).txt
TMP=$(mktemp -d -p "${BENCH_TMP:-$PWD/build}")
PID=""
trap '[ -n "$PID" ] && kill "$PID" 2>/dev/null; rm -rf "$TMP"' EXIT
. bench/lib.sh

start() {
  API=$(free_port)
  "$FC" serve --data-dir "$TMP/fc" --mqtt off --api "127.0.0.1:$API" --mqtts off --wss off --metrics off \
    --log-level warn --workers 2 2>>"$TMP/fleetcore.log" &
  PID=$!
  wait_port "$API"
}
stop() { kill "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; PID=""; }

# The inputs, made once: LINES thing-only lines, CSR_LINES lines with a CSR each (openssl, P-256).
/usr/bin/python3 - "$TMP" "$LINES" "$CSR_LINES" <<'PY'
import json, sys
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
tmp, lines, csr_lines = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
with open(f"{tmp}/things.json", "w") as f:
    for i in range(lines):
        f.write(json.dumps({"ThingName": f"bulk-{i}", "SerialNumber": str(i)}) + "\n")
key = ec.generate_private_key(ec.SECP256R1())  # one key, a CSR per device (signing is the server's cost)
with open(f"{tmp}/csrs.json", "w") as f:
    for i in range(csr_lines):
        csr = x509.CertificateSigningRequestBuilder().subject_name(
            x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"csr-{i}")])).sign(key, hashes.SHA256())
        f.write(json.dumps({"ThingName": f"csr-{i}", "SerialNumber": str(i),
                            "CSR": csr.public_bytes(serialization.Encoding.PEM).decode()}) + "\n")
PY
log "# $(date -u +%FT%TZ) $(nproc) cores; bulk registration: $LINES things-only lines, $CSR_LINES lines with a CSR"
for round in $(seq "$ROUNDS"); do
  rm -rf "$TMP/fc"
  start
  line=$(/usr/bin/python3 - "$TMP" "$API" "$PID" <<'PY'
import configparser, json, os, sys, time
import boto3
tmp, api, pid = sys.argv[1:4]
data = f"{tmp}/fc"
c = configparser.ConfigParser(); c.read(f"{data}/aws-credentials")
kw = dict(endpoint_url=f"https://localhost:{api}", region_name="us-east-1", verify=f"{data}/tls/ca.crt",
          aws_access_key_id=c["default"]["aws_access_key_id"], aws_secret_access_key=c["default"]["aws_secret_access_key"])
s3, iot = boto3.client("s3", **kw), boto3.client("iot", **kw)
s3.create_bucket(Bucket="factory")
for name in ("things.json", "csrs.json"):
    s3.upload_file(f"{tmp}/{name}", "factory", name)
iot.create_thing_group(thingGroupName="v1-lightbulbs")
things = {"Parameters": {"ThingName": {"Type": "String"}, "SerialNumber": {"Type": "String"}},
          "Resources": {"thing": {"Type": "AWS::IoT::Thing", "Properties": {
              "ThingName": {"Ref": "ThingName"}, "AttributePayload": {"serialNumber": {"Ref": "SerialNumber"}},
              "ThingGroups": ["v1-lightbulbs"]}}}}
with_csr = json.loads(json.dumps(things))
with_csr["Parameters"]["CSR"] = {"Type": "String"}
with_csr["Resources"]["certificate"] = {"Type": "AWS::IoT::Certificate",
                                        "Properties": {"CertificateSigningRequest": {"Ref": "CSR"}, "Status": "ACTIVE"}}
with_csr["Resources"]["policy"] = {"Type": "AWS::IoT::Policy", "Properties": {"PolicyDocument": json.dumps(
    {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "iot:Connect", "Resource": "*"}]})}}
def cpu_s():
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
out = []
for key, template in (("things.json", things), ("csrs.json", with_csr)):
    cpu0, t0 = cpu_s(), time.monotonic()
    task = iot.start_thing_registration_task(templateBody=json.dumps(template), inputFileBucket="factory",
                                             inputFileKey=key, roleArn="arn:aws:iam::000000000000:role/bench")["taskId"]
    while True:
        d = iot.describe_thing_registration_task(taskId=task)
        if d["status"] != "InProgress":
            break
        if time.monotonic() - t0 > 1800:
            raise SystemExit("task still running after 30 minutes")
        time.sleep(0.2)
    seconds, cpu = time.monotonic() - t0, cpu_s() - cpu0
    n = d["successCount"] + d["failureCount"]
    assert d["status"] == "Completed" and d["failureCount"] == 0, d
    out += [f"{seconds:.2f}", f"{n / seconds:.0f}", f"{cpu * 1000 / n:.3f}"]
print(" ".join(out))
PY
)
  stop
  log "round $round: things-only seconds lines/s cpu_s/1000  csr seconds lines/s cpu_s/1000: $line"
done
# Medians of the rounds.
/usr/bin/python3 - "$OUT" <<'PY' | tee -a "$OUT"
import statistics, sys
rows = [l.split(":")[-1].split() for l in open(sys.argv[1]) if l.startswith("round")]
cols = list(zip(*rows))
m = [statistics.median(float(x) for x in c) for c in cols]
print(f"median things-only: {m[0]:.1f} s ({m[1]:.0f} lines/s, {m[2]:.2f} CPU s per 1,000 lines); "
      f"with a CSR each: {m[3]:.1f} s ({m[4]:.0f} lines/s, {m[5]:.2f} CPU s per 1,000 lines)")
PY
