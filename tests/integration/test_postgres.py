"""With the server on PostgreSQL (`make integration-postgres`): what PostgreSQL itself can do to it. A
restart ends every connection; publishes meanwhile are refused (MQTT 5: PUBACK 0x80), and no
acknowledged message is lost."""
import os
import subprocess
import time

import pytest

from helpers import Client, PacketTypes, Raw, connect_bytes, props, publish_bytes
from conftest import STORAGE

pytestmark = pytest.mark.skipif(STORAGE != "postgresql", reason="the server is not on PostgreSQL")
SCRIPT = os.path.join(os.path.dirname(__file__), "../../scripts/postgres.sh")


def test_acknowledged_messages_survive_a_postgresql_restart(server):
    session = props(PacketTypes.CONNECT, SessionExpiryInterval=3600)
    dev = Client(server.port, "pg-dev", version=5, clean=False)
    dev.connect(properties=session)
    dev.subscribe("pg/t", 1)
    dev.disconnect()  # offline: every message for it is stored before it is acknowledged

    pub = Raw(server.port)
    pub.send(connect_bytes(b"pg-pub"))
    connack = pub.read_packet()
    assert connack[0] == 0x20 and connack[3] == 0, connack
    acked, refused, refused_payloads = [], 0, set()

    def publish(i):
        """Publishes message i until it is acknowledged; a refused one is sent again, as a client would."""
        nonlocal refused
        payload = f"m{i}".encode()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            pub.send(publish_bytes(b"pg/t", payload, qos=1, packet_id=i % 65535 + 1))
            ack = pub.read_packet()
            assert ack[0] == 0x40 and int.from_bytes(ack[2:4], "big") == i % 65535 + 1, ack
            reason = ack[4] if len(ack) > 4 else 0
            if reason == 0:
                acked.append(payload)
                return
            assert reason == 0x80, ack  # unspecified error: not stored, not acknowledged
            refused += 1
            refused_payloads.add(payload)
        raise AssertionError(f"message {i} refused for 30 s")

    for i in range(40):
        publish(i)
    restart = subprocess.Popen([SCRIPT, "restart"])
    i = 40
    while restart.poll() is None:  # publishing all through the restart
        publish(i)
        i += 1
    assert restart.wait() == 0
    for _ in range(40):
        publish(i)
        i += 1
    assert len(acked) == i
    print(f"{i} messages acknowledged, {refused} refusals while PostgreSQL restarted")

    back = Client(server.port, "pg-dev", version=5, clean=False)
    flags, _, _ = back.connect(properties=session)
    assert flags["session present"] == 1
    publish(i)  # a last message, behind everything queued
    got = []
    while (payload := back.get().payload) != f"m{i}".encode():
        got.append(payload)
    acked.pop()
    # Every acknowledged message, once, in order: a refused attempt's copy, queued for the session
    # before its commit failed, is withdrawn; a commit whose outcome the lost connection hid is
    # settled by asking PostgreSQL (txid_status), so it is neither lost nor stored twice.
    assert got == acked
