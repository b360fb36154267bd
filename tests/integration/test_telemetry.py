"""The timestream rule action into fleetcore's telemetry store, read back with `aws timestream-query
query` (the documented subset: time filters, ago, bin, aggregates, GROUP BY, ORDER BY, LIMIT), records
typed as AWS types them, and a store that answers queries only."""
import datetime
import json
import os
import subprocess
import time

import pytest

from conftest import Client, wait_for

ROLE = "arn:aws:iam::123456789012:role/r"


def ts_rule(server, name="ts", sql="SELECT * FROM 's/+/d'", **action):
    a = {"roleArn": ROLE, "databaseName": "fleet", "tableName": "env",
         "dimensions": [{"name": "device", "value": "${topic(2)}"}, {"name": "site", "value": "lab"}], **action}
    server.aws("iot", "create-topic-rule", "--rule-name", name, "--topic-rule-payload",
               json.dumps({"sql": sql, "awsIotSqlVersion": "2016-03-23", "actions": [{"timestream": a}],
                           "errorAction": {"republish": {"topic": "errors/ts", "roleArn": ROLE}}}))


def query(server, q, check=True):
    return server.aws("timestream-query", "query", "--query-string", q, check=check)


def rows(result):
    return [[d.get("ScalarValue") for d in r["Data"]] for r in result["Rows"]]


def types(result):
    return {c["Name"]: c["Type"]["ScalarType"] for c in result["ColumnInfo"]}


def test_records_typed_and_queried_with_the_cli(server):
    ts_rule(server)
    p = Client(server.port, "dev")
    p.connect()
    for i in range(3):
        p.publish(f"s/d{i}/d", json.dumps({"temp": 20.5 + i, "count": i, "ok": i % 2 == 0, "label": f"l{i}",
                                           "pos": {"x": i}}).encode(), qos=1)
    wait_for(lambda: server.metric("fleetcore_telemetry_records_total") == 15, what="15 records")
    _, r = query(server, 'SELECT device, site, measure_value::double AS temp, time FROM "fleet"."env" '
                         "WHERE measure_name = 'temp' AND time > ago(1h) ORDER BY device")
    assert rows(r)[0][:3] == ["d0", "lab", "20.5"] and [x[0] for x in rows(r)] == ["d0", "d1", "d2"]
    assert types(r) == {"device": "VARCHAR", "site": "VARCHAR", "temp": "DOUBLE", "time": "TIMESTAMP"}
    stamp = rows(r)[0][3]
    assert len(stamp) == 29 and stamp[4] == "-" and stamp[10] == " " and stamp[19] == "."  # 2026-11-29 14:18:21.330000000
    # Each attribute its own record and its own typed column (timestream-rule-action.md).
    _, r = query(server, 'SELECT measure_name, measure_value::bigint, measure_value::boolean, measure_value::varchar '
                         "FROM \"fleet\".\"env\" WHERE device = 'd0' AND measure_name <> 'temp' ORDER BY measure_name")
    assert rows(r) == [["count", "0", None, None], ["label", None, None, "l0"], ["ok", None, "true", None],
                       ["pos", None, None, '{"x":0}']]
    # Aggregates over time bins.
    _, r = query(server, 'SELECT bin(time, 1h) AS hour, avg(measure_value::double) AS avg_temp, count(*) AS n '
                         "FROM \"fleet\".\"env\" WHERE measure_name = 'temp' GROUP BY bin(time, 1h)")
    assert [x[1:] for x in rows(r)] == [["21.5", "3"]]
    assert types(r)["hour"] == "TIMESTAMP" and rows(r)[0][0].endswith(":00:00.000000000")
    # LIMIT and paging with MaxRows.
    import boto3
    key, secret = server.credentials()
    tq = boto3.client("timestream-query", endpoint_url=server.api_url, region_name="us-east-1",
                      aws_access_key_id=key, aws_secret_access_key=secret, verify=server.ca)
    page = tq.query(QueryString='SELECT measure_name FROM "fleet"."env" ORDER BY measure_name LIMIT 4', MaxRows=3)
    assert len(page["Rows"]) == 3 and page["NextToken"]
    rest = tq.query(QueryString='SELECT measure_name FROM "fleet"."env" ORDER BY measure_name LIMIT 4', MaxRows=3,
                    NextToken=page["NextToken"])
    assert len(rest["Rows"]) == 1 and "NextToken" not in rest
    # The CLI convenience prints tab-separated rows under a header.
    out = subprocess.run([os.environ["FLEETCORE"], "telemetry", "query", "--data-dir", server.data_dir,
                          "SELECT device, measure_value::bigint AS n FROM \"fleet\".\"env\" "
                          "WHERE measure_name = 'count' ORDER BY device"],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == ["device\tn", "d0\t0", "d1\t1", "d2\t2"]
    p.disconnect()


def test_timestamp_from_the_message(server):
    ts_rule(server, sql="SELECT v FROM 's/+/d'", timestamp={"value": "${t}", "unit": "SECONDS"})
    p = Client(server.port, "dev")
    p.connect()
    t = int(time.time()) - 3600  # within retention (older records are deleted)
    p.publish("s/a/d", json.dumps({"v": 1, "t": t}).encode(), qos=1)
    wait_for(lambda: server.metric("fleetcore_telemetry_records_total") == 1, what="1 record")
    _, r = query(server, 'SELECT time, to_milliseconds(time) AS ms FROM "fleet"."env"')
    expected = datetime.datetime.fromtimestamp(t, datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S.000000000")
    assert rows(r) == [[expected, str(t * 1000)]]
    p.disconnect()


def test_queries_read_only_and_errors(server):
    ts_rule(server)
    rc, err = query(server, 'DELETE FROM "fleet"."env"', check=False)
    assert rc != 0 and "ValidationException" in err
    rc, err = query(server, "ATTACH DATABASE '/tmp/x.db' AS x", check=False)
    assert rc != 0 and "ValidationException" in err
    rc, err = query(server, 'SELECT nope FROM "fleet"."missing"', check=False)
    assert rc != 0 and "ValidationException" in err
    # A bad action configuration fails into the errorAction, not silently.
    w = Client(server.port, "w")
    w.connect()
    assert list(w.subscribe("errors/ts", 1)) == [1]
    p = Client(server.port, "dev")
    p.connect()
    p.publish("s/a/d", b"not json", qos=1)
    err = json.loads(w.get().payload)
    assert err["failures"][0]["failedAction"] == "TimestreamAction"
    p.disconnect()
    w.disconnect()


def test_rule_with_reserved_dimension_is_refused(server):
    iot = server.iot()
    with pytest.raises(iot.exceptions.InvalidRequestException):
        iot.create_topic_rule(ruleName="bad", topicRulePayload={
            "sql": "SELECT * FROM 'a'", "actions": [{"timestream": {
                "roleArn": ROLE, "databaseName": "db1", "tableName": "t1",
                "dimensions": [{"name": "measure_name", "value": "x"}]}}]})
