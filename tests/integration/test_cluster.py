"""Cluster mode (`make integration-cluster`): three fleetcore nodes on one PostgreSQL database, talking
through nats-server, behind HAProxy in TCP mode. What a client connected to one node sees of the
others: messages, retained messages and shared subscriptions across nodes, a node that dies, a NATS
server that restarts."""
import json
import os
import shutil
import ssl
import time
import urllib.request

import pytest

import pki
from conftest import (PG_SERVER, TIMEOUT, Client, Nats, PacketTypes, Server, free_port, haproxy,
                      postgres_database, props, wait_for)

pytestmark = pytest.mark.skipif(
    not (PG_SERVER and shutil.which("nats-server") and shutil.which("haproxy")),
    reason="cluster tests need FC_TEST_POSTGRES, nats-server and haproxy")


class Cluster:
    def __init__(self, work, name, size=3, config=None):
        self.work = str(work)
        self.nats = Nats(self.work)
        self.nats.start()
        storage = postgres_database(name)
        self.nodes = [Server(os.path.join(self.work, f"n{i}"), storage=storage, config=config,
                             args=["--cluster-nats", self.nats.url, "--node-id", f"n{i}",
                                   "--endpoint-host", "iot.cluster.test"]) for i in range(size)]
        for n in self.nodes:
            n.start()
        # Every node has heard of every other (each says hello when it starts and every second).
        for n in self.nodes:
            wait_for(lambda n=n: n.metrics().get("fleetcore_cluster_peers") == size - 1, what="the peers")
        self.haproxy = None

    def start_haproxy(self):
        """HAProxy in TCP mode in front of the nodes' MQTT listeners, checking /readyz."""
        self.lb_port = free_port()
        self.haproxy = haproxy(self.work, {"mqtt": self.lb_port}, self.nodes)

    def close(self):
        if self.haproxy:
            self.haproxy.terminate()
            self.haproxy.wait(timeout=10)
        for n in self.nodes:
            if n.proc and n.proc.poll() is None:
                n.stop()
        self.nats.stop()


@pytest.fixture
def cluster(tmp_path, request):
    c = Cluster(tmp_path, request.node.name)
    yield c
    c.close()


def connected(port, client_id, **kw):
    c = Client(port, client_id, **kw)
    c.connect()
    return c


def test_messages_cross_nodes_in_order_at_every_qos(cluster):
    n0, n1, n2 = cluster.nodes
    sub = connected(n1.port, "sub")
    sub.subscribe("plant/#", 2)
    pubs = [connected(n0.port, "pub0"), connected(n2.port, "pub2")]
    # Published right after the SUBACK: the other nodes knew of the subscription before it was acknowledged.
    for qos in (0, 1, 2):
        for p, pub in enumerate(pubs):
            for i in range(20):
                pub.publish(f"plant/{p}", f"{qos}-{i}", qos=qos)
    got = {}
    for _ in range(2 * 3 * 20):
        m = sub.get()
        got.setdefault(m.topic, []).append((m.qos, m.payload.decode()))
    for p in range(2):
        assert got[f"plant/{p}"] == [(qos, f"{qos}-{i}") for qos in (0, 1, 2) for i in range(20)]
    sub.no_message()
    assert n1.metrics()["fleetcore_cluster_messages_received_total"] == 120


def test_unsubscribe_stops_forwarding(cluster):
    n0, n1, _ = cluster.nodes
    sub = connected(n1.port, "sub")
    sub.subscribe("u/t", 1)
    pub = connected(n0.port, "pub")
    pub.publish("u/t", "one", qos=1)
    assert sub.get().payload == b"one"
    sub.c.unsubscribe("u/t")
    sub.unsubacks.get(timeout=TIMEOUT)
    before = n0.metrics()["fleetcore_cluster_messages_forwarded_total"]
    pub.publish("u/t", "two", qos=1)
    # The UNSUBACK came after every node forgot the interest: n0 forwards nothing.
    assert n0.metrics()["fleetcore_cluster_messages_forwarded_total"] == before
    sub.no_message()


def test_retained_messages_are_cluster_wide(cluster):
    n0, n1, n2 = cluster.nodes
    pub = connected(n0.port, "pub")
    pub.publish("cfg/a", "v1", qos=1, retain=True)
    # A node with no subscriber for it still keeps it: a later subscriber anywhere gets it.
    wait_for(lambda: n2.metrics().get("fleetcore_retained_messages") == 1, what="n2 to keep the retained message")
    late = connected(n2.port, "late")
    late.subscribe("cfg/#", 1)
    m = late.get()
    assert (m.topic, m.payload, m.retain) == ("cfg/a", b"v1", True)
    # Cleared on another node: gone everywhere.
    connected(n1.port, "clear").publish("cfg/a", b"", qos=1, retain=True)
    wait_for(lambda: all(n.metrics().get("fleetcore_retained_messages") == 0 for n in cluster.nodes),
             what="every node to drop it")
    later = connected(n2.port, "later")
    later.subscribe("cfg/#", 1)
    later.no_message()


def test_shared_subscription_spreads_over_nodes_and_delivers_once(cluster):
    members = [connected(n.port, f"worker{i}") for i, n in enumerate(cluster.nodes)]
    for m in members:
        m.subscribe("$share/workers/jobs/+", 1)
    pub = connected(cluster.nodes[0].port, "pub")
    for i in range(30):
        pub.publish(f"jobs/{i}", str(i), qos=1)
    seen = []
    counts = []
    for m in members:
        got = []
        while True:
            try:
                got.append(int(m.get(timeout=1).payload))
            except Exception:
                break
        counts.append(len(got))
        seen += got
    assert sorted(seen) == list(range(30)), "each message once, to one member"
    assert all(c >= 5 for c in counts), f"every node's member gets a share: {counts}"


def test_a_dead_node_is_dropped_and_the_others_go_on(cluster):
    n0, n1, n2 = cluster.nodes
    sub = connected(n1.port, "sub")
    sub.subscribe("k/t", 1)
    doomed = connected(n2.port, "doomed")
    doomed.subscribe("k/t", 1)
    pub = connected(n0.port, "pub")
    pub.publish("k/t", "before", qos=1)
    assert sub.get().payload == b"before"
    n2.kill9()
    for n in (n0, n1):
        wait_for(lambda n=n: n.metrics().get("fleetcore_cluster_peers") == 1, what="the dead node to be dropped")
    t0 = time.monotonic()
    for i in range(20):
        pub.publish("k/t", f"after-{i}", qos=1)  # acknowledged: n1 stored it, the dead node is not waited for
    assert time.monotonic() - t0 < 5
    assert [sub.get().payload.decode() for _ in range(20)] == [f"after-{i}" for i in range(20)]


def eventually_delivered(pub, sub, topic, payload, what):
    """Publishes at QoS 1 until `sub` receives it: what a client does while the cluster is still healing
    (a publish refused, or acknowledged before a node knew of the subscriber, is sent again)."""
    def arrived():
        info = pub.c.publish(topic, payload, qos=1)
        info.wait_for_publish(timeout=TIMEOUT)
        try:
            return sub.get(timeout=0.5).payload == payload.encode()
        except Exception:
            return False
    wait_for(arrived, what=what)


def persistent(port, client_id, clean=False):
    """An MQTT 5 client whose session outlives its connection; returns it and whether a session was present."""
    c = Client(port, client_id, version=5, clean=clean)
    flags, _, _ = c.connect(properties=props(PacketTypes.CONNECT, SessionExpiryInterval=3600))
    return c, flags["session present"]


def test_a_client_id_is_connected_on_one_node_and_its_session_follows_it(cluster):
    n0, n1, n2 = cluster.nodes
    dev, present = persistent(n0.port, "dev")
    assert not present
    dev.subscribe("q/t", 1)
    pub = connected(n2.port, "pub")
    pub.publish("q/t", "m1", qos=1)
    assert dev.get().payload == b"m1"
    # The same client id on another node: the first connection is taken over (DISCONNECT 0x8E),
    # the session with its subscription comes along.
    moved, present = persistent(n1.port, "dev")
    assert present
    assert dev.disconnects.get(timeout=TIMEOUT) == 142
    pub.publish("q/t", "m2", qos=1)
    assert moved.get().payload == b"m2"
    dev.no_message()
    # Offline, its messages are stored; it comes back on a third node and gets them, in order.
    moved.disconnect()
    for i in range(3, 6):
        pub.publish("q/t", f"m{i}", qos=1)
    back, present = persistent(n2.port, "dev")
    assert present
    assert [back.get().payload.decode() for _ in range(3)] == ["m3", "m4", "m5"]
    back.no_message()
    # Clean start on another node ends the session everywhere.
    back.disconnect()
    fresh, present = persistent(n0.port, "dev", clean=True)
    assert not present
    pub.publish("q/t", "gone", qos=1)
    fresh.no_message()


def test_a_session_outlives_the_node_that_held_it(cluster):
    n0, n1, n2 = cluster.nodes
    dev, _ = persistent(n1.port, "dev")
    dev.subscribe("d/t", 1)
    dev.disconnect()
    pub = connected(n0.port, "pub")
    for i in range(3):
        pub.publish("d/t", f"a{i}", qos=1)  # acknowledged: stored for the offline session on n1
    n1.kill9()
    # The device reconnects to another node: the session n1 stored is taken over, with its messages.
    back, present = persistent(n2.port, "dev")
    assert present
    assert [back.get().payload.decode() for _ in range(3)] == ["a0", "a1", "a2"]
    pub.publish("d/t", "after", qos=1)
    assert back.get().payload == b"after"


def test_a_dead_nodes_sessions_are_taken_over_and_keep_receiving(cluster):
    # n1 holds two persistent sessions, one offline and one connected, when it is killed -9. A publisher
    # on n2 goes on sending QoS 1 messages one after another: while n1 is silent, then gone, they are
    # refused (PUBACK 0x80) and sent again, until the lowest node id alive (n0) has taken the sessions
    # over; from then on they are acknowledged and kept for them. Both devices come back on n2 and
    # get every acknowledged message, in order.
    from helpers import RetryingPublisher
    n0, n1, n2 = cluster.nodes
    offline, _ = persistent(n1.port, "heir-offline")
    offline.subscribe("heir/t", 1)
    offline.disconnect()
    online, _ = persistent(n1.port, "heir-online")
    online.subscribe("heir/t", 1)
    pub = RetryingPublisher(n2.port, b"heir-pub")
    for i in range(5):
        pub.publish(b"heir/t", i)
    assert [online.get().payload.decode() for _ in range(5)] == [f"m{i}" for i in range(5)]
    online.c.loop_stop()  # the device loses its node: it does not hear from it again
    n1.kill9()
    i = 5
    deadline = time.monotonic() + 60
    while n0.metrics().get("fleetcore_cluster_sessions_inherited_total") != 2:
        assert time.monotonic() < deadline, "n0 did not take n1's sessions over"
        pub.publish(b"heir/t", i, patience=60)
        i += 1
    for _ in range(5):
        pub.publish(b"heir/t", i)
        i += 1
    print(f"{i} messages acknowledged, {pub.refused} refused while n1's sessions had no holder")
    assert pub.acked == [f"m{k}".encode() for k in range(i)]
    for client_id, since in (("heir-offline", 0), ("heir-online", 5)):
        back, present = persistent(n2.port, client_id)
        assert present, client_id
        got = []
        while len(set(got)) < i - since:
            payload = back.get().payload
            if payload not in pub.acked[:since]:  # received before, its PUBACK lost with n1: sent again
                got.append(payload)
        # One the dead node stored before n2 stopped waiting for it comes again (QoS 1 allows it).
        assert list(dict.fromkeys(got)) == pub.acked[since:], client_id
        back.disconnect()


def test_kill_9_of_a_node_under_qos1_load_through_haproxy_loses_nothing_acknowledged(cluster):
    # Publishers with persistent sessions reach the cluster through HAProxy (one per node), each sending
    # QoS 1 messages one after another; a node is killed -9 in the middle. Its publishers reconnect
    # through HAProxy to the others, resume their sessions there and send again what was not
    # acknowledged; every acknowledged message reaches the subscriber, in each publisher's order.
    import threading
    cluster.start_haproxy()
    n0, n1, n2 = cluster.nodes
    sink, _ = persistent(n2.port, "sink")
    sink.subscribe("load/#", 1)
    per_pub, publishers = 300, 3
    acked = {k: [] for k in range(publishers)}
    resumed, errors = [], []
    started = threading.Barrier(publishers + 1)

    def forget(c):
        c.c.loop_stop()
        if c.c.socket():
            c.c.socket().close()

    def publisher(k):
        c, i = None, 0
        deadline = time.monotonic() + 90
        try:
            while i < per_pub and time.monotonic() < deadline:
                if c is None:
                    c = Client(cluster.lb_port, f"pub{k}", version=5, clean=False)
                    try:
                        flags, _, _ = c.connect(properties=props(PacketTypes.CONNECT, SessionExpiryInterval=3600))
                        present = flags["session present"]
                    except Exception:  # HAProxy had no node for it yet
                        forget(c)
                        c = None
                        time.sleep(0.05)
                        continue
                    if i:
                        resumed.append((k, present))
                info = c.c.publish(f"load/{k}", str(i), qos=1)
                info.wait_for_publish(timeout=3)
                if info.is_published():
                    acked[k].append(i)
                    i += 1
                    if i == 50:
                        started.wait(timeout=30)
                else:  # no PUBACK: its node is gone; send it again on a new connection
                    forget(c)
                    c = None
        except Exception as e:
            errors.append((k, e))
    threads = [threading.Thread(target=publisher, args=(k,)) for k in range(publishers)]
    for t in threads:
        t.start()
    started.wait(timeout=30)  # every publisher is under way
    n0.kill9()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    assert all(acked[k] == list(range(per_pub)) for k in acked), {k: len(v) for k, v in acked.items()}
    # Whoever was on the dead node found its session on the node HAProxy gave it.
    assert resumed and all(present for _, present in resumed), resumed
    got = {k: [] for k in range(publishers)}
    want = publishers * per_pub
    while sum(len(set(v)) for v in got.values()) < want:
        m = sink.get()
        got[int(m.topic.split("/")[1])].append(int(m.payload))
    for k, seen in got.items():
        first = list(dict.fromkeys(seen))  # a message sent again may come twice (QoS 1)
        assert first == list(range(per_pub)), k


def test_a_postgresql_restart_under_the_cluster_loses_nothing_acknowledged(cluster):
    # A publisher on n0 sends QoS 1 messages all through a restart of the cluster's PostgreSQL, for an
    # offline session held by n1 (n1 stores each copy before n0 acknowledges). Refused publishes (PUBACK
    # 0x80: n0's or n1's commit failed) are sent again; the device then comes back on n2 and gets every
    # acknowledged message, in order.
    from helpers import RetryingPublisher
    n0, n1, n2 = cluster.nodes
    dev, _ = persistent(n1.port, "pg-dev")
    dev.subscribe("pg/t", 1)
    dev.disconnect()
    pub = RetryingPublisher(n0.port, b"pg-pub")
    i = pub.through([os.path.join(os.path.dirname(__file__), "../../scripts/postgres.sh"), "restart"], b"pg/t",
                    around=30, patience=60)
    back, present = persistent(n2.port, "pg-dev")
    assert present
    pub.publish(b"pg/t", i)  # a last one, behind everything stored
    got = []
    while (payload := back.get().payload) != f"m{i}".encode():
        got.append(payload)
    pub.acked.pop()
    # A copy n1 stored after n0 stopped waiting for it (5 s) comes again when the publisher sends it
    # again (QoS 1 allows it): the first occurrences are every acknowledged message, in order.
    assert list(dict.fromkeys(got)) == pub.acked


def test_a_restarted_node_keeps_its_offline_sessions(cluster):
    n0, n1, _ = cluster.nodes
    dev, _ = persistent(n1.port, "dev")
    dev.subscribe("r/t", 1)
    dev.disconnect()
    n1.kill9()
    n1.start()
    wait_for(lambda: n0.metrics().get("fleetcore_cluster_peers") == 2, what="n1 to rejoin")
    # Its session was restored with its subscription: messages published now are kept for it.
    pub = connected(n0.port, "pub")
    pub.publish("r/t", "kept", qos=1)
    back, present = persistent(n0.port, "dev")
    assert present
    assert back.get().payload == b"kept"


def test_registry_changes_apply_on_every_node(cluster, tmp_path):
    n0, n1, _ = cluster.nodes
    iot = n0.iot()
    iot.create_thing(thingName="lamp")
    out = iot.create_keys_and_certificate(setAsActive=True)
    iot.create_policy(policyName="all", policyDocument=json.dumps(
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "iot:*", "Resource": "*"}]}))
    iot.attach_policy(policyName="all", target=out["certificateArn"])
    cert, key = pki.write(tmp_path, "lamp", out["certificatePem"], out["keyPair"]["PrivateKey"])
    # Made through n0's API, known to n1: the thing, and the certificate with its policy, which
    # authorizes a device connecting to n1 (verifying n1's server certificate).
    iot1 = n1.iot()

    def known_on_n1():
        try:
            return (iot1.describe_thing(thingName="lamp")["thingName"] == "lamp" and
                    iot1.list_attached_policies(target=out["certificateArn"])["policies"])
        except iot1.exceptions.ResourceNotFoundException:
            return False
    wait_for(known_on_n1, what="n1 to apply n0's changes")
    dev = Client(n1.ports["mqtts"], "lamp")
    dev.connect(tls={"ca_certs": n1.ca, "certfile": cert, "keyfile": key, "cert_reqs": ssl.CERT_REQUIRED})
    dev.subscribe("lamp/cmd", 1)
    # Every node names the cluster's endpoint (--endpoint-host), not its own address.
    assert iot1.describe_endpoint(endpointType="iot:Data-ATS")["endpointAddress"] == "iot.cluster.test"
    # Deactivated through n0: n1 drops the device at once.
    iot.update_certificate(certificateId=out["certificateId"], newStatus="INACTIVE")
    assert dev.disconnects.get(timeout=TIMEOUT) == 135  # DISCONNECT 0x87 not authorized, as on one node


def test_a_shadow_updated_through_two_nodes_at_once_never_forks(cluster):
    # Two operators update one shadow at the same time, through two nodes' APIs (iot-data, boto3): each
    # version is given once, the documents a device sees on a third node go up one at a time, and every
    # node then reads the last one.
    import threading
    n0, n1, n2 = cluster.nodes
    watcher = connected(n2.port, "watch")
    watcher.subscribe("$aws/things/pump/shadow/update/documents", 1)
    per_node, versions, errors = 40, {}, []

    def operator(data, who):
        try:
            for i in range(per_node):
                out = data.update_thing_shadow(thingName="pump", payload=json.dumps(
                    {"state": {"reported": {"by": who, "i": i}}}).encode())
                versions[(who, i)] = json.loads(out["payload"].read())["version"]
        except Exception as e:  # reported below, in the test's thread
            errors.append(e)
    # (boto3 makes clients on one thread; each is then used by one thread)
    threads = [threading.Thread(target=operator, args=(n.client("iot-data"), f"n{k}")) for k, n in ((0, n0), (1, n1))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    total = 2 * per_node
    assert sorted(versions.values()) == list(range(1, total + 1))
    # One operator's updates are in its order.
    for who in ("n0", "n1"):
        mine = [versions[(who, i)] for i in range(per_node)]
        assert mine == sorted(mine)
    docs = [json.loads(watcher.get().payload) for _ in range(total)]
    assert sorted(d["current"]["version"] for d in docs) == list(range(1, total + 1))
    assert all(d["previous"]["version"] == d["current"]["version"] - 1 for d in docs if "previous" in d)
    last = next(k for k, v in versions.items() if v == total)
    for node in cluster.nodes:
        data = node.client("iot-data")
        wait_for(lambda: json.loads(data.get_thing_shadow(thingName="pump")["payload"].read())["version"] == total,
                 what=f"{node.data_dir} to read version {total}")
        doc = json.loads(data.get_thing_shadow(thingName="pump")["payload"].read())
        assert doc["state"]["reported"] == {"by": last[0], "i": last[1]}


ROLE = "arn:aws:iam::123456789012:role/r"


def rule(sql, actions):
    return {"sql": sql, "awsIotSqlVersion": "2016-03-23", "actions": actions}


def test_rules_changed_on_any_node_apply_on_every_node(cluster):
    n0, n1, n2 = cluster.nodes
    sink = connected(n2.port, "rule-sink")
    sink.subscribe("out/#", 1)
    n0.iot().create_topic_rule(ruleName="copy", topicRulePayload=rule(
        "SELECT * FROM 'in/#'", [{"republish": {"topic": "out/a/${topic(2)}", "roleArn": ROLE, "qos": 1}}]))

    def copied_to(pub, prefix):
        """Publishes until the rule's copy arrives under `prefix` (a node learns of a change within a
        NATS round trip after the API answered)."""
        def arrived():
            pub.publish("in/x", '{"v":1}', qos=1)
            try:
                while True:
                    m = sink.get(timeout=0.5)
                    if m.topic.startswith(prefix):
                        return m
            except Exception:
                return None
        return wait_for(arrived, what=f"a copy under {prefix}")
    # Created on n0, it acts on what is published on n1.
    assert copied_to(connected(n1.port, "rule-pub1"), "out/a/").topic == "out/a/x"
    # Replaced on n1, the new version acts on n2.
    n1.iot().replace_topic_rule(ruleName="copy", topicRulePayload=rule(
        "SELECT * FROM 'in/#'", [{"republish": {"topic": "out/b/${topic(2)}", "roleArn": ROLE, "qos": 1}}]))
    assert copied_to(connected(n2.port, "rule-pub2"), "out/b/").topic == "out/b/x"
    # Deleted on n2, it is gone from n0.
    n2.iot().delete_topic_rule(ruleName="copy")
    iot0 = n0.iot()
    wait_for(lambda: iot0.list_topic_rules()["rules"] == [], what="the deletion on n0")


class PlainReceiver:
    """An http:// endpoint that records each POST (path, body) and answers `status`."""

    def __init__(self):
        import queue
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
        self.requests, self.status = queue.Queue(), 200
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                status = outer.status
                self.send_response(status)
                self.send_header("content-length", "0")
                self.end_headers()
                outer.requests.put((self.path, body, status))

            def log_message(self, *a):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/ingest"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def get(self, timeout=TIMEOUT):
        return self.requests.get(timeout=timeout)

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def test_a_dead_nodes_rule_actions_are_taken_over(tmp_path, request):
    # A message acknowledged on n1 is in n1's rule inbox while its http action keeps failing (503);
    # n1 is killed -9. Its heir (n0) takes the inbox entry over and posts it once the sink is back.
    receiver = PlainReceiver()
    c = Cluster(tmp_path, request.node.name, config="[rules]\nallow_plain_http = true\nhttp_retry_for_s = 300\n")
    try:
        n0, n1, _ = c.nodes
        d = n0.iot().create_topic_rule_destination(
            destinationConfiguration={"httpUrlConfiguration": {"confirmationUrl": receiver.url}})["topicRuleDestination"]
        path, body, _ = receiver.get()
        token = json.loads(body)["confirmationToken"]
        n1.iot().confirm_topic_rule_destination(confirmationToken=token)  # confirmed on another node
        iot0 = n0.iot()
        wait_for(lambda: iot0.get_topic_rule_destination(arn=d["arn"])["topicRuleDestination"]["status"] == "ENABLED",
                 what="the confirmation on n0")
        n0.iot().create_topic_rule(ruleName="post", topicRulePayload=rule(
            "SELECT * FROM 'h/#'", [{"http": {"url": receiver.url + "/data"}}]))
        receiver.status = 503
        pub = connected(n1.port, "http-pub")

        def posted():
            pub.publish("h/x", '{"n":1}', qos=1)  # acknowledged: in n1's inbox
            try:
                return receiver.get(timeout=1)
            except Exception:
                return None
        path, body, status = wait_for(posted, what="n1 to post (the rule known there)")
        assert (path, status) == ("/ingest/data", 503)
        pub.c.loop_stop()
        n1.kill9()
        receiver.status = 200
        deadline = time.monotonic() + 60
        while True:  # n1's retries answered 503 may still be queued; then n0's post
            path, body, status = receiver.get(timeout=max(0.1, deadline - time.monotonic()))
            if status == 200:
                break
        assert (path, json.loads(body)) == ("/ingest/data", {"n": 1})
        wait_for(lambda: n0.metrics().get("fleetcore_rule_inbox") == 0, what="n0's inbox to drain")
        assert "rules.inbox_inherited node=n1" in open(n0.log_path).read()
    finally:
        c.close()
        receiver.close()


def test_a_long_interest_list_reaches_a_restarted_node(cluster):
    n0, n1, _ = cluster.nodes
    # 6,000 filters (1,000 per client, the per-client limit), ~1.2 MB as a list: more than NATS's
    # max_payload (1 MB) can carry in one frame.
    pad = "p" * 160
    filters = [f"fleet/site-{i:05d}/device/{pad}/+" for i in range(6000)]
    for k in range(0, len(filters), 1000):
        sub = connected(n1.port, f"many{k}")
        for j in range(k, k + 1000, 250):  # SUBSCRIBE packets of ~45 KB
            sub.c.subscribe([(f, 0) for f in filters[j:j + 250]])
            _, granted = sub.subacks.get(timeout=TIMEOUT)
            assert all(g == 0 for g in granted)
    # n0 restarts: n1's whole list (~400 KB, more than one NATS frame should carry) is sent to it again.
    n0.kill9()
    n0.start()
    wait_for(lambda: n0.metrics().get("fleetcore_cluster_peers") == 2, what="n0 to rejoin")
    pub = connected(n0.port, "pub")
    eventually_delivered(pub, sub, f"fleet/site-05999/device/{pad}/x", "last", "a message for the last filter of the list")


def test_a_stopping_node_says_goodbye(cluster):
    n0, n1, n2 = cluster.nodes
    n2.stop()  # SIGTERM
    t0 = time.monotonic()
    wait_for(lambda: n0.metrics().get("fleetcore_cluster_peers") == 1 and n1.metrics().get("fleetcore_cluster_peers") == 1,
             what="the peers to forget the stopped node")
    assert time.monotonic() - t0 < 1.5, "not left to the 3 s peer timeout"
    assert "cluster.peer_left" in n0.read_log()


def test_nats_restart_heals(cluster):
    n0, n1, _ = cluster.nodes
    sub = connected(n1.port, "sub")
    sub.subscribe("h/t", 1)
    keep, _ = persistent(n1.port, "keep")
    keep.subscribe("h/t", 1)
    keep.disconnect()
    cluster.nats.stop()
    # Long enough for every node to see the others gone: none of them takes their sessions over (each
    # is cut off, not the survivor of the others).
    for n in cluster.nodes:
        wait_for(lambda n=n: n.metrics().get("fleetcore_cluster_peers") == 0, what="the peers to be gone")
    cluster.nats.start()
    for n in cluster.nodes:
        wait_for(lambda n=n: n.metrics().get("fleetcore_cluster_nats_connected") == 1 and
                 n.metrics().get("fleetcore_cluster_peers") == 2, what="the nodes to find each other again")
    assert all(n.metrics().get("fleetcore_cluster_sessions_inherited_total") == 0 for n in cluster.nodes)
    pub = connected(n0.port, "pub")

    eventually_delivered(pub, sub, "h/t", "again", "delivery across the healed cluster")
    back, present = persistent(n1.port, "keep")  # still n1's, with what came for it
    assert present
    assert back.get().payload == b"again"


def test_through_haproxy_and_readiness(cluster):
    cluster.start_haproxy()
    for n in cluster.nodes:
        body = urllib.request.urlopen(f"http://127.0.0.1:{n.ports['metrics']}/readyz", timeout=5).read()
        assert body == b"ready\n"
    # Round robin spreads the devices over the three nodes; each gets every message.
    subs = [connected(cluster.lb_port, f"dev{i}") for i in range(6)]
    for s in subs:
        s.subscribe("fleet/cmd", 1)
    connected_per_node = [n.metrics().get("fleetcore_connections", 0) for n in cluster.nodes]
    assert all(c >= 1 for c in connected_per_node), connected_per_node
    pub = connected(cluster.lb_port, "ops")
    pub.publish("fleet/cmd", "reboot", qos=1)
    for s in subs:
        assert s.get().payload == b"reboot"
    info = urllib.request.urlopen(f"http://127.0.0.1:{cluster.nodes[0].ports['metrics']}/metrics", timeout=5).read().decode()
    assert 'fleetcore_node_info{node="n0"} 1' in info


def test_cluster_mode_needs_postgresql(tmp_path):
    nats = Nats(str(tmp_path))
    node = Server(tmp_path / "n", args=["--cluster-nats", nats.url, "--node-id", "n"])
    with pytest.raises(AssertionError, match="needs the nodes' shared PostgreSQL storage"):
        node.start()
