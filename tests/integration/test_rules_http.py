"""The rules engine's http action and topic rule destinations, against a local HTTPS receiver (Python's
http.server with a certificate from fleetcore's CA): the confirmation flow through the aws CLI, JSON
posted with its content type, retries then the errorAction, and nothing acknowledged lost when the
receiver is down across a kill -9 of fleetcore."""
import datetime
import ipaddress
import json
import pathlib
import queue
import socket
import ssl
import subprocess
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from conftest import TIMEOUT, Client, mosquitto, wait_for

ROLE = "arn:aws:iam::123456789012:role/r"


def server_cert(data_dir, out_dir):
    """A localhost server certificate signed by fleetcore's CA (which the rules engine then trusts)."""
    ca_key = serialization.load_pem_private_key((data_dir / "tls" / "ca.key").read_bytes(), None)
    ca = x509.load_pem_x509_certificate((data_dir / "tls" / "ca.crt").read_bytes())
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
            .issuer_name(ca.subject).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                        x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
            .sign(ca_key, hashes.SHA256()))
    cert_path, key_path = out_dir / "receiver.crt", out_dir / "receiver.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return str(cert_path), str(key_path)


class Receiver:
    """An HTTPS endpoint (HTTP/1.1, keep-alive) that records every POST and the client port it came
    from, and answers with `status` (200 unless told)."""

    def __init__(self, cert, key, port=0):
        self.requests = queue.Queue()
        self.status = 200
        self.client_ports = []
        self.open = set()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self):
                super().setup()
                outer.open.add(self.connection)

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                outer.client_ports.append(self.client_address[1])
                outer.requests.put((self.path, dict((k.lower(), v) for k, v in self.headers.items()), body))
                self.send_response(outer.status)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *a):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert, key)
        self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path):
        return f"https://localhost:{self.port}{path}"

    def get(self, timeout=TIMEOUT):
        return self.requests.get(timeout=timeout)

    def stop(self):
        """Down for good: the listener and the connections kept alive."""
        self.httpd.shutdown()
        self.httpd.server_close()
        for c in list(self.open):
            try:
                c.shutdown(socket.SHUT_RDWR)
                c.close()
            except OSError:
                pass


def config(tmp_path, retry_for_s):
    return (f"[rules]\nhttp_ca_file = '{tmp_path}/data/tls/ca.crt'\nhttp_retry_for_s = {retry_for_s}\n"
            f"http_timeout_ms = 2000\n")


def confirmed_destination(server, receiver):
    """Creates a destination for the receiver and confirms it as its owner would, with the CLI."""
    _, created = server.aws("iot", "create-topic-rule-destination", "--destination-configuration",
                            json.dumps({"httpUrlConfiguration": {"confirmationUrl": receiver.url("/ingest")}}))
    d = created["topicRuleDestination"]
    assert d["status"] == "IN_PROGRESS" and d["arn"].startswith("arn:aws:iot:us-east-1:000000000000:ruledestination/http/")
    path, headers, body = receiver.get()
    assert headers["x-amz-rules-engine-message-type"] == "DestinationConfirmation"
    assert headers["x-amz-rules-engine-destination-arn"] == d["arn"]
    msg = json.loads(body)
    assert msg["arn"] == d["arn"] and msg["messageType"] == "DestinationConfirmation"
    assert path == "/ingest?confirmationToken=" + msg["confirmationToken"]
    server.aws("iot", "confirm-topic-rule-destination", "--confirmation-token", msg["confirmationToken"])
    _, got = server.aws("iot", "get-topic-rule-destination", "--arn", d["arn"])
    assert got["topicRuleDestination"]["status"] == "ENABLED"
    assert got["topicRuleDestination"]["httpUrlProperties"] == {"confirmationUrl": receiver.url("/ingest")}
    return d["arn"]


def http_rule(server, receiver, name="tohttp", error_topic="errors/${topic()}"):
    payload = {"sql": "SELECT * FROM 'h/#'", "awsIotSqlVersion": "2016-03-23",
               "actions": [{"http": {"url": receiver.url("/ingest/data"),
                                     "headers": [{"key": "x-device", "value": "${clientid()}"}]}}],
               "errorAction": {"republish": {"topic": error_topic, "roleArn": ROLE}}}
    server.aws("iot", "create-topic-rule", "--rule-name", name, "--topic-rule-payload", json.dumps(payload))


def sink_and_rule(make_server, tmp_path, retry_for_s, extra=""):
    """A server, a receiver whose destination is confirmed, and the `tohttp` rule posting `h/#` to it."""
    server = make_server(config(tmp_path, retry_for_s) + extra)
    receiver = Receiver(*server_cert(pathlib.Path(server.data_dir), tmp_path))
    confirmed_destination(server, receiver)
    http_rule(server, receiver)
    return server, receiver


def test_destination_confirmation_and_http_delivery(make_server, tmp_path):
    server = make_server(config(tmp_path, 30))
    receiver = Receiver(*server_cert(pathlib.Path(server.data_dir), tmp_path))
    try:
        # A rule whose URL has no ENABLED destination fails into its errorAction.
        w = Client(server.port, "w")
        w.connect()
        assert list(w.subscribe("errors/#", 1)) == [1]
        http_rule(server, receiver)
        p = Client(server.port, "dev-1")
        p.connect()
        p.publish("h/x", b'{"a":1}', qos=1)
        err = json.loads(w.get().payload)
        assert err["failures"][0]["failedAction"] == "HttpAction"
        assert "destination" in err["failures"][0]["errorMessage"]

        arn = confirmed_destination(server, receiver)
        _, listed = server.aws("iot", "list-topic-rule-destinations")
        assert [d["arn"] for d in listed["destinationSummaries"]] == [arn]
        p.publish("h/x", b'{"a":2}', qos=1)
        path, headers, body = receiver.get()
        assert path == "/ingest/data" and json.loads(body) == {"a": 2}
        assert headers["content-type"] == "application/json" and headers["x-device"] == "dev-1"
        # Binary payloads go as application/octet-stream.
        p.publish("h/bin", b"\x00\x01\xff", qos=1)
        path, headers, body = receiver.get()
        assert body == b"\x00\x01\xff" and headers["content-type"] == "application/octet-stream"

        # DISABLED stops delivery (errorAction instead); ENABLED again resumes it.
        server.aws("iot", "update-topic-rule-destination", "--arn", arn, "--status", "DISABLED")
        p.publish("h/x", b'{"a":3}', qos=1)
        assert json.loads(w.get().payload)["failures"][0]["failedAction"] == "HttpAction"
        server.aws("iot", "update-topic-rule-destination", "--arn", arn, "--status", "ENABLED")
        p.publish("h/x", b'{"a":4}', qos=1)
        assert json.loads(receiver.get()[2]) == {"a": 4}
        p.disconnect()
        w.disconnect()
    finally:
        receiver.stop()


def test_retries_then_error_action(make_server, tmp_path):
    server, receiver = sink_and_rule(make_server, tmp_path, 2)
    try:
        w = Client(server.port, "w")
        w.connect()
        assert list(w.subscribe("errors/#", 1)) == [1]
        receiver.status = 503
        mosquitto("mosquitto_pub", "-h", "127.0.0.1", "-p", str(server.port), "-i", "dev-9", "-t", "h/y", "-m",
                  '{"t":1}', "-q", "1")
        m = w.get(timeout=30)
        assert m.topic == "errors/h/y"
        err = json.loads(m.payload)
        assert err["ruleName"] == "tohttp" and err["clientId"] == "dev-9" and err["topic"] == "h/y"
        assert err["base64OriginalPayload"] == "eyJ0IjoxfQ=="
        assert err["failures"][0]["failedAction"] == "HttpAction"
        assert "503" in err["failures"][0]["errorMessage"]
        tries = receiver.requests.qsize()
        assert tries >= 2  # retried before giving up
        assert server.metric('fleetcore_rule_retried_total{rule="tohttp"}') >= 1
        w.disconnect()
    finally:
        receiver.stop()


def test_receiver_down_across_kill9_loses_nothing(make_server, tmp_path):
    server, receiver = sink_and_rule(make_server, tmp_path, 300)
    port = receiver.port
    receiver.stop()  # the sink goes down
    n = 50
    r = subprocess.run(["mosquitto_pub", "-h", "127.0.0.1", "-p", str(server.port), "-q", "1", "-t", "h/z", "-l"],
                       input="".join(f'{{"i":{i}}}\n' for i in range(n)), text=True, capture_output=True,
                       timeout=TIMEOUT)
    assert r.returncode == 0  # every message acknowledged
    wait_for(lambda: server.metric("fleetcore_rule_inbox") == n, what="all held in the inbox")
    server.kill9()
    receiver = Receiver(*server_cert(pathlib.Path(server.data_dir), tmp_path), port=port)  # the sink comes back
    try:
        server.start()
        seen = set()
        while len(seen) < n:
            _, _, body = receiver.get(timeout=30)
            seen.add(json.loads(body)["i"])  # at least once: a duplicate is allowed
        assert seen == set(range(n))
        wait_for(lambda: server.metric("fleetcore_rule_inbox") == 0, what="inbox drained")
    finally:
        receiver.stop()


def test_graceful_stop_does_not_wait_for_retries(make_server, tmp_path):
    # A sink that stays down keeps an action retrying for rules.http_retry_for_s; SIGTERM must not
    # wait for it, and the acknowledged message still reaches the sink after the restart.
    server, receiver = sink_and_rule(make_server, tmp_path, 300)
    port = receiver.port
    receiver.stop()
    mosquitto("mosquitto_pub", "-h", "127.0.0.1", "-p", str(server.port), "-q", "1", "-t", "h/s", "-m", '{"s":1}')
    wait_for(lambda: server.metric("fleetcore_rule_inbox") == 1, what="held in the inbox")
    started = time.monotonic()
    server.stop()  # raises if SIGTERM is not honoured within its timeout
    assert time.monotonic() - started < 5
    receiver = Receiver(*server_cert(pathlib.Path(server.data_dir), tmp_path), port=port)
    try:
        server.start()
        _, _, body = receiver.get(timeout=30)
        assert json.loads(body) == {"s": 1}
    finally:
        receiver.stop()


def test_enable_url_then_update_to_enabled(make_server, tmp_path):
    # The other confirmation path of rule-destination.md: open the enableUrl (unsigned, in a browser),
    # then UpdateTopicRuleDestination ENABLED.
    server = make_server(config(tmp_path, 30))
    receiver = Receiver(*server_cert(pathlib.Path(server.data_dir), tmp_path))
    try:
        _, created = server.aws("iot", "create-topic-rule-destination", "--destination-configuration",
                                json.dumps({"httpUrlConfiguration": {"confirmationUrl": receiver.url("/in")}}))
        arn = created["topicRuleDestination"]["arn"]
        msg = json.loads(receiver.get()[2])
        url = msg["enableUrl"]
        assert url.startswith("https://localhost:") and url.endswith("/confirmdestination/" + msg["confirmationToken"])
        with urllib.request.urlopen(url, context=ssl.create_default_context(cafile=server.ca), timeout=10) as r:
            assert r.status == 200
        _, got = server.aws("iot", "get-topic-rule-destination", "--arn", arn)
        assert got["topicRuleDestination"]["status"] == "DISABLED"  # confirmed, not yet enabled
        server.aws("iot", "update-topic-rule-destination", "--arn", arn, "--status", "ENABLED")
        _, got = server.aws("iot", "get-topic-rule-destination", "--arn", arn)
        assert got["topicRuleDestination"]["status"] == "ENABLED"
        # A wrong token opens nothing.
        bad = url[: url.rindex("/") + 1] + "0" * 64
        with pytest.raises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(bad, context=ssl.create_default_context(cafile=server.ca), timeout=10)
        assert e.value.code == 400
    finally:
        receiver.stop()


def test_a_sink_down_fills_only_its_own_rules_queue(make_server, tmp_path):
    # rules.max_rule_queue bounds what one rule holds: with its sink down, the http rule keeps 3 messages
    # (retrying) and drops the rest, counted; the republish rule on the same topic loses nothing.
    server, receiver = sink_and_rule(make_server, tmp_path, 300, "max_rule_queue = 3\n")
    payload = {"sql": "SELECT * FROM 'h/#'", "awsIotSqlVersion": "2016-03-23",
               "actions": [{"republish": {"topic": "copy/${topic()}", "roleArn": ROLE}}]}
    server.aws("iot", "create-topic-rule", "--rule-name", "copy", "--topic-rule-payload", json.dumps(payload))
    port = receiver.port
    receiver.stop()
    w = Client(server.port, "w")
    w.connect()
    assert list(w.subscribe("copy/#", 1)) == [1]
    p = Client(server.port, "p")
    p.connect()
    for i in range(10):
        p.publish("h/q", json.dumps({"i": i}).encode(), qos=1)
    assert sorted(json.loads(w.get().payload)["i"] for _ in range(10)) == list(range(10))
    wait_for(lambda: server.metric('fleetcore_rule_dropped_total{rule="tohttp"}') == 7, what="7 dropped")
    assert server.metric('fleetcore_rule_queued{rule="tohttp"}') == 3
    assert server.metric('fleetcore_rule_dropped_total{rule="copy"}') == 0
    assert server.metric('fleetcore_rule_messages_dropped_total{reason="rule_queue_full"}') == 7
    # The sink comes back: the 3 held messages arrive, and the queue empties.
    receiver = Receiver(*server_cert(pathlib.Path(server.data_dir), tmp_path), port=port)
    try:
        got = sorted(json.loads(receiver.get(timeout=60)[2])["i"] for _ in range(3))
        assert got == [0, 1, 2]
        wait_for(lambda: server.metric('fleetcore_rule_queued{rule="tohttp"}') == 0, what="queue drained")
    finally:
        receiver.stop()
        p.disconnect()
        w.disconnect()


def test_connections_to_a_sink_are_kept_alive(make_server, tmp_path):
    server, receiver = sink_and_rule(make_server, tmp_path, 30)
    try:
        p = Client(server.port, "ka")
        p.connect()
        def executed():
            return sum(v for k, v in server.metrics().items()
                       if k.startswith('fleetcore_rule_action_executed_total{rule="tohttp"'))
        for i in range(5):
            p.publish("h/ka", json.dumps({"i": i}).encode(), qos=1)
            assert json.loads(receiver.get()[2]) == {"i": i}
            # The answer read and the connection idle again before the next message (the receiver
            # hands the request over before it answers).
            wait_for(lambda: executed() == i + 1, what=f"action {i} done")
        # The confirmation request and the 5 actions, one after the other: one connection.
        assert len(receiver.client_ports) == 6 and len(set(receiver.client_ports)) == 1
        p.disconnect()
    finally:
        receiver.stop()
