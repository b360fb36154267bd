"""Start-up as a careless operator meets it (issue 9, items 5 and 12): every error exits non-zero at once
with the error, instead of a silent process holding the data directory; the data directory's mode is
fleetcore's only when fleetcore created it."""
import os
import signal
import socket
import stat
import subprocess

import pytest

from helpers import Server, wait_for

OFF = ["--mqtts", "off", "--wss", "off", "--metrics", "off", "--api", "off"]


def run(data_dir, *args, timeout=20):
    """fleetcore serve that is expected to fail: (exit code, output). A hang fails the test."""
    from conftest import FLEETCORE
    r = subprocess.run([FLEETCORE, "serve", "--data-dir", str(data_dir), *args], capture_output=True, text=True,
                       timeout=timeout)
    return r.returncode, r.stdout + r.stderr


def test_port_in_use_exits_with_the_error(tmp_path):
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    port = taken.getsockname()[1]
    rc, out = run(tmp_path / "d", "--mqtt", f"127.0.0.1:{port}", *OFF)
    assert rc != 0
    assert f"127.0.0.1:{port}" in out and "in use" in out
    # The data directory is free again: a second start with a free port works.
    s = Server(tmp_path / "d").start()
    s.stop()


def test_unresolvable_address_exits_with_the_error(tmp_path):
    rc, out = run(tmp_path / "d", "--mqtt", "no-such-host.invalid:0", *OFF)
    assert rc != 0
    assert "no-such-host.invalid" in out


@pytest.mark.parametrize("what", ["missing", "garbage"])
def test_bad_tls_certificate_exits_with_the_error(tmp_path, what):
    cert = tmp_path / "server.crt"
    if what == "garbage":
        cert.write_text("not a certificate\n")
    config = tmp_path / "fc.toml"
    config.write_text(f'[tls]\ncert = "{cert}"\nkey = "{cert}"\n')
    rc, out = run(tmp_path / "d", "--config", str(config), "--mqtt", "127.0.0.1:0", "--mqtts", "127.0.0.1:0",
                  "--wss", "off", "--metrics", "off", "--api", "off")
    assert rc != 0
    assert str(cert) in out


def test_new_data_dir_is_created_private(tmp_path):
    from conftest import FLEETCORE
    data = tmp_path / "fresh" / "data"
    proc = subprocess.Popen([FLEETCORE, "serve", "--data-dir", str(data), "--mqtt", "127.0.0.1:0", *OFF],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: (data / "listeners.json").exists(), what="listeners.json")
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0
    assert stat.S_IMODE(os.stat(data).st_mode) == 0o700


def test_existing_shared_dir_is_refused_and_left_alone(tmp_path):
    shared = tmp_path / "shared"
    shared.mkdir()
    os.chmod(shared, 0o1777)
    rc, out = run(shared, "--mqtt", "127.0.0.1:0", *OFF)
    assert rc != 0
    assert "writable by other users" in out
    assert stat.S_IMODE(os.stat(shared).st_mode) == 0o1777  # sticky bit and mode kept


def test_existing_private_dir_keeps_its_mode(tmp_path):
    d = tmp_path / "mine"
    d.mkdir()
    os.chmod(d, 0o750)
    s = Server(d).start()
    s.stop()
    assert stat.S_IMODE(os.stat(d).st_mode) == 0o750


def test_descriptor_limit_is_raised(server):
    pid = server.proc.pid
    with open(f"/proc/{pid}/limits") as f:
        line = next(l for l in f if l.startswith("Max open files"))
    soft, hard = line.split()[3:5]
    assert soft == hard
