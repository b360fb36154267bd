"""Device identity on the TLS listeners: only registered ACTIVE certificates (of ACTIVE CAs) connect,
just-in-time registration, revocation that drops live connections, and least-privilege policies with
thing policy variables, enforced with paho and mosquitto clients."""
import json
import os
import socket
import ssl

import pytest

import pki
from helpers import Client, connect_bytes, publish_rc

ARN = "arn:aws:iot:us-east-1:000000000000"
THING_POLICY = json.dumps({"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Action": "iot:Connect", "Resource": f"{ARN}:client/${{iot:Connection.Thing.ThingName}}"},
    {"Effect": "Allow", "Action": "iot:Publish", "Resource": f"{ARN}:topic/things/${{iot:Connection.Thing.ThingName}}/*"},
    {"Effect": "Allow", "Action": "iot:Subscribe",
     "Resource": f"{ARN}:topicfilter/things/${{iot:Connection.Thing.ThingName}}/*"},
    {"Effect": "Allow", "Action": "iot:Receive", "Resource": f"{ARN}:topic/things/${{iot:Connection.Thing.ThingName}}/*"},
]})
REFUSED = 'fleetcore_tls_client_certificates_refused_total'


def tls(server, cert, key):
    return {"ca_certs": server.ca, "certfile": cert, "keyfile": key, "cert_reqs": ssl.CERT_REQUIRED}


def device(server, tmp_path, name, policy="thing-policy", attach=True, active=True):
    """A thing with a certificate from CreateKeysAndCertificate: (cert path, key path, certificate id)."""
    iot = server.iot()
    iot.create_thing(thingName=name)
    out = iot.create_keys_and_certificate(setAsActive=active)
    cert, key = pki.write(tmp_path, name, out["certificatePem"], out["keyPair"]["PrivateKey"])
    if policy:
        try:
            iot.create_policy(policyName=policy, policyDocument=THING_POLICY)
        except iot.exceptions.ResourceAlreadyExistsException:
            pass
        iot.attach_policy(policyName=policy, target=out["certificateArn"])
    if attach:
        iot.attach_thing_principal(thingName=name, principal=out["certificateArn"])
    return cert, key, out["certificateId"]


def pub(server, cert, key, client_id, topic="things/x/t"):
    return publish_rc(server.ports["mqtts"], topic, client_id=client_id, cafile=server.ca, cert=cert, key=key)


def test_registered_active_certificate_connects_and_is_least_privileged(server, tmp_path):
    cert, key, _ = device(server, tmp_path, "dev-a")
    device(server, tmp_path, "dev-b")
    c = Client(server.ports["mqtts"], "dev-a")
    c.connect(tls=tls(server, cert, key))
    assert [g.value for g in c.subscribe("things/dev-a/cmd", 1)] == [1]
    # Another thing's topics: SUBACK 0x87, PUBACK 0x87.
    assert [g.value for g in c.subscribe("things/dev-b/cmd", 1)] == [0x87]
    assert [g.value for g in c.subscribe("things/#", 1)] == [0x87]
    hits = 'fleetcore_auth_decision_cache_total{source="certificate",result="hit"}'
    before = server.metric(hits)
    c.publish("things/dev-a/cmd", b"mine", qos=1)
    assert c.get().payload == b"mine"
    c.publish("things/dev-a/cmd", b"again", qos=1)
    assert c.get().payload == b"again"
    assert server.metric(hits) >= before + 2  # the second publish and delivery were answered from the cache
    denied_before = server.metric("fleetcore_denied_total")
    assert pub(server, cert, key, "dev-a", "things/dev-b/cmd") == 0x87
    assert server.metric("fleetcore_denied_total") == denied_before + 1
    # Its certificate cannot be used to connect as another thing (not attached to it).
    _, rc, _ = Client(server.ports["mqtts"], "dev-b").connect(tls=tls(server, cert, key), expect_ok=False)
    assert rc.value == 0x87
    c.disconnect()


def test_mosquitto_with_thing_policy_over_tls(server, tmp_path):
    cert, key, _ = device(server, tmp_path, "dev-m")
    assert pub(server, cert, key, "dev-m", "things/dev-m/telemetry") == 0
    assert pub(server, cert, key, "intruder", "things/dev-m/telemetry") == -1


def test_unregistered_inactive_and_unknown_ca_certificates_refused(server, tmp_path, make_server):
    # Signed by the built-in CA but never registered.
    from conftest import FLEETCORE
    import subprocess
    subprocess.run([FLEETCORE, "cert", "issue", "--cn", "ghost", "--out", str(tmp_path), "--data-dir", server.data_dir],
                   check=True, capture_output=True)
    assert pub(server, str(tmp_path / "ghost.crt"), str(tmp_path / "ghost.key"), "ghost") != 0
    # Registered but INACTIVE.
    cert, key, _ = device(server, tmp_path, "dev-i", active=False)
    assert pub(server, cert, key, "dev-i", "things/dev-i/t") != 0
    # From a CA nobody registered.
    ca = pki.CA("unknown")
    c, k, _ = ca.issue("dev-u")
    cert_u, key_u = pki.write(tmp_path, "dev-u", c, k)
    assert pub(server, cert_u, key_u, "dev-u") != 0
    assert server.metric(REFUSED) == 3
    assert server.metric('fleetcore_connects_total{result="success"}') == 0


def test_revoking_a_certificate_drops_its_live_connection(server, tmp_path):
    cert, key, cid = device(server, tmp_path, "dev-r")
    c = Client(server.ports["mqtts"], "dev-r")
    c.connect(tls=tls(server, cert, key))
    server.iot().update_certificate(certificateId=cid, newStatus="REVOKED")
    c.disconnects.get(timeout=5)
    assert pub(server, cert, key, "dev-r", "things/dev-r/t") != 0


def test_deactivating_a_certificate_drops_it_and_reactivating_restores_it(server, tmp_path):
    cert, key, cid = device(server, tmp_path, "dev-d")
    c = Client(server.ports["mqtts"], "dev-d")
    c.connect(tls=tls(server, cert, key))
    server.aws("iot", "update-certificate", "--certificate-id", cid, "--new-status", "INACTIVE")
    c.disconnects.get(timeout=5)
    server.iot().update_certificate(certificateId=cid, newStatus="ACTIVE")
    assert pub(server, cert, key, "dev-d", "things/dev-d/t") == 0


def device_tls(server, cert, key, version):
    """A device's TLS client context (Python's ssl, on OpenSSL) with one TLS version."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(server.ca)
    ctx.load_cert_chain(cert, key)
    ctx.minimum_version = ctx.maximum_version = version
    return ctx


def tls_session(server, ctx, client_id, session=None):
    """One MQTT CONNECT over TLS, offering `session` to resume. Returns (CONNACK bytes or None if the
    server refused the connection, session reused?, the session to offer next time). The CONNACK comes
    after the server's ticket, so the session holds it."""
    with socket.create_connection(("127.0.0.1", server.ports["mqtts"]), timeout=5) as raw:
        try:
            s = ctx.wrap_socket(raw, server_hostname="localhost", session=session)
        except (ssl.SSLError, ConnectionError):  # TLS 1.2: refused in the handshake
            return None, False, None
        with s:
            try:
                s.sendall(connect_bytes(client_id.encode(), version=4))
                connack = s.recv(4) or None
            except (ssl.SSLError, ConnectionError):  # TLS 1.3: refused after the client's Finished
                connack = None
            return connack, s.session_reused, s.session


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1_3, ssl.TLSVersion.TLSv1_2], ids=["tls1.3", "tls1.2"])
def test_tls_sessions_resume_until_the_certificate_is_revoked(server, tmp_path, version):
    cert, key, cid = device(server, tmp_path, "dev-t")
    ctx = device_tls(server, cert, key, version)
    ok = b"\x20\x02\x00\x00"
    connack, reused, session = tls_session(server, ctx, "dev-t")
    assert (connack, reused) == (ok, False)
    # The ticket resumes the session: no certificate exchange, the same device.
    connack, reused, _ = tls_session(server, ctx, "dev-t", session)
    assert (connack, reused) == (ok, True)
    assert server.metric('fleetcore_tls_resumptions_total{result="resumed"}') == 1
    # Revoked: the ticket no longer resumes, and the full handshake refuses the certificate.
    server.iot().update_certificate(certificateId=cid, newStatus="REVOKED")
    connack, reused, _ = tls_session(server, ctx, "dev-t", session)
    assert (connack, reused) == (None, False)
    assert server.metric('fleetcore_tls_resumptions_total{result="refused"}') == 1
    assert server.metric('fleetcore_tls_resumptions_total{result="resumed"}') == 1


def test_tls_sessions_resume_across_a_crash(server, tmp_path):
    cert, key, _ = device(server, tmp_path, "dev-k")
    ctx = device_tls(server, cert, key, ssl.TLSVersion.TLSv1_3)
    _, _, session = tls_session(server, ctx, "dev-k")
    server.kill9()
    server.start()  # the ticket keys were kept in <data_dir>/tls/ticket-keys
    assert os.stat(os.path.join(server.data_dir, "tls", "ticket-keys")).st_mode & 0o777 == 0o600
    connack, reused, _ = tls_session(server, ctx, "dev-k", session)
    assert (connack, reused) == (b"\x20\x02\x00\x00", True)


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1_3, ssl.TLSVersion.TLSv1_2], ids=["tls1.3", "tls1.2"])
def test_tls_resumption_off(make_server, tmp_path, version):
    server = make_server("[tls]\nsession_lifetime_s = 0\n")
    cert, key, _ = device(server, tmp_path, "dev-o")
    ctx = device_tls(server, cert, key, version)
    connack, reused, session = tls_session(server, ctx, "dev-o")
    assert connack == b"\x20\x02\x00\x00"
    connack, reused, _ = tls_session(server, ctx, "dev-o", session)
    assert (connack, reused) == (b"\x20\x02\x00\x00", False)


def register_ca(server, ca, auto=False):
    iot = server.iot()
    code = iot.get_registration_code()["registrationCode"]
    verification, _, _ = ca.issue(code)
    return iot.register_ca_certificate(caCertificate=ca.pem, verificationCertificate=verification, setAsActive=True,
                                       allowAutoRegistration=auto)["certificateId"]


def test_just_in_time_registration(server, tmp_path):
    ca = pki.CA()
    ca_id = register_ca(server, ca, auto=True)
    watcher = Client(server.port, "watcher")
    watcher.connect()
    watcher.subscribe(f"$aws/events/certificates/registered/{ca_id}", 1)
    c, k, _ = ca.issue("dev-jit")
    cert, key = pki.write(tmp_path, "dev-jit", c, k)

    assert pub(server, cert, key, "dev-jit", "things/dev-jit/t") != 0  # refused until activated
    event = json.loads(watcher.get().payload)
    assert event["caCertificateId"] == ca_id and event["certificateStatus"] == "PENDING_ACTIVATION"
    assert event["awsAccountId"] == "000000000000"
    iot = server.iot()
    desc = iot.describe_certificate(certificateId=event["certificateId"])["certificateDescription"]
    assert (desc["status"], desc["caCertificateId"]) == ("PENDING_ACTIVATION", ca_id)
    assert pub(server, cert, key, "dev-jit", "things/dev-jit/t") != 0  # still pending

    # The operator (or a rule) activates it, creates the thing and attaches the policy.
    iot.update_certificate(certificateId=event["certificateId"], newStatus="ACTIVE")
    iot.create_thing(thingName="dev-jit")
    iot.create_policy(policyName="thing-policy", policyDocument=THING_POLICY)
    iot.attach_policy(policyName="thing-policy", target=desc["certificateArn"])
    iot.attach_thing_principal(thingName="dev-jit", principal=desc["certificateArn"])
    assert pub(server, cert, key, "dev-jit", "things/dev-jit/t") == 0

    # An expired certificate of the same CA is refused without being registered.
    c, k, _ = ca.issue("dev-old", expired=True)
    cert_old, key_old = pki.write(tmp_path, "dev-old", c, k)
    assert pub(server, cert_old, key_old, "dev-old") != 0
    assert len(iot.list_certificates_by_ca(caCertificateId=ca_id)["certificates"]) == 1


def test_without_auto_registration_unknown_certificates_stay_unknown(server, tmp_path):
    ca = pki.CA()
    ca_id = register_ca(server, ca, auto=False)
    c, k, _ = ca.issue("dev-n")
    cert, key = pki.write(tmp_path, "dev-n", c, k)
    assert pub(server, cert, key, "dev-n") != 0
    assert server.iot().list_certificates_by_ca(caCertificateId=ca_id)["certificates"] == []


def test_inactive_ca_and_crl_import(server, tmp_path):
    ca = pki.CA()
    ca_id = register_ca(server, ca)
    iot = server.iot()
    pems = {}
    for name in ("dev-c1", "dev-c2"):
        c, k, serial = ca.issue(name)
        pems[name] = (pki.write(tmp_path, name, c, k), serial)
        iot.create_thing(thingName=name)
        arn = iot.register_certificate(certificatePem=c, caCertificatePem=ca.pem, status="ACTIVE")["certificateArn"]
        try:
            iot.create_policy(policyName="thing-policy", policyDocument=THING_POLICY)
        except iot.exceptions.ResourceAlreadyExistsException:
            pass
        iot.attach_policy(policyName="thing-policy", target=arn)
        iot.attach_thing_principal(thingName=name, principal=arn)
    (cert1, key1), serial1 = pems["dev-c1"]
    (cert2, key2), _ = pems["dev-c2"]
    assert pub(server, cert1, key1, "dev-c1", "things/dev-c1/t") == 0

    # A CRL naming dev-c1's serial revokes it and drops its connection; dev-c2 is untouched.
    live = Client(server.ports["mqtts"], "dev-c1")
    live.connect(tls=tls(server, cert1, key1))
    import botocore.auth
    import botocore.awsrequest
    import botocore.credentials
    import urllib.request
    key_id, secret = server.credentials()
    body = json.dumps({"crl": ca.crl([serial1])})
    req = botocore.awsrequest.AWSRequest(method="POST", url=f"{server.api_url}/fleetcore/cacertificate/{ca_id}/crl",
                                         data=body, headers={"Content-Type": "application/json"})
    # The control plane is signed as the aws CLI signs it: service execute-api (botocore's signingName).
    botocore.auth.SigV4Auth(botocore.credentials.Credentials(key_id, secret), "execute-api", "us-east-1").add_auth(req)
    prepared = req.prepare()
    r = urllib.request.urlopen(urllib.request.Request(prepared.url, data=body.encode(), headers=dict(prepared.headers),
                                                      method="POST"),
                               context=ssl.create_default_context(cafile=server.ca), timeout=10)
    assert len(json.loads(r.read())["revokedCertificateIds"]) == 1
    live.disconnects.get(timeout=5)
    assert pub(server, cert1, key1, "dev-c1", "things/dev-c1/t") != 0
    assert pub(server, cert2, key2, "dev-c2", "things/dev-c2/t") == 0

    # Deactivating the CA refuses every certificate it signed.
    iot.update_ca_certificate(certificateId=ca_id, newStatus="INACTIVE")
    assert pub(server, cert2, key2, "dev-c2", "things/dev-c2/t") != 0


def test_policy_inherited_from_parent_thing_group(server, tmp_path):
    cert, key, cid = device(server, tmp_path, "dev-g", policy=None)
    assert pub(server, cert, key, "dev-g", "things/dev-g/t") != 0  # no policy: default deny
    iot = server.iot()
    iot.create_thing_group(thingGroupName="plant")
    iot.create_thing_group(thingGroupName="line-1", parentGroupName="plant")
    iot.create_policy(policyName="plant-policy", policyDocument=THING_POLICY)
    iot.attach_policy(policyName="plant-policy", target=iot.describe_thing_group(thingGroupName="plant")["thingGroupArn"])
    iot.add_thing_to_thing_group(thingGroupName="line-1", thingName="dev-g")
    assert pub(server, cert, key, "dev-g", "things/dev-g/t") == 0
    # Leaving the group takes the permission away again, also for a live connection's cache.
    c = Client(server.ports["mqtts"], "dev-g")
    c.connect(tls=tls(server, cert, key))
    assert [g.value for g in c.subscribe("things/dev-g/a", 1)] == [1]
    iot.remove_thing_from_thing_group(thingGroupName="line-1", thingName="dev-g")
    assert [g.value for g in c.subscribe("things/dev-g/b", 1)] == [0x87]
    c.disconnect()


def test_thing_attribute_and_certificate_variables(server, tmp_path):
    iot = server.iot()
    cert, key, cid = device(server, tmp_path, "dev-v", policy=None)
    iot.update_thing(thingName="dev-v", attributePayload={"attributes": {"site": "berlin"}})
    doc = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "iot:Connect", "Resource": "*",
         "Condition": {"Bool": {"iot:Connection.Thing.IsAttached": "true"}}},
        {"Effect": "Allow", "Action": ["iot:Publish"],
         "Resource": f"{ARN}:topic/sites/${{iot:Connection.Thing.Attributes[site]}}/*"},
        {"Effect": "Allow", "Action": ["iot:Publish"],
         "Resource": f"{ARN}:topic/cn/${{iot:Certificate.Subject.CommonName}}"},
    ]}
    iot.create_policy(policyName="vars", policyDocument=json.dumps(doc))
    iot.attach_policy(policyName="vars", target=iot.describe_certificate(certificateId=cid)
                      ["certificateDescription"]["certificateArn"])
    assert pub(server, cert, key, "dev-v", "sites/berlin/temp") == 0
    assert pub(server, cert, key, "dev-v", "sites/paris/temp") == 0x87
    assert pub(server, cert, key, "dev-v", "cn/AWS IoT Certificate") == 0
    # A client id that is not an attached thing: IsAttached is false.
    assert pub(server, cert, key, "not-a-thing", "cn/AWS IoT Certificate") != 0


def test_plain_listener_authorized_by_a_registry_policy(make_server):
    s = make_server('[auth]\nplain_policy = "local-clients"\n')
    denied = Client(s.port, "local-1")
    _, rc, _ = denied.connect(expect_ok=False)
    assert rc.value == 0x87  # the policy does not exist yet: deny
    s.iot().create_policy(policyName="local-clients", policyDocument=json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "iot:Connect", "Resource": f"{ARN}:client/local-*"}]}))
    c = Client(s.port, "local-1")
    c.connect()
    _, rc, _ = Client(s.port, "other").connect(expect_ok=False)
    assert rc.value == 0x87
    c.disconnect()
