"""Certificate policy variables whose value holds a wildcard character (`*`, `$`, `+`, `?`, `#`) are
not substituted (cert-policy-variables.md, "Wildcards"): a certificate with CN `+` gains no access
to other devices' topics through `${iot:Certificate.Subject.CommonName}`."""
import json
import ssl

from helpers import Client

ARN = "arn:aws:iot:us-east-1:000000000000"
CN_POLICY = json.dumps({"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Action": "iot:Connect", "Resource": "*"},
    {"Effect": "Allow", "Action": "iot:Subscribe",
     "Resource": f"{ARN}:topicfilter/devices/${{iot:Certificate.Subject.CommonName}}/*"},
    {"Effect": "Allow", "Action": ["iot:Publish", "iot:Receive"], "Resource": f"{ARN}:topic/devices/*"},
]})


def tls(server, cert, key):
    return {"ca_certs": server.ca, "certfile": cert, "keyfile": key, "cert_reqs": ssl.CERT_REQUIRED}


def test_certificate_common_name_with_mqtt_wildcard_is_not_substituted(server, tmp_path):
    server.iot().create_policy(policyName="by-cn", policyDocument=CN_POLICY)
    certs = {cn: server.issue_cert(cn, tmp_path, policy="by-cn") for cn in ("dev-1", "+")}

    honest = Client(server.ports["mqtts"], "honest")
    honest.connect(tls=tls(server, *certs["dev-1"]))
    assert [g.value for g in honest.subscribe("devices/dev-1/#", 1)] == [1]

    wild = Client(server.ports["mqtts"], "wild")
    wild.connect(tls=tls(server, *certs["+"]))
    # Substituted, CN `+` would turn the policy into topicfilter/devices/+/*: every device's topics.
    for f in ("devices/+/#", "devices/+/cmd", "devices/dev-1/#"):
        assert [g.value for g in wild.subscribe(f, 1)] == [0x87], f

    # What the honest device publishes reaches only its own subscription.
    honest.publish("devices/dev-1/cmd", b"mine", qos=1)
    assert honest.get().payload == b"mine"
    honest.disconnect()
    wild.disconnect()
