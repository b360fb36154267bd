"""AWS IoT lifecycle events (issue 10): $aws/events/presence/{connected,disconnected}/<clientId> and
$aws/events/subscriptions/{subscribed,unsubscribed}/<clientId>, field by field as life-cycle-events.md
gives them, published by fleetcore alone."""
import json
import re
import ssl
import subprocess
import time

import pytest

from helpers import Client, Raw, connect_bytes, mosquitto, publish_rc, wait_for


def watcher(server, topic="$aws/events/#"):
    w = Client(server.port, "events-watcher")
    w.connect()
    w.subscribe(topic, 1)
    return w


def event(w, topic):
    """The next event on `topic` (others are skipped)."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        m = w.get(timeout=max(0.1, deadline - time.monotonic()))
        if m.topic == topic:
            return json.loads(m.payload)
    raise AssertionError(f"no event on {topic}")


def assert_common(e, client_id, event_type, principal=""):
    assert e["clientId"] == client_id
    assert e["eventType"] == event_type
    assert abs(e["timestamp"] - time.time() * 1000) < 60_000  # milliseconds since the epoch
    assert re.fullmatch(r"[0-9a-f]{32}", e["sessionIdentifier"])
    assert e["principalIdentifier"] == principal


def test_connect_and_client_initiated_disconnect(server):
    w = watcher(server)
    dev = Client(server.port, "dev-1")
    dev.connect()
    c = event(w, "$aws/events/presence/connected/dev-1")
    assert_common(c, "dev-1", "connected")
    assert c["ipAddress"] == "127.0.0.1"
    assert isinstance(c["versionNumber"], int)
    assert set(c) == {"clientId", "timestamp", "eventType", "sessionIdentifier", "principalIdentifier", "ipAddress",
                      "versionNumber"}
    dev.disconnect()
    d = event(w, "$aws/events/presence/disconnected/dev-1")
    assert_common(d, "dev-1", "disconnected")
    assert (d["clientInitiatedDisconnect"], d["disconnectReason"]) == (True, "CLIENT_INITIATED_DISCONNECT")
    assert (d["sessionIdentifier"], d["versionNumber"]) == (c["sessionIdentifier"], c["versionNumber"])
    assert "ipAddress" not in d


def test_takeover_is_duplicate_clientid_and_the_new_connection_orders_after(server):
    w = watcher(server)
    first = Client(server.port, "twin")
    first.connect()
    c1 = event(w, "$aws/events/presence/connected/twin")
    second = Client(server.port, "twin")
    second.connect()
    d = event(w, "$aws/events/presence/disconnected/twin")
    c2 = event(w, "$aws/events/presence/connected/twin")
    assert (d["disconnectReason"], d["clientInitiatedDisconnect"]) == ("DUPLICATE_CLIENTID", False)
    assert d["versionNumber"] == c1["versionNumber"]
    assert c2["versionNumber"] > c1["versionNumber"]


def test_connection_lost_and_keepalive_timeout(make_server):
    server = make_server("[limits]\nmax_keep_alive = 1\n")
    w = Client(server.port, "events-watcher")
    w.connect(keepalive=1)
    w.subscribe("$aws/events/presence/disconnected/+", 1)
    dev = Client(server.port, "lost")
    dev.connect()
    dev.drop()
    assert event(w, "$aws/events/presence/disconnected/lost")["disconnectReason"] == "CONNECTION_LOST"
    raw = Raw(server.port)
    raw.send(connect_bytes(b"sleepy", keepalive=1))  # then silent
    assert raw.read_packet()[0] == 0x20
    e = event(w, "$aws/events/presence/disconnected/sleepy")
    assert (e["disconnectReason"], e["clientInitiatedDisconnect"]) == ("MQTT_KEEP_ALIVE_TIMEOUT", False)


def test_revoked_certificate_is_auth_error_with_its_certificate_id(server, tmp_path):
    w = watcher(server)
    cert, key = server.issue_cert("tls-dev", tmp_path)
    iot = server.iot()
    cert_id = next(c["certificateId"] for c in iot.list_certificates()["certificates"])
    dev = Client(server.ports["mqtts"], "tls-dev")
    dev.connect(tls={"ca_certs": server.ca, "certfile": cert, "keyfile": key, "cert_reqs": ssl.CERT_REQUIRED})
    c = event(w, "$aws/events/presence/connected/tls-dev")
    assert c["principalIdentifier"] == cert_id
    iot.update_certificate(certificateId=cert_id, newStatus="REVOKED")
    d = event(w, "$aws/events/presence/disconnected/tls-dev")
    assert (d["disconnectReason"], d["principalIdentifier"]) == ("AUTH_ERROR", cert_id)


def test_subscribed_and_unsubscribed_events(server):
    w = watcher(server)
    dev = Client(server.port, "subber")
    dev.connect()
    dev.subscribe([("a/b", 1), ("c/#", 0)])
    s = event(w, "$aws/events/subscriptions/subscribed/subber")
    assert_common(s, "subber", "subscribed")
    assert sorted(s["topics"]) == ["a/b", "c/#"]
    dev.c.unsubscribe("a/b")
    u = event(w, "$aws/events/subscriptions/unsubscribed/subber")
    assert_common(u, "subber", "unsubscribed")
    assert u["topics"] == ["a/b"]


def test_mosquitto_sub_receives_events(server):
    sub = subprocess.Popen(["mosquitto_sub", "-h", "127.0.0.1", "-p", str(server.port), "-t",
                            "$aws/events/presence/connected/+", "-C", "1", "-W", "10"], stdout=subprocess.PIPE, text=True)
    wait_for(lambda: server.metric("fleetcore_subscriptions") == 1, what="mosquitto_sub")
    mosquitto("mosquitto_pub", "-h", "127.0.0.1", "-p", str(server.port), "-i", "mq-dev", "-t", "x", "-m", "y")
    e = json.loads(sub.communicate(timeout=10)[0])
    assert (e["clientId"], e["eventType"]) == ("mq-dev", "connected")


def test_only_fleetcore_publishes_events(server):
    w = watcher(server, "$aws/events/presence/connected/forged")
    assert publish_rc(server.port, "$aws/events/presence/connected/forged", client_id="forger",
                      payload='{"clientId":"forged"}') == 0x87
    w.no_message(timeout=1)


def test_client_ids_with_wildcards_get_no_events(server):
    w = watcher(server, "$aws/events/presence/#")
    dev = Client(server.port, "a+b")
    dev.connect()
    dev.disconnect()
    ok = Client(server.port, "plain")
    ok.connect()
    # The next presence event is the plain client's: none was published for a+b.
    assert json.loads(w.get().payload)["clientId"] == "plain"
