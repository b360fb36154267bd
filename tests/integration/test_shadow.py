"""Device shadows as AWS IoT devices and apps use them: MQTT reserved topics with paho (3.1.1 and 5),
the HTTP data plane with the aws CLI (iot-data) and boto3, durability, concurrency, policies, and the
npm aws-iot-device-sdk thingShadow client over mutual TLS."""
import json
import os
import queue
import ssl
import subprocess
import threading

import botocore.exceptions
import pytest

from helpers import TIMEOUT, Client, publish_rc, wait_for

JS = os.path.join(os.path.dirname(__file__), "js")


def shadow_client(server, client_id, thing, version=5, name=None):
    """A paho client subscribed to every response topic of one shadow."""
    c = Client(server.port, client_id, version=version)
    c.connect()
    prefix = f"$aws/things/{thing}/shadow" + (f"/name/{name}" if name else "")
    for op in ("get", "update", "delete"):
        c.subscribe(f"{prefix}/{op}/+", 1)
    c.prefix = prefix
    return c


def request(c, op, body):
    c.publish(f"{c.prefix}/{op}", json.dumps(body) if body is not None else b"", qos=1)


def expect(c, suffix):
    """The next message, which must be on `<prefix>/<suffix>`; returns its JSON."""
    m = c.get()
    assert m.topic == f"{c.prefix}/{suffix}", (m.topic, m.payload)
    return json.loads(m.payload)


@pytest.mark.parametrize("version", [4, 5])
def test_update_get_delete_over_mqtt(server, version):
    c = shadow_client(server, "app-1", "lamp", version=version)
    request(c, "update", {"state": {"desired": {"color": {"r": 10}, "engine": "ON"}}, "clientToken": "t-1"})
    acc = expect(c, "update/accepted")
    ts = acc["timestamp"]
    assert acc == {"state": {"desired": {"color": {"r": 10}, "engine": "ON"}},
                   "metadata": {"desired": {"color": {"r": {"timestamp": ts}}, "engine": {"timestamp": ts}}},
                   "version": 1, "timestamp": ts, "clientToken": "t-1"}
    delta = expect(c, "update/delta")
    assert delta == {"version": 1, "timestamp": ts, "state": {"color": {"r": 10}, "engine": "ON"},
                     "metadata": {"color": {"r": {"timestamp": ts}}, "engine": {"timestamp": ts}},
                     "clientToken": "t-1"}
    docs = expect(c, "update/documents")
    assert "previous" not in docs and docs["current"]["version"] == 1 and docs["clientToken"] == "t-1"

    request(c, "update", {"state": {"reported": {"color": {"r": 10}, "engine": "OFF"}}})
    acc = expect(c, "update/accepted")
    assert acc["version"] == 2 and "clientToken" not in acc
    docs = expect(c, "update/documents")
    assert docs["previous"]["version"] == 1 and docs["current"]["state"]["reported"]["engine"] == "OFF"

    request(c, "get", {"clientToken": "g-1"})
    doc = expect(c, "get/accepted")
    assert doc["state"] == {"desired": {"color": {"r": 10}, "engine": "ON"},
                            "reported": {"color": {"r": 10}, "engine": "OFF"}, "delta": {"engine": "ON"}}
    assert doc["version"] == 2 and doc["clientToken"] == "g-1"
    assert set(doc["metadata"]) == {"desired", "reported"}

    request(c, "delete", None)
    gone = expect(c, "delete/accepted")
    assert gone["version"] == 2 and "timestamp" in gone
    request(c, "get", None)
    rej = expect(c, "get/rejected")
    assert (rej["code"], rej["message"]) == (404, "No shadow exists with name: 'lamp'")
    request(c, "update", {"state": {"reported": {"engine": "OFF"}}})
    assert expect(c, "update/accepted")["version"] == 3  # the version continues after a delete
    c.disconnect()


def test_array_metadata_has_one_entry_per_element(server):
    """AWS IoT returns an array's metadata as an array of per-element metadata (objects inside get
    per-field metadata); replacing the array replaces its metadata."""
    c = shadow_client(server, "app-arr", "strip")
    request(c, "update", {"state": {"desired": {"colors": ["RED", "GREEN"], "zones": [{"id": 1}]}}})
    acc = expect(c, "update/accepted")
    ts = acc["timestamp"]
    md = {"colors": [{"timestamp": ts}, {"timestamp": ts}], "zones": [{"id": {"timestamp": ts}}]}
    assert acc["metadata"] == {"desired": md}
    assert expect(c, "update/delta")["metadata"] == md
    expect(c, "update/documents")
    request(c, "update", {"state": {"desired": {"colors": ["BLUE"]}}})
    ts2 = expect(c, "update/accepted")["timestamp"]
    expect(c, "update/delta")
    assert expect(c, "update/documents")["current"]["metadata"]["desired"]["colors"] == [{"timestamp": ts2}]
    request(c, "get", None)
    doc = expect(c, "get/accepted")
    assert doc["state"]["desired"] == {"colors": ["BLUE"], "zones": [{"id": 1}]}
    assert doc["metadata"]["desired"] == {"colors": [{"timestamp": ts2}], "zones": [{"id": {"timestamp": ts}}]}
    c.disconnect()


def test_rejections_and_version_conflict(server):
    c = shadow_client(server, "app-2", "pump")
    request(c, "update", {"state": {"desired": {"on": True}}})
    expect(c, "update/accepted"), expect(c, "update/delta"), expect(c, "update/documents")
    request(c, "update", {"state": {"desired": {"on": False}}, "version": 7, "clientToken": "stale"})
    rej = expect(c, "update/rejected")
    assert rej == {"code": 409, "message": "Version conflict", "timestamp": rej["timestamp"], "clientToken": "stale"}
    c.publish(f"{c.prefix}/update", b"{not json", qos=1)
    assert expect(c, "update/rejected")["message"] == "Invalid JSON"
    request(c, "update", {"desired": {"on": False}})
    assert expect(c, "update/rejected")["message"] == "Missing required node: state"
    request(c, "update", {"state": {"desired": {"on": False}}, "clientToken": "x" * 65})
    assert expect(c, "update/rejected")["message"] == "Invalid clientToken"
    request(c, "update", {"state": {"desired": {"blob": "x" * 9000}}})
    assert expect(c, "update/rejected")["code"] == 413
    request(c, "get", None)
    assert expect(c, "get/accepted")["version"] == 1  # nothing refused changed it
    assert server.metric("fleetcore_shadow_rejected_total") == 5


def test_named_shadows_and_listing(server):
    c = shadow_client(server, "app-3", "robot", name="config")
    request(c, "update", {"state": {"reported": {"speed": 3}}})
    assert expect(c, "update/accepted")["version"] == 1
    c2 = shadow_client(server, "app-3b", "robot", name="battery")
    request(c2, "update", {"state": {"reported": {"level": 80}}})
    expect(c2, "update/accepted")
    _, out = server.aws("iot-data", "list-named-shadows-for-thing", "--thing-name", "robot")
    assert sorted(out["results"]) == ["battery", "config"] and "timestamp" in out
    # The classic shadow of the same thing is separate.
    classic = shadow_client(server, "app-3c", "robot")
    request(classic, "get", None)
    assert expect(classic, "get/rejected")["code"] == 404


def test_http_data_plane_with_aws_cli_and_boto3(server, tmp_path):
    watcher = shadow_client(server, "watch", "heater")
    out = tmp_path / "out.json"
    server.aws("iot-data", "update-thing-shadow", "--thing-name", "heater", "--cli-binary-format", "raw-in-base64-out",
               "--payload", json.dumps({"state": {"desired": {"temp": 21}}, "clientToken": "cli-1"}), str(out))
    acc = json.loads(out.read_text())
    assert acc["version"] == 1 and acc["state"] == {"desired": {"temp": 21}} and acc["clientToken"] == "cli-1"
    # MQTT subscribers see the delta and the documents (the HTTP caller got the accepted document).
    assert expect(watcher, "update/delta")["state"] == {"temp": 21}
    assert expect(watcher, "update/documents")["current"]["version"] == 1

    server.aws("iot-data", "get-thing-shadow", "--thing-name", "heater", str(out))
    assert json.loads(out.read_text())["state"]["delta"] == {"temp": 21}
    rc, err = server.aws("iot-data", "get-thing-shadow", "--thing-name", "nobody", str(out), check=False)
    assert rc != 0 and "ResourceNotFoundException" in err and "No shadow exists with name: 'nobody'" in err

    import boto3
    key, secret = server.credentials()
    data = boto3.client("iot-data", endpoint_url=server.api_url, region_name="us-east-1", aws_access_key_id=key,
                        aws_secret_access_key=secret, verify=server.ca)
    r = data.update_thing_shadow(thingName="heater", shadowName="eco",
                                 payload=json.dumps({"state": {"reported": {"on": True}}}))
    assert json.loads(r["payload"].read())["version"] == 1
    with pytest.raises(botocore.exceptions.ClientError) as e:
        data.update_thing_shadow(thingName="heater", payload=json.dumps({"state": {"desired": {"temp": 5}}, "version": 9}))
    assert e.value.response["Error"]["Code"] == "ConflictException"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        data.update_thing_shadow(thingName="heater", payload=b"nope")
    assert e.value.response["Error"]["Code"] == "InvalidRequestException"
    doc = json.loads(data.get_thing_shadow(thingName="heater", shadowName="eco")["payload"].read())
    assert doc["state"] == {"reported": {"on": True}}
    assert data.list_named_shadows_for_thing(thingName="heater")["results"] == ["eco"]
    deleted = json.loads(data.delete_thing_shadow(thingName="heater")["payload"].read())
    assert deleted["version"] == 1
    with pytest.raises(botocore.exceptions.ClientError) as e:
        data.delete_thing_shadow(thingName="heater")
    assert e.value.response["Error"]["Code"] == "ResourceNotFoundException"


def test_http_publish(server):
    sub = Client(server.port, "listener")
    sub.connect()
    sub.subscribe("alerts/#", 1)
    server.aws("iot-data", "publish", "--topic", "alerts/fire", "--qos", "1", "--cli-binary-format",
               "raw-in-base64-out", "--payload", '{"level":3}')
    m = sub.get()
    assert (m.topic, json.loads(m.payload), m.qos) == ("alerts/fire", {"level": 3}, 1)
    # An HTTP publish on a shadow request topic is a shadow request.
    watcher = shadow_client(server, "watch-2", "boiler")
    server.aws("iot-data", "publish", "--topic", "$aws/things/boiler/shadow/update", "--cli-binary-format",
               "raw-in-base64-out", "--payload", '{"state":{"reported":{"p":2}}}')
    assert expect(watcher, "update/accepted")["state"] == {"reported": {"p": 2}}
    rc, err = server.aws("iot-data", "publish", "--topic", "$aws/things/boiler/shadow/update/accepted",
                         "--cli-binary-format", "raw-in-base64-out", "--payload", "{}", check=False)
    assert rc != 0 and "UnauthorizedException" in err


def test_clients_cannot_publish_service_responses(server):
    watcher = shadow_client(server, "victim", "door")
    for suffix in ("update/accepted", "update/rejected", "update/delta", "update/documents", "get/accepted",
                   "delete/accepted"):
        assert publish_rc(server.port, f"$aws/things/door/shadow/{suffix}", client_id="forger",
                          payload='{"state":{}}') == 0x87, suffix
    assert publish_rc(server.port, "$aws/things/door/shadow/name/n1/update/accepted", client_id="forger") == 0x87
    watcher.no_message()
    assert server.metric("fleetcore_denied_total") == 7


def test_offline_device_gets_queued_delta_and_get(server):
    dev = Client(server.port, "dev-off", clean=False, version=4)
    dev.connect()
    dev.subscribe("$aws/things/dev-off/shadow/update/delta", 1)
    dev.disconnect()
    # The app updates desired while the device is away.
    server.aws("iot-data", "update-thing-shadow", "--thing-name", "dev-off", "--cli-binary-format",
               "raw-in-base64-out", "--payload", '{"state":{"desired":{"fw":"2.0"}}}', os.devnull)
    dev2 = Client(server.port, "dev-off", clean=False, version=4)
    dev2.connect()
    m = dev2.get()
    assert m.topic.endswith("/update/delta") and json.loads(m.payload)["state"] == {"fw": "2.0"}
    dev2.subscribe("$aws/things/dev-off/shadow/get/accepted", 1)
    dev2.publish("$aws/things/dev-off/shadow/get", b"", qos=1)
    assert json.loads(dev2.get().payload)["state"]["delta"] == {"fw": "2.0"}


def test_shadow_survives_kill_9(server):
    c = shadow_client(server, "app-k", "meter")
    for i in range(5):
        request(c, "update", {"state": {"reported": {"kwh": i}}})
        expect(c, "update/accepted"), expect(c, "update/documents")
    server.kill9()
    server.start()
    c = shadow_client(server, "app-k2", "meter")
    request(c, "get", None)
    doc = expect(c, "get/accepted")
    assert doc["version"] == 5 and doc["state"] == {"reported": {"kwh": 4}}


def test_concurrent_writers_serial_result(make_server):
    # Writers publish without waiting for accepted: allow them more than AWS's 10 requests in flight.
    server = make_server("[shadow]\nmax_inflight_per_client = 1000\n")
    import boto3
    key, secret = server.credentials()
    writers, per = 8, 15

    def versionless(i):
        c = Client(server.port, f"vw-{i}")
        c.connect()
        for k in range(per):
            c.publish("$aws/things/shared/shadow/update", json.dumps({"state": {"reported": {f"w{i}": k}}}), qos=1)
        c.disconnect()

    threads = [threading.Thread(target=versionless, args=(i,)) for i in range(writers)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    data = boto3.client("iot-data", endpoint_url=server.api_url, region_name="us-east-1", aws_access_key_id=key,
                        aws_secret_access_key=secret, verify=server.ca)

    def doc():
        return json.loads(data.get_thing_shadow(thingName="shared")["payload"].read())

    wait_for(lambda: doc()["version"] == writers * per, what="every update applied")
    assert doc()["state"]["reported"] == {f"w{i}": per - 1 for i in range(writers)}

    # Versioned read-modify-write increments: conflicts are retried, none is lost.
    def incrementer(n):
        for _ in range(n):
            while True:
                d = doc()
                count = d["state"].get("reported", {}).get("count", 0)
                try:
                    data.update_thing_shadow(thingName="shared", payload=json.dumps(
                        {"state": {"reported": {"count": count + 1}}, "version": d["version"]}))
                    break
                except botocore.exceptions.ClientError as e:
                    assert e.response["Error"]["Code"] == "ConflictException"

    threads = [threading.Thread(target=incrementer, args=(10,)) for _ in range(4)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    final = doc()
    assert final["state"]["reported"]["count"] == 40
    assert final["version"] == writers * per + 40


def test_device_policy_limits_shadow_access(server, tmp_path):
    from conftest import FLEETCORE
    r = subprocess.run([FLEETCORE, "device", "create", "--name", "dev-s", "--out", str(tmp_path), "--data-dir",
                        server.data_dir], capture_output=True, text=True, check=True)
    info = json.loads(r.stdout)
    tls = {"ca_certs": info["rootCAFile"], "certfile": info["certificateFile"], "keyfile": info["privateKeyFile"],
           "cert_reqs": ssl.CERT_REQUIRED}
    dev = Client(server.ports["mqtts"], "dev-s")
    dev.connect(tls=tls)
    assert [g.value for g in dev.subscribe("$aws/things/dev-s/shadow/update/accepted", 1)] == [1]
    assert [g.value for g in dev.subscribe("$aws/things/other/shadow/update/accepted", 1)] == [0x87]
    dev.publish("$aws/things/dev-s/shadow/update", json.dumps({"state": {"reported": {"ok": 1}}}), qos=1)
    assert json.loads(dev.get().payload)["state"] == {"reported": {"ok": 1}}
    watcher = shadow_client(server, "w-s", "other")
    denied = server.metric("fleetcore_denied_total")
    assert publish_rc(server.ports["mqtts"], "$aws/things/other/shadow/update", client_id="dev-s",
                      cafile=info["rootCAFile"], cert=info["certificateFile"], key=info["privateKeyFile"],
                      payload=json.dumps({"state": {"reported": {"evil": 1}}})) == 0x87
    assert server.metric("fleetcore_denied_total") == denied + 1
    watcher.no_message()
    request(watcher, "get", None)
    assert expect(watcher, "get/rejected")["code"] == 404  # nothing was written to the other shadow


# Node connects to the first address `localhost` resolves to: ::1 on Debian's default /etc/hosts,
# 127.0.0.1 elsewhere. Both must work.
@pytest.mark.parametrize("host", ["::1", "127.0.0.1"])
def test_aws_iot_device_sdk_thing_shadow(server, tmp_path, host):
    from conftest import FLEETCORE
    r = subprocess.run([FLEETCORE, "device", "create", "--name", "js-dev", "--out", str(tmp_path), "--data-dir",
                        server.data_dir], capture_output=True, text=True, check=True)
    info = json.loads(r.stdout)
    proc = subprocess.Popen(["node", os.path.join(JS, "shadow_device.js"), host, str(server.ports["mqtts"]),
                             info["rootCAFile"], info["certificateFile"], info["privateKeyFile"], "js-dev"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    events = queue.Queue()
    threading.Thread(target=lambda: [events.put(json.loads(line)) for line in proc.stdout], daemon=True).start()

    def next_event(kind):
        while True:
            e = events.get(timeout=TIMEOUT)
            if e["event"] in ("error", "register_failed", "close"):
                raise AssertionError(f"device SDK: {e}\n{proc.stderr.read() if proc.poll() is not None else ''}")
            if e["event"] == kind:
                return e

    try:
        next_event("registered")
        first = next_event("status")
        assert (first["stat"], first["why"], first["version"]) == ("accepted", "initial", 1)
        # The app sets a desired state over HTTP; the SDK gets the delta and reports it back.
        server.aws("iot-data", "update-thing-shadow", "--thing-name", "js-dev", "--cli-binary-format",
                   "raw-in-base64-out", "--payload", '{"state":{"desired":{"mode":"heat","temp":23}}}', os.devnull)
        delta = next_event("delta")
        assert delta["state"] == {"mode": "heat", "temp": 23} and delta["version"] == 2
        obey = next_event("status")
        assert (obey["stat"], obey["why"], obey["version"]) == ("accepted", "obey", 3)
        proc.stdin.write("get\n")
        proc.stdin.flush()
        got = next_event("status")
        assert got["stat"] == "accepted" and got["version"] == 3
        assert got["state"]["reported"] == {"temp": 23, "mode": "heat"} and "delta" not in got["state"]
    finally:
        proc.kill()
        proc.wait()


def test_more_than_ten_requests_in_flight_get_429(server):
    from helpers import Raw, connect_bytes, encode_varint
    watcher = shadow_client(server, "watch-429", "busy")
    raw = Raw(server.port)
    raw.send(connect_bytes(b"flooder", version=4))
    assert raw.read_packet()[:2] == b"\x20\x02"
    topic = b"$aws/things/busy/shadow/update"
    burst = b""
    for i in range(30):
        body = len(topic).to_bytes(2, "big") + topic + json.dumps(
            {"state": {"reported": {"n": i}}, "clientToken": f"c{i}"}).encode()
        burst += b"\x30" + encode_varint(len(body)) + body
    raw.send(burst)  # one read on the server: all 30 arrive before any is committed
    accepted, throttled = 0, 0
    while accepted + throttled < 30:
        m = watcher.get()
        if m.topic.endswith("/update/accepted"):
            accepted += 1
        elif m.topic.endswith("/update/rejected"):
            doc = json.loads(m.payload)
            assert (doc["code"], doc["message"]) == (429, "Too Many Requests") and doc["clientToken"].startswith("c")
            throttled += 1
    assert (accepted, throttled) == (10, 20)  # one read: 10 admitted before any is released
    request(watcher, "get", None)
    while not (m := watcher.get()).topic.endswith("/get/accepted"):
        assert m.topic.endswith("/update/documents"), m.topic  # the last updates' documents come first
    assert json.loads(m.payload)["version"] == accepted  # refused requests changed nothing
    raw.close()


def test_device_https_with_client_certificate(server, tmp_path):
    """AWS IoT's device HTTPS on the WebSocket port: curl with the device certificate, no SigV4."""
    from test_identity import device
    iot = server.iot()
    arn = "arn:aws:iot:us-east-1:000000000000"
    cert, key, cid = device(server, tmp_path, "dev-h", policy=None)
    iot.create_policy(policyName="dev-h-http", policyDocument=json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": ["iot:GetThingShadow", "iot:UpdateThingShadow"],
         "Resource": [f"{arn}:thing/dev-h", f"{arn}:thing/dev-h/*"]},
        {"Effect": "Allow", "Action": "iot:Publish", "Resource": f"{arn}:topic/telemetry/dev-h"}]}))
    iot.attach_policy(policyName="dev-h-http",
                      target=iot.describe_certificate(certificateId=cid)["certificateDescription"]["certificateArn"])
    base = f"https://localhost:{server.ports['wss']}"
    curl = server.device_https(cert, key)

    sub = Client(server.port, "tele-sub")
    sub.connect()
    sub.subscribe("telemetry/#", 1)
    code, _ = curl("POST", "/topics/telemetry/dev-h?qos=1", '{"t":21}')
    assert code == 200
    m = sub.get()
    assert (m.topic, json.loads(m.payload)) == ("telemetry/dev-h", {"t": 21})
    assert curl("POST", "/topics/telemetry/other?qos=1", "{}")[0] == 403

    code, text = curl("POST", "/things/dev-h/shadow", '{"state":{"reported":{"on":true}}}')
    assert code == 200 and json.loads(text)["version"] == 1
    code, text = curl("GET", "/things/dev-h/shadow?name=cfg")
    assert code == 404 and "No shadow exists" in text
    code, text = curl("GET", "/things/dev-h/shadow")
    assert code == 200 and json.loads(text)["state"] == {"reported": {"on": True}}
    assert curl("DELETE", "/things/dev-h/shadow")[0] == 403  # no iot:DeleteThingShadow
    assert curl("GET", "/things/other/shadow")[0] == 403
    # Without a client certificate the TLS handshake itself fails.
    r = subprocess.run(["curl", "-s", "--cacert", server.ca, base + "/things/dev-h/shadow"], capture_output=True,
                       timeout=TIMEOUT)
    assert r.returncode != 0
