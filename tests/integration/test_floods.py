"""Connection floods (issue 9, item 6): idle sockets that never authenticate are bounded per source
address and in all, so devices are not locked out; accept errors (out of descriptors) back off instead
of spinning a core."""
import os
import resource
import select
import signal
import socket
import subprocess
import time

import pytest

from helpers import Client, wait_for


def idle_sockets(port, n, source="127.0.0.1"):
    out = []
    for _ in range(n):
        s = socket.socket()
        s.bind((source, 0))
        s.connect(("127.0.0.1", port))
        out.append(s)
    return out


def closed_by_server(socks, timeout=2):
    """The sockets the server closed (EOF or reset) within `timeout`."""
    closed, deadline = set(), time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([s for s in socks if s not in closed], [], [], 0.1)
        for s in ready:
            try:
                if s.recv(1) == b"":
                    closed.add(s)
            except ConnectionResetError:
                closed.add(s)
    return closed


def test_idle_sockets_from_one_address_are_bounded(make_server, tmp_path):
    server = make_server("[limits]\nmax_pending_connections = 50\nmax_pending_connections_per_address = 20\n")
    port = server.ports["mqtts"]
    held = idle_sockets(port, 25)  # 5 beyond the per-address limit: closed at once
    wait_for(lambda: server.metric("fleetcore_connections_pending") == 20, what="20 pending")
    assert len(closed_by_server(held)) == 5
    assert server.metric('fleetcore_connections_refused_total{reason="pending_per_address_limit"}') == 5
    # A device from another address still gets in, over TLS with its certificate.
    cert, key = server.issue_cert("flood-dev", tmp_path)
    dev = Client(port, "flood-dev")
    dev.connect(tls={"ca_certs": server.ca, "certfile": cert, "keyfile": key}, host="::1")
    dev.disconnect()
    # Other sources fill the global limit; then even a new source is refused until some go away.
    others = idle_sockets(port, 20, "127.0.0.2") + idle_sockets(port, 10, "127.0.0.3")
    wait_for(lambda: server.metric("fleetcore_connections_pending") == 50, what="50 pending")
    late = idle_sockets(port, 1, "127.0.0.4")
    assert len(closed_by_server(late)) == 1
    assert server.metric('fleetcore_connections_refused_total{reason="pending_limit"}') == 1
    for s in held + others:
        s.close()
    wait_for(lambda: server.metric("fleetcore_connections_pending") == 0, what="slots released")
    dev = Client(port, "flood-dev")
    dev.connect(tls={"ca_certs": server.ca, "certfile": cert, "keyfile": key})
    dev.disconnect()


def test_authenticated_connections_do_not_hold_pending_slots(make_server):
    server = make_server("[limits]\nmax_pending_connections_per_address = 5\n")
    clients = []
    for i in range(12):  # more than the limit, each completing CONNECT
        c = Client(server.port, f"ok-{i}")
        c.connect()
        clients.append(c)
    assert server.metric("fleetcore_connections_pending") == 0
    assert server.metric("fleetcore_connections") == 12


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# UBSan's vptr check opens a pipe to inspect memory; with the process out of descriptors it reports
# every virtual call (here error_category::message) as an invalid object and aborts. The sanitized
# run (make asan sets ASAN_OPTIONS) therefore skips this one test; the plain run keeps it.
@pytest.mark.skipif("ASAN_OPTIONS" in os.environ, reason="UBSan vptr checks need free descriptors")
def test_out_of_descriptors_backs_off_instead_of_spinning(tmp_path):
    """With few descriptors, a flood of API connections exhausts them: the accept loop waits instead of
    retrying at 100% of a core, and serves again once descriptors are free."""
    from conftest import FLEETCORE
    data = str(tmp_path / "d")
    limit = lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (128, 128))  # noqa: E731
    log = open(tmp_path / "log", "wb")
    proc = subprocess.Popen([FLEETCORE, "serve", "--data-dir", data, "--mqtt", "127.0.0.1:0", "--mqtts", "off",
                             "--wss", "off", "--metrics", "127.0.0.1:0", "--api", "127.0.0.1:0", "--workers", "1"],
                            stdout=log, stderr=log, preexec_fn=limit)
    try:
        wait_for(lambda: os.path.exists(os.path.join(data, "listeners.json")), what="listening")
        import json
        ports = {k: int(v.rsplit(":", 1)[1]) for k, v in json.load(open(os.path.join(data, "listeners.json"))).items()
                 if k != "addresses"}
        flood = idle_sockets(ports["api"], 200)  # the API has no pending limit: descriptors run out
        wait_for(lambda: b"listener.accept_failed proto=api" in open(tmp_path / "log", "rb").read(),
                 what="the server out of descriptors")
        before = cpu_seconds(proc.pid)
        time.sleep(2)  # a measurement window for the CPU the accept loop uses, not a synchronisation
        used = cpu_seconds(proc.pid) - before
        assert used < 0.5, f"accept loop used {used:.2f}s of CPU in 2s"
        for s in flood:
            s.close()
        c = Client(ports["mqtt"], "after-flood")
        c.connect()  # descriptors are free again: accepting resumed within its back-off (at most 1 s)
        c.disconnect()
        body = __import__("urllib.request").request.urlopen(f"http://127.0.0.1:{ports['metrics']}/metrics").read()
        line = next(l for l in body.decode().splitlines() if l.startswith('fleetcore_accept_errors_total{proto="api"}'))
        assert float(line.split()[-1]) > 0
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=15)
        log.close()
