"""Streams and MQTT-based file delivery (issue 13): the aws CLI manages streams over objects in the
object store; devices (mosquitto_rr, paho with cbor2) download their files block by block in JSON and
in CBOR."""
import base64
import json
import os
import subprocess

import cbor2

from conftest import Client, TIMEOUT, mosquitto

ROLE = "arn:aws:iam::000000000000:role/ota-streams"


def upload(server, tmp_path, bucket, key, data):
    path = tmp_path / key.replace("/", "_")
    path.write_bytes(data)
    server.aws("s3", "mb", "s3://" + bucket, check=False)  # made by the first upload
    server.aws("s3", "cp", str(path), f"s3://{bucket}/{key}")


def create_stream(server, stream_id, files, description="firmware"):
    return server.aws("iot", "create-stream", "--stream-id", stream_id, "--description", description,
                      "--role-arn", ROLE, "--files", json.dumps(files))[1]


def file_spec(file_id, bucket, key):
    return {"fileId": file_id, "s3Location": {"bucket": bucket, "key": key}}


def rr(server, client_id, request_topic, response_topic, payload):
    """One request and its answer with mosquitto_rr (one session subscribes and publishes)."""
    r = mosquitto("mosquitto_rr", "-h", "127.0.0.1", "-p", str(server.port), "-i", client_id, "-t", request_topic,
                  "-e", response_topic, "-m", payload, "-W", str(int(TIMEOUT)), check=False)
    assert r.returncode == 0, r.stderr
    return r.stdout


def test_cli_manages_streams(server, tmp_path):
    upload(server, tmp_path, "fw-images", "app.bin", os.urandom(3000))
    upload(server, tmp_path, "fw-images", "boot.bin", os.urandom(100))
    created = create_stream(server, "s1", [file_spec(0, "fw-images", "app.bin")])
    assert created == {"streamId": "s1", "streamArn": "arn:aws:iot:us-east-1:000000000000:stream/s1",
                       "description": "firmware", "streamVersion": 1}
    rc, err = server.aws("iot", "create-stream", "--stream-id", "s1", "--role-arn", ROLE, "--files",
                         json.dumps([file_spec(0, "fw-images", "app.bin")]), check=False)
    assert rc != 0 and "ResourceAlreadyExistsException" in err
    rc, err = server.aws("iot", "create-stream", "--stream-id", "s2", "--role-arn", ROLE, "--files",
                         json.dumps([file_spec(0, "fw-images", "missing.bin")]), check=False)
    assert rc != 0 and "ResourceNotFoundException" in err and "missing.bin" in err
    rc, err = server.aws("iot", "create-stream", "--stream-id", "s2", "--role-arn", ROLE, "--files",
                         json.dumps([file_spec(1, "fw-images", "app.bin"), file_spec(1, "fw-images", "boot.bin")]), check=False)
    assert rc != 0 and "InvalidRequestException" in err

    updated = server.aws("iot", "update-stream", "--stream-id", "s1", "--files",
                         json.dumps([file_spec(0, "fw-images", "app.bin"), file_spec(7, "fw-images", "boot.bin")]))[1]
    assert updated["streamVersion"] == 2
    info = server.aws("iot", "describe-stream", "--stream-id", "s1")[1]["streamInfo"]
    assert info["streamVersion"] == 2 and info["roleArn"] == ROLE and info["description"] == "firmware"
    assert info["files"] == [file_spec(0, "fw-images", "app.bin"), file_spec(7, "fw-images", "boot.bin")]
    assert info["createdAt"] <= info["lastUpdatedAt"]

    create_stream(server, "s3", [file_spec(0, "fw-images", "boot.bin")], description="second")
    listed = server.aws("iot", "list-streams")[1]["streams"]
    assert [s["streamId"] for s in listed] == ["s3", "s1"]  # newest first, as AWS lists them
    # The CLI follows nextToken across pages of one.
    paged = server.client("iot").list_streams(maxResults=1)
    assert len(paged["streams"]) == 1 and "nextToken" in paged
    rest = server.client("iot").list_streams(maxResults=1, nextToken=paged["nextToken"])
    assert [s["streamId"] for s in paged["streams"] + rest["streams"]] == ["s3", "s1"]

    server.aws("iot", "delete-stream", "--stream-id", "s3")
    rc, err = server.aws("iot", "describe-stream", "--stream-id", "s3", check=False)
    assert rc != 0 and "ResourceNotFoundException" in err
    # Streams survive a restart.
    server.restart()
    assert server.aws("iot", "describe-stream", "--stream-id", "s1")[1]["streamInfo"]["streamVersion"] == 2


def test_json_blocks_with_mosquitto_and_paho(server, tmp_path):
    image = os.urandom(10_000)
    upload(server, tmp_path, "fw-images", "image.bin", image)
    create_stream(server, "fw-json", [file_spec(0, "fw-images", "image.bin")])
    base = "$aws/things/dev-1/streams/fw-json/"

    described = json.loads(rr(server, "dev-1", base + "describe/json", base + "description/json", '{"c":"d1"}'))
    assert described == {"c": "d1", "s": 1, "d": "firmware", "r": [{"f": 0, "z": 10_000}]}
    one = json.loads(rr(server, "dev-1", base + "get/json", base + "data/json",
                        '{"c":"g1","s":1,"f":0,"l":4096,"o":2,"n":1}'))
    assert one == {"c": "g1", "f": 0, "l": 10_000 - 8192, "i": 2, "p": base64.b64encode(image[8192:]).decode()}

    # The acceptance's request: three blocks of 4 KiB, reassembled byte for byte.
    dev = Client(server.port, "dev-1b")
    dev.connect()
    assert dev.subscribe(base + "data/json", 1) == [1]
    dev.publish(base + "get/json", '{"c":"t","f":0,"l":4096,"o":0,"n":3}', qos=1)
    blocks = [json.loads(dev.get().payload) for _ in range(3)]
    assert [b["i"] for b in blocks] == [0, 1, 2]
    assert b"".join(base64.b64decode(b["p"]) for b in blocks) == image
    # Without n: 128 KiB worth of blocks, here the whole file in 256-byte blocks.
    dev.publish(base + "get/json", '{"f":0,"l":256}', qos=1)
    blocks = [json.loads(dev.get().payload) for _ in range(40)]
    assert b"".join(base64.b64decode(b["p"]) for b in blocks) == image
    assert all("c" not in b for b in blocks)
    dev.no_message()
    assert server.metric("fleetcore_streams_blocks_total") == 1 + 3 + 40


def test_cbor_bitmap_downloads_as_the_ota_agent_does(server, tmp_path):
    # The FreeRTOS OTA agent asks CBOR {c:"rdy", f, l:4096, o:0, b:<missing blocks>, n:1} until its
    # bitmap is empty; the last block is shorter.
    image = os.urandom(5 * 4096 + 123)
    upload(server, tmp_path, "fw-images", "ota.bin", image)
    create_stream(server, "AFR_OTA-x", [file_spec(3, "fw-images", "ota.bin")])
    base = "$aws/things/ota-dev/streams/AFR_OTA-x/"
    dev = Client(server.port, "ota-dev")
    dev.connect()
    assert dev.subscribe(base + "data/cbor", 1) == [1]
    assert dev.subscribe(base + "description/cbor", 1) == [1]
    dev.publish(base + "describe/cbor", cbor2.dumps({"c": "d"}), qos=1)
    assert cbor2.loads(dev.get().payload) == {"c": "d", "s": 1, "d": "firmware", "r": [{"f": 3, "z": len(image)}]}

    received = {}
    missing = set(range(6))
    while missing:
        bitmap = bytearray(1)
        for b in missing:
            bitmap[b // 8] |= 1 << (b % 8)
        dev.publish(base + "get/cbor", cbor2.dumps({"c": "rdy", "f": 3, "l": 4096, "o": 0, "b": bytes(bitmap), "n": 1}),
                    qos=1)
        block = cbor2.loads(dev.get().payload)
        assert set(block) == {"c", "f", "l", "i", "p"} and block["f"] == 3 and isinstance(block["p"], bytes)
        assert block["i"] == min(missing) and block["l"] == len(block["p"])
        received[block["i"]] = block["p"]
        missing.discard(block["i"])
    assert b"".join(received[i] for i in range(6)) == image
    assert len(received[5]) == 123

    # A bitmap with a gap, relative to the offset: blocks 2 and 4 from o=1 (bits 1 and 3).
    dev.publish(base + "get/cbor", cbor2.dumps({"f": 3, "l": 4096, "o": 1, "b": bytes([0b1010])}), qos=1)
    got = [cbor2.loads(dev.get().payload) for _ in range(2)]
    assert [(b["i"], b["p"]) for b in got] == [(2, image[8192:12288]), (4, image[16384:20480])]
    # JSON carries the bitmap as hex: "0x0a" is the same request.
    assert dev.subscribe(base + "data/json", 1) == [1]
    dev.publish(base + "get/json", json.dumps({"f": 3, "l": 4096, "o": 1, "b": "0x0a"}), qos=1)
    got = [json.loads(dev.get().payload) for _ in range(2)]
    assert [(b["i"], base64.b64decode(b["p"])) for b in got] == [(2, image[8192:12288]), (4, image[16384:20480])]


def test_every_rejection(server, tmp_path):
    image = os.urandom(2000)
    upload(server, tmp_path, "fw-images", "r.bin", image)
    create_stream(server, "rs", [file_spec(0, "fw-images", "r.bin")])
    base = "$aws/things/rej/streams/rs/"
    dev = Client(server.port, "rej")
    dev.connect()
    assert dev.subscribe(base + "rejected/json", 1) == [1]
    assert dev.subscribe(base + "rejected/cbor", 1) == [1]
    assert dev.subscribe("$aws/things/rej/streams/nope/rejected/json", 1) == [1]

    def rejected(topic, payload, fmt="json"):
        dev.publish(base + topic, payload, qos=1)
        m = dev.get()
        assert m.topic == base + "rejected/" + fmt
        return json.loads(m.payload) if fmt == "json" else cbor2.loads(m.payload)

    assert rejected("get/xml", "{}")["o"] == "InvalidTopic"
    assert rejected("get/json", "not json")["o"] == "InvalidJson"
    assert rejected("get/cbor", b"\xff\x00", "cbor")["o"] == "InvalidCbor"
    assert rejected("get/json", json.dumps({"c": "x" * 65, "f": 0, "l": 256})) == {
        "o": "InvalidRequest", "m": "the client token must be a string of at most 64 bytes"}
    assert rejected("get/json", json.dumps({"c": "k", "l": 256}))["o"] == "InvalidRequest"
    r = rejected("get/json", json.dumps({"c": "k", "f": 0, "l": 128}))
    assert r["o"] == "BlockSizeOutOfBounds" and r["c"] == "k"
    assert rejected("get/json", json.dumps({"f": 0, "l": 256, "o": 98305}))["o"] == "OffsetOutOfBounds"
    assert rejected("get/json", json.dumps({"f": 0, "l": 256, "n": 98305}))["o"] == "BlockCountLimitExceeded"
    assert rejected("get/cbor", cbor2.dumps({"f": 0, "l": 256, "b": bytes(12288)}), "cbor")["o"] == \
        "BlockBitmapLimitExceeded"
    assert rejected("get/json", json.dumps({"f": 1, "l": 256}))["o"] == "ResourceNotFound"
    assert rejected("get/json", json.dumps({"f": 0, "l": 256, "o": 8}))["o"] == "ResourceNotFound"
    assert rejected("get/json", json.dumps({"c": "v", "s": 2, "f": 0, "l": 256})) == {
        "o": "VersionMismatch", "m": "the stream's version is 1, not 2", "c": "v"}
    dev.publish("$aws/things/rej/streams/nope/describe/json", "{}", qos=1)
    assert json.loads(dev.get().payload)["o"] == "ResourceNotFound"
    # The object replaced after the stream was made: ETagMismatch until UpdateStream.
    upload(server, tmp_path, "fw-images", "r.bin", os.urandom(2000))
    assert rejected("get/json", json.dumps({"f": 0, "l": 256}))["o"] == "ETagMismatch"
    server.aws("iot", "update-stream", "--stream-id", "rs", "--files", json.dumps([file_spec(0, "fw-images", "r.bin")]))
    assert dev.subscribe(base + "data/json", 1) == [1]
    dev.publish(base + "get/json", json.dumps({"s": 2, "f": 0, "l": 2048}), qos=1)
    assert json.loads(dev.get().payload)["l"] == 2000
    assert server.metric("fleetcore_streams_rejected_total") == 14


def test_answers_go_to_the_requesting_session_only(server, tmp_path):
    upload(server, tmp_path, "fw-images", "p.bin", os.urandom(1000))
    create_stream(server, "priv", [file_spec(0, "fw-images", "p.bin")])
    base = "$aws/things/a/streams/priv/"
    spy = Client(server.port, "spy")
    spy.connect()
    assert spy.subscribe("$aws/things/+/streams/#", 1) == [1]
    dev = Client(server.port, "a")
    dev.connect()
    assert dev.subscribe(base + "data/json", 1) == [1]
    dev.publish(base + "get/json", '{"f":0,"l":512}', qos=1)
    assert len([dev.get(), dev.get()]) == 2
    spy.no_message(1.0)  # neither the request nor the blocks
    # Only the service publishes answers.
    r = mosquitto("mosquitto_pub", "-h", "127.0.0.1", "-p", str(server.port), "-V", "mqttv5", "-q", "1", "-d",
                  "-t", base + "data/json", "-m", "{}", check=False)
    assert "RC:135" in r.stdout


def test_a_download_resumes_after_kill9(server, tmp_path):
    # The device has half the blocks when the server dies; after the restart it asks for the missing
    # ones by bitmap and gets exactly them.
    image = os.urandom(64 * 1024)
    upload(server, tmp_path, "fw-images", "resume.bin", image)
    create_stream(server, "resume", [file_spec(0, "fw-images", "resume.bin")])
    base = "$aws/things/res/streams/resume/"
    got = {}

    def ask(dev, missing, n):
        bitmap = bytearray(8)
        for b in missing:
            bitmap[b // 8] |= 1 << (b % 8)
        dev.publish(base + "get/cbor", cbor2.dumps({"f": 0, "l": 1024, "b": bytes(bitmap), "n": n}), qos=1)
        for _ in range(min(n, len(missing))):
            m = cbor2.loads(dev.get().payload)
            got[m["i"]] = m["p"]

    dev = Client(server.port, "res")
    dev.connect()
    assert dev.subscribe(base + "data/cbor", 1) == [1]
    ask(dev, set(range(64)), 32)
    assert sorted(got) == list(range(32))
    server.kill9()
    server.start()
    dev = Client(server.port, "res")
    dev.connect()
    assert dev.subscribe(base + "data/cbor", 1) == [1]
    ask(dev, set(range(64)) - set(got), 64)
    dev.no_message()
    assert b"".join(got[i] for i in range(64)) == image


def test_a_damaged_file_is_an_internal_error(server, tmp_path):
    # A blob cut short on disk (damage outside fleetcore): the device is told InternalError, the server
    # logs it, and nothing else is sent.
    image = os.urandom(5000)
    upload(server, tmp_path, "fw-images", "d.bin", image)
    create_stream(server, "dmg", [file_spec(0, "fw-images", "d.bin")])
    import hashlib
    sha = hashlib.sha256(image).hexdigest()
    with open(os.path.join(server.data_dir, "objects", sha[:2], sha), "r+b") as f:
        f.truncate(1000)
    base = "$aws/things/dmg/streams/dmg/"
    dev = Client(server.port, "dmg")
    dev.connect()
    assert dev.subscribe(base + "rejected/json", 1) == [1]
    assert dev.subscribe(base + "data/json", 1) == [1]
    dev.publish(base + "get/json", json.dumps({"c": "x", "f": 0, "l": 4096, "o": 1}), qos=1)
    assert json.loads(dev.get().payload) == {"o": "InternalError", "m": "the file could not be read", "c": "x"}
    dev.no_message()
    assert "streams.read_failed" in server.read_log()
