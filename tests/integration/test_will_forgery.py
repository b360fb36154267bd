"""A will is a publish on the client's behalf (issue 10): it cannot name a topic only fleetcore
publishes on — a service's response topics (shadow .../accepted), lifecycle events, $SYS — on any
listener, MQTT 3.1.1 or 5, even when the device's policy allows the topic."""
import ssl

import pytest
import paho.mqtt.client as mqtt

from helpers import Client

FORGED = ["$aws/things/dev-w/shadow/update/accepted", "$aws/events/presence/connected/dev-w", "$SYS/broker/x",
          "$aws/things/dev-w/jobs/notify"]


@pytest.mark.parametrize("listener", ["mqtt", "mqtts", "wss"])
@pytest.mark.parametrize("version", [4, 5])
def test_will_on_a_reserved_topic_is_refused(server, tmp_path, listener, version):
    tls = None
    if listener != "mqtt":
        cert, key = server.issue_cert("dev-w", tmp_path)  # allow-all policy: only the reserved rule refuses
        tls = {"ca_certs": server.ca, "certfile": cert, "keyfile": key, "cert_reqs": ssl.CERT_REQUIRED}
    for topic in FORGED:
        before = server.metric('fleetcore_publish_topics_refused_total{origin="will"}')
        c = Client(server.ports[listener], "dev-w", version=version,
                   transport="websockets" if listener == "wss" else "tcp")
        if listener == "wss":
            c.c.ws_set_options(path="/mqtt")
        _, rc, _ = c.connect(will={"topic": topic, "payload": b"forged", "qos": 1}, expect_ok=False, tls=tls)
        code = getattr(rc, "value", rc)
        assert code == (0x87 if version == 5 else mqtt.CONNACK_REFUSED_NOT_AUTHORIZED), (topic, rc)
        assert server.metric('fleetcore_publish_topics_refused_total{origin="will"}') == before + 1
        c.c.loop_stop()
