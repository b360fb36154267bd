"""Retained messages, persistent sessions and acknowledged QoS 1/2 messages survive a restart and
a kill -9."""
import pytest

from helpers import (Client, PacketTypes, Raw, connect_bytes, parse_publish, props, publish_bytes, subscribe_bytes,
                     wait_for)


def restart(server, how):
    if how == "kill9":
        server.kill9()
        return server.start()
    return server.restart()


@pytest.mark.parametrize("how", ["restart", "kill9"])
def test_retained_survive(server, how):
    pub = Client(server.port, "pub")
    pub.connect()
    for i in range(20):
        pub.publish(f"keep/{i}", f"v{i}".encode(), qos=1, retain=True)
    pub.publish("keep/0", b"", qos=1, retain=True)  # cleared before the crash
    restart(server, how)
    sub = Client(server.port, "sub")
    sub.connect()
    sub.subscribe("keep/#", 1)
    got = sorted((sub.get().topic for _ in range(19)), key=lambda t: int(t.split("/")[1]))
    assert got == [f"keep/{i}" for i in range(1, 20)]
    sub.no_message()


@pytest.mark.parametrize("version", [4, 5])
@pytest.mark.parametrize("how", ["restart", "kill9"])
def test_persistent_session_and_acknowledged_messages_survive(server, how, version):
    connect_props = props(PacketTypes.CONNECT, SessionExpiryInterval=3600) if version == 5 else None
    sub = Client(server.port, "device-1", version=version, clean=False)
    sub.connect(properties=connect_props)
    sub.subscribe("cmd/device-1/#", 1)
    sub.disconnect()

    pub = Client(server.port, "operator", version=version)
    pub.connect()
    for i in range(50):
        pub.publish(f"cmd/device-1/{i}", f"m{i}".encode(), qos=1)  # each PUBACK received before the crash
    assert server.metric("fleetcore_queued_messages") == 50
    restart(server, how)

    back = Client(server.port, "device-1", version=version, clean=False)
    flags, _, _ = back.connect(properties=connect_props)
    assert flags["session present"] == 1
    got = [back.get().payload for _ in range(50)]
    assert got == [f"m{i}".encode() for i in range(50)]  # all of them, in order
    # The subscription itself survived too.
    pub2 = Client(server.port, "operator2", version=version)
    pub2.connect()
    pub2.publish("cmd/device-1/after", b"after", qos=1)
    assert back.get().payload == b"after"


def ack_bytes(kind, packet_id):
    """A raw MQTT 3.1.1 PUBACK (0x40), PUBREC (0x50), PUBREL (0x62) or PUBCOMP (0x70)."""
    return bytes([kind, 2]) + packet_id.to_bytes(2, "big")


def persistent_raw(server, client_id, present):
    """A raw MQTT 3.1.1 connection resuming (or starting) the persistent session of `client_id`."""
    r = Raw(server.port)
    r.send(connect_bytes(client_id, version=4, clean=False))
    connack = r.read_packet()
    assert connack[0] == 0x20 and connack[3] == 0 and connack[2] == present, connack
    return r


def test_qos2_publish_retried_after_kill9_is_not_delivered_twice(server):
    """The publisher's PUBREC was lost in the crash: it retries its PUBLISH (DUP, same id) after the
    restart and is acknowledged again, but subscribers get the message once [MQTT-4.3.3]."""
    sub = Client(server.port, "q2-sub", version=4, clean=False)
    sub.connect()
    sub.subscribe("q2/t", 2)
    sub.disconnect()
    pub = persistent_raw(server, b"q2-pub", 0)
    pub.send(publish_bytes(b"q2/t", b"exactly once", qos=2, packet_id=7, version=4))
    assert pub.read_packet() == ack_bytes(0x50, 7)
    server.kill9()
    server.start()

    pub = persistent_raw(server, b"q2-pub", 1)
    retry = bytearray(publish_bytes(b"q2/t", b"exactly once", qos=2, packet_id=7, version=4))
    retry[0] |= 0x08  # DUP
    pub.send(bytes(retry))
    assert pub.read_packet() == ack_bytes(0x50, 7)
    pub.send(ack_bytes(0x62, 7))
    assert pub.read_packet() == ack_bytes(0x70, 7)
    # The id is free again: a new message under it is a new message.
    pub.send(publish_bytes(b"q2/t", b"next", qos=2, packet_id=7, version=4))
    assert pub.read_packet() == ack_bytes(0x50, 7)
    pub.send(ack_bytes(0x62, 7))
    assert pub.read_packet() == ack_bytes(0x70, 7)

    back = Client(server.port, "q2-sub", version=4, clean=False)
    back.connect()
    assert [back.get().payload for _ in range(2)] == [b"exactly once", b"next"]
    back.no_message()


def test_inflight_messages_resent_with_dup_and_their_packet_ids_after_kill9(server):
    """Messages in flight to a persistent session when the broker dies go out again with DUP and
    the packet ids they had; a QoS 2 message whose PUBREC arrived gets its PUBREL, not the message
    again [MQTT-4.4.0-1]."""
    sub = persistent_raw(server, b"inflight", 0)
    sub.send(subscribe_bytes(1, (b"f/2", 2), (b"f/1", 1), version=4))
    assert sub.read_packet()[0] == 0x90
    pub = Client(server.port, "f-pub")
    pub.connect()
    pub.publish("f/2", b"two", qos=2)
    pub.publish("f/1", b"one", qos=1)
    first = {}
    for _ in range(2):
        p = parse_publish(sub.read_packet(), version=4)
        assert not p.dup
        first[p.payload] = (p.qos, p.packet_id)
    assert set(first) == {b"two", b"one"} and first[b"two"][0] == 2 and first[b"one"][0] == 1
    # Acknowledged to its publisher after its commit, which follows the packet ids' records.
    pub.publish("f/1", b"barrier", qos=1)
    assert parse_publish(sub.read_packet(), version=4).payload == b"barrier"
    server.kill9()
    server.start()

    sub = persistent_raw(server, b"inflight", 1)
    again = {}
    for _ in range(3):
        p = parse_publish(sub.read_packet(), version=4)
        again[p.payload] = (p.dup, p.qos, p.packet_id)
    assert again[b"two"] == (True, 2, first[b"two"][1])
    assert again[b"one"] == (True, 1, first[b"one"][1])
    # The QoS 2 exchange goes on: PUBREC, then after another crash the PUBREL comes back, not the message.
    sub.send(ack_bytes(0x50, first[b"two"][1]))
    assert sub.read_packet() == ack_bytes(0x62, first[b"two"][1])
    pub = Client(server.port, "f-pub")
    pub.connect()
    pub.publish("f/1", b"barrier 2", qos=1)
    assert parse_publish(sub.read_packet(), version=4).payload == b"barrier 2"
    server.kill9()
    server.start()

    sub = persistent_raw(server, b"inflight", 1)
    rest = [sub.read_packet() for _ in range(4)]
    assert ack_bytes(0x62, first[b"two"][1]) in rest
    publishes = [parse_publish(p, version=4) for p in rest if p[0] >> 4 == 3]
    assert sorted(p.payload for p in publishes) == [b"barrier", b"barrier 2", b"one"]
    sub.send(ack_bytes(0x70, first[b"two"][1]))
    for p in publishes:
        sub.send(ack_bytes(0x40, p.packet_id))
    wait_for(lambda: server.metric("fleetcore_queued_messages") == 0, what="all acknowledged")


def test_delivered_messages_not_redelivered_after_restart(server):
    sub = Client(server.port, "dev", clean=False)
    sub.connect(properties=props(PacketTypes.CONNECT, SessionExpiryInterval=3600))
    sub.subscribe("d/t", 1)
    pub = Client(server.port, "pub")
    pub.connect()
    pub.publish("d/t", b"once", qos=1)
    assert sub.get().payload == b"once"
    wait_for(lambda: server.metric("fleetcore_queued_messages") == 0, what="ack processed")
    sub.disconnect()
    server.restart()
    back = Client(server.port, "dev", clean=False)
    back.connect(properties=props(PacketTypes.CONNECT, SessionExpiryInterval=3600))
    back.no_message()


def test_clean_session_leaves_nothing_behind(server):
    c = Client(server.port, "temp", version=4, clean=True)
    c.connect()
    c.subscribe("x/#", 1)
    c.disconnect()
    server.restart()
    assert server.metric("fleetcore_sessions") == 0
    assert server.metric("fleetcore_subscriptions") == 0


def test_expired_session_not_restored(server):
    c = Client(server.port, "short", clean=False)
    c.connect(properties=props(PacketTypes.CONNECT, SessionExpiryInterval=1))
    c.subscribe("s/#", 1)
    c.disconnect()
    server.stop()
    import time
    time.sleep(1.1)  # the session's own expiry interval passes while the server is down
    server.start()
    assert server.metric("fleetcore_sessions") == 0


def resume_v5(server, client_id, receive_maximum, present):
    """A raw MQTT 5 connection resuming (or starting) `client_id`'s session with this Receive Maximum."""
    r = Raw(server.port)
    connect_props = b"\x11" + (3600).to_bytes(4, "big") + b"\x21" + receive_maximum.to_bytes(2, "big")
    r.send(connect_bytes(client_id, version=5, clean=False, props=bytes([len(connect_props)]) + connect_props))
    connack = r.read_packet()
    assert connack[0] == 0x20 and connack[2] == present and connack[3] == 0, connack
    return r


def until_pingresp(r):
    """Every packet the broker sends before answering a PINGREQ sent now."""
    r.send(b"\xc0\x00")
    out = []
    while (p := r.read_packet()) != b"\xd0\x00":
        out.append(p)
    return out


@pytest.mark.parametrize("how", ["takeover", "kill9"])
def test_resent_inflight_messages_respect_the_new_receive_maximum(server, how):
    """A session resumed with a smaller Receive Maximum than it had gets its unacknowledged messages
    again, with DUP and their packet ids, never more at once than the new maximum [MQTT-4.9.0-2]."""
    sub = resume_v5(server, b"rm-dev", 10, 0)
    sub.send(subscribe_bytes(1, (b"rm/t", 1)))
    assert sub.read_packet()[0] == 0x90
    pub = Client(server.port, "rm-pub")
    pub.connect()
    for i in range(6):
        pub.publish("rm/t", f"m{i}".encode(), qos=1)
    first = [parse_publish(sub.read_packet()) for _ in range(6)]
    assert [p.payload for p in first] == [f"m{i}".encode() for i in range(6)]
    # A stored QoS 1 publish is acknowledged after its commit, which follows the packet ids' records.
    pub.publish("rm/barrier", b"x", qos=1, retain=True)
    if how == "kill9":
        server.kill9()
        server.start()
    else:
        old = sub  # taken over by the new connection

    sub = resume_v5(server, b"rm-dev", 2, 1)
    got = [parse_publish(p) for p in until_pingresp(sub)]
    assert [(p.dup, p.packet_id, p.payload) for p in got] == [(True, q.packet_id, q.payload) for q in first[:2]]
    # Each acknowledgement lets exactly one more go.
    for i in range(6):
        sub.send(ack_bytes(0x40, first[i].packet_id))
        more = [parse_publish(p) for p in until_pingresp(sub)]
        expected = [(True, q.packet_id, q.payload) for q in first[i + 2:i + 3]]
        assert [(p.dup, p.packet_id, p.payload) for p in more] == expected
    wait_for(lambda: server.metric("fleetcore_queued_messages") == 0, what="all acknowledged")
    if how == "takeover":
        assert old.closed() is not None


def test_retained_qos2_delivery_to_a_persistent_session_survives_kill9(server):
    """A retained QoS 2 message sent on SUBSCRIBE to a persistent session keeps its packet id across a
    crash: it is resent with DUP under that id, then after its PUBREC only the PUBREL comes back."""
    pub = Client(server.port, "ret-pub")
    pub.connect()
    pub.publish("ret/t", b"config v1", qos=2, retain=True)
    sub = persistent_raw(server, b"ret-dev", 0)
    sub.send(subscribe_bytes(1, (b"ret/t", 2), version=4))
    assert sub.read_packet()[0] == 0x90
    first = parse_publish(sub.read_packet(), version=4)
    assert (first.qos, first.retain, first.payload) == (2, True, b"config v1")
    server.kill9()
    server.start()

    sub = persistent_raw(server, b"ret-dev", 1)
    again = parse_publish(sub.read_packet(), version=4)
    assert (again.dup, again.qos, again.packet_id, again.payload) == (True, 2, first.packet_id, b"config v1")
    sub.send(ack_bytes(0x50, first.packet_id))
    assert sub.read_packet() == ack_bytes(0x62, first.packet_id)
    server.kill9()
    server.start()

    sub = persistent_raw(server, b"ret-dev", 1)
    assert sub.read_packet() == ack_bytes(0x62, first.packet_id)
    sub.send(ack_bytes(0x70, first.packet_id))
    wait_for(lambda: server.metric("fleetcore_queued_messages") == 0, what="exchange complete")
