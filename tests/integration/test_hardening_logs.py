"""Issue 9 item 11: client ids and topics from the network cannot forge log lines or fields."""
import re

from helpers import Raw, connect_bytes, encode_varint

FORGED_ID = b"a\nevent.forged key=1"
# $SYS is never publishable, so the broker logs this topic as denied. The broker refuses control
# characters in topics, not quotes, spaces, '=' or U+2028 (LINE SEPARATOR, a line break to many viewers).
FORGED_TOPIC = b'$SYS/x" client=admin \xe2\x80\xa8event.forged2 k=1'


def publish_qos1(topic, packet_id=1, payload=b"x"):
    body = len(topic).to_bytes(2, "big") + topic + packet_id.to_bytes(2, "big") + b"\x00" + payload
    return b"\x32" + encode_varint(len(body)) + body


def test_client_id_and_topic_are_escaped_in_the_log(server):
    raw = Raw(server.port)
    raw.send(connect_bytes(client_id=FORGED_ID))
    connack = raw.read_packet()
    assert connack[0] == 0x20 and connack[3] == 0  # accepted
    raw.send(publish_qos1(FORGED_TOPIC))
    puback = raw.read_packet()
    assert puback[0] == 0x40 and puback[4] == 0x87  # not authorized, and logged as mqtt.publish_denied
    raw.close()

    with open(server.log_path, "rb") as f:
        log = f.read()
    lines = log.split(b"\n")
    assert not [l for l in lines if l.startswith(b"event.forged")], log
    assert not re.search(rb"[\x00-\x09\x0b-\x1f\x7f]", log), log
    assert b"\xe2\x80\xa8" not in log, log
    denied = [l for l in lines if b" mqtt.publish_denied " in l]
    assert len(denied) == 1, log
    # One client field, and each outside value is a single token.
    assert denied[0].count(b" client=") == 1, denied[0]
    assert b" client=a\\x0aevent.forged\\x20key\\x3d1 " in denied[0], denied[0]
    assert denied[0].endswith(b" topic=$SYS/x\\x22\\x20client\\x3dadmin\\x20\\xe2\\x80\\xa8event.forged2\\x20k\\x3d1"), \
        denied[0]
