"""MQTT 5 conformance of what clients send, checked from raw bytes: wildcards in a Response Topic
[MQTT-3.3.2-14], a Subscription Identifier in a client's PUBLISH [MQTT-3.3.4-6], and non-minimal
Variable Byte Integers [MQTT-1.5.5-1] close the connection with DISCONNECT 0x82 or 0x81."""
import pytest

from helpers import Client, Raw, connect_bytes, disconnect_reason

PROTOCOL_ERRORS = "fleetcore_protocol_errors_total"


def connected(server, client_id):
    r = Raw(server.port)
    r.send(connect_bytes(client_id))
    connack = r.read_packet()
    assert (connack[0], connack[3]) == (0x20, 0x00)  # CONNACK, success
    return r


@pytest.mark.parametrize("packet, reason", [
    # PUBLISH "t", Response Topic "r/#" / "r/+" / "" (a topic name: no wildcards, not empty).
    (b"\x30\x0a\x00\x01t\x06\x08\x00\x03r/#", 0x82),
    (b"\x30\x0a\x00\x01t\x06\x08\x00\x03r/+", 0x82),
    (b"\x30\x07\x00\x01t\x03\x08\x00\x00", 0x82),
    # PUBLISH "t" with Subscription Identifier 1 (only the server sends it), QoS 0 and QoS 1.
    (b"\x30\x06\x00\x01t\x02\x0b\x01", 0x82),
    (b"\x32\x08\x00\x01t\x00\x01\x02\x0b\x05", 0x82),
    # PINGREQ whose remaining length 0 takes two bytes; PUBLISH whose property length 0 takes two.
    (b"\xc0\x80\x00", 0x81),
    (b"\x30\x05\x00\x01t\x80\x00", 0x81),
    # SUBSCRIBE whose Subscription Identifier 1 takes two bytes.
    (b"\x82\x0a\x00\x01\x03\x0b\x81\x00\x00\x01a\x00", 0x81),
])
def test_nonconforming_packets_disconnect_with_reason(server, packet, reason):
    sub = Client(server.port, "watcher")
    sub.connect()
    sub.subscribe("t", 1)
    before = server.metric(PROTOCOL_ERRORS)
    r = connected(server, b"raw")
    r.send(packet)
    assert disconnect_reason(r.read_packet()) == reason
    assert r.closed() == b""
    assert server.metric(PROTOCOL_ERRORS) == before + 1
    # Nothing of it was delivered: the next message the watcher sees is one sent afterwards.
    ok = connected(server, b"after")
    ok.send(b"\x30\x06\x00\x01t\x00ok")
    m = sub.get()
    assert (m.topic, m.payload) == ("t", b"ok")
    sub.disconnect()


def test_valid_response_topic_and_minimal_lengths_pass(server):
    sub = Client(server.port, "watcher")
    sub.connect()
    sub.subscribe("t", 1)
    r = connected(server, b"raw")
    # Response Topic "r/x"; a 200-byte payload, whose remaining length takes two bytes.
    body = b"\x00\x01t\x06\x08\x00\x03r/x" + b"p" * 200
    r.send(b"\x30" + bytes([len(body) & 0x7F | 0x80, len(body) >> 7]) + body)
    m = sub.get()
    assert (m.topic, m.payload, m.properties.ResponseTopic) == ("t", b"p" * 200, "r/x")
    sub.disconnect()


def test_will_response_topic_with_wildcard_refuses_the_connect(server):
    before = server.metric(PROTOCOL_ERRORS)
    r = Raw(server.port)
    # CONNECT v5, will flag; will properties: Response Topic "r/#"; will topic "w", payload "x".
    will = b"\x06\x08\x00\x03r/#" + b"\x00\x01w" + b"\x00\x01x"
    r.send(_connect_with_will(will))
    assert r.closed() == b""
    assert server.metric(PROTOCOL_ERRORS) == before + 1


def _connect_with_will(will):
    """CONNECT v5, clean start and will flags, keepalive 60, no properties, client id "willer"."""
    vh = b"\x00\x04MQTT\x05\x06\x00\x3c\x00"
    body = vh + b"\x00\x06willer" + will
    return bytes([0x10, len(body)]) + body
