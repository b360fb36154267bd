"""Every listener answers on IPv4 and IPv6 (issue 8): `localhost` is 127.0.0.1 and ::1, public defaults
are dual stack, and what the server reports shows the client's real address."""
import contextlib
import json
import os
import signal
import socket
import ssl
import subprocess
import urllib.request

import pytest

from helpers import Client, mosquitto, wait_for

HOSTS = ["127.0.0.1", "::1"]


def url_host(host):
    return f"[{host}]" if ":" in host else host


def test_every_listener_binds_both_loopback_addresses(server):
    # A listener bound to 127.0.0.1 alone fails here: clients resolving localhost to ::1 could not connect.
    for proto in ("mqtt", "mqtts", "wss", "api", "metrics"):
        port = server.ports[proto]
        assert sorted(server.addresses[proto]) == sorted([f"127.0.0.1:{port}", f"[::1]:{port}"]), proto


@pytest.mark.parametrize("host", HOSTS)
def test_plain_mqtt_and_metrics(server, host):
    sub = Client(server.port, f"sub-{len(host)}")
    sub.connect(host=host)
    sub.subscribe("ds/t", 1)
    pub = Client(server.port, f"pub-{len(host)}", version=4)
    pub.connect(host=host)
    pub.publish("ds/t", b"hello", qos=1)
    assert sub.get().payload == b"hello"
    body = urllib.request.urlopen(f"http://{url_host(host)}:{server.ports['metrics']}/metrics", timeout=5).read()
    assert b"fleetcore_connections" in body


@pytest.mark.parametrize("host", HOSTS)
def test_mqtts_and_wss(server, tmp_path, host):
    cert, key = server.issue_cert("ds-dev", tmp_path)
    tls = {"ca_certs": server.ca, "certfile": cert, "keyfile": key, "cert_reqs": ssl.CERT_REQUIRED}
    ws = Client(server.ports["wss"], "ds-dev", transport="websockets")
    ws.c.ws_set_options(path="/mqtt")
    ws.connect(tls=tls, host=host)
    ws.subscribe("ds/tls", 1)
    # mosquitto_pub over mutual TLS to the IP literal (the server certificate lists both).
    mosquitto("mosquitto_pub", "-h", host, "-p", str(server.ports["mqtts"]), "--cafile", server.ca, "--cert", cert,
              "--key", key, "-i", "ds-pub", "-t", "ds/tls", "-m", "over-" + host, "-q", "1")
    assert ws.get().payload == ("over-" + host).encode()


@pytest.mark.parametrize("host", HOSTS)
def test_api_with_boto3_and_the_aws_cli(server, host):
    import boto3
    key, secret = server.credentials()
    iot = boto3.client("iot", endpoint_url=f"https://{url_host(host)}:{server.ports['api']}", region_name="us-east-1",
                       aws_access_key_id=key, aws_secret_access_key=secret, verify=server.ca)
    iot.create_thing(thingName="ds-thing")
    assert iot.describe_thing(thingName="ds-thing")["thingName"] == "ds-thing"


@contextlib.contextmanager
def serve(data_dir, *listener_args):
    """fleetcore with the given listener flags; yields (listeners.json, log path)."""
    from conftest import FLEETCORE
    os.makedirs(data_dir, exist_ok=True)
    listeners, log_path = os.path.join(data_dir, "listeners.json"), os.path.join(data_dir, "server.log")
    with open(log_path, "wb") as log:
        proc = subprocess.Popen([FLEETCORE, "serve", "--data-dir", data_dir, "--log-level", "debug", *listener_args],
                                stdout=log, stderr=log)
        try:
            wait_for(lambda: os.path.exists(listeners) or proc.poll() is not None, what="listeners.json")
            assert proc.poll() is None, open(log_path).read()
            with open(listeners) as f:
                yield json.load(f), log_path
        finally:
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=15) == 0


def port_of(address):
    return int(address.rsplit(":", 1)[1])


def test_wildcard_is_dual_stack_and_reports_ipv4_clients_as_ipv4(tmp_path):
    """`[::]` (the public default) takes IPv4 clients on the same socket (IPV6_V6ONLY off); they are
    logged as 127.0.0.1, not ::ffff:127.0.0.1."""
    with serve(str(tmp_path / "d"), "--mqtt", "[::]:0", "--mqtts", "[::]:0", "--wss", "off", "--metrics", "off",
               "--api", "off") as (bound, log_path):
        port = port_of(bound["mqtt"])
        assert bound["addresses"]["mqtt"] == [f"[::]:{port}"]
        for host in HOSTS:
            c = Client(port, "wild-" + str(len(host)))
            c.connect(host=host)
            c.disconnect()
        wait_for(lambda: "remote=127.0.0.1:" in open(log_path).read() and "remote=[::1]:" in open(log_path).read(),
                 what="both clients in the log")
        assert "::ffff:" not in open(log_path).read()


def test_explicit_addresses_are_obeyed(tmp_path):
    """`[::1]:0` binds ::1 alone; `127.0.0.1:0` binds IPv4 alone."""
    with serve(str(tmp_path / "d"), "--mqtt", "[::1]:0", "--mqtts", "off", "--wss", "off", "--metrics",
               "127.0.0.1:0", "--api", "off") as (bound, _):
        port = port_of(bound["mqtt"])
        assert bound["addresses"]["mqtt"] == [f"[::1]:{port}"]
        assert bound["addresses"]["metrics"] == [bound["metrics"]] and bound["metrics"].startswith("127.0.0.1:")
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", port), timeout=2)
        socket.create_connection(("::1", port), timeout=2).close()
