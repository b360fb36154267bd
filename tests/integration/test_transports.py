"""TLS with mutual X.509 and MQTT over secure WebSocket, with paho and mosquitto clients."""
import ssl
import subprocess

import pytest

from helpers import Client, Raw, connect_bytes, mosquitto, parse_publish, subscribe_bytes, wait_for


def tls_opts(server, cert, key):
    return {"ca_certs": server.ca, "certfile": cert, "keyfile": key, "cert_reqs": ssl.CERT_REQUIRED}


@pytest.mark.parametrize("version", [4, 5])
def test_tls_client_certificate(server, tmp_path, version):
    cert, key = server.issue_cert("dev-1", tmp_path)
    c = Client(server.ports["mqtts"], "dev-1", version=version)
    c.connect(tls=tls_opts(server, cert, key))
    c.subscribe("tls/t", 1)
    c.publish("tls/t", b"secure", qos=1)
    assert c.get().payload == b"secure"


def test_tls_subscriber_that_stops_reading_gets_every_byte(server, tmp_path):
    """10 MB toward a TLS subscriber that reads nothing for a while: the broker's TLS writes block
    (more than the socket buffers hold) and resume once it reads; every message arrives intact, in
    order, as the large and the small records of the same connection."""
    cert, key = server.issue_cert("slow-tls", tmp_path)
    ctx = ssl.create_default_context(cafile=server.ca)
    ctx.load_cert_chain(cert, key)
    sub = Raw(server.ports["mqtts"], tls=ctx)
    sub.send(connect_bytes(b"slow-tls", version=4))
    assert sub.read_packet() == b"\x20\x02\x00\x00"
    sub.send(subscribe_bytes(1, (b"big/#", 1), version=4))
    assert sub.read_packet()[0] == 0x90
    pub = Client(server.port, "big-pub")
    pub.connect()
    payloads = [bytes([i]) * 100_000 + str(i).encode() for i in range(100)]
    for i, p in enumerate(payloads):
        pub.publish(f"big/{i}", p, qos=1)
    pub.publish("big/last", b"small", qos=1)
    got = []
    while len(got) < 101:
        p = parse_publish(sub.read_packet(), version=4)
        got.append((p.topic, p.payload))
        sub.send(b"\x40\x02" + p.packet_id.to_bytes(2, "big"))
    assert got == [(f"big/{i}".encode(), p) for i, p in enumerate(payloads)] + [(b"big/last", b"small")]


def test_mosquitto_over_tls(server, tmp_path):
    cert, key = server.issue_cert("dev-2", tmp_path)
    common = ["-h", "localhost", "-p", str(server.ports["mqtts"]), "--cafile", server.ca, "--cert", cert, "--key", key]
    sub = subprocess.Popen(["mosquitto_sub", *common, "-t", "tls/#", "-C", "1", "-v", "-W", "10"],
                           stdout=subprocess.PIPE, text=True)
    wait_for(lambda: server.metric("fleetcore_subscriptions") == 1, what="subscription")
    mosquitto("mosquitto_pub", *common, "-i", "pub-2", "-t", "tls/x", "-m", "over-tls")
    assert sub.communicate(timeout=10)[0].strip() == "tls/x over-tls"


def test_tls_without_client_certificate_refused(server):
    r = mosquitto("mosquitto_pub", "-h", "localhost", "-p", str(server.ports["mqtts"]), "--cafile", server.ca,
                  "-t", "x", "-m", "x", check=False)
    assert r.returncode != 0
    assert server.metric('fleetcore_connects_total{result="success"}') == 0


def test_tls_certificate_from_unknown_ca_refused(server, tmp_path):
    from helpers import Server
    other = Server(tmp_path / "other").start()  # a second server with its own development CA
    cert, key = other.issue_cert("intruder", tmp_path)
    other.stop()
    r = mosquitto("mosquitto_pub", "-h", "localhost", "-p", str(server.ports["mqtts"]), "--cafile", server.ca,
                  "--cert", cert, "--key", key, "-t", "x", "-m", "x", check=False)
    assert r.returncode != 0


def test_websocket_over_tls(server, tmp_path):
    cert, key = server.issue_cert("ws-1", tmp_path)
    c = Client(server.ports["wss"], "ws-1", transport="websockets")
    c.c.ws_set_options(path="/mqtt")
    c.connect(tls=tls_opts(server, cert, key))
    c.subscribe("ws/t", 2)
    tcp = Client(server.port, "tcp")
    tcp.connect()
    tcp.publish("ws/t", b"x" * 70000, qos=1)  # larger than one WebSocket frame read
    m = c.get()
    assert (m.topic, len(m.payload), m.qos) == ("ws/t", 70000, 1)
    c.publish("ws/back", b"from-ws", qos=2)
    c.disconnect()


def test_websocket_wrong_path_refused(server, tmp_path):
    cert, key = server.issue_cert("ws-2", tmp_path)
    c = Client(server.ports["wss"], "ws-2", transport="websockets")
    c.c.ws_set_options(path="/other")
    with pytest.raises(Exception):
        c.connect(tls=tls_opts(server, cert, key))
