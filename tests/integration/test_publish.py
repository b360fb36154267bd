"""PUBLISH and SUBSCRIBE with real clients: QoS 0/1/2, wildcards, $-topics, redelivery."""
import subprocess

import pytest

from helpers import Client, Raw, connect_bytes, granted_qos, mosquitto, wait_for


@pytest.mark.parametrize("version", [4, 5])
@pytest.mark.parametrize("qos", [0, 1, 2])
def test_paho_publish_subscribe(server, version, qos):
    sub = Client(server.port, "sub", version=version)
    sub.connect()
    assert granted_qos(sub.subscribe("t/+/x", qos)) == [qos]
    pub = Client(server.port, "pub", version=version)
    pub.connect()
    pub.publish("t/a/x", b"hello", qos=qos)
    m = sub.get()
    assert (m.topic, m.payload, m.qos) == ("t/a/x", b"hello", qos)


@pytest.mark.parametrize("version", ["mqttv311", "mqttv5"])
@pytest.mark.parametrize("qos", ["0", "1", "2"])
def test_mosquitto_clients(server, version, qos):
    sub = subprocess.Popen(["mosquitto_sub", "-p", str(server.port), "-V", version, "-q", qos, "-t", "m/#", "-C", "2",
                            "-v", "-W", "10"], stdout=subprocess.PIPE, text=True)
    wait_for(lambda: server.metric("fleetcore_subscriptions") == 1, what="subscription")
    mosquitto("mosquitto_pub", "-p", str(server.port), "-V", version, "-q", qos, "-t", "m/1", "-m", "one")
    mosquitto("mosquitto_pub", "-p", str(server.port), "-V", version, "-q", qos, "-t", "m/2/deep", "-m", "two")
    out, _ = sub.communicate(timeout=10)
    assert out.splitlines() == ["m/1 one", "m/2/deep two"]


def test_wildcards(server):
    sub = Client(server.port, "sub")
    sub.connect()
    sub.subscribe("a/+/c", 0)
    sub.subscribe("x/#", 0)
    pub = Client(server.port, "pub")
    pub.connect()
    for t in ["a/b/c", "a/b/d", "a/b/c/d", "x", "x/y/z", "a//c"]:
        pub.publish(t, t.encode(), qos=1)
    got = sorted(sub.get().topic for _ in range(4))
    assert got == ["a//c", "a/b/c", "x", "x/y/z"]
    sub.no_message()


def test_dollar_topics_not_matched_by_root_wildcards(server):
    sub = Client(server.port, "sub")
    sub.connect()
    sub.subscribe("#", 1)
    sub.subscribe("+/status", 1)
    sys_sub = Client(server.port, "sys")
    sys_sub.connect()
    sys_sub.subscribe("$aws/things/+/shadow/update", 1)
    pub = Client(server.port, "pub")
    pub.connect()
    pub.publish("$aws/things/t1/shadow/update", b"{}", qos=1)
    pub.publish("$x/status", b"s", qos=1)
    pub.publish("plain", b"p", qos=1)
    assert sys_sub.get().topic == "$aws/things/t1/shadow/update"
    assert sub.get().topic == "plain"
    sub.no_message()


def test_overlapping_subscriptions_deliver_once_with_max_qos(server):
    sub = Client(server.port, "sub")
    sub.connect()
    sub.subscribe("o/#", 0)
    sub.subscribe("o/+", 1)
    pub = Client(server.port, "pub")
    pub.connect()
    pub.publish("o/1", b"x", qos=1)
    assert sub.get().qos == 1
    sub.no_message()


def test_qos1_redelivered_with_dup_after_reconnect(server):
    r = Raw(server.port)
    r.send(connect_bytes(b"redeliver", version=4, clean=False))
    assert r.read_packet() == b"\x20\x02\x00\x00"
    r.send(b"\x82\x08\x00\x01\x00\x03r/q\x01")  # SUBSCRIBE r/q QoS 1
    assert r.read_packet() == b"\x90\x03\x00\x01\x01"
    pub = Client(server.port, "pub", version=4)
    pub.connect()
    pub.publish("r/q", b"payload", qos=1)
    first = r.read_packet()
    assert first[0] == 0x32  # PUBLISH QoS 1, no DUP
    packet_id = first[7:9]
    r.close()  # no PUBACK
    r2 = Raw(server.port)
    r2.send(connect_bytes(b"redeliver", version=4, clean=False))
    assert r2.read_packet() == b"\x20\x02\x01\x00"  # session present
    again = r2.read_packet()
    assert again[0] == 0x3A  # PUBLISH QoS 1 with DUP
    assert again[7:9] == packet_id and again.endswith(b"payload")
    r2.send(b"\x40\x02" + packet_id)
    r2.send(b"\xe0\x00")


def test_qos2_pubrel_resent_after_reconnect(server):
    r = Raw(server.port)
    r.send(connect_bytes(b"q2", version=4, clean=False))
    r.read_packet()
    r.send(b"\x82\x08\x00\x01\x00\x03r/2\x02")
    r.read_packet()
    pub = Client(server.port, "pub", version=4)
    pub.connect()
    pub.publish("r/2", b"exactly-once", qos=2)
    p = r.read_packet()
    assert p[0] == 0x34
    pid = p[7:9]
    r.send(b"\x50\x02" + pid)  # PUBREC
    assert r.read_packet() == b"\x62\x02" + pid  # PUBREL
    r.close()
    r2 = Raw(server.port)
    r2.send(connect_bytes(b"q2", version=4, clean=False))
    assert r2.read_packet() == b"\x20\x02\x01\x00"
    assert r2.read_packet() == b"\x62\x02" + pid  # PUBREL again, not the message
    r2.send(b"\x70\x02" + pid)  # PUBCOMP
    r2.send(b"\xc0\x00")
    assert r2.read_packet() == b"\xd0\x00"  # nothing else was pending


def test_inbound_qos2_duplicate_routed_once(server):
    sub = Client(server.port, "sub")
    sub.connect()
    sub.subscribe("d/2", 2)
    r = Raw(server.port)
    r.send(connect_bytes(b"dup-pub", version=4))
    r.read_packet()
    publish = b"\x34\x0a\x00\x03d/2\x00\x07abc"
    r.send(publish)
    assert r.read_packet() == b"\x50\x02\x00\x07"
    r.send(b"\x3c" + publish[1:])  # same packet id with DUP before PUBREL
    assert r.read_packet() == b"\x50\x02\x00\x07"
    r.send(b"\x62\x02\x00\x07")
    assert r.read_packet() == b"\x70\x02\x00\x07"
    assert sub.get().payload == b"abc"
    sub.no_message()


def test_unsubscribe(server):
    sub = Client(server.port, "sub")
    sub.connect()
    sub.subscribe("u/1", 1)
    sub.c.unsubscribe(["u/1", "never/subscribed"])
    _, reasons = sub.unsubacks.get(timeout=10)
    assert [r.value for r in reasons] == [0x00, 0x11]
    pub = Client(server.port, "pub")
    pub.connect()
    pub.publish("u/1", b"x", qos=1)
    sub.no_message()
