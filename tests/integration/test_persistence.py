"""Retained messages, persistent sessions and acknowledged QoS 1/2 messages survive a restart and
a kill -9."""
import pytest

from helpers import Client, PacketTypes, props, wait_for


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
