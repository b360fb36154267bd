"""MQTT 5 features end to end with paho (and raw bytes where paho hides the wire)."""
import json
import os
import subprocess

import pytest
from paho.mqtt.subscribeoptions import SubscribeOptions

from helpers import (Client, PacketTypes, Raw, connect_bytes, disconnect_reason, encode_varint, parse_publish, props,
                     subscribe_bytes, wait_for)

JS = os.path.join(os.path.dirname(__file__), "js")


def test_properties_forwarded(server):
    sub = Client(server.port, "sub")
    sub.connect()
    sub.subscribe("p/t", 1)
    pub = Client(server.port, "pub")
    pub.connect()
    p = props(PacketTypes.PUBLISH, PayloadFormatIndicator=1, ContentType="application/json",
              ResponseTopic="p/reply", CorrelationData=b"\x01\x02", UserProperty=[("a", "1"), ("a", "2"), ("b", "x")])
    pub.publish("p/t", b'{"ok":true}', qos=1, properties=p)
    m = sub.get()
    assert m.properties.PayloadFormatIndicator == 1
    assert m.properties.ContentType == "application/json"
    assert m.properties.ResponseTopic == "p/reply"
    assert m.properties.CorrelationData == b"\x01\x02"
    assert m.properties.UserProperty == [("a", "1"), ("a", "2"), ("b", "x")]


def test_request_response(server):
    responder = Client(server.port, "responder")
    responder.connect()
    responder.subscribe("svc/req", 1)
    requester = Client(server.port, "requester")
    requester.connect()
    requester.subscribe("svc/resp/requester", 1)
    requester.publish("svc/req", b"ping", qos=1,
                      properties=props(PacketTypes.PUBLISH, ResponseTopic="svc/resp/requester", CorrelationData=b"42"))
    req = responder.get()
    responder.publish(req.properties.ResponseTopic, b"pong", qos=1,
                      properties=props(PacketTypes.PUBLISH, CorrelationData=req.properties.CorrelationData))
    resp = requester.get()
    assert (resp.payload, resp.properties.CorrelationData) == (b"pong", b"42")


def test_invalid_utf8_payload_with_format_indicator(server):
    r = Raw(server.port)
    r.send(connect_bytes(b"pfi"))
    r.read_packet()
    # PUBLISH QoS 0 topic "t", properties: payload format indicator 1; payload 0xFF.
    r.send(b"\x30\x07\x00\x01t\x02\x01\x01\xff")
    assert disconnect_reason(r.read_packet()) == 0x99


def test_topic_alias(server):
    sub = Client(server.port, "sub")
    sub.connect()
    sub.subscribe("alias/long/topic/name", 1)
    r = Raw(server.port)
    r.send(connect_bytes(b"aliaser"))
    r.read_packet()
    topic = b"alias/long/topic/name"
    # First PUBLISH sets alias 1, second uses it with an empty topic.
    r.send(b"\x30" + encode_varint(2 + len(topic) + 4 + 3) + len(topic).to_bytes(2, "big") + topic + b"\x03\x23\x00\x01one")
    r.send(b"\x30" + encode_varint(2 + 4 + 3) + b"\x00\x00" + b"\x03\x23\x00\x01two")
    got = [sub.get(), sub.get()]
    assert [(m.topic, m.payload) for m in got] == [(topic.decode(), b"one"), (topic.decode(), b"two")]
    # An alias above the maximum we announced (32) is a protocol violation.
    r.send(b"\x30" + encode_varint(2 + 4 + 1) + b"\x00\x00" + b"\x03\x23\x00\x40x")
    assert disconnect_reason(r.read_packet()) == 0x94


def test_unknown_topic_alias_is_protocol_error(server):
    r = Raw(server.port)
    r.send(connect_bytes(b"aliaser"))
    r.read_packet()
    r.send(b"\x30" + encode_varint(2 + 4 + 1) + b"\x00\x00" + b"\x03\x23\x00\x05x")
    assert disconnect_reason(r.read_packet()) == 0x82


def test_subscription_identifiers(server):
    sub = Client(server.port, "sub")
    sub.connect()
    sub.subscribe("sid/#", 1, properties=props(PacketTypes.SUBSCRIBE, SubscriptionIdentifier=7))
    sub.subscribe("sid/+", 1, properties=props(PacketTypes.SUBSCRIBE, SubscriptionIdentifier=9))
    pub = Client(server.port, "pub")
    pub.connect()
    pub.publish("sid/x", b"x", qos=1)
    m = sub.get()
    assert sorted(m.properties.SubscriptionIdentifier) == [7, 9]
    sub.no_message()


def test_no_local(server):
    c = Client(server.port, "self")
    c.connect()
    c.subscribe("nl/t", options=SubscribeOptions(qos=1, noLocal=True))
    c.subscribe("nl/other", options=SubscribeOptions(qos=1))
    c.publish("nl/t", b"mine", qos=1)
    c.publish("nl/other", b"mine-too", qos=1)
    assert c.get().topic == "nl/other"
    other = Client(server.port, "other")
    other.connect()
    other.publish("nl/t", b"theirs", qos=1)
    assert c.get().payload == b"theirs"


def test_shared_subscriptions_distribute(server):
    members = [Client(server.port, f"m{i}") for i in range(3)]
    for m in members:
        m.connect()
        m.subscribe("$share/workers/jobs/+", 1)
    plain = Client(server.port, "plain")
    plain.connect()
    plain.subscribe("jobs/+", 1)
    pub = Client(server.port, "pub")
    pub.connect()
    for i in range(30):
        pub.publish(f"jobs/{i}", str(i).encode(), qos=1)
    got = []
    for m in members:
        while True:
            try:
                got.append((m.c._client_id, m.messages.get(timeout=0.5).payload))
            except Exception:
                break
    assert sorted(int(p) for _, p in got) == list(range(30))  # each message to exactly one member
    assert len({cid for cid, _ in got}) == 3  # and every member got some
    assert len([plain.get() for _ in range(30)]) == 30  # non-shared subscribers get all


def test_shared_subscription_rejects_no_local(server):
    r = Raw(server.port)
    r.send(connect_bytes(b"shared"))
    r.read_packet()
    r.send(subscribe_bytes(1, (b"$share/g/t", 0x05)))
    assert disconnect_reason(r.read_packet()) == 0x82


def test_invalid_filters_get_reason_codes(server):
    r = Raw(server.port)
    r.send(connect_bytes(b"filters"))
    r.read_packet()
    r.send(subscribe_bytes(3, (b"ok/+", 1), (b"bad/#/x", 1), (b"$share//x", 0), (b"$share/g/y/#", 2), (b"a+/b", 0)))
    assert r.read_packet() == b"\x90\x08\x00\x03\x00" + bytes([1, 0x8F, 0x8F, 2, 0x8F])


def test_receive_maximum_limits_inflight(server):
    # Client announces receive maximum 2 and does not acknowledge: at most 2 QoS 1 PUBLISHes arrive.
    r = Raw(server.port)
    r.send(connect_bytes(b"slow", props=b"\x03\x21\x00\x02"))
    r.read_packet()
    r.send(subscribe_bytes(1, (b"rm/t", 1)))
    suback = r.read_packet()
    assert suback[0] == 0x90
    pub = Client(server.port, "pub")
    pub.connect()
    for i in range(5):
        pub.publish("rm/t", str(i).encode(), qos=1)
    first, second = r.read_packet(), r.read_packet()
    assert first.endswith(b"0") and second.endswith(b"1")
    r.send(b"\xc0\x00")
    assert r.read_packet() == b"\xd0\x00"  # PINGRESP, not a third PUBLISH
    r.send(b"\x40\x02" + first[8:10])  # PUBACK the first: one more may come
    third = r.read_packet()
    assert third.endswith(b"2")
    r.send(b"\xc0\x00")
    assert r.read_packet() == b"\xd0\x00"


def test_client_maximum_packet_size_respected(server):
    sub = Client(server.port, "small")
    sub.connect(properties=props(PacketTypes.CONNECT, MaximumPacketSize=100))
    sub.subscribe("mp/t", 1)
    pub = Client(server.port, "pub")
    pub.connect()
    pub.publish("mp/t", b"x" * 200, qos=1)
    pub.publish("mp/t", b"small", qos=1)
    assert sub.get().payload == b"small"
    assert server.metric('fleetcore_dropped_messages_total{reason="too_large"}') == 1


def test_message_expiry_for_offline_session(server):
    sub = Client(server.port, "offline", clean=False)
    sub.connect(properties=props(PacketTypes.CONNECT, SessionExpiryInterval=60))
    sub.subscribe("me/t", 1)
    sub.disconnect()
    pub = Client(server.port, "pub")
    pub.connect()
    pub.publish("me/t", b"short", qos=1, properties=props(PacketTypes.PUBLISH, MessageExpiryInterval=1))
    pub.publish("me/t", b"long", qos=1, properties=props(PacketTypes.PUBLISH, MessageExpiryInterval=100))
    wait_for(lambda: server.metric("fleetcore_queued_messages") == 2, what="queued")
    import time
    time.sleep(1.2)  # the message's own expiry interval elapses
    back = Client(server.port, "offline", clean=False)
    back.connect(properties=props(PacketTypes.CONNECT, SessionExpiryInterval=60))
    m = back.get()
    assert m.payload == b"long"
    assert 95 <= m.properties.MessageExpiryInterval <= 100
    back.no_message()


def test_session_expiry(server):
    c = Client(server.port, "brief", clean=False)
    c.connect(properties=props(PacketTypes.CONNECT, SessionExpiryInterval=1))
    c.subscribe("se/t", 1)
    c.disconnect()
    wait_for(lambda: server.metric("fleetcore_sessions") == 0, timeout=5, what="session to expire")
    again = Client(server.port, "brief", clean=False)
    flags, _, _ = again.connect(properties=props(PacketTypes.CONNECT, SessionExpiryInterval=1))
    assert flags["session present"] == 0


def test_clean_start_discards_session(server):
    c = Client(server.port, "cs", clean=False)
    c.connect(properties=props(PacketTypes.CONNECT, SessionExpiryInterval=60))
    c.subscribe("cs/t", 1)
    c.disconnect()
    fresh = Client(server.port, "cs", clean=True)
    flags, _, _ = fresh.connect(properties=props(PacketTypes.CONNECT, SessionExpiryInterval=60))
    assert flags["session present"] == 0
    pub = Client(server.port, "pub")
    pub.connect()
    pub.publish("cs/t", b"x", qos=1)
    fresh.no_message()


def test_puback_no_matching_subscribers(server):
    r = Raw(server.port)
    r.send(connect_bytes(b"lonely"))
    r.read_packet()
    r.send(b"\x32\x07\x00\x02nm\x00\x05\x00")  # QoS 1, id 5, no properties, empty payload
    assert r.read_packet() == b"\x40\x03\x00\x05\x10"


def alias(n):
    """The property bytes of Topic Alias `n` (0x23), the only property these messages carry."""
    return b"\x23" + n.to_bytes(2, "big")


def test_server_topic_aliases_up_to_the_clients_maximum(server):
    """Toward a client that accepts 2 aliases: a topic's first message carries topic and alias, the
    next ones the alias alone; a third topic goes without one. A client that accepts none gets none."""
    r = Raw(server.port)
    r.send(connect_bytes(b"aliased", props=b"\x03\x22\x00\x02"))  # Topic Alias Maximum 2
    assert r.read_packet()[0] == 0x20
    r.send(subscribe_bytes(1, (b"al/#", 0)))
    assert r.read_packet()[0] == 0x90
    plain = Raw(server.port)
    plain.send(connect_bytes(b"plain"))
    assert plain.read_packet()[0] == 0x20
    plain.send(subscribe_bytes(1, (b"al/#", 0)))
    assert plain.read_packet()[0] == 0x90
    pub = Client(server.port, "al-pub")
    pub.connect()
    sent = ["al/a", "al/a", "al/b", "al/c", "al/a", "al/b", "al/c"]
    for i, t in enumerate(sent):
        pub.publish(t, str(i).encode(), qos=0)
    got = [parse_publish(r.read_packet())[4:] for _ in sent]
    assert got == [(b"al/a", alias(1), b"0"), (b"", alias(1), b"1"), (b"al/b", alias(2), b"2"), (b"al/c", b"", b"3"),
                   (b"", alias(1), b"4"), (b"", alias(2), b"5"), (b"al/c", b"", b"6")]
    assert [parse_publish(plain.read_packet())[4:] for _ in sent] == [(t.encode(), b"", str(i).encode())
                                                                      for i, t in enumerate(sent)]


def test_aws_device_sdk_v2_resolves_server_topic_aliases(server):
    """The AWS IoT Device SDK v2 (aws-crt's MQTT 5 client, inbound aliasing enabled) gets every topic
    right while the broker sends the repeats by alias."""
    proc = subprocess.Popen(["node", os.path.join(JS, "topic_alias_device.js"), "127.0.0.1", str(server.port),
                             "crt-alias", "al/#", "5"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert json.loads(proc.stdout.readline()) == {"event": "subscribed"}
    pub = Client(server.port, "al-pub")
    pub.connect()
    sent = ["al/x", "al/x", "al/y", "al/x", "al/y"]
    for i, t in enumerate(sent):
        pub.publish(t, str(i).encode(), qos=1)
    out, err = proc.communicate(timeout=10)
    got = [json.loads(line) for line in out.splitlines()]
    assert got == [{"event": "message", "topic": t, "payload": str(i)} for i, t in enumerate(sent)], err
    assert proc.returncode == 0
