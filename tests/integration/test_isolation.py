"""What one client can cost others (issue 9, item 1): a session that never acknowledges holds at most its
own bounded backlog and may pause only the publishers feeding it, for the grace period; it cannot freeze
every other publisher, before or after it disconnects, or across a restart."""
import time

from helpers import Client, Raw, connect_bytes, publish_bytes, subscribe_bytes, wait_for

PAYLOAD = b"x" * (120 * 1024)


def stall(port, client_id, count):
    """A persistent MQTT 3.1.1 session subscribed QoS 1 to its own topics that publishes `count` large
    QoS 1 messages to itself and never acknowledges what it receives. Returns the raw connection."""
    raw = Raw(port)
    raw.send(connect_bytes(client_id.encode(), version=4, clean=False))
    assert raw.read_packet()[0] == 0x20
    raw.send(subscribe_bytes(1, (f"things/{client_id}/#".encode(), 1), version=4))
    assert raw.read_packet()[0] == 0x90
    for i in range(count):
        raw.send(publish_bytes(f"things/{client_id}/x".encode(), PAYLOAD, qos=1, packet_id=i + 1, version=4))
        while True:  # its own deliveries arrive in between: read past them, never acknowledge
            pkt = raw.read_packet()
            if pkt[0] & 0xF0 == 0x40:
                break
    return raw


def others_are_not_held(server, n=20, within=8):
    """Another publisher's QoS 1 PUBLISHes are each acknowledged, and reach a live subscriber."""
    sub = Client(server.port, "watcher")
    sub.connect()
    sub.subscribe("other/t", 1)
    pub = Client(server.port, "publisher")
    pub.connect()
    start = time.monotonic()
    for i in range(n):
        info = pub.c.publish("other/t", b"m%d" % i, qos=1)
        info.wait_for_publish(timeout=within)
        assert info.is_published(), f"PUBACK {i} not received within {within}s"
    for i in range(n):
        assert sub.get().payload == b"m%d" % i
    pub.disconnect()
    sub.disconnect()
    return time.monotonic() - start


def test_a_device_that_never_acknowledges_cannot_freeze_other_publishers(server):
    dev = stall(server.port, "dev1", 300)  # 36 MB routed to a session that acknowledges nothing
    # Its backlog is bounded in bytes (limits.max_queued_bytes, 16 MiB): the rest was dropped, counted.
    assert server.metric("fleetcore_queued_bytes") <= 16 * 1024 * 1024
    assert server.metric('fleetcore_dropped_messages_total{reason="queue_full"}') > 0
    others_are_not_held(server)
    dev.close()  # offline: its queue no longer counts toward the broker-wide pressure
    wait_for(lambda: server.metric("fleetcore_pressure_bytes") == 0, what="offline backlog out of the pressure")
    others_are_not_held(server)
    server.restart()
    assert 0 < server.metric("fleetcore_queued_bytes") <= 16 * 1024 * 1024  # the session kept its queue
    assert server.metric("fleetcore_pressure_bytes") == 0
    others_are_not_held(server)


def test_broker_wide_pause_is_bounded_by_the_grace_period(make_server):
    """Several sessions that never acknowledge push the online backlog above the high mark: publishers
    are paused for at most the grace period, then resume (an overrun, counted)."""
    server = make_server("[limits]\nmax_queued_bytes = 4194304\npressure_high_bytes = 6291456\n"
                         "pressure_low_bytes = 3145728\nslow_consumer_grace_ms = 1000\n")
    stallers = [stall(server.port, f"dev{i}", 40) for i in range(3)]  # 3 x 4 MiB online
    assert server.metric("fleetcore_pressure_bytes") > 6291456
    elapsed = others_are_not_held(server, n=10, within=5)
    assert elapsed < 8
    assert server.metric("fleetcore_pressure_overruns_total") >= 1
    for s in stallers:
        s.close()
