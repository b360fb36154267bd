"""CONNECT/CONNACK: versions, client ids, takeover, keepalive, refusals."""
import time

import pytest

from helpers import Client, PacketTypes, Raw, connect_bytes, disconnect_reason, props


@pytest.mark.parametrize("version", [4, 5])
def test_connect_and_clean_disconnect(server, version):
    c = Client(server.port, "dev-1", version=version)
    flags, rc, _ = c.connect()
    assert flags["session present"] == 0
    c.disconnect()
    assert server.metric('fleetcore_connects_total{result="success"}') == 1


def test_v5_connack_properties(server):
    c = Client(server.port, "dev-1")
    _, _, p = c.connect(keepalive=30)
    assert p.ReceiveMaximum == 100
    assert p.MaximumPacketSize == 128 * 1024
    assert p.TopicAliasMaximum == 32
    c.disconnect()


def test_server_assigned_client_id_v5(server):
    c = Client(server.port, "")
    _, _, p = c.connect()
    assert p.AssignedClientIdentifier.startswith("fc-")
    c.disconnect()


def test_empty_client_id_v311_clean_session_accepted(server):
    c = Client(server.port, "", version=4)
    c.connect()
    c.disconnect()


def test_empty_client_id_v311_persistent_refused(server):
    r = Raw(server.port)
    r.send(connect_bytes(b"", version=4, clean=False))
    assert r.read_packet() == b"\x20\x02\x00\x02"  # identifier rejected
    r.closed()


def test_unsupported_protocol_level_gets_v311_connack(server):
    r = Raw(server.port)
    pkt = bytearray(connect_bytes(b"x", version=4))
    pkt[8] = 6
    r.send(bytes(pkt))
    assert r.read_packet() == b"\x20\x02\x00\x01"
    assert r.closed() == b""


def test_first_packet_must_be_connect(server):
    r = Raw(server.port)
    r.send(b"\xc0\x00")  # PINGREQ
    assert r.closed() == b""


def test_second_connect_is_protocol_error(server):
    r = Raw(server.port)
    r.send(connect_bytes(b"twice"))
    assert r.read_packet()[0] == 0x20
    r.send(connect_bytes(b"twice"))
    assert disconnect_reason(r.read_packet()) == 0x82  # protocol error
    r.closed()


@pytest.mark.parametrize("version", [4, 5])
def test_session_takeover(server, version):
    first = Client(server.port, "same", version=version)
    first.connect()
    second = Client(server.port, "same", version=version)
    second.connect()
    rc = first.disconnects.get(timeout=10)
    if version == 5:
        assert rc == 0x8E  # session taken over
    second.disconnect()
    assert server.metric("fleetcore_session_takeovers_total") == 1


def test_takeover_resumes_persistent_session(server):
    first = Client(server.port, "resume", version=5, clean=False)
    first.connect(properties=props(PacketTypes.CONNECT, SessionExpiryInterval=300))
    first.subscribe("r/t", 1)
    second = Client(server.port, "resume", version=5, clean=False)
    flags, _, _ = second.connect(properties=props(PacketTypes.CONNECT, SessionExpiryInterval=300))
    assert flags["session present"] == 1
    pub = Client(server.port, "pub")
    pub.connect()
    pub.publish("r/t", b"to-second", qos=1)
    assert second.get().payload == b"to-second"


def test_keepalive_timeout_after_one_and_a_half_periods(server):
    r = Raw(server.port)
    r.send(connect_bytes(b"sleepy", keepalive=1))
    assert r.read_packet()[0] == 0x20
    start = time.monotonic()
    data = r.closed(timeout=10)
    elapsed = time.monotonic() - start
    assert disconnect_reason(data) == 0x8D  # keep alive timeout
    assert 1.4 <= elapsed < 3.5
    assert server.metric("fleetcore_keepalive_timeouts_total") == 1


def test_pingreq_keeps_connection_alive(server):
    r = Raw(server.port)
    r.send(connect_bytes(b"pinger", keepalive=1))
    r.read_packet()
    for _ in range(4):
        time.sleep(0.5)  # the client's own keepalive period, not a synchronization
        r.send(b"\xc0\x00")
        assert r.read_packet() == b"\xd0\x00"


@pytest.mark.parametrize("limit,asked", [(30, 600), (60, 120)])
def test_server_keepalive_caps_large_values(make_server, limit, asked):
    s = make_server(f"[limits]\nmax_keep_alive = {limit}\n")
    c = Client(s.port, "k")
    _, _, p = c.connect(keepalive=asked)
    assert p.ServerKeepAlive == limit
    c.disconnect()
    # Within the limit: the client's own keep alive stands, and CONNACK does not mention it.
    c = Client(s.port, "k2")
    _, _, p = c.connect(keepalive=limit // 2)
    assert not hasattr(p, "ServerKeepAlive")
    c.disconnect()


def test_enhanced_auth_method_refused(server):
    c = Client(server.port, "auth")
    _, rc, _ = c.connect(properties=props(PacketTypes.CONNECT, AuthenticationMethod="SCRAM-SHA-1"), expect_ok=False)
    assert rc == 0x8C


def test_client_id_too_long_refused(server):
    c = Client(server.port, "x" * 200)
    _, rc, _ = c.connect(expect_ok=False)
    assert rc == 0x85
