"""Retained messages: set, replace, clear, delivery on subscribe, MQTT 5 retain options."""
import pytest

from helpers import Client, PacketTypes, props, wait_for


@pytest.mark.parametrize("version", [4, 5])
def test_retained_set_replace_clear(server, version):
    pub = Client(server.port, "pub", version=version)
    pub.connect()
    pub.publish("ret/a", b"v1", qos=1, retain=True)
    pub.publish("ret/a", b"v2", qos=1, retain=True)
    pub.publish("ret/b", b"b", qos=0, retain=True)
    wait_for(lambda: server.metric("fleetcore_retained_messages") == 2, what="retained count")
    sub = Client(server.port, "sub", version=version)
    sub.connect()
    sub.subscribe("ret/+", 1)
    got = sorted((m.topic, m.payload, m.retain) for m in (sub.get(), sub.get()))
    assert got == [("ret/a", b"v2", 1), ("ret/b", b"b", 1)]
    pub.publish("ret/a", b"", qos=1, retain=True)  # clears, and is delivered to current subscribers
    m = sub.get()
    assert (m.topic, m.payload) == ("ret/a", b"")
    late = Client(server.port, "late", version=version)
    late.connect()
    late.subscribe("ret/#", 1)
    assert late.get().topic == "ret/b"
    late.no_message()
    assert server.metric("fleetcore_retained_messages") == 1


def test_live_messages_have_retain_flag_cleared(server):
    sub = Client(server.port, "sub", version=4)
    sub.connect()
    sub.subscribe("live/t", 1)
    pub = Client(server.port, "pub", version=4)
    pub.connect()
    pub.publish("live/t", b"x", qos=1, retain=True)
    assert sub.get().retain == 0


def test_retain_as_published(server):
    from paho.mqtt.subscribeoptions import SubscribeOptions
    sub = Client(server.port, "sub")
    sub.connect()
    sub.subscribe("rap/t", options=SubscribeOptions(qos=1, retainAsPublished=True))
    pub = Client(server.port, "pub")
    pub.connect()
    pub.publish("rap/t", b"x", qos=1, retain=True)
    assert sub.get().retain == 1


@pytest.mark.parametrize("handling,first,again", [(0, True, True), (1, True, False), (2, False, False)])
def test_retain_handling(server, handling, first, again):
    from paho.mqtt.subscribeoptions import SubscribeOptions
    pub = Client(server.port, "pub")
    pub.connect()
    pub.publish("rh/t", b"kept", qos=1, retain=True)
    sub = Client(server.port, "sub")
    sub.connect()
    opts = SubscribeOptions(qos=1, retainHandling=handling)
    sub.subscribe("rh/t", options=opts)
    if first:
        assert sub.get().payload == b"kept"
    sub.subscribe("rh/t", options=opts)  # the same subscription again
    if again:
        assert sub.get().payload == b"kept"
    sub.no_message()


def test_retained_message_expiry(server):
    pub = Client(server.port, "pub")
    pub.connect()
    pub.publish("exp/r", b"short", qos=1, retain=True, properties=props(PacketTypes.PUBLISH, MessageExpiryInterval=1))
    sub = Client(server.port, "sub")
    sub.connect()
    sub.subscribe("exp/r", 1)
    m = sub.get()
    assert m.payload == b"short" and m.properties.MessageExpiryInterval == 1
    wait_for(lambda: retained_gone(server), timeout=5, what="retained message to expire")


def retained_gone(server):
    c = Client(server.port, "probe")
    c.connect()
    c.subscribe("exp/r", 1)
    try:
        c.messages.get(timeout=0.3)
        return False
    except Exception:
        return True
    finally:
        c.disconnect()
