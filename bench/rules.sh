#!/usr/bin/env bash
# The rules engine's cost at the broker and its throughput, beside mosquitto (no rules engine) and
# fleetcore without rules, on the same fan-in load (10 publishers, QoS 0 and 1, 64 B JSON telemetry
# `{"temp":N,"hum":N}` padded with spaces, one subscriber):
#   1. no rules;
#   2. 100 rules matching 10% of the messages each (every message matches 10 rules), WHERE false:
#      the cost of matching, the inbox and SQL evaluation;
#   3. the same 100 rules republishing every match to a topic nobody subscribes to.
# Reports broker throughput (messages/s the subscriber received) and rule evaluations/s. Then the
# durable actions, at QoS 1 (every message in the rule's durable queue before its PUBACK): one rule
# republishing every message at QoS 1, and one rule posting every message to an HTTPS sink
# (build/bench/http_sink, keep-alive): actions completed per second, load and drain included. Then
# the telemetry store's writes/s and a 1-hour-window aggregate over 10 M records.
#
#   make build && bench/rules.sh           # BENCH_SECONDS=5, TELEMETRY_RECORDS=10000000
#   BENCH_ONLY="durable" bench/rules.sh    # a subset: rules, durable, telemetry
set -euo pipefail
cd "$(dirname "$0")/.."
FC=${FC_BIN:-build/src/server/fleetcore}
FCB=build/bench/fcbench
SECS=${BENCH_SECONDS:-5}
RECORDS=${TELEMETRY_RECORDS:-10000000}
ONLY=${BENCH_ONLY:-rules durable telemetry}
TMP=$(mktemp -d)
PID=""
SINK=""
trap '[ -n "$PID" ] && kill $PID 2>/dev/null; [ -n "$SINK" ] && kill $SINK 2>/dev/null; rm -rf "$TMP"' EXIT
mkdir -p bench/results
OUT=bench/results/rules-$(date +%Y%m%d-%H%M%S).txt
. bench/lib.sh

start_fleetcore() {
  PORT=$(free_port); API=$(free_port); METRICS=$(free_port)
  rm -rf "$TMP/fc"
  printf '[rules]\nhttp_ca_file = "%s"\n' "$TMP/sink.crt" > "$TMP/fc.toml"
  "$FC" serve --config "$TMP/fc.toml" --data-dir "$TMP/fc" --mqtt "127.0.0.1:$PORT" --api "127.0.0.1:$API" --metrics "127.0.0.1:$METRICS" \
    --mqtts off --wss off --log-level warn --workers 2 2>>"$TMP/fleetcore.log" &
  PID=$!
  wait_port "$PORT" && wait_port "$API"
}
start_mosquitto() {
  PORT=$(free_port)
  printf 'listener %s 127.0.0.1\nallow_anonymous true\npersistence false\nlog_dest none\n' "$PORT" > "$TMP/m.conf"
  mosquitto -c "$TMP/m.conf" &
  PID=$!
  wait_port "$PORT"
}
stop() { kill "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; PID=""; }
metric_sum() {  # family name: the sum of its samples
  curl -s "http://127.0.0.1:$METRICS/metrics" | awk -v n="$1" '$1 ~ "^"n"({|$)" {s += $2} END {printf "%.0f", s}'
}
rules() {  # $1 = where|republish: 100 rules, rule k on bench/in/(k mod 10)
  /usr/bin/python3 - "$TMP/fc" "$API" "$1" <<'PY'
import sys, configparser, boto3
data, port, kind = sys.argv[1], sys.argv[2], sys.argv[3]
c = configparser.ConfigParser(); c.read(f"{data}/aws-credentials")
iot = boto3.client("iot", endpoint_url=f"https://localhost:{port}", region_name="us-east-1", verify=f"{data}/tls/ca.crt",
                   aws_access_key_id=c["default"]["aws_access_key_id"], aws_secret_access_key=c["default"]["aws_secret_access_key"])
for k in range(100):
    where = " WHERE temp > 1000" if kind == "where" else ""
    action = {"republish": {"topic": f"rules/out/{k}", "roleArn": "arn:aws:iam::123456789012:role/r"}}
    iot.create_topic_rule(ruleName=f"r{k}", topicRulePayload={"sql": f"SELECT * FROM 'bench/in/{k % 10}'{where}",
                          "awsIotSqlVersion": "2016-03-23", "actions": [action]})
PY
}
run_load() {  # $1 = label, $2 = qos
  local before_m before_d line after_m after_d
  before_m=$(metric_sum fleetcore_rule_matched_total); before_d=$(metric_sum fleetcore_rule_messages_dropped_total)
  line=$(timeout 120 "$FCB" throughput --port "$PORT" --scenario fanin --clients 10 --qos "$2" --size 64 --json --seconds "$SECS" --threads 2)
  sleep 1
  after_m=$(metric_sum fleetcore_rule_matched_total); after_d=$(metric_sum fleetcore_rule_messages_dropped_total)
  log "broker=fleetcore rules=$1 qos=$2 $line rule_matches=$((after_m - before_m)) rule_drops=$((after_d - before_d)) rule_matches_per_s=$(( (after_m - before_m) / (SECS + 1) ))"
}

durable_rule() {  # $1 = republish|http: one rule taking every message of the fan-in
  /usr/bin/python3 - "$TMP/fc" "$API" "$1" "${SINK_PORT:-0}" <<'PY'
import sys, json, time, configparser, boto3
data, port, kind, sink = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
c = configparser.ConfigParser(); c.read(f"{data}/aws-credentials")
iot = boto3.client("iot", endpoint_url=f"https://localhost:{port}", region_name="us-east-1", verify=f"{data}/tls/ca.crt",
                   aws_access_key_id=c["default"]["aws_access_key_id"], aws_secret_access_key=c["default"]["aws_secret_access_key"])
if kind == "republish":
    action = {"republish": {"topic": "bench/copy/${topic(3)}", "qos": 1, "roleArn": "arn:aws:iam::123456789012:role/r"}}
else:
    url = f"https://localhost:{sink}/ingest"
    iot.create_topic_rule_destination(destinationConfiguration={"httpUrlConfiguration": {"confirmationUrl": url}})
    token = None
    for _ in range(100):  # the sink prints the confirmation request's body
        for line in open(sys.argv[1] + "/../sink.out"):
            if "confirmationToken" in line:
                token = json.loads(line)["confirmationToken"]
        if token:
            break
        time.sleep(0.05)
    iot.confirm_topic_rule_destination(confirmationToken=token)
    action = {"http": {"url": url}}
iot.create_topic_rule(ruleName="durable", topicRulePayload={"sql": "SELECT * FROM 'bench/in/#'",
                      "awsIotSqlVersion": "2016-03-23", "actions": [action]})
PY
}
run_durable() {  # $1 = label: QoS 1 load, then the drain; actions completed per second over both
  local start line done_at executed dropped
  start=$(date +%s.%N)
  line=$(timeout 120 "$FCB" throughput --port "$PORT" --scenario fanin --clients 10 --qos 1 --size 64 --json --seconds "$SECS" --threads 2)
  for _ in $(seq 600); do [ "$(metric_sum fleetcore_rule_inbox)" = 0 ] && break; sleep 0.1; done
  done_at=$(date +%s.%N)
  executed=$(metric_sum fleetcore_rule_executed_total); dropped=$(metric_sum fleetcore_rule_dropped_total)
  log "broker=fleetcore rules=$1 qos=1 $line actions_completed=$executed actions_dropped=$dropped $(awk -v s="$start" -v e="$done_at" -v n="$executed" 'BEGIN {printf "seconds=%.1f actions_per_s=%.0f", e - s, n / (e - s)}')"
}

log "# $(date -u +%FT%TZ) $(nproc) cores; fan-in of 10 publishers, 64 B; $(mosquitto -h 2>/dev/null | head -1)"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj /CN=localhost \
  -addext subjectAltName=DNS:localhost -keyout "$TMP/sink.key" -out "$TMP/sink.crt" 2>/dev/null
if [[ " $ONLY " == *" rules "* ]]; then
  for qos in 0 1; do
    start_mosquitto
    log "broker=mosquitto rules=none qos=$qos $(timeout 120 "$FCB" throughput --port "$PORT" --scenario fanin --clients 10 --qos "$qos" --size 64 --json --seconds "$SECS" --threads 2)"
    stop
    start_fleetcore; run_load none "$qos"; stop
    start_fleetcore; rules where; run_load "100x10%-where-false" "$qos"; stop
    start_fleetcore; rules republish; run_load "100x10%-republish" "$qos"; stop
  done
fi
if [[ " $ONLY " == *" durable "* ]]; then
  start_fleetcore; durable_rule republish; run_durable "1-republish-qos1"; stop
  build/bench/http_sink --cert "$TMP/sink.crt" --key "$TMP/sink.key" > "$TMP/sink.out" &
  SINK=$!
  for _ in $(seq 100); do grep -q '^port ' "$TMP/sink.out" 2>/dev/null && break; sleep 0.05; done
  SINK_PORT=$(awk '/^port /{print $2; exit}' "$TMP/sink.out")
  start_fleetcore; SINK_PORT=$SINK_PORT durable_rule http; run_durable "1-http"; stop
  kill "$SINK"; wait "$SINK" 2>/dev/null || true; SINK=""
fi
if [[ " $ONLY " == *" telemetry "* ]]; then
  log "telemetry $(build/bench/telemetry_bench --records "$RECORDS" --batch 5 --dir "$TMP/telemetry" | tr '\n' ' ')"
fi
echo "raw results: $OUT"
