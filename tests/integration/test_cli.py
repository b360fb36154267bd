"""`fleetcore device create`: one command from nothing to a device that connects with least privilege."""
import json
import os
import subprocess

from conftest import FLEETCORE
from helpers import publish_rc


def run_device_create(server, name, out):
    r = subprocess.run([FLEETCORE, "device", "create", "--name", name, "--out", str(out), "--data-dir", server.data_dir],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def publish(server, info, client_id, topic):
    return publish_rc(server.ports["mqtts"], topic, client_id=client_id, cafile=info["rootCAFile"],
                      cert=info["certificateFile"], key=info["privateKeyFile"], payload="hello")


def test_device_create_gives_a_least_privileged_device(server, tmp_path):
    info = run_device_create(server, "dev-cli", tmp_path / "dev-cli")
    assert oct(os.stat(info["privateKeyFile"]).st_mode & 0o777) == "0o600"
    assert info["mqttsEndpoint"].endswith(str(server.ports["mqtts"]))
    iot = server.iot()
    assert iot.list_thing_principals(thingName="dev-cli")["principals"] == [info["certificateArn"]]
    assert [p["policyName"] for p in iot.list_attached_policies(target=info["certificateArn"])["policies"]] == \
        ["fleetcore-thing-policy"]
    assert publish(server, info, "dev-cli", "things/dev-cli/telemetry") == 0
    assert publish(server, info, "dev-cli", "$aws/things/dev-cli/shadow/update") == 0
    assert publish(server, info, "dev-cli", "things/other/telemetry") == 0x87
    assert publish(server, info, "other", "things/other/telemetry") == -1
    # A second device reuses the policy.
    info2 = run_device_create(server, "dev-cli-2", tmp_path / "dev-cli-2")
    assert publish(server, info2, "dev-cli-2", "things/dev-cli-2/telemetry") == 0
