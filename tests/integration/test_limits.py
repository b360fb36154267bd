"""Limits and bad input: each limit is configurable and enforced; a bad client never affects others."""
import socket
import time

import pytest

from helpers import Client, PacketTypes, Raw, connect_bytes, disconnect_reason, encode_varint, props, publish_bytes, subscribe_bytes, wait_for


def packet_size(data):
    """Total size of the first MQTT packet in `data`, or None while it is incomplete."""
    length, mult = 0, 1
    for i in range(1, min(len(data), 5)):
        length += (data[i] & 0x7F) * mult
        mult *= 128
        if not data[i] & 0x80:
            return i + 1 + length if len(data) >= i + 1 + length else None
    return None


def test_oversize_packet_closes_with_0x95(make_server):
    s = make_server("[limits]\nmax_packet_size = 1024\n")
    bystander = Client(s.port, "bystander")
    bystander.connect()
    bystander.subscribe("big/#", 0)
    r = Raw(s.port)
    r.send(connect_bytes(b"big"))
    r.read_packet()
    r.send(publish_bytes(b"big/t", b"x" * 2000))
    assert disconnect_reason(r.read_packet()) == 0x95
    bystander.c.publish("big/ok", b"fine")
    assert bystander.get().payload == b"fine"  # other clients unaffected
    assert s.metric("fleetcore_protocol_errors_total") == 1


def test_oversize_detected_before_body_arrives(make_server):
    s = make_server("[limits]\nmax_packet_size = 1024\n")
    r = Raw(s.port)
    r.send(connect_bytes(b"big"))
    r.read_packet()
    r.send(b"\x30" + encode_varint(10_000_000))  # only the header of a 10 MB packet
    assert disconnect_reason(r.read_packet()) == 0x95


def test_topic_length_and_levels(make_server):
    s = make_server("[limits]\nmax_topic_length = 32\nmax_topic_levels = 4\n")
    for topic in [b"a" * 40, b"a/b/c/d/e"]:
        r = Raw(s.port)
        r.send(connect_bytes(b"t"))
        r.read_packet()
        r.send(publish_bytes(topic, b"x"))
        assert disconnect_reason(r.read_packet()) == 0x90
    r = Raw(s.port)
    r.send(connect_bytes(b"t"))
    r.read_packet()
    r.send(subscribe_bytes(1, (b"a/b/c/d/#", 0), (b"ok/#", 0)))
    assert r.read_packet() == b"\x90\x05\x00\x01\x00\x8f\x00"


def test_subscriptions_per_client(make_server):
    s = make_server("[limits]\nmax_subscriptions_per_client = 2\n")
    r = Raw(s.port)
    r.send(connect_bytes(b"many"))
    r.read_packet()
    r.send(subscribe_bytes(1, (b"a", 0), (b"b", 0), (b"c", 0), (b"a", 1)))
    assert r.read_packet() == b"\x90\x07\x00\x01\x00" + bytes([0, 0, 0x97, 1])


def test_offline_queue_bound(make_server):
    s = make_server("[limits]\nmax_queued_messages = 10\n")
    sub = Client(s.port, "offline", clean=False)
    sub.connect(properties=props(PacketTypes.CONNECT, SessionExpiryInterval=60))
    sub.subscribe("q/t", 1)
    sub.disconnect()
    pub = Client(s.port, "pub")
    pub.connect()
    for i in range(25):
        pub.publish("q/t", str(i).encode(), qos=1)
    assert s.metric('fleetcore_dropped_messages_total{reason="queue_full"}') == 15
    back = Client(s.port, "offline", clean=False)
    back.connect(properties=props(PacketTypes.CONNECT, SessionExpiryInterval=60))
    assert [int(back.get().payload) for _ in range(10)] == list(range(10))
    back.no_message()


def test_inflight_window(make_server):
    s = make_server("[limits]\nmax_inflight = 3\n")
    r = Raw(s.port)
    r.send(connect_bytes(b"w"))
    r.read_packet()
    r.send(subscribe_bytes(1, (b"w/t", 1)))
    r.read_packet()
    pub = Client(s.port, "pub")
    pub.connect()
    for i in range(6):
        pub.publish("w/t", str(i).encode(), qos=1)
    got = [r.read_packet() for _ in range(3)]
    r.send(b"\xc0\x00")
    assert r.read_packet() == b"\xd0\x00"  # window of 3 is full
    assert [p[-1:] for p in got] == [b"0", b"1", b"2"]


def test_receive_maximum_exceeded(make_server):
    s = make_server("[limits]\nreceive_maximum = 2\n")
    r = Raw(s.port)
    r.send(connect_bytes(b"flood"))
    assert r.read_packet()[0] == 0x20
    # QoS 2 publishes without PUBREL stay inflight on our side: the third exceeds the window.
    for pid in (1, 2, 3):
        r.send(publish_bytes(b"rx/t", b"x", qos=2, packet_id=pid))
    assert r.read_packet()[0] == 0x50
    assert r.read_packet()[0] == 0x50
    assert disconnect_reason(r.read_packet()) == 0x93


def test_receive_maximum_counts_each_qos2_exchange_once(make_server):
    """A client that stays within the receive maximum is never cut off: QoS 2 publishes waiting for
    their commit count once, a retry of a held id is no new publish, PUBREL frees a slot."""
    s = make_server("[limits]\nreceive_maximum = 5\n")
    # A persistent subscriber, offline: every message is stored, each PUBREC waits for its commit.
    sub = Client(s.port, "rm-sub", version=4, clean=False)
    sub.connect()
    sub.subscribe("rm/t", 2)
    sub.disconnect()
    r = Raw(s.port)
    r.send(connect_bytes(b"rm-pub"))
    assert r.read_packet()[0] == 0x20
    r.send(b"".join(publish_bytes(b"rm/t", b"x", qos=2, packet_id=pid) for pid in range(1, 6)))
    assert sorted(r.read_packet()[:4] for _ in range(5)) == [b"\x50\x02\x00" + bytes([pid]) for pid in range(1, 6)]
    retry = bytearray(publish_bytes(b"rm/t", b"x", qos=2, packet_id=3))
    retry[0] |= 0x08
    r.send(bytes(retry))  # the window is full, but this one is already in it
    assert r.read_packet() == b"\x50\x02\x00\x03"
    r.send(b"\x62\x02\x00\x01")
    assert r.read_packet() == b"\x70\x02\x00\x01"
    r.send(publish_bytes(b"rm/t", b"x", qos=2, packet_id=6))
    assert r.read_packet() == b"\x50\x02\x00\x06"
    r.send(publish_bytes(b"rm/t", b"x", qos=2, packet_id=7))  # 2, 3, 4, 5, 6 held: one too many
    assert disconnect_reason(r.read_packet()) == 0x93


def test_publish_rate_limit_paces_client(make_server):
    s = make_server("[limits]\nmax_publish_rate = 20\n")
    sub = Client(s.port, "sub")
    sub.connect()
    sub.subscribe("rate/t", 1)
    pub = Client(s.port, "pub")
    pub.connect()
    start = time.monotonic()
    for i in range(50):
        pub.publish("rate/t", str(i).encode(), qos=1)
    elapsed = time.monotonic() - start
    assert [int(sub.get().payload) for _ in range(50)] == list(range(50))  # nothing lost, only slowed
    assert elapsed >= 1.5
    assert s.metric("fleetcore_rate_limited_total") >= 2


@pytest.mark.parametrize("garbage", [
    b"\x00\x00",                              # reserved packet type
    b"\x10\xff\xff\xff\xff\x01",              # remaining length over 4 bytes
    b"\x10\x05\x00\x03MQT",                   # truncated protocol name, packet ends early
    b"\x10\x0c\x00\x04MQTT\x05\x03\x00\x3c\x00\x00\x00",  # reserved connect flag set
])
def test_malformed_connect_closes_without_crash(server, garbage):
    r = Raw(server.port)
    r.send(garbage)
    assert r.closed() == b""  # no CONNACK for a CONNECT that cannot be parsed: just closed
    assert server.metric("fleetcore_protocol_errors_total") == 1
    assert server.metric('fleetcore_connects_total{result="protocol_error"}') == 1
    ok = Client(server.port, "after")
    ok.connect()
    ok.disconnect()


@pytest.mark.parametrize("packet,reason", [
    (b"\x30\x05\x00\x01#\x00x", 0x90),          # wildcard in topic name
    (b"\x36\x06\x00\x01t\x00\x01\x00", 0x81),   # QoS 3
    (b"\x82\x03\x00\x01\x00", 0x82),            # SUBSCRIBE without filters
    (b"\x20\x02\x00\x00", 0x82),                # CONNACK from a client
    (b"\x30\x06\x00\x02\xc0\xafx\x00", 0x81),   # overlong UTF-8 in topic
])
def test_protocol_violations_get_reason_codes(server, packet, reason):
    r = Raw(server.port)
    r.send(connect_bytes(b"bad"))
    r.read_packet()
    r.send(packet)
    assert disconnect_reason(r.read_packet()) == reason
    assert r.closed() == b""


def test_slow_subscriber_qos0_dropped_not_buffered(make_server):
    s = make_server("[limits]\nmax_outbound_bytes = 65536\n")
    # A subscriber that never reads: the kernel buffers fill, then the broker drops QoS 0 for it.
    raw = socket.create_connection(("127.0.0.1", s.port))
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    raw.sendall(connect_bytes(b"stuck") + subscribe_bytes(1, (b"flood/t", 0)))
    wait_for(lambda: s.metric("fleetcore_subscriptions") == 1, what="subscription")
    pub = Client(s.port, "pub")
    pub.connect()
    payload = b"x" * 1024
    for _ in range(12000):  # 12 MB: beyond what a congested subscriber may hold (see max_outbound_bytes)
        pub.c.publish("flood/t", payload)
    pub.publish("flood/done", b"", qos=1)
    wait_for(lambda: s.metric('fleetcore_dropped_messages_total{reason="slow_consumer"}') > 1000, what="drops")
    fast = Client(s.port, "fast")
    fast.connect()
    fast.subscribe("flood/t", 0)
    pub.c.publish("flood/t", b"still-served")
    assert fast.get().payload == b"still-served"
    raw.close()


def test_pipelined_packets_survive_backpressure_pause(make_server):
    # A tiny congestion threshold makes every PUBLISH pause its sender; the packets that arrived in the
    # same read after it must be processed after the pause, byte for byte.
    s = make_server("[limits]\ncongestion_queue_length = 1\nmax_inflight = 1\n")
    sub = Client(s.port, "sub")
    sub.connect()
    sub.subscribe("bp/t", 1)
    r = Raw(s.port)
    burst = connect_bytes(b"burst")
    burst += b"".join(publish_bytes(b"bp/t", str(i).encode() * 50, qos=1, packet_id=i + 1) for i in range(200))
    r.send(burst)  # CONNECT and 200 PUBLISHes in one write
    assert r.read_packet()[0] == 0x20
    acks = [r.read_packet() for _ in range(200)]
    assert all(a[0] == 0x40 for a in acks)
    got = [sub.get().payload for _ in range(200)]
    assert got == [str(i).encode() * 50 for i in range(200)]
    assert s.metric("fleetcore_protocol_errors_total") == 0


def test_connect_split_across_reads(server):
    r = Raw(server.port)
    pkt = connect_bytes(b"split") + b"\xc0\x00"  # CONNECT then PINGREQ
    for b in pkt:
        r.send(bytes([b]))
    assert r.read_packet()[0] == 0x20
    assert r.read_packet() == b"\xd0\x00"


# Connections go to the 2 workers round-robin in accept order: slow (0), other-sub (1), then the
# publisher on the slow subscriber's worker, or on the other one after a filler connection. Across
# workers, deliveries arrive in batches after the publisher's read: what was in flight when it paused
# must not be dropped.
@pytest.mark.parametrize("placement", ["same_worker", "other_worker"])
def test_slow_subscriber_backpressures_its_publisher_without_loss(make_server, placement):
    s = make_server("[limits]\nmax_outbound_bytes = 16384\nslow_consumer_grace_ms = 20000\n")
    raw = socket.create_connection(("127.0.0.1", s.port))
    raw.sendall(connect_bytes(b"slow", version=4) + subscribe_bytes(1, (b"slow/t", 0), version=4))
    other_sub = Client(s.port, "other-sub")
    other_sub.connect()
    other_sub.subscribe("other/t", 0)
    wait_for(lambda: s.metric("fleetcore_subscriptions") == 2, what="subscriptions")
    if placement == "other_worker":
        filler = Client(s.port, "filler")
        filler.connect()
    pub = Client(s.port, "pub")
    pub.connect()
    payload = b"p" * 4000
    for _ in range(3000):  # 12 MB towards a subscriber that is not reading yet: more than the socket buffers
        pub.c.publish("slow/t", payload)
    wait_for(lambda: s.metric("fleetcore_backpressure_pauses_total") > 0, what="the publisher to be paused")
    other = Client(s.port, "other-pub")  # a publisher to another topic is not held back
    other.connect()
    other.c.publish("other/t", b"independent")
    assert other_sub.get().payload == b"independent"
    # Now read everything, slowly at first: nothing may be missing.
    raw.settimeout(10)
    received, data = 0, b""
    while received < 3000:
        chunk = raw.recv(65536)
        assert chunk, "closed"
        data += chunk
        while True:
            size = packet_size(data)
            if size is None:
                break
            if data[0] >> 4 == 3:
                received += 1
            data = data[size:]
    assert received == 3000
    assert s.metric('fleetcore_dropped_messages_total{reason="slow_consumer"}') == 0
    raw.close()


def test_connection_rate_per_address(make_server):
    s = make_server("[limits]\nmax_connections_per_s_per_address = 1\n")
    # Raw sockets, back to back (paho would reconnect by itself and spend the next token): the first
    # CONNECT takes the address's token; within the same second MQTT 5 is told (CONNACK 0x9F) and
    # MQTT 3.1.1 is closed without a CONNACK.
    first, second, third = Raw(s.port), Raw(s.port), Raw(s.port)
    first.send(connect_bytes(b"first", version=4))
    assert first.read_packet() == b"\x20\x02\x00\x00"
    second.send(connect_bytes(b"second", version=5))
    connack = second.read_packet()
    assert connack[0] == 0x20 and connack[3] == 0x9F
    third.send(connect_bytes(b"third", version=4))
    with pytest.raises(ConnectionError):
        third.read_packet()
    assert s.metric('fleetcore_connects_total{result="rate_limited"}') == 2
    assert s.metric('fleetcore_connects_total{result="success"}') == 1
    # (The bucket refilling with time is tested on a manual clock: tests/unit/common/rate_limiter_test.cpp.)


def test_connection_rate_in_all(make_server):
    s = make_server("[limits]\nmax_connections_per_s = 1\n")
    first, second = Raw(s.port), Raw(s.port)
    first.send(connect_bytes(b"first", version=5))
    assert first.read_packet()[3] == 0x00
    second.send(connect_bytes(b"second", version=5))
    assert second.read_packet()[3] == 0x9F
