"""Integration harness: starts the built fleetcore on free ports with its own data directory, and gives
tests paho (MQTT 3.1.1 and 5) and mosquitto_pub/sub clients. Nothing here sleeps to synchronize: waits
are on events with time limits."""
import collections
import hashlib
import json
import os
import queue
import re
import signal
import socket
import subprocess
import time
import urllib.request

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.properties import Properties
from paho.mqtt.packettypes import PacketTypes

FLEETCORE = os.environ.get("FLEETCORE", os.path.join(os.path.dirname(__file__), "../../build/src/server/fleetcore"))
TIMEOUT = 10
# FC_TEST_STORAGE=postgresql runs the servers of the tests on PostgreSQL, each on a database of its
# own in the cluster FC_TEST_POSTGRES names (a libpq conninfo; `make integration-postgres` starts one).
# FC_TEST_STORAGE=cluster makes each test's server three nodes on such a database and a nats-server,
# behind HAProxy (ClusterServer): what the test sees is the cluster endpoint.
STORAGE = os.environ.get("FC_TEST_STORAGE", "sqlite")
PG_SERVER = os.environ.get("FC_TEST_POSTGRES", "")


def fresh_storage(name):
    """The --storage of a new test server: None for the embedded default, else a new PostgreSQL database."""
    if STORAGE not in ("postgresql", "cluster"):
        return None
    assert PG_SERVER, f"FC_TEST_STORAGE={STORAGE} needs FC_TEST_POSTGRES"
    return postgres_database(name)


def postgres_database(name):
    """A new, empty PostgreSQL database on the test cluster (FC_TEST_POSTGRES), as a --storage value."""
    db = "fci_" + hashlib.sha256(name.encode()).hexdigest()[:16]
    for sql in (f"DROP DATABASE IF EXISTS {db} WITH (FORCE)", f"CREATE DATABASE {db}"):
        subprocess.run(["psql", "-q", "-v", "ON_ERROR_STOP=1", "-c", sql, PG_SERVER + " dbname=postgres"], check=True,
                       stdout=subprocess.DEVNULL, env=dict(os.environ, PGOPTIONS="-c client_min_messages=warning"))
    return f"postgresql:{PG_SERVER} dbname={db}"


def wait_for(predicate, timeout=TIMEOUT, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.01)
    raise AssertionError(f"timed out waiting for {what}")


class Server:
    """One fleetcore process. `config` is TOML text written to the data directory."""

    def __init__(self, data_dir, config=None, workers=2, storage=None, args=()):
        self.data_dir = str(data_dir)
        self.storage = storage
        self.args = list(args)
        os.makedirs(self.data_dir, exist_ok=True)
        self.config = config
        self.workers = workers
        self.proc = None
        self.log_path = os.path.join(self.data_dir, "server.log")
        self.ports = {}

    def start(self):
        listeners = os.path.join(self.data_dir, "listeners.json")
        if os.path.exists(listeners):
            os.remove(listeners)  # left by a kill -9
        # `localhost` binds 127.0.0.1 and ::1 (on one port each listener), so clients reach the server
        # whichever address their resolver gives first.
        args = [FLEETCORE, "serve", "--data-dir", self.data_dir, "--mqtt", "localhost:0", "--mqtts", "localhost:0",
                "--wss", "localhost:0", "--metrics", "localhost:0", "--api", "localhost:0",
                "--workers", str(self.workers)]
        if self.storage:
            args += ["--storage", self.storage]
        args += self.args
        if self.config:
            path = os.path.join(self.data_dir, "fleetcore.toml")
            with open(path, "w") as f:
                f.write(self.config)
            args += ["--config", path]
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=self.log)

        def ready():
            if self.proc.poll() is not None:
                raise AssertionError(f"fleetcore exited with {self.proc.returncode}:\n{self.read_log()}")
            return os.path.exists(listeners)

        wait_for(ready, what="fleetcore to listen")
        with open(listeners) as f:
            bound = json.load(f)
        self.addresses = bound.pop("addresses", {})
        self.ports = {k: int(v.rsplit(":", 1)[1]) for k, v in bound.items()}
        return self

    @property
    def port(self):
        return self.ports["mqtt"]

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                assert self.proc.wait(timeout=15) == 0, self.read_log()
            except subprocess.TimeoutExpired:
                self.proc.kill()
                raise AssertionError("fleetcore did not stop on SIGTERM")
        self.log.close()

    def kill9(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()
        self.log.close()

    def restart(self):
        self.stop()
        return self.start()

    def read_log(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode(errors="replace")

    def metrics(self):
        body = urllib.request.urlopen(f"http://127.0.0.1:{self.ports['metrics']}/metrics", timeout=5).read().decode()
        out = {}
        for line in body.splitlines():
            if line.startswith("#") or not line:
                continue
            name, value = line.rsplit(" ", 1)
            out[name] = float(value)
        return out

    def metric(self, name):
        return self.metrics().get(name, 0.0)

    @property
    def ca(self):
        return os.path.join(self.data_dir, "tls", "ca.crt")

    @property
    def api_url(self):
        return f"https://localhost:{self.ports['api']}"

    def credentials(self):
        """The admin key fleetcore created on first start, from its AWS shared credentials file."""
        values = {}
        with open(os.path.join(self.data_dir, "aws-credentials")) as f:
            for line in f:
                if "=" in line:
                    k, v = line.split("=", 1)
                    values[k.strip()] = v.strip()
        return values["aws_access_key_id"], values["aws_secret_access_key"]

    def iot(self, **kw):
        """A boto3 `iot` client on the control-plane API."""
        return self.client("iot", **kw)

    def client(self, service, **kw):
        """A boto3 client of `service` on the API listener."""
        import boto3
        key, secret = self.credentials()
        return boto3.client(service, endpoint_url=self.api_url, region_name="us-east-1", aws_access_key_id=key,
                            aws_secret_access_key=secret, verify=self.ca, **kw)

    def aws(self, *args, check=True):
        """Runs the aws CLI (Debian's awscli) against the API; returns (exit code, parsed JSON or stderr)."""
        env = dict(os.environ, AWS_SHARED_CREDENTIALS_FILE=os.path.join(self.data_dir, "aws-credentials"),
                   AWS_CONFIG_FILE=os.devnull, AWS_CA_BUNDLE=self.ca, AWS_PAGER="")
        r = subprocess.run(["/usr/bin/aws", "--endpoint-url", self.api_url, "--region", "us-east-1",
                            "--output", "json", *args], capture_output=True, text=True, env=env, timeout=60)
        if check:
            assert r.returncode == 0, r.stderr
        if r.returncode != 0 or not r.stdout.strip():
            return r.returncode, r.stderr
        try:
            return r.returncode, json.loads(r.stdout)
        except json.JSONDecodeError:  # `aws s3 ...` prints text
            return r.returncode, r.stdout

    def device_https(self, cert, key):
        """curl with a device's certificate on the device HTTPS data plane (the wss port, as AWS's 8443):
        a function (method, path, body=None) -> (HTTP status, response text)."""
        base = f"https://localhost:{self.ports['wss']}"

        def curl(method, path, body=None):
            args = ["curl", "-s", "-o", "-", "-w", "\n%{http_code}", "--cacert", self.ca, "--cert", cert, "--key", key,
                    "-X", method, base + path]
            if body is not None:
                args += ["--data-binary", body]
            out = subprocess.run(args, capture_output=True, text=True, timeout=TIMEOUT).stdout
            text, code = out.rsplit("\n", 1)
            return int(code), text
        return curl

    def issue_cert(self, cn, out_dir, policy="dev-allow-all"):
        """A client certificate with CN `cn` from the built-in CA, registered ACTIVE with `policy`
        attached (an allow-all policy unless told otherwise)."""
        subprocess.run([FLEETCORE, "cert", "issue", "--cn", cn, "--out", str(out_dir), "--data-dir", self.data_dir],
                       check=True, capture_output=True)
        cert, key = os.path.join(out_dir, cn + ".crt"), os.path.join(out_dir, cn + ".key")
        iot = self.iot()
        with open(cert) as f:
            arn = iot.register_certificate(certificatePem=f.read(), setAsActive=True)["certificateArn"]
        if policy == "dev-allow-all":
            try:
                iot.create_policy(policyName=policy, policyDocument=json.dumps(
                    {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "iot:*", "Resource": "*"}]}))
            except iot.exceptions.ResourceAlreadyExistsException:
                pass
        if policy:
            iot.attach_policy(policyName=policy, target=arn)
        return cert, key


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def accepting(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
        return True
    except OSError:
        return False


class Nats:
    """A nats-server on loopback, restartable on the same port."""

    def __init__(self, work):
        self.port = free_port()
        self.log_path = os.path.join(work, "nats.log")
        self.proc = None

    def start(self):
        self.proc = subprocess.Popen(["nats-server", "-a", "127.0.0.1", "-p", str(self.port)],
                                     stdout=open(self.log_path, "ab"), stderr=subprocess.STDOUT)
        wait_for(lambda: accepting(self.port), what="nats-server to listen")

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)

    @property
    def url(self):
        return f"nats://127.0.0.1:{self.port}"


def haproxy(work, frontends, nodes):
    """HAProxy in TCP mode: for each (name, port) of `frontends`, a frontend on that port balancing over
    the nodes' listener `name`, each checked through its /readyz. Returns the process."""
    cfg = os.path.join(work, "haproxy.cfg")
    with open(cfg, "w") as f:
        f.write("global\n    maxconn 2000\ndefaults\n    mode tcp\n    timeout connect 2s\n"
                "    timeout client 1h\n    timeout server 1h\n")
        for name, port in frontends.items():
            f.write(f"frontend {name}\n    bind 127.0.0.1:{port}\n    bind [::1]:{port}\n    default_backend {name}_nodes\n"
                    f"backend {name}_nodes\n    balance roundrobin\n    option httpchk GET /readyz\n"
                    "    option redispatch\n    retries 2\n")
            for n in nodes:
                f.write(f"    server {os.path.basename(n.data_dir)} 127.0.0.1:{n.ports[name]} check port "
                        f"{n.ports['metrics']} inter 200ms fall 2 rise 1\n")
    proc = subprocess.Popen(["haproxy", "-f", cfg, "-db"], stdout=open(os.path.join(work, "haproxy.log"), "ab"),
                            stderr=subprocess.STDOUT)

    def listening(port):
        if proc.poll() is not None:
            raise AssertionError(f"haproxy exited with {proc.returncode} (see haproxy.log)")
        return accepting(port)
    try:
        for port in frontends.values():
            wait_for(lambda port=port: listening(port), what="haproxy to listen")
    except AssertionError:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        raise
    return proc


class ClusterServer(Server):
    """Three fleetcore nodes on one PostgreSQL database and a nats-server, behind HAProxy, standing in for
    one Server (FC_TEST_STORAGE=cluster): devices reach the cluster endpoint (HAProxy's MQTT, MQTTS and
    WSS ports, round robin over the nodes), the API and the data directory are the first node's (the
    others share its CA and server certificate, as docs/scaling.md says), metrics are summed over the
    nodes, and stopping, killing or restarting it does so to every node."""

    LISTENERS = ("mqtt", "mqtts", "wss")

    def __init__(self, data_dir, config=None, workers=2, storage=None, args=(), size=3):
        super().__init__(data_dir, config=config, workers=workers, storage=storage, args=args)
        self.work = os.path.dirname(self.data_dir)
        self.nats = Nats(self.work)
        self.nodes = [Server(self.data_dir if i == 0 else f"{self.data_dir}-n{i}", config=config, workers=1,
                             storage=storage, args=[*args, "--cluster-nats", self.nats.url, "--node-id", f"n{i}"])
                      for i in range(size)]
        self.lb = {name: free_port() for name in self.LISTENERS}
        self.haproxy = None

    def start(self):
        import shutil
        if not (self.nats.proc and self.nats.proc.poll() is None):
            self.nats.start()
        first, rest = self.nodes[0], self.nodes[1:]
        first.start()
        for n in rest:
            if not os.path.exists(os.path.join(n.data_dir, "tls")):
                shutil.copytree(os.path.join(first.data_dir, "tls"), os.path.join(n.data_dir, "tls"))
            n.start()
        for n in self.nodes:
            wait_for(lambda n=n: n.metrics().get("fleetcore_cluster_peers") == len(self.nodes) - 1, what="the peers")
        if self.haproxy:
            self.haproxy.terminate()
            self.haproxy.wait(timeout=10)
        for attempt in range(3):
            try:
                self.haproxy = haproxy(self.work, self.lb, self.nodes)
                break
            except AssertionError:  # a port taken meanwhile: others
                if attempt == 2:
                    raise
                self.lb = {name: free_port() for name in self.LISTENERS}
        self.proc = first.proc
        self.addresses = first.addresses
        self.ports = dict(first.ports, **self.lb)
        return self

    def stop(self):
        for n in self.nodes:
            if n.proc and n.proc.poll() is None:
                n.stop()

    def close(self):
        """Stops the nodes, HAProxy and nats-server."""
        self.stop()
        if self.haproxy:
            self.haproxy.terminate()
            self.haproxy.wait(timeout=10)
        self.nats.stop()

    def kill9(self):
        for n in self.nodes:
            if n.proc.poll() is None:
                n.kill9()

    def read_log(self):
        return "".join(n.read_log() for n in self.nodes)

    # What every node holds the same copy of counts once.
    SAME_ON_EVERY_NODE = ("fleetcore_retained_messages",)

    def metrics(self):
        total = {}
        for n in self.nodes:
            for k, v in n.metrics().items():
                total[k] = max(total.get(k, 0.0), v) if k in self.SAME_ON_EVERY_NODE else total.get(k, 0.0) + v
        return total


def make_test_server(data_dir, **kw):
    """A Server, or a ClusterServer when FC_TEST_STORAGE=cluster, on fresh storage."""
    kind = ClusterServer if STORAGE == "cluster" else Server
    return kind(data_dir, storage=fresh_storage(str(data_dir)), **kw)


def close_test_server(s):
    if isinstance(s, ClusterServer):
        s.close()
    elif s.proc.poll() is None:
        s.stop()


@pytest.fixture
def server(tmp_path):
    s = make_test_server(tmp_path / "data").start()
    yield s
    close_test_server(s)


@pytest.fixture
def make_server(tmp_path):
    """Factory for servers with a configuration file."""
    started = []

    def make(config=None, workers=2, name="data"):
        s = make_test_server(tmp_path / name, config=config, workers=workers).start()
        started.append(s)
        return s

    yield make
    for s in started:
        close_test_server(s)


class Client:
    """A paho client whose events land in queues, so tests wait on them with a timeout."""

    def __init__(self, port, client_id="", version=5, clean=True, transport="tcp", **kw):
        self.version = version
        proto = mqtt.MQTTv5 if version == 5 else mqtt.MQTTv311
        if version == 5:
            self.c = mqtt.Client(client_id=client_id, protocol=proto, transport=transport)
        else:
            self.c = mqtt.Client(client_id=client_id, clean_session=clean, protocol=proto, transport=transport)
        self.port = port
        self.clean = clean
        self.messages = queue.Queue()
        self.connacks = queue.Queue()
        self.disconnects = queue.Queue()
        self.subacks = queue.Queue()
        self.unsubacks = queue.Queue()
        self.published = queue.Queue()
        self.c.on_connect = self._on_connect
        self.c.on_message = lambda c, u, m: self.messages.put(m)
        self.c.on_disconnect = self._on_disconnect
        self.c.on_subscribe = self._on_subscribe
        self.c.on_unsubscribe = self._on_unsubscribe
        self.c.on_publish = lambda c, u, mid: self.published.put(mid)

    def _on_connect(self, c, u, flags, rc, props=None):
        self.connacks.put((flags, rc, props))

    def _on_disconnect(self, c, u, rc, props=None):
        self.disconnects.put(rc)

    def _on_subscribe(self, c, u, mid, granted, props=None):
        self.subacks.put((mid, granted))

    def _on_unsubscribe(self, c, u, mid, props=None, reasons=None):
        self.unsubacks.put((mid, reasons))

    def connect(self, keepalive=60, properties=None, will=None, expect_ok=True, tls=None, host=None):
        if will:
            self.c.will_set(**will)
        if tls:
            self.c.tls_set(**tls)
        host = host or ("127.0.0.1" if not tls else "localhost")
        if self.version == 5:
            self.c.connect(host, self.port, keepalive, clean_start=self.clean, properties=properties)
        else:
            self.c.connect(host, self.port, keepalive)
        self.c.loop_start()
        flags, rc, props = self.connacks.get(timeout=TIMEOUT)
        if expect_ok:
            assert rc == 0, f"CONNACK {rc}"
        return flags, rc, props

    def subscribe(self, topic, qos=0, **kw):
        result, mid = self.c.subscribe(topic, qos, **kw)
        assert result == 0
        got_mid, granted = self.subacks.get(timeout=TIMEOUT)
        assert got_mid == mid
        return granted

    def publish(self, topic, payload, qos=0, retain=False, properties=None, wait=True):
        info = self.c.publish(topic, payload, qos=qos, retain=retain, properties=properties)
        if wait and qos > 0:
            info.wait_for_publish(timeout=TIMEOUT)
            assert info.is_published()
        return info

    def get(self, timeout=TIMEOUT):
        return self.messages.get(timeout=timeout)

    def no_message(self, timeout=0.5):
        """Asserts that nothing arrives within `timeout` (used only to show an absence)."""
        try:
            m = self.messages.get(timeout=timeout)
        except queue.Empty:
            return
        raise AssertionError(f"unexpected message on {m.topic}: {m.payload!r}")

    def disconnect(self, properties=None):
        self.c.disconnect(properties=properties) if self.version == 5 else self.c.disconnect()
        self.c.loop_stop()

    def drop(self):
        """Closes the socket without DISCONNECT, like a device losing power."""
        self.c.loop_stop()
        self.c.socket().close()


def props(packet_type, **values):
    p = Properties(packet_type)
    for k, v in values.items():
        setattr(p, k, v)
    return p


class Raw:
    """A raw socket for byte-level checks of what the broker sends (as mosquitto's test/broker does)."""

    def __init__(self, port, tls=None):
        """`tls`: an ssl.SSLContext to wrap the connection in (to `localhost`, the name the server
        certificate carries)."""
        if tls:
            self.s = tls.wrap_socket(socket.create_connection(("localhost", port), timeout=TIMEOUT),
                                     server_hostname="localhost")
        else:
            self.s = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
        self.buf = b""

    def send(self, data):
        self.s.sendall(data)

    def read_packet(self):
        while True:
            if len(self.buf) >= 2:
                mult, length, i = 1, 0, 1
                while i < len(self.buf):
                    b = self.buf[i]
                    length += (b & 0x7F) * mult
                    mult *= 128
                    i += 1
                    if not b & 0x80:
                        break
                else:
                    i = None
                if i is not None and len(self.buf) >= i + length:
                    pkt = self.buf[: i + length]
                    self.buf = self.buf[i + length:]
                    return pkt
            chunk = self.s.recv(65536)
            if not chunk:
                raise ConnectionError("closed")
            self.buf += chunk

    def closed(self, timeout=TIMEOUT):
        """True once the broker has closed the connection (any bytes before that are returned too)."""
        self.s.settimeout(timeout)
        data = b""
        try:
            while True:
                chunk = self.s.recv(65536)
                if not chunk:
                    return data
                data += chunk
        except ConnectionResetError:
            return data

    def close(self):
        self.s.close()


def connect_bytes(client_id=b"raw", version=5, keepalive=60, clean=True, props=b"\x00", flags_extra=0):
    flags = (0x02 if clean else 0) | flags_extra
    vh = b"\x00\x04MQTT" + bytes([version, flags]) + keepalive.to_bytes(2, "big")
    if version == 5:
        vh += props
    payload = len(client_id).to_bytes(2, "big") + client_id
    body = vh + payload
    return bytes([0x10]) + encode_varint(len(body)) + body


class RetryingPublisher:
    """An MQTT 5 publisher (raw socket) that sends message i at QoS 1 until it is acknowledged, as a client
    does while the server refuses publishes (PUBACK 0x80: its storage is down); `acked` lists the
    acknowledged payloads in order, `refused` counts the refusals."""

    def __init__(self, port, client_id):
        self.raw = Raw(port)
        self.raw.send(connect_bytes(client_id))
        connack = self.raw.read_packet()
        assert connack[0] == 0x20 and connack[3] == 0, connack
        self.acked, self.refused = [], 0

    def publish(self, topic, i, patience=30):
        payload, packet_id = f"m{i}".encode(), i % 65535 + 1
        deadline = time.monotonic() + patience
        while time.monotonic() < deadline:
            self.raw.send(publish_bytes(topic, payload, qos=1, packet_id=packet_id))
            ack = self.raw.read_packet()
            assert ack[0] == 0x40 and int.from_bytes(ack[2:4], "big") == packet_id, ack
            reason = ack[4] if len(ack) > 4 else 0
            if reason == 0:
                self.acked.append(payload)
                return
            assert reason == 0x80, ack  # unspecified error: not stored, not acknowledged
            self.refused += 1
        raise AssertionError(f"message {i} refused for {patience} s")

    def through(self, command, topic, around=40, patience=30):
        """Publishes `around` messages, then more while `command` runs (a restart of PostgreSQL), then
        `around` more; returns how many (all acknowledged, m0 to m<n-1>)."""
        i = 0
        for _ in range(around):
            self.publish(topic, i, patience)
            i += 1
        running = subprocess.Popen(command)
        while running.poll() is None:
            self.publish(topic, i, patience)
            i += 1
        assert running.wait() == 0
        for _ in range(around):
            self.publish(topic, i, patience)
            i += 1
        assert len(self.acked) == i
        print(f"{i} messages acknowledged, {self.refused} refusals meanwhile")
        return i


def publish_bytes(topic, payload, qos=0, packet_id=1, version=5):
    """A raw PUBLISH (topic and payload as bytes)."""
    body = len(topic).to_bytes(2, "big") + topic + (packet_id.to_bytes(2, "big") if qos else b"")
    body += (b"\x00" if version == 5 else b"") + payload
    return bytes([0x30 | qos << 1]) + encode_varint(len(body)) + body


Publish = collections.namedtuple("Publish", "dup qos retain packet_id topic props payload")


def parse_publish(pkt, version=5):
    """A raw PUBLISH packet's fields: packet_id None at QoS 0; props the MQTT 5 property bytes (b"" for 3.1.1)."""
    assert pkt[0] >> 4 == 3, f"not a PUBLISH: {pkt!r}"
    qos = (pkt[0] >> 1) & 3
    i = 1
    while pkt[i] & 0x80:
        i += 1
    i += 1
    n = int.from_bytes(pkt[i:i + 2], "big")
    topic, i = pkt[i + 2:i + 2 + n], i + 2 + n
    packet_id = None
    if qos:
        packet_id, i = int.from_bytes(pkt[i:i + 2], "big"), i + 2
    props = b""
    if version == 5:
        plen, mult = 0, 1
        while True:
            b, i = pkt[i], i + 1
            plen += (b & 0x7F) * mult
            mult *= 128
            if not b & 0x80:
                break
        props, i = pkt[i:i + plen], i + plen
    return Publish(bool(pkt[0] & 0x08), qos, bool(pkt[0] & 1), packet_id, topic, props, pkt[i:])


def granted_qos(granted):
    """SUBACK results as ints for both paho shapes (ints for 3.1.1, ReasonCodes for 5)."""
    return [getattr(g, "value", g) for g in granted]


def disconnect_reason(pkt):
    """Reason code of a raw MQTT 5 DISCONNECT packet (0 when it has none)."""
    assert pkt[0] == 0xE0, f"not a DISCONNECT: {pkt!r}"
    return pkt[2] if len(pkt) > 2 else 0


def subscribe_bytes(packet_id, *filters, version=5):
    """A raw SUBSCRIBE; each filter is (bytes, options byte)."""
    body = packet_id.to_bytes(2, "big") + (b"\x00" if version == 5 else b"")
    for f, opts in filters:
        body += len(f).to_bytes(2, "big") + f + bytes([opts])
    return b"\x82" + encode_varint(len(body)) + body


def encode_varint(n):
    out = b""
    while True:
        b = n & 0x7F
        n >>= 7
        out += bytes([b | (0x80 if n else 0)])
        if not n:
            return out


def mosquitto(cmd, *args, timeout=TIMEOUT, check=True):
    return subprocess.run([cmd, *args], capture_output=True, timeout=timeout, check=check, text=True)


def publish_rc(port, topic, *, client_id, cafile=None, cert=None, key=None, payload="x"):
    """One mosquitto_pub at QoS 1 over MQTT 5 (TLS when `cert` is given): 0 if the connection and the
    publish were accepted (PUBACK 0x00, or 0x10 "no matching subscribers"), the PUBACK reason code if
    the publish was refused, -1 if the connection was."""
    args = ["-h", "localhost" if cert else "127.0.0.1", "-p", str(port), "-i", client_id, "-t", topic, "-m", payload,
            "-q", "1", "-V", "mqttv5", "-d"]
    if cert:
        args += ["--cafile", cafile, "--cert", cert, "--key", key]
    r = mosquitto("mosquitto_pub", *args, check=False)
    if r.returncode != 0 or "received CONNACK (0)" not in r.stdout:
        return -1
    m = re.search(r"received PUBACK \(Mid: \d+, RC:(\d+)\)", r.stdout)
    assert m, r.stdout
    rc = int(m.group(1))
    return 0 if rc == 0x10 else rc


__all__ = ["Client", "Raw", "Server", "props", "PacketTypes", "connect_bytes", "publish_bytes", "publish_rc", "disconnect_reason", "encode_varint", "granted_qos", "parse_publish", "subscribe_bytes", "mosquitto",
           "wait_for", "TIMEOUT"]
