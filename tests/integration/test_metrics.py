"""The /metrics endpoint: Prometheus text format, counters that follow what clients do."""
import urllib.request

from helpers import Client, wait_for


def test_metrics_follow_traffic(server):
    body = urllib.request.urlopen(f"http://127.0.0.1:{server.ports['metrics']}/metrics").read().decode()
    assert "# TYPE fleetcore_connections gauge" in body
    assert "# TYPE fleetcore_messages_in_total counter" in body
    sub = Client(server.port, "sub")
    sub.connect()
    sub.subscribe("m/#", 1)
    pub = Client(server.port, "pub", version=4)
    pub.connect()
    pub.publish("m/a", b"12345", qos=1)
    pub.publish("m/b", b"123", qos=0, retain=True)
    sub.get(), sub.get()
    m = server.metrics()
    assert m["fleetcore_connections"] == 2
    assert m['fleetcore_connects_total{result="success"}'] == 2
    assert m['fleetcore_messages_in_total{qos="1"}'] == 1
    assert m['fleetcore_messages_in_total{qos="0"}'] == 1
    assert m['fleetcore_payload_bytes_in_total{qos="1"}'] == 5
    assert m['fleetcore_messages_out_total{qos="1"}'] == 1
    assert m['fleetcore_payload_bytes_out_total{qos="0"}'] == 3
    assert m["fleetcore_retained_messages"] == 1
    assert m["fleetcore_subscriptions"] == 1
    assert m["fleetcore_bytes_in_total"] > 0 and m["fleetcore_bytes_out_total"] > 0
    sub.disconnect()
    pub.disconnect()
    wait_for(lambda: server.metric("fleetcore_connections") == 0, what="connections to close")


def test_healthz_and_unknown_paths(server):
    base = f"http://127.0.0.1:{server.ports['metrics']}"
    assert urllib.request.urlopen(base + "/healthz").read() == b"ok\n"
    try:
        urllib.request.urlopen(base + "/nope")
        raise AssertionError("expected 404")
    except urllib.error.HTTPError as e:
        assert e.code == 404
