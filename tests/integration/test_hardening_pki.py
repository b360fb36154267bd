"""Issue 9 item 7: a data directory holding only one half of the CA pair is refused, never re-keyed."""
import os

import pytest

from conftest import Server


def read(path):
    with open(path, "rb") as f:
        return f.read()


def refused_start(server):
    """Starts `server` expecting it to exit; returns the log. A server that comes up fails the test."""
    try:
        with pytest.raises(AssertionError, match="fleetcore exited with"):
            server.start()
    finally:
        if server.proc.poll() is None:
            server.stop()
        else:
            server.log.close()
    assert server.proc.returncode != 0
    return server.read_log()


@pytest.mark.parametrize("missing", ["ca.crt", "ca.key"])
def test_half_a_ca_pair_is_refused_and_kept(tmp_path, missing):
    s = Server(tmp_path / "data").start()
    s.stop()
    tls = os.path.join(s.data_dir, "tls")
    kept = "ca.key" if missing == "ca.crt" else "ca.crt"
    before = read(os.path.join(tls, kept))
    os.remove(os.path.join(tls, missing))
    open(s.log_path, "wb").close()

    log = refused_start(s)
    assert os.path.join(tls, missing) + " is missing" in log, log
    assert read(os.path.join(tls, kept)) == before
    assert not os.path.exists(os.path.join(tls, missing))


def test_an_empty_server_cert_is_issued_again_by_the_same_ca(tmp_path):
    """A kill during the first start could leave an empty server.crt; the CA signs a new one."""
    s = Server(tmp_path / "data").start()
    s.stop()
    tls = os.path.join(s.data_dir, "tls")
    ca, ca_key = read(os.path.join(tls, "ca.crt")), read(os.path.join(tls, "ca.key"))
    open(os.path.join(tls, "server.crt"), "wb").close()
    s.start()
    try:
        # The API's TLS, verified against the unchanged CA, works.
        assert s.iot().list_things()["things"] == []
    finally:
        s.stop()
    assert read(os.path.join(tls, "ca.crt")) == ca and read(os.path.join(tls, "ca.key")) == ca_key
    assert "pki.server_cert_created" in s.read_log()
