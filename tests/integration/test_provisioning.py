"""Fleet provisioning (issue 14): provisioning templates and their versions, driven with the aws CLI."""
import json

ROLE = "arn:aws:iam::000000000000:role/provisioning"

FLEET_TEMPLATE = {
    "Parameters": {"SerialNumber": {"Type": "String"}, "AWS::IoT::Certificate::Id": {"Type": "String"}},
    "Resources": {
        "thing": {"Type": "AWS::IoT::Thing",
                  "Properties": {"ThingName": {"Fn::Join": ["", ["ThingPrefix_", {"Ref": "SerialNumber"}]]},
                                 "AttributePayload": {"version": "v1", "serialNumber": {"Ref": "SerialNumber"}}},
                  "OverrideSettings": {"AttributePayload": "MERGE"}},
        "certificate": {"Type": "AWS::IoT::Certificate",
                        "Properties": {"CertificateId": {"Ref": "AWS::IoT::Certificate::Id"}, "Status": "Active"}},
        "policy": {"Type": "AWS::IoT::Policy", "Properties": {"PolicyName": "device-policy"}}},
    "DeviceConfiguration": {"Fleet": "lamps"},
}


def create_device_policy(server):
    """The policy FLEET_TEMPLATE attaches to the devices it provisions: iot:* on everything."""
    server.aws("iot", "create-policy", "--policy-name", "device-policy", "--policy-document", json.dumps(
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "iot:*", "Resource": "*"}]}))


def create_fleet_template(server, name="lamps", *more):
    """FLEET_TEMPLATE, enabled, as template `name` (with the aws CLI's further arguments `more`)."""
    server.aws("iot", "create-provisioning-template", "--template-name", name, "--provisioning-role-arn", ROLE,
               "--template-body", json.dumps(FLEET_TEMPLATE), "--enabled", *more)


def test_templates_and_versions_with_the_cli(server, tmp_path):
    body = tmp_path / "t.json"
    body.write_text(json.dumps(FLEET_TEMPLATE))
    created = server.aws("iot", "create-provisioning-template", "--template-name", "lamps", "--description", "lamps",
                         "--provisioning-role-arn", ROLE, "--template-body", f"file://{body}", "--enabled")[1]
    assert created == {"templateArn": "arn:aws:iot:us-east-1:000000000000:provisioningtemplate/lamps",
                       "templateName": "lamps", "defaultVersionId": 1}
    rc, err = server.aws("iot", "create-provisioning-template", "--template-name", "lamps", "--provisioning-role-arn",
                         ROLE, "--template-body", f"file://{body}", check=False)
    assert rc != 0 and "ResourceAlreadyExistsException" in err
    # A body the template language does not have is refused with the reason.
    rc, err = server.aws("iot", "create-provisioning-template", "--template-name", "bad", "--provisioning-role-arn", ROLE,
                         "--template-body", json.dumps({"Conditions": {}}), check=False)
    assert rc != 0 and "InvalidRequestException" in err and "Conditions" in err
    rc, err = server.aws("iot", "create-provisioning-template", "--template-name", "jitp", "--provisioning-role-arn", ROLE,
                         "--type", "JITP", "--template-body", json.dumps(FLEET_TEMPLATE), "--pre-provisioning-hook",
                         "targetArn=https://localhost:1/hook", check=False)
    assert rc != 0 and "fleet provisioning templates only" in err

    described = server.aws("iot", "describe-provisioning-template", "--template-name", "lamps")[1]
    assert described["enabled"] is True and described["type"] == "FLEET_PROVISIONING"
    assert json.loads(described["templateBody"]) == FLEET_TEMPLATE and described["defaultVersionId"] == 1

    # Versions: a second one made the default, at most five, the default cannot go.
    v2 = dict(FLEET_TEMPLATE, DeviceConfiguration={"Fleet": "lamps-v2"})
    made = server.aws("iot", "create-provisioning-template-version", "--template-name", "lamps", "--template-body",
                      json.dumps(v2), "--set-as-default")[1]
    assert made["versionId"] == 2 and made["isDefaultVersion"] is True
    for _ in range(3):
        server.aws("iot", "create-provisioning-template-version", "--template-name", "lamps", "--template-body",
                   json.dumps(v2))
    rc, err = server.aws("iot", "create-provisioning-template-version", "--template-name", "lamps", "--template-body",
                         json.dumps(v2), check=False)
    assert rc != 0 and "VersionsLimitExceededException" in err
    versions = server.aws("iot", "list-provisioning-template-versions", "--template-name", "lamps")[1]["versions"]
    assert [(v["versionId"], v["isDefaultVersion"]) for v in versions] == \
        [(1, False), (2, True), (3, False), (4, False), (5, False)]
    rc, err = server.aws("iot", "delete-provisioning-template-version", "--template-name", "lamps", "--version-id", "2",
                         check=False)
    assert rc != 0 and "DeleteConflictException" in err
    server.aws("iot", "delete-provisioning-template-version", "--template-name", "lamps", "--version-id", "1")
    one = server.aws("iot", "describe-provisioning-template-version", "--template-name", "lamps", "--version-id", "2")[1]
    assert json.loads(one["templateBody"]) == v2 and one["isDefaultVersion"] is True

    server.aws("iot", "update-provisioning-template", "--template-name", "lamps", "--no-enabled", "--default-version-id", "3",
               "--pre-provisioning-hook", "targetArn=https://localhost:1/hook")
    described = server.aws("iot", "describe-provisioning-template", "--template-name", "lamps")[1]
    assert described["enabled"] is False and described["defaultVersionId"] == 3
    assert described["preProvisioningHook"] == {"targetArn": "https://localhost:1/hook", "payloadVersion": "2020-04-01"}
    server.aws("iot", "update-provisioning-template", "--template-name", "lamps", "--remove-pre-provisioning-hook")
    assert "preProvisioningHook" not in server.aws("iot", "describe-provisioning-template", "--template-name", "lamps")[1]

    # Templates survive a restart; the list shows them; delete removes them.
    server.restart()
    listed = server.aws("iot", "list-provisioning-templates")[1]["templates"]
    assert [(t["templateName"], t["enabled"]) for t in listed] == [("lamps", False)]
    server.aws("iot", "delete-provisioning-template", "--template-name", "lamps")
    rc, err = server.aws("iot", "describe-provisioning-template", "--template-name", "lamps", check=False)
    assert rc != 0 and "ResourceNotFoundException" in err


BULK_TEMPLATE = {
    "Parameters": {"ThingName": {"Type": "String"}, "SerialNumber": {"Type": "String"},
                   "Location": {"Type": "String", "Default": "WA"}, "CSR": {"Type": "String"}},
    "Resources": {
        "thing": {"Type": "AWS::IoT::Thing",
                  "Properties": {"ThingName": {"Ref": "ThingName"},
                                 "AttributePayload": {"version": "v1", "serialNumber": {"Ref": "SerialNumber"}},
                                 "ThingGroups": ["v1-lightbulbs", {"Ref": "Location"}]}},
        "certificate": {"Type": "AWS::IoT::Certificate",
                        "Properties": {"CertificateSigningRequest": {"Ref": "CSR"}, "Status": "ACTIVE"}},
        "policy": {"Type": "AWS::IoT::Policy",
                   "Properties": {"PolicyDocument": json.dumps({"Version": "2012-10-17", "Statement": [
                       {"Effect": "Allow", "Action": "iot:*", "Resource": "*"}]})}}},
}


def test_register_thing_with_a_csr(server, tmp_path):
    # The Guide's bulk-registration template (single-thing-provisioning.md) through aws iot register-thing.
    import subprocess
    subprocess.run(["openssl", "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                    "-keyout", str(tmp_path / "b1.key"), "-out", str(tmp_path / "b1.csr"), "-subj", "/CN=b1"],
                   check=True, capture_output=True)
    for g in ("v1-lightbulbs", "WA"):
        server.aws("iot", "create-thing-group", "--thing-group-name", g)
    body = tmp_path / "t.json"
    body.write_text(json.dumps(BULK_TEMPLATE))
    params = {"ThingName": "b1", "SerialNumber": "123", "CSR": (tmp_path / "b1.csr").read_text()}
    (tmp_path / "p.json").write_text(json.dumps(params))
    done = server.aws("iot", "register-thing", "--template-body", f"file://{body}", "--parameters",
                      f"file://{tmp_path / 'p.json'}")[1]
    arns = done["resourceArns"]
    assert arns["thing"] == "arn:aws:iot:us-east-1:000000000000:thing/b1"
    assert arns["certificate"].startswith("arn:aws:iot:us-east-1:000000000000:cert/")
    assert arns["policy"].startswith("arn:aws:iot:us-east-1:000000000000:policy/") and len(arns["policy"].rsplit("/", 1)[1]) == 40
    assert done["certificatePem"].startswith("-----BEGIN CERTIFICATE-----")

    thing = server.aws("iot", "describe-thing", "--thing-name", "b1")[1]
    assert thing["attributes"] == {"version": "v1", "serialNumber": "123"}
    groups = server.aws("iot", "list-thing-groups-for-thing", "--thing-name", "b1")[1]["thingGroups"]
    assert sorted(g["groupName"] for g in groups) == ["WA", "v1-lightbulbs"]
    cert_id = arns["certificate"].rsplit("/", 1)[1]
    assert server.aws("iot", "describe-certificate", "--certificate-id", cert_id)[1]["certificateDescription"]["status"] == "ACTIVE"
    assert server.aws("iot", "list-thing-principals", "--thing-name", "b1")[1]["principals"] == [arns["certificate"]]
    policies = server.aws("iot", "list-attached-policies", "--target", arns["certificate"])[1]["policies"]
    assert [p["policyArn"] for p in policies] == [arns["policy"]]

    # The device connects with its new certificate over mutual TLS.
    (tmp_path / "b1.crt").write_text(done["certificatePem"])
    from conftest import publish_rc
    assert publish_rc(server.ports["mqtts"], "b1/hello", client_id="b1", cafile=server.ca,
                      cert=str(tmp_path / "b1.crt"), key=str(tmp_path / "b1.key")) == 0

    # All or nothing: a template naming a missing thing group creates nothing.
    params2 = dict(params, ThingName="b2", Location="nowhere")
    (tmp_path / "p2.json").write_text(json.dumps(params2))
    rc, err = server.aws("iot", "register-thing", "--template-body", f"file://{body}", "--parameters",
                         f"file://{tmp_path / 'p2.json'}", check=False)
    assert rc != 0 and "ResourceNotFoundException" in err and "nowhere" in err
    rc, _ = server.aws("iot", "describe-thing", "--thing-name", "b2", check=False)
    assert rc != 0
    assert len(server.aws("iot", "list-certificates")[1]["certificates"]) == 1
    # A parameter the template needs and nobody gave is an error that names it.
    rc, err = server.aws("iot", "register-thing", "--template-body", f"file://{body}", "--parameters",
                         json.dumps({"ThingName": "b3"}), check=False)
    assert rc != 0 and "InvalidRequestException" in err and "SerialNumber" in err


def test_fleet_provisioning_by_claim_over_mqtt(server, tmp_path):
    from conftest import Client, publish_rc
    create_device_policy(server)
    create_fleet_template(server)
    cert, key = server.issue_cert("claim", tmp_path)
    tls = {"ca_certs": server.ca, "certfile": cert, "keyfile": key}
    dev = Client(server.ports["mqtts"], "claim-dev-1")
    dev.connect(tls=tls)
    other = Client(server.ports["mqtts"], "claim-dev-2")  # the same claim certificate, another device
    other.connect(tls=tls)
    for c in (dev, other):
        assert c.subscribe("$aws/certificates/create/json/+", 1) == [1]
        assert c.subscribe("$aws/provisioning-templates/lamps/provision/json/+", 1) == [1]

    dev.publish("$aws/certificates/create/json", "", qos=1)
    m = dev.get()
    assert m.topic == "$aws/certificates/create/json/accepted"
    made = json.loads(m.payload)
    assert set(made) == {"certificateId", "certificatePem", "privateKey", "certificateOwnershipToken"}
    other.no_message(1.0)  # the private key went to the device that asked, and to no one else

    dev.publish("$aws/provisioning-templates/lamps/provision/json",
                json.dumps({"certificateOwnershipToken": made["certificateOwnershipToken"],
                            "parameters": {"SerialNumber": "7"}}), qos=1)
    m = dev.get()
    assert m.topic == "$aws/provisioning-templates/lamps/provision/json/accepted", m.payload
    assert json.loads(m.payload) == {"deviceConfiguration": {"Fleet": "lamps"}, "thingName": "ThingPrefix_7"}
    other.no_message(0.5)
    # The device now connects with its own certificate, which the template made ACTIVE.
    (tmp_path / "new.crt").write_text(made["certificatePem"])
    (tmp_path / "new.key").write_text(made["privateKey"])
    assert publish_rc(server.ports["mqtts"], "lamps/7", client_id="ThingPrefix_7", cafile=server.ca,
                      cert=str(tmp_path / "new.crt"), key=str(tmp_path / "new.key")) == 0
    assert server.aws("iot", "list-thing-principals", "--thing-name", "ThingPrefix_7")[1]["principals"] == \
        [f"arn:aws:iot:us-east-1:000000000000:cert/{made['certificateId']}"]

    # A used token, a forged one, an empty one: rejected as AWS does.
    for token, message in ((made["certificateOwnershipToken"], "not valid"), ("f" * 64, "not valid"),
                           ("", "cannot be empty")):
        dev.publish("$aws/provisioning-templates/lamps/provision/json",
                    json.dumps({"certificateOwnershipToken": token, "parameters": {"SerialNumber": "8"}}), qos=1)
        m = dev.get()
        assert m.topic.endswith("/rejected")
        body = json.loads(m.payload)
        assert body["statusCode"] == 400 and body["errorCode"] == "InvalidCertificateOwnershipToken"
        assert message in body["errorMessage"]
    # From a CSR: no private key in the answer.
    import subprocess
    subprocess.run(["openssl", "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                    "-keyout", str(tmp_path / "c.key"), "-out", str(tmp_path / "c.csr"), "-subj", "/CN=c"],
                   check=True, capture_output=True)
    assert dev.subscribe("$aws/certificates/create-from-csr/json/+", 1) == [1]
    dev.publish("$aws/certificates/create-from-csr/json",
                json.dumps({"certificateSigningRequest": (tmp_path / "c.csr").read_text()}), qos=1)
    m = dev.get()
    assert m.topic == "$aws/certificates/create-from-csr/json/accepted"
    assert set(json.loads(m.payload)) == {"certificateId", "certificatePem", "certificateOwnershipToken"}
    # Only the service answers on the reply topics.
    r = subprocess.run(["mosquitto_pub", "-h", "127.0.0.1", "-p", str(server.port), "-V", "mqttv5", "-q", "1", "-d",
                        "-t", "$aws/certificates/create/json/accepted", "-m", "{}"], capture_output=True, text=True)
    assert "RC:135" in r.stdout
    assert server.metric("fleetcore_provisioning_provisioned_total") == 1


def test_fleet_provisioning_in_cbor(server, tmp_path):
    # CBOR requests get CBOR answers with the same members (the embedded C SDK's fleet provisioning).
    import cbor2
    from conftest import Client
    create_device_policy(server)
    create_fleet_template(server)
    cert, key = server.issue_cert("claim", tmp_path)
    dev = Client(server.ports["mqtts"], "cbor-dev")
    dev.connect(tls={"ca_certs": server.ca, "certfile": cert, "keyfile": key})
    assert dev.subscribe("$aws/certificates/create/cbor/+", 1) == [1]
    assert dev.subscribe("$aws/provisioning-templates/lamps/provision/cbor/+", 1) == [1]
    dev.publish("$aws/certificates/create/cbor", b"", qos=1)
    m = dev.get()
    assert m.topic == "$aws/certificates/create/cbor/accepted"
    made = cbor2.loads(m.payload)
    assert made["privateKey"].startswith("-----BEGIN PRIVATE KEY-----")
    dev.publish("$aws/provisioning-templates/lamps/provision/cbor",
                cbor2.dumps({"certificateOwnershipToken": made["certificateOwnershipToken"],
                             "parameters": {"SerialNumber": "9"}}), qos=1)
    m = dev.get()
    assert m.topic == "$aws/provisioning-templates/lamps/provision/cbor/accepted"
    assert cbor2.loads(m.payload) == {"deviceConfiguration": {"Fleet": "lamps"}, "thingName": "ThingPrefix_9"}
    # Malformed CBOR, an unknown template: rejected in CBOR.
    dev.publish("$aws/provisioning-templates/lamps/provision/cbor", b"\xa1\x61", qos=1)
    assert cbor2.loads(dev.get().payload)["errorCode"] == "InvalidCbor"
    assert dev.subscribe("$aws/provisioning-templates/nope/provision/cbor/+", 1) == [1]
    dev.publish("$aws/provisioning-templates/nope/provision/cbor",
                cbor2.dumps({"certificateOwnershipToken": "x"}), qos=1)
    body = cbor2.loads(dev.get().payload)
    assert body["errorCode"] == "InvalidCertificateOwnershipToken" and body["statusCode"] == 400


def test_fleet_templates_are_held_to_the_token(server, tmp_path):
    # A template whose pre-provisioning hook does not answer (nothing listens) is refused, one that
    # does not provision the token's certificate is refused, and a Status under DO_NOTHING still
    # activates the new certificate.
    from conftest import Client
    create_device_policy(server)
    keep = json.loads(json.dumps(FLEET_TEMPLATE))
    keep["Resources"]["certificate"]["OverrideSettings"] = {"Status": "DO_NOTHING"}
    other = {"Parameters": {"Id": {"Type": "String"}},
             "Resources": {"thing": {"Type": "AWS::IoT::Thing", "Properties": {"ThingName": "x"}},
                           "certificate": {"Type": "AWS::IoT::Certificate", "Properties": {"CertificateId": {"Ref": "Id"}}}}}
    for name, body, hook in (("hooked", FLEET_TEMPLATE, True), ("other", other, False), ("keep", keep, False)):
        args = ["iot", "create-provisioning-template", "--template-name", name, "--provisioning-role-arn", ROLE,
                "--template-body", json.dumps(body), "--enabled"]
        if hook:
            args += ["--pre-provisioning-hook", "targetArn=https://localhost:1/hook"]
        server.aws(*args)
    cert, key = server.issue_cert("claim", tmp_path)
    dev = Client(server.ports["mqtts"], "held")
    dev.connect(tls={"ca_certs": server.ca, "certfile": cert, "keyfile": key})
    assert dev.subscribe("$aws/certificates/create/json/+", 0) == [0]
    for name in ("hooked", "other", "keep"):
        assert dev.subscribe(f"$aws/provisioning-templates/{name}/provision/json/+", 0) == [0]
    dev.publish("$aws/certificates/create/json", "", qos=1)
    made = json.loads(dev.get().payload)

    def provision(name, params):
        dev.publish(f"$aws/provisioning-templates/{name}/provision/json",
                    json.dumps({"certificateOwnershipToken": made["certificateOwnershipToken"], "parameters": params}),
                    qos=1)
        m = dev.get()
        return m.topic.rsplit("/", 1)[1], json.loads(m.payload)

    outcome, body = provision("hooked", {"SerialNumber": "1"})
    assert outcome == "rejected" and body["statusCode"] == 403 and body["errorCode"] == "AccessDenied"
    # Another existing certificate's id, passed as a parameter, is not the token's.
    outcome, body = provision("other", {"Id": made["certificateId"][::-1]})
    assert outcome == "rejected" and "new certificate" in body["errorMessage"]
    outcome, body = provision("keep", {"SerialNumber": "2", "AWS::IoT::Certificate::Id": "forged"})
    assert outcome == "accepted" and body["thingName"] == "ThingPrefix_2"
    described = server.aws("iot", "describe-certificate", "--certificate-id", made["certificateId"])[1]
    assert described["certificateDescription"]["status"] == "ACTIVE"


def hook_endpoint(tmp_path, decide):
    """A local HTTPS pre-provisioning hook under its own CA: `decide(input)` returns (seconds to wait,
    JSON answer). Returns (CA file, URL, list of inputs received, stop)."""
    import datetime
    import ipaddress
    import ssl
    import threading
    import time
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "hook test CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
          .not_valid_after(now + datetime.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), True).sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                        x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
            .sign(ca_key, hashes.SHA256()))
    (tmp_path / "hook-ca.crt").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "hook.crt").write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "hook.key").write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                          serialization.NoEncryption()))
    received = []

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self):
            event = json.loads(self.rfile.read(int(self.headers.get("content-length", 0))))
            received.append(event)
            wait, answer = decide(event)
            time.sleep(wait)
            body = json.dumps(answer).encode()
            try:
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            except OSError:
                pass  # the caller gave up

        def log_message(self, *a):
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(str(tmp_path / "hook.crt"), str(tmp_path / "hook.key"))
    httpd.socket = ctx.wrap_socket(httpd.socket, server_side=True)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()

    def stop():
        httpd.shutdown()
        httpd.server_close()
    return str(tmp_path / "hook-ca.crt"), f"https://localhost:{httpd.server_address[1]}/hook", received, stop


HOOK_ARN = "arn:aws:lambda:us-east-1:000000000000:function:pre-provisioning-hook"


def test_pre_provisioning_hook_refuses_times_out_and_overrides(make_server, tmp_path):
    # The template's hook is a Lambda ARN mapped to a local HTTPS endpoint in [provisioning.hooks]:
    # a refusal and a late answer (6 s, past AWS's 5 s) reject the device with nothing created; an
    # allowed device is provisioned with the hook's parameterOverrides.
    import time
    from conftest import Client

    def decide(event):
        serial = event["parameters"].get("SerialNumber", "")
        if serial == "deny":
            return 0, {"allowProvisioning": False}
        if serial == "slow":
            return 6, {"allowProvisioning": True}
        return 0, {"allowProvisioning": True, "parameterOverrides": {"SerialNumber": "hooked-" + serial}}

    ca_file, url, received, stop = hook_endpoint(tmp_path, decide)
    server = make_server(f"[provisioning]\nhook_ca_file = '{ca_file}'\n[provisioning.hooks]\n\"{HOOK_ARN}\" = '{url}'\n")
    try:
        create_device_policy(server)
        for name, target in (("hooked", HOOK_ARN), ("unmapped", "arn:aws:lambda:us-east-1:000000000000:function:nope")):
            create_fleet_template(server, name, "--pre-provisioning-hook", f"targetArn={target}")
        cert, key = server.issue_cert("claim", tmp_path)
        dev = Client(server.ports["mqtts"], "hooked-dev")
        dev.connect(tls={"ca_certs": server.ca, "certfile": cert, "keyfile": key})
        assert dev.subscribe("$aws/certificates/create/json/+", 0) == [0]
        for name in ("hooked", "unmapped"):
            assert dev.subscribe(f"$aws/provisioning-templates/{name}/provision/json/+", 0) == [0]
        dev.publish("$aws/certificates/create/json", "", qos=1)
        made = json.loads(dev.get().payload)

        def provision(serial, template="hooked"):
            dev.publish(f"$aws/provisioning-templates/{template}/provision/json",
                        json.dumps({"certificateOwnershipToken": made["certificateOwnershipToken"],
                                    "parameters": {"SerialNumber": serial}}), qos=1)
            m = dev.get(timeout=15)
            return m.topic.rsplit("/", 1)[1], json.loads(m.payload)

        def certificate_status():
            return server.aws("iot", "describe-certificate", "--certificate-id",
                              made["certificateId"])[1]["certificateDescription"]["status"]

        outcome, body = provision("deny")
        assert outcome == "rejected" and body["statusCode"] == 403 and body["errorCode"] == "AccessDenied"
        assert "did not allow" in body["errorMessage"]
        assert received[-1]["parameters"] == {"SerialNumber": "deny"}
        assert received[-1]["certificateId"] == made["certificateId"]
        assert received[-1]["certificatePem"] == made["certificatePem"]
        assert received[-1]["clientId"] == "hooked-dev"
        assert received[-1]["templateArn"] == "arn:aws:iot:us-east-1:000000000000:provisioningtemplate/hooked"
        # The certificate id of the connection's claim certificate: the SHA-256 of its DER, as AWS's.
        import hashlib
        from cryptography import x509 as x509_
        from cryptography.hazmat.primitives import serialization as serialization_
        claim_der = x509_.load_pem_x509_certificate(open(cert, "rb").read()).public_bytes(serialization_.Encoding.DER)
        assert received[-1]["claimCertificateId"] == hashlib.sha256(claim_der).hexdigest()
        assert server.aws("iot", "list-things")[1]["things"] == [] and certificate_status() == "INACTIVE"

        started = time.monotonic()
        outcome, body = provision("slow")
        assert outcome == "rejected" and body["errorCode"] == "AccessDenied" and "within 5000 ms" in body["errorMessage"]
        assert 4.5 < time.monotonic() - started < 8.0
        assert server.aws("iot", "list-things")[1]["things"] == [] and certificate_status() == "INACTIVE"

        outcome, body = provision("x", template="unmapped")
        assert outcome == "rejected" and body["statusCode"] == 403 and "[provisioning.hooks]" in body["errorMessage"]

        outcome, body = provision("1")
        assert outcome == "accepted", body
        assert body["thingName"] == "ThingPrefix_hooked-1"  # the hook's override reached ThingName
        assert certificate_status() == "ACTIVE"
        assert server.metric("fleetcore_provisioning_hook_denied_total") == 2
    finally:
        stop()


JITP_TEMPLATE = {  # the Guide's jit-provisioning.md example, with a policy devices can connect with
    "Parameters": {"AWS::IoT::Certificate::CommonName": {"Type": "String"},
                   "AWS::IoT::Certificate::SerialNumber": {"Type": "String"},
                   "AWS::IoT::Certificate::Country": {"Type": "String"},
                   "AWS::IoT::Certificate::Id": {"Type": "String"}},
    "Resources": {
        "thing": {"Type": "AWS::IoT::Thing",
                  "Properties": {"ThingName": {"Ref": "AWS::IoT::Certificate::CommonName"},
                                 "AttributePayload": {"version": "v1",
                                                      "serialNumber": {"Ref": "AWS::IoT::Certificate::SerialNumber"}},
                                 "ThingTypeName": "lightBulb-versionA",
                                 "ThingGroups": ["v1-lightbulbs", {"Ref": "AWS::IoT::Certificate::Country"}]},
                  "OverrideSettings": {"AttributePayload": "MERGE", "ThingTypeName": "REPLACE",
                                       "ThingGroups": "DO_NOTHING"}},
        "certificate": {"Type": "AWS::IoT::Certificate",
                        "Properties": {"CertificateId": {"Ref": "AWS::IoT::Certificate::Id"}, "Status": "ACTIVE"},
                        "OverrideSettings": {"Status": "DO_NOTHING"}},
        "policy": {"Type": "AWS::IoT::Policy",
                   "Properties": {"PolicyDocument": json.dumps({"Version": "2012-10-17", "Statement": [
                       {"Effect": "Allow", "Action": ["iot:Connect", "iot:Publish"], "Resource": "*"}]})}}},
}


def test_just_in_time_provisioning(server, tmp_path):
    # A CA registered with a JITP registrationConfig: a device's first connection is refused while its
    # certificate is registered (the JITR event still published) and provisioned by the template from
    # its subject; it connects on retry. By templateName too, and a subject without a field the
    # template declares provisions nothing.
    import pki
    from conftest import Client, publish_rc, wait_for
    from cryptography.x509.oid import NameOID
    from test_identity import register_ca
    server.aws("iot", "create-thing-type", "--thing-type-name", "lightBulb-versionA")
    for group in ("v1-lightbulbs", "US"):
        server.aws("iot", "create-thing-group", "--thing-group-name", group)
    ca = pki.CA()
    ca_id = register_ca(server, ca, auto=True)
    (tmp_path / "jitp.json").write_text(json.dumps({"templateBody": json.dumps(JITP_TEMPLATE), "roleArn": ROLE}))
    server.aws("iot", "update-ca-certificate", "--certificate-id", ca_id,
               "--registration-config", f"file://{tmp_path / 'jitp.json'}")
    assert json.loads(server.aws("iot", "describe-ca-certificate", "--certificate-id", ca_id)[1]
                      ["registrationConfig"]["templateBody"]) == JITP_TEMPLATE
    watcher = Client(server.port, "watcher")
    watcher.connect()
    watcher.subscribe(f"$aws/events/certificates/registered/{ca_id}", 1)

    c, k, _ = ca.issue("dev42", subject=[(NameOID.SERIAL_NUMBER, "SN-42"), (NameOID.COUNTRY_NAME, "US")])
    cert, key = pki.write(tmp_path, "dev42", c, k)

    def pub(client_id, cert, key):
        return publish_rc(server.ports["mqtts"], f"lamps/{client_id}", client_id=client_id, cafile=server.ca,
                          cert=cert, key=key)
    assert pub("dev42", cert, key) != 0  # the first connection registers and provisions, and is refused
    event = json.loads(watcher.get().payload)
    assert event["certificateStatus"] == "PENDING_ACTIVATION"
    wait_for(lambda: server.metric("fleetcore_provisioning_jitp_provisioned_total") == 1, what="JITP")
    thing = server.aws("iot", "describe-thing", "--thing-name", "dev42")[1]
    assert thing["attributes"] == {"version": "v1", "serialNumber": "SN-42"}
    assert thing["thingTypeName"] == "lightBulb-versionA"
    assert sorted(g["groupName"] for g in server.aws("iot", "list-thing-groups-for-thing", "--thing-name",
                                                          "dev42")[1]["thingGroups"]) == ["US", "v1-lightbulbs"]
    described = server.aws("iot", "describe-certificate", "--certificate-id", event["certificateId"])[1]
    assert described["certificateDescription"]["status"] == "ACTIVE"
    assert len(server.aws("iot", "list-attached-policies", "--target",
                          described["certificateDescription"]["certificateArn"])[1]["policies"]) == 1
    assert pub("dev42", cert, key) == 0  # the retry connects

    # A JITP provisioning template named by the CA's registrationConfig.
    server.aws("iot", "create-provisioning-template", "--template-name", "jitp-lamps", "--type", "JITP",
               "--provisioning-role-arn", ROLE, "--template-body", json.dumps(JITP_TEMPLATE), "--enabled")
    ca2 = pki.CA("second CA")
    ca2_id = register_ca(server, ca2, auto=True)
    server.aws("iot", "update-ca-certificate", "--certificate-id", ca2_id, "--registration-config",
               "templateName=jitp-lamps")
    c, k, _ = ca2.issue("dev43", subject=[(NameOID.SERIAL_NUMBER, "SN-43"), (NameOID.COUNTRY_NAME, "US")])
    cert, key = pki.write(tmp_path, "dev43", c, k)
    assert pub("dev43", cert, key) != 0
    wait_for(lambda: server.metric("fleetcore_provisioning_jitp_provisioned_total") == 2, what="JITP by name")
    assert pub("dev43", cert, key) == 0
    # No Country in the subject: the template declares it, so nothing is provisioned.
    c, k, _ = ca2.issue("dev44", subject=[(NameOID.SERIAL_NUMBER, "SN-44")])
    cert, key = pki.write(tmp_path, "dev44", c, k)
    assert pub("dev44", cert, key) != 0
    wait_for(lambda: server.metric("fleetcore_provisioning_jitp_failed_total") == 1, what="JITP refusal")
    assert pub("dev44", cert, key) != 0
    rc, err = server.aws("iot", "describe-thing", "--thing-name", "dev44", check=False)
    assert rc != 0 and "ResourceNotFoundException" in err
    assert "AWS::IoT::Certificate::Country" in server.read_log()


def test_provisioning_by_trusted_user_with_a_claim(server, tmp_path):
    # CreateProvisioningClaim (aws CLI): a temporary claim certificate, valid five minutes and never
    # listed, with which a device provisions itself through that template and nothing else.
    import datetime
    from conftest import Client
    create_device_policy(server)
    create_fleet_template(server)
    claim = server.aws("iot", "create-provisioning-claim", "--template-name", "lamps")[1]
    assert set(claim) == {"certificateId", "certificatePem", "keyPair", "expiration"}
    expires = datetime.datetime.fromisoformat(claim["expiration"]) if isinstance(claim["expiration"], str) else \
        datetime.datetime.fromtimestamp(claim["expiration"], datetime.timezone.utc)
    left = (expires - datetime.datetime.now(datetime.timezone.utc)).total_seconds()
    assert 240 < left <= 301, left
    assert server.aws("iot", "list-certificates")[1]["certificates"] == []
    rc, err = server.aws("iot", "create-provisioning-claim", "--template-name", "nope", check=False)
    assert rc != 0 and "ResourceNotFoundException" in err

    (tmp_path / "claim.crt").write_text(claim["certificatePem"])
    (tmp_path / "claim.key").write_text(claim["keyPair"]["PrivateKey"])
    dev = Client(server.ports["mqtts"], "installer-app-device")
    dev.connect(tls={"ca_certs": server.ca, "certfile": str(tmp_path / "claim.crt"), "keyfile": str(tmp_path / "claim.key")})
    assert dev.subscribe("$aws/certificates/create/json/+", 1) == [1]
    assert dev.subscribe("$aws/provisioning-templates/lamps/provision/json/+", 1) == [1]
    assert dev.subscribe("lamps/#", 1) == [0x87]  # a claim may do fleet provisioning and nothing else
    dev.publish("$aws/certificates/create/json", "", qos=1)
    made = json.loads(dev.get().payload)
    dev.publish("$aws/provisioning-templates/lamps/provision/json",
                json.dumps({"certificateOwnershipToken": made["certificateOwnershipToken"],
                            "parameters": {"SerialNumber": "11"}}), qos=1)
    m = dev.get()
    assert m.topic.endswith("/accepted") and json.loads(m.payload)["thingName"] == "ThingPrefix_11"
    assert [c["certificateId"] for c in server.aws("iot", "list-certificates")[1]["certificates"]] == \
        [made["certificateId"]]
    assert server.metric("fleetcore_provisioning_claims_total") == 1


def test_bulk_registration_task_of_a_thousand_lines(server, tmp_path):
    # The Guide's bulk registration: a newline-delimited JSON file in the object store, one parameter
    # map per line, a template with a CSR per device; the aws CLI starts it, watches it Completed with
    # 1,000 successes, and reads the reports through their presigned links.
    import time
    import urllib.request
    import pki
    for g in ("v1-lightbulbs", "WA"):
        server.aws("iot", "create-thing-group", "--thing-group-name", g)
    server.aws("s3", "mb", "s3://fleet-input")
    lines = [json.dumps({"ThingName": f"bulk-{i}", "SerialNumber": str(i), "CSR": pki.csr(f"bulk-{i}")[0]})
             for i in range(1000)]
    (tmp_path / "devices.json").write_text("\n".join(lines) + "\n")
    server.aws("s3", "cp", str(tmp_path / "devices.json"), "s3://fleet-input/devices.json")
    (tmp_path / "t.json").write_text(json.dumps(BULK_TEMPLATE))
    task = server.aws("iot", "start-thing-registration-task", "--template-body", f"file://{tmp_path / 't.json'}",
                      "--input-file-bucket", "fleet-input", "--input-file-key", "devices.json",
                      "--role-arn", ROLE)[1]["taskId"]
    deadline = time.monotonic() + 120
    while True:
        d = server.aws("iot", "describe-thing-registration-task", "--task-id", task)[1]
        if d["status"] != "InProgress" or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert (d["status"], d["successCount"], d["failureCount"], d["percentageProgress"]) == ("Completed", 1000, 0, 100)
    assert d["inputFileBucket"] == "fleet-input" and d["inputFileKey"] == "devices.json"
    assert server.aws("iot", "list-thing-registration-tasks", "--status", "Completed")[1]["taskIds"] == [task]
    thing = server.aws("iot", "describe-thing", "--thing-name", "bulk-999")[1]
    assert thing["attributes"] == {"version": "v1", "serialNumber": "999"}
    links = server.aws("iot", "list-thing-registration-task-reports", "--task-id", task, "--report-type",
                       "RESULTS")[1]["resourceLinks"]
    assert len(links) == 1
    import ssl
    ctx = ssl.create_default_context(cafile=server.ca)
    report = [json.loads(x) for x in urllib.request.urlopen(links[0], context=ctx).read().decode().splitlines()]
    assert [r["referenceId"] for r in report] == [str(i) for i in range(1000)]
    assert report[7]["response"]["ResourceArns"]["thing"] == "arn:aws:iot:us-east-1:000000000000:thing/bulk-7"
    assert report[7]["response"]["CertificatePem"].startswith("-----BEGIN CERTIFICATE-----")
    assert server.metric('fleetcore_provisioning_bulk_lines_total{result="succeeded"}') == 1000

    # Refused lines are reported by line and the others provisioned; a missing input is refused.
    bad = [json.dumps({"ThingName": "ok-1", "SerialNumber": "1", "CSR": pki.csr("ok-1")[0]}), "not json",
           json.dumps({"ThingName": "ok-2", "SerialNumber": "2", "CSR": pki.csr("ok-2")[0], "Location": "nowhere"})]
    (tmp_path / "bad.json").write_text("\n".join(bad))
    server.aws("s3", "cp", str(tmp_path / "bad.json"), "s3://fleet-input/bad.json")
    rc, err = server.aws("iot", "start-thing-registration-task", "--template-body", f"file://{tmp_path / 't.json'}",
                         "--input-file-bucket", "fleet-input", "--input-file-key", "missing.json", "--role-arn", ROLE,
                         check=False)
    assert rc != 0 and "InvalidRequestException" in err and "missing.json" in err
    task2 = server.aws("iot", "start-thing-registration-task", "--template-body", f"file://{tmp_path / 't.json'}",
                       "--input-file-bucket", "fleet-input", "--input-file-key", "bad.json", "--role-arn", ROLE)[1]["taskId"]
    from conftest import wait_for
    wait_for(lambda: server.aws("iot", "describe-thing-registration-task", "--task-id", task2)[1]["status"] == "Completed",
             what="the second task")
    d = server.aws("iot", "describe-thing-registration-task", "--task-id", task2)[1]
    assert (d["successCount"], d["failureCount"]) == (1, 2)
    links = server.aws("iot", "list-thing-registration-task-reports", "--task-id", task2, "--report-type",
                       "ERRORS")[1]["resourceLinks"]
    errors = [json.loads(x) for x in urllib.request.urlopen(links[0], context=ctx).read().decode().splitlines()]
    assert [(e["referenceId"], e["errorCode"]) for e in errors] == \
        [("1", "InvalidRequestException"), ("2", "ResourceNotFoundException")]
    assert "nowhere" in errors[1]["errorMessage"]
    rc, _ = server.aws("iot", "describe-thing", "--thing-name", "ok-2", check=False)
    assert rc != 0


def test_bulk_registration_stops_and_resumes_after_kill9(server, tmp_path):
    # One task at a time; StopThingRegistrationTask ends it Cancelled with the reports of what was
    # done; a task interrupted by kill -9 goes on after the restart and provisions every line once.
    import time
    from conftest import wait_for
    template = {"Parameters": {"ThingName": {"Type": "String"}},
                "Resources": {"thing": {"Type": "AWS::IoT::Thing", "Properties": {"ThingName": {"Ref": "ThingName"}},
                                        "OverrideSettings": {"AttributePayload": "REPLACE"}}}}
    (tmp_path / "t.json").write_text(json.dumps(template))
    server.aws("s3", "mb", "s3://fleet-input")
    (tmp_path / "many.json").write_text("\n".join(json.dumps({"ThingName": f"m-{i}"}) for i in range(20000)))
    server.aws("s3", "cp", str(tmp_path / "many.json"), "s3://fleet-input/many.json")
    iot = server.iot()

    def start():
        return iot.start_thing_registration_task(templateBody=json.dumps(template), inputFileBucket="fleet-input",
                                                 inputFileKey="many.json", roleArn=ROLE)["taskId"]
    first = start()
    import botocore.exceptions
    try:
        start()
        raise AssertionError("a second task started while one runs")
    except botocore.exceptions.ClientError as e:
        assert e.response["Error"]["Code"] == "InvalidRequestException" and first in e.response["Error"]["Message"]
    iot.stop_thing_registration_task(taskId=first)
    wait_for(lambda: iot.describe_thing_registration_task(taskId=first)["status"] == "Cancelled", what="Cancelled")
    d = iot.describe_thing_registration_task(taskId=first)
    assert 0 < d["successCount"] < 20000 and d["failureCount"] == 0
    assert len(iot.list_thing_registration_task_reports(taskId=first, reportType="RESULTS")["resourceLinks"]) == 1

    second = start()
    wait_for(lambda: iot.describe_thing_registration_task(taskId=second)["successCount"] >= 200, timeout=60,
             what="progress")
    assert iot.describe_thing_registration_task(taskId=second)["status"] == "InProgress"  # the kill interrupts it
    server.kill9()
    server.start()
    iot = server.iot()
    deadline = time.monotonic() + 300
    while iot.describe_thing_registration_task(taskId=second)["status"] == "InProgress" and time.monotonic() < deadline:
        time.sleep(0.5)
    d = iot.describe_thing_registration_task(taskId=second)
    assert d["status"] == "Completed" and d["failureCount"] == 0
    assert d["successCount"] >= 20000  # the lines of the step a crash interrupted run again
    names = set()
    for page in iot.get_paginator("list_things").paginate():
        names.update(t["thingName"] for t in page["things"])
    assert {f"m-{i}" for i in range(20000)} <= names


def test_bootstrap_by_identifier_and_secret(make_server, tmp_path):
    # fleetcore's bootstrap flow: devices registered in bulk with `fleetcore bootstrap register` get
    # their certificate over HTTPS (curl, no client certificate) with their identifier, secret and a
    # CSR, once; a wrong secret and an unknown device get the same 401; attempts are rate limited.
    import os
    import secrets
    import subprocess
    import pki
    from conftest import FLEETCORE, publish_rc
    server = make_server("[provisioning]\nbootstrap_per_address_burst = 6\nbootstrap_per_address_per_s = 0.01\n")
    create_device_policy(server)
    server.aws("iot", "create-provisioning-template", "--template-name", "factory", "--provisioning-role-arn", ROLE,
               "--template-body", json.dumps(FLEET_TEMPLATE), "--enabled")
    devices = [{"deviceId": f"SN{i:04}", "secret": secrets.token_hex(16), "parameters": {"SerialNumber": f"{i:04}"}}
               for i in range(3)]
    (tmp_path / "ids.json").write_text("\n".join(json.dumps(d) for d in devices) + "\n")
    out = subprocess.run([FLEETCORE, "bootstrap", "register", "--file", str(tmp_path / "ids.json"), "--template",
                          "factory", "--data-dir", server.data_dir], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == {"registered": 3}
    again = subprocess.run([FLEETCORE, "bootstrap", "register", "--file", str(tmp_path / "ids.json"), "--template",
                            "factory", "--data-dir", server.data_dir], capture_output=True, text=True, timeout=30)
    assert again.returncode != 0 and "ResourceAlreadyExistsException" in again.stderr

    csr, key = pki.csr("SN0000")
    (tmp_path / "dev.key").write_text(key)

    def bootstrap(body):
        r = subprocess.run(["curl", "-s", "-w", "\n%{http_code}", "--cacert", server.ca, "-X", "POST",
                            "--data-binary", json.dumps(body), f"{server.api_url}/fleetcore/bootstrap/certificate"],
                           capture_output=True, text=True, timeout=30)
        text, code = r.stdout.rsplit("\n", 1)
        return int(code), json.loads(text)

    d = devices[0]
    status, body = bootstrap({"deviceId": d["deviceId"], "secret": d["secret"], "certificateSigningRequest": csr})
    assert status == 200, body
    first = body
    assert body["thingName"] == "ThingPrefix_0000" and body["deviceConfiguration"] == {"Fleet": "lamps"}
    (tmp_path / "dev.crt").write_text(body["certificatePem"])
    assert publish_rc(server.ports["mqtts"], "lamps/0", client_id="ThingPrefix_0000", cafile=server.ca,
                      cert=str(tmp_path / "dev.crt"), key=str(tmp_path / "dev.key")) == 0

    # Again with the same key: the same answer (the first may have been lost); with another key: refused.
    again = bootstrap({"deviceId": d["deviceId"], "secret": d["secret"], "certificateSigningRequest": csr})
    assert again == (200, first), again
    status, body = bootstrap({"deviceId": d["deviceId"], "secret": d["secret"],
                              "certificateSigningRequest": pki.csr("SN0000")[0]})
    assert status == 403 and "already obtained" in json.dumps(body), body
    wrong = bootstrap({"deviceId": devices[1]["deviceId"], "secret": "0" * 32, "certificateSigningRequest": csr})
    unknown = bootstrap({"deviceId": "SN9999", "secret": "0" * 32, "certificateSigningRequest": csr})
    assert wrong[0] == unknown[0] == 401 and wrong[1] == unknown[1]
    # A refused device is not burnt: with its right secret it still bootstraps.
    status, body = bootstrap({"deviceId": devices[1]["deviceId"], "secret": devices[1]["secret"],
                              "certificateSigningRequest": pki.csr("SN0001")[0]})
    assert status == 200 and body["thingName"] == "ThingPrefix_0001"
    # Six attempts from this address so far fill its burst: the next is throttled, even a right one.
    status, body = bootstrap({"deviceId": devices[2]["deviceId"], "secret": devices[2]["secret"],
                              "certificateSigningRequest": pki.csr("SN0002")[0]})
    assert status == 429
    assert server.metric('fleetcore_provisioning_bootstrap_total{result="throttled"}') == 1
    assert server.metric('fleetcore_provisioning_bootstrap_total{result="issued"}') == 2

    # The admin sees each device's state (a signed request).
    import botocore.auth
    import botocore.awsrequest
    import botocore.credentials
    import urllib.request
    import ssl
    req = botocore.awsrequest.AWSRequest(method="GET", url=f"{server.api_url}/fleetcore/bootstrap-identities/SN0000")
    botocore.auth.SigV4Auth(botocore.credentials.Credentials(*server.credentials()), "iot", "us-east-1").add_auth(req)
    prepared = req.prepare()
    got = json.loads(urllib.request.urlopen(urllib.request.Request(prepared.url, headers=dict(prepared.headers)),
                                            context=ssl.create_default_context(cafile=server.ca)).read())
    assert got["status"] == "USED" and got["templateName"] == "factory" and len(got["certificateId"]) == 64
    unsigned = subprocess.run(["curl", "-s", "-o", os.devnull, "-w", "%{http_code}", "--cacert", server.ca,
                               f"{server.api_url}/fleetcore/bootstrap-identities/SN0000"], capture_output=True, text=True)
    assert unsigned.stdout == "403"


def test_the_aws_iot_device_sdk_v2_provisions_itself(server, tmp_path):
    # The AWS IoT Device SDK v2 for JavaScript (npm aws-iot-device-sdk-v2, on the AWS Common Runtime),
    # its iotidentity client as in the SDK's fleet provisioning sample, unchanged: with a claim
    # certificate it gets keys (or has its CSR signed), registers its thing, and then connects with
    # its new certificate; another device on the same claim certificate sees none of it.
    import os
    import subprocess
    import pki
    from conftest import Client, publish_rc
    js = os.path.join(os.path.dirname(__file__), "js")
    create_device_policy(server)
    create_fleet_template(server)
    cert, key = server.issue_cert("claim", tmp_path)
    other = Client(server.ports["mqtts"], "claim-watcher")
    other.connect(tls={"ca_certs": server.ca, "certfile": cert, "keyfile": key})
    assert other.subscribe("$aws/certificates/#", 1) == [1]
    assert other.subscribe("$aws/provisioning-templates/#", 1) == [1]

    def sdk(client_id, serial, csr_file=None):
        args = ["node", os.path.join(js, "fleet_provisioning.js"), "localhost", str(server.ports["mqtts"]), server.ca,
                cert, key, client_id, "lamps", json.dumps({"SerialNumber": serial})]
        if csr_file:
            args.append(csr_file)
        r = subprocess.run(args, capture_output=True, text=True, timeout=60, cwd=js)
        assert r.returncode == 0, r.stdout + r.stderr
        return json.loads(r.stdout.strip().splitlines()[-1])

    got = sdk("sdk-device-1", "21")
    assert got["event"] == "provisioned" and got["thingName"] == "ThingPrefix_21"
    assert got["deviceConfiguration"] == {"Fleet": "lamps"}
    (tmp_path / "new.crt").write_text(got["certificatePem"])
    (tmp_path / "new.key").write_text(got["privateKey"])
    assert publish_rc(server.ports["mqtts"], "lamps/21", client_id="ThingPrefix_21", cafile=server.ca,
                      cert=str(tmp_path / "new.crt"), key=str(tmp_path / "new.key")) == 0

    csr, csr_key = pki.csr("sdk-device-2")
    (tmp_path / "d2.csr").write_text(csr)
    (tmp_path / "d2.key").write_text(csr_key)
    got = sdk("sdk-device-2", "22", str(tmp_path / "d2.csr"))
    assert got["thingName"] == "ThingPrefix_22" and got["privateKey"] is None
    (tmp_path / "d2.crt").write_text(got["certificatePem"])
    assert publish_rc(server.ports["mqtts"], "lamps/22", client_id="ThingPrefix_22", cafile=server.ca,
                      cert=str(tmp_path / "d2.crt"), key=str(tmp_path / "d2.key")) == 0
    other.no_message(0.5)  # no key, no token, no answer reached the other claim device
