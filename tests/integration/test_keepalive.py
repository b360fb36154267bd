"""A device that vanishes goes offline and its will goes out (issue 9, item 10): MQTT 3.1.1 clients that
ask for no keep alive (or more than the server allows) get the server's limit, as on AWS IoT, and
accepted sockets have TCP keepalive on."""
import subprocess

import pytest

from helpers import Client, Raw, connect_bytes, encode_varint, wait_for


def connect_with_will(client_id, keepalive, version=4):
    """A raw CONNECT with a will on will/<client_id>; the client then sends nothing."""
    flags = 0x02 | 0x04  # clean, will QoS 0
    vh = b"\x00\x04MQTT" + bytes([version, flags]) + keepalive.to_bytes(2, "big") + (b"\x00" if version == 5 else b"")
    topic = b"will/" + client_id
    payload = len(client_id).to_bytes(2, "big") + client_id + (b"\x00" if version == 5 else b"")
    payload += len(topic).to_bytes(2, "big") + topic + (4).to_bytes(2, "big") + b"gone"
    body = vh + payload
    return b"\x10" + encode_varint(len(body)) + body


@pytest.mark.parametrize("keepalive", [0, 65535])
def test_mqtt311_silent_client_times_out_at_the_server_limit(make_server, keepalive):
    server = make_server("[limits]\nmax_keep_alive = 2\n")
    watcher = Client(server.port, "watcher")
    watcher.connect(keepalive=1)  # within the limit: pings every second
    watcher.subscribe("will/#")
    raw = Raw(server.port)
    raw.send(connect_with_will(b"silent", keepalive))
    assert raw.read_packet()[:4] == b"\x20\x02\x00\x00"
    # Silent, but its socket stays open: only the keep alive can find it (1.5 x 2 s).
    m = watcher.get(timeout=10)
    assert (m.topic, m.payload) == ("will/silent", b"gone")
    assert server.metric("fleetcore_keepalive_timeouts_total") == 1
    assert raw.closed() == b""


def test_accepted_sockets_have_tcp_keepalive(server):
    c = Client(server.port, "ka")
    c.connect()
    out = subprocess.run(["ss", "-tnoH", "state", "established", f"( sport = :{server.port} )"],
                         capture_output=True, text=True, check=True).stdout
    assert "keepalive" in out, out
    c.disconnect()
