"""Issue 9 item 14: the README's device HTTPS flow works with what `fleetcore device create` sets up."""
import json
import subprocess

from conftest import FLEETCORE, TIMEOUT, Client


def device_create(server, name, out):
    r = subprocess.run([FLEETCORE, "device", "create", "--name", name, "--out", str(out), "--data-dir", server.data_dir],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def curl(server, info, method, path, body=None):
    args = ["curl", "-s", "-o", "-", "-w", "\n%{http_code}", "--cert", info["certificateFile"],
            "--key", info["privateKeyFile"], "--cacert", info["rootCAFile"], "-X", method,
            f"https://localhost:{server.ports['wss']}{path}"]
    if body is not None:
        args += ["--data-binary", body]
    out = subprocess.run(args, capture_output=True, text=True, timeout=TIMEOUT).stdout
    text, code = out.rsplit("\n", 1)
    return int(code), text


def test_device_create_allows_its_own_shadow_and_topics_over_https(server, tmp_path):
    info = device_create(server, "dev-https", tmp_path / "dev-https")
    device_create(server, "other", tmp_path / "other")

    code, text = curl(server, info, "POST", "/things/dev-https/shadow", '{"state":{"reported":{"led":"on"}}}')
    assert code == 200, text
    code, text = curl(server, info, "GET", "/things/dev-https/shadow")
    assert code == 200 and json.loads(text)["state"] == {"reported": {"led": "on"}}, text
    assert curl(server, info, "POST", "/things/dev-https/shadow?name=cfg", '{"state":{"desired":{"x":1}}}')[0] == 200
    assert curl(server, info, "DELETE", "/things/dev-https/shadow?name=cfg")[0] == 200

    sub = Client(server.port, "watcher")
    sub.connect()
    sub.subscribe("things/dev-https/#", 1)
    code, text = curl(server, info, "POST", "/topics/things/dev-https/temp?qos=1", '{"t":21}')
    assert code == 200, text
    m = sub.get()
    assert (m.topic, json.loads(m.payload)) == ("things/dev-https/temp", {"t": 21})

    # Nothing of another thing.
    assert curl(server, info, "GET", "/things/other/shadow")[0] == 403
    assert curl(server, info, "POST", "/things/other/shadow", '{"state":{"reported":{"led":"on"}}}')[0] == 403
    assert curl(server, info, "POST", "/topics/things/other/temp", "{}")[0] == 403
    assert curl(server, info, "POST", "/topics/$aws/things/other/shadow/update", "{}")[0] == 403
