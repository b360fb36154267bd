"""With the server on PostgreSQL (`make integration-postgres`): what PostgreSQL itself can do to it. A
restart ends every connection; publishes meanwhile are refused (MQTT 5: PUBACK 0x80), and no
acknowledged message is lost."""
import os

import pytest

from helpers import Client, PacketTypes, RetryingPublisher, props
from conftest import STORAGE

pytestmark = pytest.mark.skipif(STORAGE != "postgresql", reason="the server is not on PostgreSQL")
SCRIPT = os.path.join(os.path.dirname(__file__), "../../scripts/postgres.sh")


def test_acknowledged_messages_survive_a_postgresql_restart(server):
    session = props(PacketTypes.CONNECT, SessionExpiryInterval=3600)
    dev = Client(server.port, "pg-dev", version=5, clean=False)
    dev.connect(properties=session)
    dev.subscribe("pg/t", 1)
    dev.disconnect()  # offline: every message for it is stored before it is acknowledged

    pub = RetryingPublisher(server.port, b"pg-pub")
    i = pub.through([SCRIPT, "restart"], b"pg/t")  # publishing all through the restart

    back = Client(server.port, "pg-dev", version=5, clean=False)
    flags, _, _ = back.connect(properties=session)
    assert flags["session present"] == 1
    pub.publish(b"pg/t", i)  # a last message, behind everything queued
    got = []
    while (payload := back.get().payload) != f"m{i}".encode():
        got.append(payload)
    pub.acked.pop()
    # Every acknowledged message, once, in order: a refused attempt's copy, queued for the session
    # before its commit failed, is withdrawn; a commit whose outcome the lost connection hid is
    # settled by asking PostgreSQL (txid_status), so it is neither lost nor stored twice.
    assert got == pub.acked
