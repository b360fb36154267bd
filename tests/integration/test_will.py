"""Will messages, including MQTT 5 will delay and DISCONNECT with will."""
import time

import pytest

from helpers import Client, PacketTypes, props


@pytest.fixture
def watcher(server):
    """A client subscribed to every will topic of these tests."""
    w = Client(server.port, "watcher")
    w.connect()
    w.subscribe("will/#", 1)
    return w


@pytest.mark.parametrize("version", [4, 5])
def test_will_on_abnormal_disconnect(server, watcher, version):
    dev = Client(server.port, "dev", version=version)
    dev.connect(will={"topic": "will/dev", "payload": b"gone", "qos": 1, "retain": True})
    dev.drop()
    m = watcher.get()
    assert (m.topic, m.payload) == ("will/dev", b"gone")
    late = Client(server.port, "late", version=version)
    late.connect()
    late.subscribe("will/dev", 1)
    assert late.get().payload == b"gone"  # the will was retained
    assert server.metric("fleetcore_will_messages_total") == 1


@pytest.mark.parametrize("version", [4, 5])
def test_no_will_on_normal_disconnect(server, watcher, version):
    dev = Client(server.port, "dev", version=version)
    dev.connect(will={"topic": "will/dev", "payload": b"gone", "qos": 1})
    dev.disconnect()
    watcher.no_message(timeout=1)


def test_disconnect_with_will_message(server, watcher):
    dev = Client(server.port, "dev")
    dev.connect(will={"topic": "will/dev", "payload": b"asked", "qos": 1})
    dev.c.disconnect(reasoncode=__import__("paho.mqtt.reasoncodes", fromlist=["ReasonCodes"]).ReasonCodes(
        PacketTypes.DISCONNECT, "Disconnect with will message"))
    assert watcher.get().payload == b"asked"


def test_will_delay_sent_after_delay(server, watcher):
    dev = Client(server.port, "dev", clean=False)
    dev.connect(properties=props(PacketTypes.CONNECT, SessionExpiryInterval=60),
                will={"topic": "will/dev", "payload": b"late", "qos": 1,
                      "properties": props(PacketTypes.WILLMESSAGE, WillDelayInterval=1)})
    start = time.monotonic()
    dev.drop()
    m = watcher.get(timeout=5)
    assert m.payload == b"late"
    assert time.monotonic() - start >= 0.9


def test_will_delay_cancelled_by_reconnect(server, watcher):
    dev = Client(server.port, "dev", clean=False)
    dev.connect(properties=props(PacketTypes.CONNECT, SessionExpiryInterval=60),
                will={"topic": "will/dev", "payload": b"late", "qos": 1,
                      "properties": props(PacketTypes.WILLMESSAGE, WillDelayInterval=2)})
    dev.drop()
    again = Client(server.port, "dev", clean=False)
    flags, _, _ = again.connect(properties=props(PacketTypes.CONNECT, SessionExpiryInterval=60))
    assert flags["session present"] == 1
    watcher.no_message(timeout=3)


def test_will_sent_when_session_ends_before_delay(server, watcher):
    dev = Client(server.port, "dev")
    dev.connect(properties=props(PacketTypes.CONNECT, SessionExpiryInterval=0),
                will={"topic": "will/dev", "payload": b"now", "qos": 1,
                      "properties": props(PacketTypes.WILLMESSAGE, WillDelayInterval=30)})
    dev.drop()
    assert watcher.get(timeout=3).payload == b"now"
