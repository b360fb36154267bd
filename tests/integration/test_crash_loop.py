"""kill -9, restart, acknowledge writes, kill -9 again, in a loop: every write acknowledged before a
crash survives it, and the database stays sound (issue 9: start-up reads on the writer's SQLite
connection from another thread corrupted the WAL, and the next crash lost acknowledged writes)."""
import json
import os
import shutil
import sqlite3

import boto3

from helpers import Client, PacketTypes, props

ROUNDS = 15
MESSAGES = 3  # per round
SHADOWS = 300  # read at every start, while the broker's start-up batch commits
FILTER = "crash/dev/#"
SESSION = props(PacketTypes.CONNECT, SessionExpiryInterval=3600)


def integrity(server, where):
    """PRAGMA integrity_check on a copy of the crashed database (db, WAL and index as the crash left
    them), so that the server's own recovery on the next start is what the test exercises."""
    src = os.path.join(server.data_dir, "db")
    copy = os.path.join(where, "copy")
    shutil.rmtree(copy, ignore_errors=True)
    os.makedirs(copy)
    for name in os.listdir(src):
        shutil.copy2(os.path.join(src, name), copy)
    db = sqlite3.connect(os.path.join(copy, "fleetcore.db"))
    try:
        return db.execute("PRAGMA integrity_check").fetchall()
    finally:
        db.close()


def crash(server, tmp_path):
    server.kill9()
    assert integrity(server, tmp_path) == [("ok",)]
    server.start()


def clients(server):
    key, secret = server.credentials()
    kw = dict(endpoint_url=server.api_url, region_name="us-east-1", aws_access_key_id=key,
              aws_secret_access_key=secret, verify=server.ca)
    return boto3.client("iot", **kw), boto3.client("iot-data", **kw)


def device(server, expect_present):
    dev = Client(server.port, "dev", version=5, clean=False)
    flags, _, _ = dev.connect(properties=SESSION)
    assert flags["session present"] == expect_present
    return dev


def test_acknowledged_writes_survive_repeated_crashes(server, tmp_path):
    # Many shadows make the shadow service's start-up read long enough to overlap the commit of the
    # broker's start-up batch (which marks the sessions connected at the crash as disconnected).
    seed = Client(server.port, "seed")
    seed.connect()
    seed.subscribe("$aws/things/+/shadow/update/accepted", 1)
    window = 8  # below the shadow service's per-client in-flight limit
    for i in range(SHADOWS + window):
        if i >= window:
            assert seed.get().topic.endswith("/update/accepted")
        if i < SHADOWS:
            seed.publish(f"$aws/things/bulk-{i}/shadow/update",
                         json.dumps({"state": {"reported": {"pad": "x" * 1000}}}), qos=1, wait=False)
    seed.disconnect()

    dev = device(server, expect_present=False)
    dev.subscribe(FILTER, 1)
    things, version, delivered = [], 0, set()
    for r in range(ROUNDS):
        # The persistent session is connected when the server dies.
        crash(server, tmp_path)
        dev.c.loop_stop()

        pub = Client(server.port, "operator")
        pub.connect()
        sent = [f"r{r}-m{i}".encode() for i in range(MESSAGES)]
        for i, payload in enumerate(sent):
            pub.publish(f"crash/dev/{r}/{i}", payload, qos=1)  # returns once PUBACK arrived
        pub.disconnect()
        iot, data = clients(server)
        things.append(iot.create_thing(thingName=f"crash-{r}")["thingName"])
        out = data.update_thing_shadow(thingName="crash-shadow",
                                       payload=json.dumps({"state": {"reported": {"round": r}}}))
        version = json.loads(out["payload"].read())["version"]
        assert version == r + 1

        crash(server, tmp_path)

        dev = device(server, expect_present=True)
        probe = Client(server.port, "probe")
        probe.connect()
        probe.publish("crash/dev/probe", f"probe-{r}".encode(), qos=1)
        probe.disconnect()
        # Queued messages come before the probe, which shows the subscription survived too. A message
        # delivered before a crash may come again (its PUBACK need not have been stored): at least once.
        got = []
        while (payload := dev.get().payload) != f"probe-{r}".encode():
            got.append(payload)
        assert [p for p in got if p not in delivered] == sent, f"round {r}"
        delivered.update(got)
        delivered.add(f"probe-{r}".encode())
        iot, data = clients(server)
        listed = {t["thingName"] for p in iot.get_paginator("list_things").paginate() for t in p["things"]}
        assert set(things) <= listed, f"round {r}: lost {set(things) - listed}"
        doc = json.loads(data.get_thing_shadow(thingName="crash-shadow")["payload"].read())
        assert (doc["version"], doc["state"]["reported"]["round"]) == (version, r)

    dev.disconnect()
    server.stop()
    db = sqlite3.connect(os.path.join(server.data_dir, "db", "fleetcore.db"))
    try:
        assert db.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        assert db.execute("SELECT count(*) FROM documents WHERE kind='shadow'").fetchone()[0] == SHADOWS + 1
    finally:
        db.close()
