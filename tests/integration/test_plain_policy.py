"""AWS IoT policies authorizing plain-TCP clients (auth.plain_policy_file): connect, publish,
retain, subscribe and receive, with policy variables, checked with paho."""
import json
import subprocess

import pytest

from conftest import FLEETCORE
from helpers import Client, PacketTypes, granted_qos, props

ARN = "arn:aws:iot:eu-west-1:123456789012"
POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        {"Effect": "Allow", "Action": "iot:Connect", "Resource": f"{ARN}:client/dev-*"},
        {"Effect": "Allow", "Action": "iot:Publish", "Resource": [f"{ARN}:topic/dev/${{iot:ClientId}}/*",
                                                                 f"{ARN}:topic/shared/*"]},
        {"Effect": "Allow", "Action": "iot:RetainPublish", "Resource": f"{ARN}:topic/dev/${{iot:ClientId}}/state"},
        {"Effect": "Allow", "Action": "iot:Subscribe", "Resource": [f"{ARN}:topicfilter/dev/${{iot:ClientId}}/#",
                                                                   f"{ARN}:topicfilter/shared/#"]},
        {"Effect": "Allow", "Action": "iot:Receive", "Resource": [f"{ARN}:topic/dev/${{iot:ClientId}}/*",
                                                                 f"{ARN}:topic/shared/public/*"]},
        {"Effect": "Deny", "Action": "iot:Publish", "Resource": f"{ARN}:topic/dev/*/admin"},
    ],
}


@pytest.fixture
def policed(make_server, tmp_path):
    path = tmp_path / "plain-policy.json"
    path.write_text(json.dumps(POLICY))
    return make_server(f'[aws]\nregion = "eu-west-1"\naccount_id = "123456789012"\n'
                      f'[auth]\nplain_policy_file = "{path}"\n')


@pytest.mark.parametrize("version,refused", [(5, 0x87), (4, 5)])
def test_connect_needs_matching_client_id(policed, version, refused):
    c = Client(policed.port, "intruder", version=version)
    _, rc, _ = c.connect(expect_ok=False)
    assert rc == refused
    ok = Client(policed.port, "dev-1", version=version)
    ok.connect()
    assert policed.metric('fleetcore_connects_total{result="not_authorized"}') == 1


def test_least_privilege_publish_and_subscribe(policed):
    d1 = Client(policed.port, "dev-1")
    d1.connect()
    d2 = Client(policed.port, "dev-2")
    d2.connect()
    assert granted_qos(d1.subscribe("dev/dev-1/#", 1)) == [1]
    assert granted_qos(d1.subscribe("dev/dev-2/#", 1)) == [0x87]  # another thing's topics
    assert granted_qos(d2.subscribe("dev/dev-2/#", 1)) == [1]
    d1.publish("dev/dev-1/telemetry", b"mine", qos=1)
    assert d1.get().payload == b"mine"
    info = d1.c.publish("dev/dev-2/cmd", b"not yours", qos=1)  # PUBACK 0x87, nothing routed
    info.wait_for_publish(timeout=10)
    d1.publish("dev/dev-1/admin", b"denied by the Deny statement", qos=1)
    d2.no_message()
    d1.no_message()
    assert policed.metric("fleetcore_denied_total") >= 3


def test_retain_needs_retain_publish(policed):
    d1 = Client(policed.port, "dev-1")
    d1.connect()
    d1.publish("dev/dev-1/state", b"kept", qos=1, retain=True)
    d1.publish("dev/dev-1/other", b"not kept", qos=1, retain=True)
    assert policed.metric("fleetcore_retained_messages") == 1


def test_receive_is_checked_per_message(policed):
    d1 = Client(policed.port, "dev-1")
    d1.connect()
    assert granted_qos(d1.subscribe("shared/#", 1)) == [1]
    d2 = Client(policed.port, "dev-2")
    d2.connect()
    d2.publish("shared/private/x", b"hidden", qos=1)
    d2.publish("shared/public/x", b"visible", qos=1)
    assert d1.get().payload == b"visible"
    d1.no_message()
    assert policed.metric('fleetcore_dropped_messages_total{reason="not_authorized"}') == 1


def test_malformed_policy_file_stops_the_server(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"Statement": {"Effect": "Allow", "Resource": "*"}}')
    cfg = tmp_path / "fc.toml"
    cfg.write_text(f'[auth]\nplain_policy_file = "{bad}"\n')
    r = subprocess.run([FLEETCORE, "serve", "--config", str(cfg), "--data-dir", str(tmp_path / "d"),
                        "--mqtt", "127.0.0.1:0", "--mqtts", "off", "--wss", "off", "--metrics", "off"],
                       capture_output=True, text=True, timeout=20)
    assert r.returncode == 1
    assert "MalformedPolicy" in r.stderr and "Action" in r.stderr
