"""The rules engine (AWS IoT rules): topic rules through the aws CLI and boto3, AWS IoT SQL on messages
published by mosquitto_pub and paho, republish with substitution templates, Basic Ingest, error actions,
and a durable inbox: an acknowledged message reaches its rule's action across kill -9."""
import json
import subprocess
import time

import pytest

from conftest import TIMEOUT, Client, mosquitto, publish_rc, wait_for

ROLE = "arn:aws:iam::123456789012:role/r"


def rule_payload(sql, actions, version="2016-03-23", **extra):
    p = {"sql": sql, "actions": actions, **extra}
    if version:
        p["awsIotSqlVersion"] = version
    return json.dumps(p)


def republish(topic, **kw):
    return {"republish": {"topic": topic, "roleArn": ROLE, **kw}}


def create(server, name, sql, actions, **kw):
    server.aws("iot", "create-topic-rule", "--rule-name", name, "--topic-rule-payload",
               rule_payload(sql, actions, **kw))


@pytest.fixture
def watcher(server):
    w = Client(server.port, "rules-watcher")
    w.connect()
    yield w
    w.disconnect()


def test_issue_acceptance_republish_with_where_and_templates(server, watcher):
    # The issue's acceptance 1, with the aws CLI and mosquitto.
    create(server, "hot", "SELECT temp, topic(2) AS dev, timestamp() AS ts FROM 'sensors/+/data' WHERE temp > 50",
           [republish("alerts/${topic(2)}")])
    assert watcher.subscribe("alerts/#", 1) == [1]
    mosquitto("mosquitto_pub", "-h", "127.0.0.1", "-p", str(server.port), "-t", "sensors/d1/data", "-m",
              '{"temp":40}', "-q", "1")
    mosquitto("mosquitto_pub", "-h", "127.0.0.1", "-p", str(server.port), "-t", "sensors/d1/data", "-m",
              '{"temp":"60"}', "-q", "1")
    m = watcher.get()
    assert m.topic == "alerts/d1"
    body = json.loads(m.payload)
    assert body["temp"] == "60" and body["dev"] == "d1"
    assert isinstance(body["ts"], int) and abs(body["ts"] - time.time() * 1000) < 60_000  # timestamp(): ms
    watcher.no_message()  # {"temp":40} did not match
    assert server.metric('fleetcore_rule_matched_total{rule="hot"}') == 2
    assert server.metric('fleetcore_rule_executed_total{rule="hot"}') == 1


def test_rules_sharing_a_where_each_run_their_actions(server, watcher):
    # The engine decides a WHERE shared by several rules once per message: each rule still gets what its
    # own statement says, and a rule with another WHERE on the same topic is decided on its own.
    create(server, "shared1", "SELECT temp FROM 'share/+' WHERE temp > 50", [republish("out/shared1")])
    create(server, "shared2", "SELECT temp, topic(2) AS dev FROM 'share/#' WHERE temp>50", [republish("out/shared2")])
    create(server, "other", "SELECT temp FROM 'share/+' WHERE temp > '50'", [republish("out/other")])
    assert watcher.subscribe("out/#", 1) == [1]
    mosquitto("mosquitto_pub", "-h", "127.0.0.1", "-p", str(server.port), "-t", "share/d1", "-m", '{"temp":60}', "-q", "1")
    got = {}
    for _ in range(3):
        m = watcher.get()
        got[m.topic] = json.loads(m.payload)
    assert got == {"out/shared1": {"temp": 60}, "out/shared2": {"temp": 60, "dev": "d1"}, "out/other": {"temp": 60}}
    mosquitto("mosquitto_pub", "-h", "127.0.0.1", "-p", str(server.port), "-t", "share/d1", "-m", '{"temp":40}', "-q", "1")
    mosquitto("mosquitto_pub", "-h", "127.0.0.1", "-p", str(server.port), "-t", "share/d2", "-m", '{"temp":"5e1x"}', "-q", "1")
    mosquitto("mosquitto_pub", "-h", "127.0.0.1", "-p", str(server.port), "-t", "share/d3", "-m", '{"temp":50.5}', "-q", "1")
    got = []
    for _ in range(3):
        m = watcher.get()
        got.append((m.topic, json.loads(m.payload)))
    assert sorted(got, key=lambda t: t[0]) == [("out/other", {"temp": 50.5}), ("out/shared1", {"temp": 50.5}),
                                                ("out/shared2", {"temp": 50.5, "dev": "d3"})]
    watcher.no_message()
    assert server.metric('fleetcore_rule_matched_total{rule="shared1"}') == 4
    assert server.metric('fleetcore_rule_executed_total{rule="shared2"}') == 2


def test_api_errors_and_listing(server):
    iot = server.iot()
    # Invalid SQL fails at create time, with AWS's exception, in the CLI as in boto3.
    rc, err = server.aws("iot", "create-topic-rule", "--rule-name", "bad", "--topic-rule-payload",
                         rule_payload("SELEC * FROM 'a'", [republish("x")]), check=False)
    assert rc != 0 and "SqlParseException" in err
    with pytest.raises(iot.exceptions.SqlParseException):
        iot.create_topic_rule(ruleName="bad", topicRulePayload={"sql": "SELECT FROM", "actions": []})
    # A missing rule is answered as AWS answers it.
    rc, err = server.aws("iot", "get-topic-rule", "--rule-name", "nope", check=False)
    assert rc != 0 and "UnauthorizedException" in err
    with pytest.raises(iot.exceptions.InvalidRequestException):
        iot.create_topic_rule(ruleName="has-dash", topicRulePayload={"sql": "SELECT * FROM 'a'", "actions": []})

    # Without awsIotSqlVersion a rule is 2015-10-08; other action kinds round-trip unchanged.
    lam = {"lambda": {"functionArn": "arn:aws:lambda:us-east-1:123456789012:function:f"}}
    create(server, "hot", "SELECT * FROM 'sensors/+/data'", [republish("a/b"), lam], version=None,
           description="d", errorAction=republish("errors/hot"))
    with pytest.raises(iot.exceptions.ResourceAlreadyExistsException):
        iot.create_topic_rule(ruleName="hot", topicRulePayload={"sql": "SELECT * FROM 'a'", "actions": []})
    _, got = server.aws("iot", "get-topic-rule", "--rule-name", "hot")
    assert got["ruleArn"] == "arn:aws:iot:us-east-1:000000000000:rule/hot"
    rule = got["rule"]
    assert rule["ruleName"] == "hot" and rule["sql"] == "SELECT * FROM 'sensors/+/data'"
    assert rule["awsIotSqlVersion"] == "2015-10-08" and rule["ruleDisabled"] is False
    assert rule["description"] == "d"
    assert rule["actions"] == [republish("a/b"), lam]
    assert rule["errorAction"] == republish("errors/hot")

    create(server, "other", "SELECT * FROM 'x/y'", [republish("z")])
    _, listed = server.aws("iot", "list-topic-rules", "--topic", "sensors/+/data")
    assert [r["ruleName"] for r in listed["rules"]] == ["hot"]
    assert listed["rules"][0]["topicPattern"] == "sensors/+/data"
    page = iot.list_topic_rules(maxResults=1)
    assert [r["ruleName"] for r in page["rules"]] == ["hot"] and page["nextToken"]
    rest = iot.list_topic_rules(maxResults=1, nextToken=page["nextToken"])
    assert [r["ruleName"] for r in rest["rules"]] == ["other"] and "nextToken" not in rest

    server.aws("iot", "disable-topic-rule", "--rule-name", "other")
    assert [r["ruleName"] for r in iot.list_topic_rules(ruleDisabled=True)["rules"]] == ["other"]
    server.aws("iot", "replace-topic-rule", "--rule-name", "hot", "--topic-rule-payload",
               rule_payload("SELECT a FROM 'q/r'", [republish("s")]))
    assert iot.get_topic_rule(ruleName="hot")["rule"]["sql"] == "SELECT a FROM 'q/r'"
    server.aws("iot", "delete-topic-rule", "--rule-name", "hot")
    with pytest.raises(iot.exceptions.UnauthorizedException):
        iot.get_topic_rule(ruleName="hot")


def test_rules_survive_restart_and_disable_stops_delivery(server, watcher):
    create(server, "fwd", "SELECT * FROM 'in/#'", [republish("out/${topic()}")])
    server.restart()
    w = Client(server.port, "after-restart")
    w.connect()
    assert w.subscribe("out/#", 1) == [1]
    p = Client(server.port, "pub")
    p.connect()
    p.publish("in/a", b'{"v":1}', qos=1)
    m = w.get()
    assert m.topic == "out/in/a" and json.loads(m.payload) == {"v": 1}
    server.aws("iot", "disable-topic-rule", "--rule-name", "fwd")
    p.publish("in/a", b'{"v":2}', qos=1)
    w.no_message()
    server.aws("iot", "enable-topic-rule", "--rule-name", "fwd")
    p.publish("in/a", b'{"v":3}', qos=1)
    assert json.loads(w.get().payload) == {"v": 3}
    p.disconnect()
    w.disconnect()


def test_basic_ingest(server, watcher):
    create(server, "hot", "SELECT temp, topic(2) AS dev FROM 'sensors/+/data' WHERE temp > 50",
           [republish("alerts/${topic(2)}")])
    assert watcher.subscribe([("alerts/#", 1), ("sensors/#", 1)]) == [1, 1]
    r = mosquitto("mosquitto_pub", "-h", "127.0.0.1", "-p", str(server.port), "-t", "$aws/rules/hot/sensors/d9/data",
                  "-m", '{"temp":99}', "-q", "1", "-V", "mqttv5", "-d")
    assert "received PUBACK (Mid: 1, RC:0)" in r.stdout  # the rule took it: success, not "no subscribers"
    m = watcher.get()
    assert m.topic == "alerts/d9" and json.loads(m.payload) == {"temp": 99, "dev": "d9"}
    watcher.no_message()  # sensors/# saw nothing
    # `$aws/rules/hot/` counts toward neither the level nor the length limit (16 levels, 1024 bytes here).
    deep = "/".join(["d10"] + ["l"] * 15)
    assert publish_rc(server.port, "$aws/rules/hot/" + deep, client_id="deep", payload='{"temp":99}') == 0
    assert watcher.get().topic == "alerts/l"
    assert publish_rc(server.port, "$aws/rules/hot/" + deep + "/l", client_id="deep", payload="{}") != 0
    long_topic = "x" * (1024 - 10) + "/a/b/c/d/e"  # 1024 bytes after the prefix
    assert publish_rc(server.port, "$aws/rules/hot/" + long_topic, client_id="long", payload="{}") == 0
    assert publish_rc(server.port, "plain/" + long_topic, client_id="long", payload="{}") != 0
    # Subscribing under $aws/rules/ is refused; a missing rule drops the message (counted).
    assert watcher.subscribe("$aws/rules/#", 1) == [0x87]
    mosquitto("mosquitto_pub", "-h", "127.0.0.1", "-p", str(server.port), "-t", "$aws/rules/nope/x", "-m", "{}")
    wait_for(lambda: server.metric('fleetcore_rule_messages_dropped_total{reason="rule_not_found"}') == 1,
             what="rule_not_found counted")


def test_unsupported_action_goes_to_the_error_action(server, watcher):
    lam = {"lambda": {"functionArn": "arn:aws:lambda:us-east-1:123456789012:function:f"}}
    create(server, "withlambda", "SELECT * FROM 'dev/+/t'", [lam, republish("ok/${clientid()}")],
           errorAction=republish("errors/${topic(2)}"))
    assert watcher.subscribe([("errors/#", 1), ("ok/#", 1)]) == [1, 1]
    p = Client(server.port, "dev-7")
    p.connect()
    p.publish("dev/7/t", b'{"x":1}', qos=1)
    got = {m.topic: m.payload for m in (watcher.get(), watcher.get())}
    assert json.loads(got["ok/dev-7"]) == {"x": 1}
    error = json.loads(got["errors/7"])
    assert error["ruleName"] == "withlambda" and error["topic"] == "dev/7/t" and error["clientId"] == "dev-7"
    assert error["base64OriginalPayload"] == "eyJ4IjoxfQ=="
    assert error["cloudwatchTraceId"]
    assert [f["failedAction"] for f in error["failures"]] == ["LambdaAction"]
    assert "not supported" in error["failures"][0]["errorMessage"]
    # Per action outcomes on /metrics: the lambda (position 0) failed, the republish (1) ran.
    assert server.metric('fleetcore_rule_action_failed_total{rule="withlambda",action="LambdaAction",index="0"}') == 1
    assert server.metric('fleetcore_rule_action_executed_total{rule="withlambda",action="RepublishAction",index="1"}') == 1
    assert server.metric('fleetcore_rule_failed_total{rule="withlambda"}') == 1
    p.disconnect()


def test_republish_headers_and_reserved_escape(server, watcher):
    create(server, "hdr", "SELECT * FROM 'h/in'",
           [republish("h/out", qos=1, headers={"contentType": "application/json", "responseTopic": "h/reply",
                                                "userProperties": [{"key": "src", "value": "${topic()}"}]}),
            republish("$$aws/things/t1/shadow/update")])
    assert watcher.subscribe([("h/out", 1), ("$aws/things/t1/shadow/update/accepted", 1)]) == [1, 1]
    p = Client(server.port, "hp")
    p.connect()
    p.publish("h/in", b'{"state":{"reported":{"a":1}}}', qos=1)
    got = {}
    for _ in range(2):
        m = watcher.get()
        got[m.topic] = m
    out = got["h/out"]
    assert out.qos == 1
    assert out.properties.ContentType == "application/json" and out.properties.ResponseTopic == "h/reply"
    assert ("src", "h/in") in out.properties.UserProperty
    # `$$aws/...` republished to the shadow: the shadow service accepted the update.
    assert json.loads(got["$aws/things/t1/shadow/update/accepted"].payload)["state"]["reported"] == {"a": 1}
    p.disconnect()


def test_republish_loop_is_bounded(server, watcher):
    create(server, "loop", "SELECT * FROM 'loop/t'", [republish("loop/t")])
    assert watcher.subscribe("loop/t", 0) == [0]
    p = Client(server.port, "lp")
    p.connect()
    p.publish("loop/t", b"{}", qos=1)
    # The original and max_republish_depth - 1 (8 - 1) republishes, then the republish is refused,
    # counted, and the rule fails once.
    for _ in range(8):
        assert watcher.get().payload == b"{}"
    wait_for(lambda: server.metric('fleetcore_rule_messages_dropped_total{reason="republish_loop"}') == 1,
             what="loop cut")
    assert server.metric('fleetcore_rule_failed_total{rule="loop"}') == 1
    watcher.no_message(1)
    p.disconnect()


def test_acknowledged_messages_reach_the_rule_across_kill9(server):
    create(server, "durable", "SELECT * FROM 'd/#'", [republish("copied/${topic(2)}", qos=1)])
    # A persistent subscriber for the copies, offline while fleetcore dies.
    w = Client(server.port, "durable-sub", version=4, clean=False)
    w.connect()
    assert list(w.subscribe("copied/#", 1)) == [1]
    w.disconnect()
    n = 200
    r = subprocess.run(["mosquitto_pub", "-h", "127.0.0.1", "-p", str(server.port), "-q", "1", "-t", "d/x", "-l"],
                       input="".join(f'{{"i":{i}}}\n' for i in range(n)), text=True, capture_output=True,
                       timeout=TIMEOUT)
    assert r.returncode == 0
    server.kill9()
    server.start()
    w = Client(server.port, "durable-sub", version=4, clean=False)
    w.connect()
    seen = set()
    while len(seen) < n:
        seen.add(json.loads(w.get().payload)["i"])  # at least once: duplicates allowed
    assert seen == set(range(n))
    wait_for(lambda: server.metric("fleetcore_rule_inbox") == 0, what="inbox drained")
    w.disconnect()


def test_get_thing_shadow_reads_fleetcore_shadows(server, watcher, tmp_path):
    # A statement that calls get_thing_shadow() is evaluated on the engine's thread (it waits for the
    # shadow service); the others on the publisher's worker. Both paths in one rule set.
    create(server, "withshadow",
           f"SELECT temp, get_thing_shadow(topic(2), '{ROLE}').state.reported.setpoint AS setpoint "
           "FROM 'gs/+/t' WHERE temp > 10", [republish("gs-out/${topic(2)}")])
    create(server, "plain", "SELECT temp FROM 'gs/+/t' WHERE temp > 10", [republish("gs-plain/${topic(2)}")])
    server.aws("iot-data", "update-thing-shadow", "--thing-name", "oven", "--cli-binary-format", "raw-in-base64-out",
               "--payload", json.dumps({"state": {"reported": {"setpoint": 180}}}), str(tmp_path / "out.json"))
    assert watcher.subscribe([("gs-out/#", 1), ("gs-plain/#", 1)]) == [1, 1]
    p = Client(server.port, "oven")
    p.connect()
    p.publish("gs/oven/t", b'{"temp":5}', qos=1)  # WHERE false for both
    p.publish("gs/oven/t", b'{"temp":20}', qos=1)
    got = {m.topic: json.loads(m.payload) for m in (watcher.get(), watcher.get())}
    assert got == {"gs-out/oven": {"temp": 20, "setpoint": 180}, "gs-plain/oven": {"temp": 20}}
    watcher.no_message()
    assert server.metric('fleetcore_rule_matched_total{rule="withshadow"}') == 2
    assert server.metric('fleetcore_rule_executed_total{rule="withshadow"}') == 1
    p.disconnect()


def test_rule_changes_are_events(server, watcher):
    # fleetcore's TOPIC_RULE event type (an extension, shaped like AWS's registry events): off until
    # UpdateEventConfigurations enables it, like every AWS event type.
    assert watcher.subscribe("$aws/events/rule/#", 1) == [1]
    create(server, "quiet", "SELECT * FROM 'e/q'", [republish("e/out")])
    watcher.no_message(0.5)
    server.aws("iot", "update-event-configurations", "--event-configurations",
               json.dumps({"TOPIC_RULE": {"Enabled": True}}))
    _, described = server.aws("iot", "describe-event-configurations")
    assert described["eventConfigurations"]["TOPIC_RULE"] == {"Enabled": True}
    create(server, "loud", "SELECT * FROM 'e/l'", [republish("e/out")])
    server.aws("iot", "disable-topic-rule", "--rule-name", "loud")
    server.aws("iot", "delete-topic-rule", "--rule-name", "loud")
    events = [(m.topic, json.loads(m.payload)) for m in (watcher.get(), watcher.get(), watcher.get())]
    assert [t for t, _ in events] == ["$aws/events/rule/loud/created", "$aws/events/rule/loud/updated",
                                      "$aws/events/rule/loud/deleted"]
    assert [e["operation"] for _, e in events] == ["CREATED", "UPDATED", "DELETED"]
    created, updated = events[0][1], events[1][1]
    assert created["eventType"] == "TOPIC_RULE_EVENT" and created["ruleName"] == "loud"
    assert created["ruleArn"] == "arn:aws:iot:us-east-1:000000000000:rule/loud"
    assert created["topicPattern"] == "e/l" and created["ruleDisabled"] is False
    assert updated["ruleDisabled"] is True
    assert created["eventId"] != updated["eventId"] and isinstance(created["timestamp"], int)
    # Only the server publishes under $aws/events/.
    p = Client(server.port, "forger")
    p.connect()
    info = p.publish("$aws/events/rule/loud/created", b"{}", qos=1, wait=False)
    info.wait_for_publish(timeout=TIMEOUT)
    watcher.no_message()  # refused (0x87), never routed
    p.disconnect()
