"""One set of topic rules for every origin of a publish (issue 9, item 3): an MQTT PUBLISH, a will, HTTP
publish on the device port and iot-data Publish refuse the same topics — invalid UTF-8, NUL, control
characters, wildcards, over 1024 bytes or 16 levels, `$SYS` — and nothing refused reaches a subscriber.
Checked on a fixed list and on random topics against a reference of the rules."""
import http.client
import random
import ssl
import urllib.parse

import botocore.exceptions
import pytest

from helpers import Client, Raw, connect_bytes, encode_varint, wait_for

MAX_BYTES, MAX_LEVELS = 1024, 16


def allowed(topic: bytes) -> bool:
    """The reference: what a PUBLISH topic may be, as fleetcore documents it."""
    if not topic or len(topic) > MAX_BYTES or b"+" in topic or b"#" in topic:
        return False
    try:
        text = topic.decode("utf-8")
    except UnicodeDecodeError:
        return False
    if any(ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F or 0xD800 <= ord(c) <= 0xDFFF for c in text):
        return False
    if text.count("/") + 1 > MAX_LEVELS or text.startswith("$SYS"):
        return False
    return True


FIXED = [b"\xff", b"a/\xc3", b"a\x00b", b"a\nb", b"a\x7fb", b"a\xc2\x85b", b"a" * 1025, b"/".join([b"l"] * 17),
         b"$SYS/broker/x", b"a/+/b", b"a/#", b"ok/topic", b"a" * 1024, b"/".join([b"l"] * 16), b"caf\xc3\xa9/\xe2\x82\xac"]


def random_topics(n, seed=9):
    rnd = random.Random(seed)
    alphabet = [b"a", b"/", b"+", b"#", b"$", b"\x00", b"\n", b"\x7f", b"\xc3\xa9", b"\xff", b"\xc3", b"\xc2\x90", b"z"]
    out = []
    for _ in range(n):
        t = b"".join(rnd.choice(alphabet) for _ in range(rnd.randint(1, 12)))
        if rnd.random() < 0.1:
            t = b"x/" * rnd.randint(14, 18) + b"x"
        out.append(t)
    return out


def mqtt_publish_accepted(port, topic: bytes) -> bool:
    """A raw MQTT 5 QoS 1 PUBLISH: accepted if PUBACK < 0x80."""
    raw = Raw(port)
    raw.send(connect_bytes(b"rules-pub"))
    assert raw.read_packet()[0] == 0x20
    body = len(topic).to_bytes(2, "big") + topic + b"\x00\x01" + b"\x00" + b"payload"
    raw.send(b"\x32" + encode_varint(len(body)) + body)
    try:
        pkt = raw.read_packet()
    except (ConnectionError, OSError):
        return False  # malformed: DISCONNECT and close
    raw.close()
    if pkt[0] == 0xE0:
        return False
    assert pkt[0] == 0x40, pkt
    return len(pkt) < 5 or pkt[4] < 0x80


def will_accepted(port, topic: bytes) -> bool:
    """A raw MQTT 5 CONNECT with a will on `topic`: accepted if CONNACK 0x00."""
    raw = Raw(port)
    client_id = b"rules-will"
    vh = b"\x00\x04MQTT\x05" + bytes([0x02 | 0x04]) + (60).to_bytes(2, "big") + b"\x00"
    payload = len(client_id).to_bytes(2, "big") + client_id + b"\x00" + len(topic).to_bytes(2, "big") + topic
    payload += (4).to_bytes(2, "big") + b"will"
    body = vh + payload
    raw.send(b"\x10" + encode_varint(len(body)) + body)
    try:
        pkt = raw.read_packet()
    except (ConnectionError, OSError):
        return False
    raw.close()
    assert pkt[0] == 0x20, pkt
    return pkt[3] == 0


def device_https_status(server, cert, key, topic: bytes) -> int:
    ctx = ssl.create_default_context(cafile=server.ca)
    ctx.load_cert_chain(cert, key)
    conn = http.client.HTTPSConnection("localhost", server.ports["wss"], context=ctx, timeout=10)
    conn.request("POST", "/topics/" + urllib.parse.quote(topic, safe="") + "?qos=1", body=b"payload")
    status = conn.getresponse().status
    conn.close()
    return status


@pytest.fixture
def setup(server, tmp_path):
    cert, key = server.issue_cert("rules-dev", tmp_path)
    watcher = Client(server.port, "rules-watch")
    watcher.connect()
    watcher.subscribe("#", 1)
    watcher.subscribe("$SYS/#", 1)
    return server, cert, key, watcher


def test_every_origin_refuses_the_same_topics(setup):
    server, cert, key, watcher = setup
    import boto3
    k, s = server.credentials()
    iot_data = boto3.client("iot-data", endpoint_url=server.api_url, region_name="us-east-1",
                            aws_access_key_id=k, aws_secret_access_key=s, verify=server.ca)
    delivered = set()  # allowed topics that some origin published: each must reach the subscriber
    for topic in FIXED + random_topics(40):
        want = allowed(topic)
        assert mqtt_publish_accepted(server.port, topic) == want, topic
        assert will_accepted(server.port, topic) == want, topic
        status = device_https_status(server, cert, key, topic)
        assert (status == 200) == want, (topic, status)
        if want:
            delivered.add(topic)
        try:
            text = topic.decode("utf-8")
        except UnicodeDecodeError:
            continue  # botocore sends text topics only
        try:
            iot_data.publish(topic=text, qos=1, payload=b"p")
            assert want, topic
        except botocore.exceptions.ClientError as e:
            assert not want, (topic, e)
            assert e.response["ResponseMetadata"]["HTTPStatusCode"] in (400, 401)
        except botocore.exceptions.ParamValidationError:
            assert not want, topic
    # Nothing refused reached the subscribers: every message it got is on an allowed topic.
    got = []
    while True:
        try:
            got.append(watcher.get(timeout=1))
        except Exception:
            break
    assert all(allowed(m._topic) for m in got), [m._topic for m in got if not allowed(m._topic)]
    assert delivered <= {m._topic for m in got}, delivered - {m._topic for m in got}
    refused = sum(server.metric(f'fleetcore_publish_topics_refused_total{{origin="{o}"}}')
                  for o in ("client", "will", "http"))
    assert refused > 0
    assert server.metric('fleetcore_publish_topics_refused_total{origin="will"}') > 0
