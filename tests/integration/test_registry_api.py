"""The AWS IoT control-plane API driven by Debian's aws CLI and by boto3: registry, certificates, CAs,
policies and attachments, errors and SigV4 authentication."""
import json
import os
import ssl
import subprocess
import urllib.error
import urllib.request

import botocore.exceptions
import pytest

import pki
from conftest import FLEETCORE

ALLOW_CONNECT = json.dumps({"Version": "2012-10-17",
                            "Statement": [{"Effect": "Allow", "Action": "iot:Connect", "Resource": "*"}]})


def error_code(excinfo):
    return excinfo.value.response["Error"]["Code"]


@pytest.fixture
def api(make_server):
    # Thing types can be deleted right after deprecation here (AWS waits 5 minutes).
    return make_server("[registry]\nthing_type_delete_wait_s = 0\n")


def test_things_with_the_aws_cli(api):
    rc, out = api.aws("iot", "create-thing", "--thing-name", "dev-1",
                      "--attribute-payload", '{"attributes":{"color":"red","floor":"2"}}')
    assert out["thingArn"] == "arn:aws:iot:us-east-1:000000000000:thing/dev-1" and out["thingId"]
    _, d = api.aws("iot", "describe-thing", "--thing-name", "dev-1")
    assert (d["thingName"], d["defaultClientId"], d["version"], d["attributes"]) == \
        ("dev-1", "dev-1", 1, {"color": "red", "floor": "2"})
    # Creating it again the same way is idempotent; differently, it conflicts.
    api.aws("iot", "create-thing", "--thing-name", "dev-1", "--attribute-payload",
            '{"attributes":{"color":"red","floor":"2"}}')
    rc, err = api.aws("iot", "create-thing", "--thing-name", "dev-1", check=False)
    assert rc != 0 and "ResourceAlreadyExistsException" in err

    api.aws("iot", "update-thing", "--thing-name", "dev-1", "--expected-version", "1",
            "--attribute-payload", '{"attributes":{"color":"blue"},"merge":true}')
    _, d = api.aws("iot", "describe-thing", "--thing-name", "dev-1")
    assert d["version"] == 2 and d["attributes"] == {"color": "blue", "floor": "2"}
    rc, err = api.aws("iot", "update-thing", "--thing-name", "dev-1", "--expected-version", "1",
                      "--attribute-payload", '{"attributes":{"color":"green"}}', check=False)
    assert rc != 0 and "VersionConflictException" in err

    api.aws("iot", "create-thing", "--thing-name", "dev-2", "--attribute-payload", '{"attributes":{"color":"blue"}}')
    _, listed = api.aws("iot", "list-things", "--attribute-name", "color", "--attribute-value", "blue")
    assert sorted(t["thingName"] for t in listed["things"]) == ["dev-1", "dev-2"]
    _, listed = api.aws("iot", "list-things", "--attribute-name", "floor")
    assert [t["thingName"] for t in listed["things"]] == ["dev-1"]

    rc, err = api.aws("iot", "create-thing", "--thing-name", "bad name!", check=False)
    assert rc != 0 and "InvalidRequestException" in err
    rc, err = api.aws("iot", "describe-thing", "--thing-name", "ghost", check=False)
    assert rc != 0 and "ResourceNotFoundException" in err

    api.aws("iot", "delete-thing", "--thing-name", "dev-2")
    rc, err = api.aws("iot", "describe-thing", "--thing-name", "dev-2", check=False)
    assert "ResourceNotFoundException" in err


def test_pagination_of_things(api):
    iot = api.iot()
    for i in range(7):
        iot.create_thing(thingName=f"t-{i}")
    names, token = [], None
    while True:
        page = iot.list_things(maxResults=3, **({"nextToken": token} if token else {}))
        names += [t["thingName"] for t in page["things"]]
        token = page.get("nextToken")
        if not token:
            break
    assert names == [f"t-{i}" for i in range(7)]
    # The CLI follows the tokens by itself.
    _, out = api.aws("iot", "list-things", "--page-size", "2")
    assert len(out["things"]) == 7


def test_thing_types(api):
    iot = api.iot()
    out = iot.create_thing_type(thingTypeName="sensor", thingTypeProperties={
        "thingTypeDescription": "temperature sensor", "searchableAttributes": ["model"]})
    assert out["thingTypeArn"].endswith(":thingtype/sensor")
    d = iot.describe_thing_type(thingTypeName="sensor")
    assert d["thingTypeProperties"]["searchableAttributes"] == ["model"]
    assert d["thingTypeMetadata"]["deprecated"] is False
    iot.create_thing(thingName="s-1", thingTypeName="sensor", attributePayload={"attributes": {"model": "x1"}})
    assert iot.describe_thing(thingName="s-1")["thingTypeName"] == "sensor"
    assert [t["thingName"] for t in iot.list_things(thingTypeName="sensor")["things"]] == ["s-1"]

    api.aws("iot", "deprecate-thing-type", "--thing-type-name", "sensor")
    assert iot.describe_thing_type(thingTypeName="sensor")["thingTypeMetadata"]["deprecated"] is True
    with pytest.raises(botocore.exceptions.ClientError) as e:
        iot.create_thing(thingName="s-2", thingTypeName="sensor")
    assert error_code(e) == "InvalidRequestException"
    api.aws("iot", "deprecate-thing-type", "--thing-type-name", "sensor", "--undo-deprecate")
    iot.create_thing(thingName="s-2", thingTypeName="sensor")

    with pytest.raises(botocore.exceptions.ClientError) as e:
        iot.delete_thing_type(thingTypeName="sensor")  # not deprecated
    assert error_code(e) == "InvalidRequestException"
    iot.deprecate_thing_type(thingTypeName="sensor")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        iot.delete_thing_type(thingTypeName="sensor")  # things still use it
    assert error_code(e) == "InvalidRequestException"
    for t in ("s-1", "s-2"):
        iot.update_thing(thingName=t, removeThingType=True)
    iot.delete_thing_type(thingTypeName="sensor")
    assert iot.list_thing_types()["thingTypes"] == []


def test_thing_groups_and_hierarchy(api):
    iot = api.iot()
    iot.create_thing_group(thingGroupName="site")
    iot.create_thing_group(thingGroupName="floor-1", parentGroupName="site",
                           thingGroupProperties={"thingGroupDescription": "first floor",
                                                 "attributePayload": {"attributes": {"level": "1"}}})
    iot.create_thing_group(thingGroupName="room-a", parentGroupName="floor-1")
    d = iot.describe_thing_group(thingGroupName="room-a")
    assert d["thingGroupMetadata"]["parentGroupName"] == "floor-1"
    assert [g["groupName"] for g in d["thingGroupMetadata"]["rootToParentThingGroups"]] == ["site", "floor-1"]
    d = iot.describe_thing_group(thingGroupName="floor-1")
    assert d["thingGroupProperties"]["attributePayload"]["attributes"] == {"level": "1"}
    v = iot.update_thing_group(thingGroupName="floor-1", expectedVersion=d["version"],
                               thingGroupProperties={"thingGroupDescription": "ground"})["version"]
    assert v == d["version"] + 1
    with pytest.raises(botocore.exceptions.ClientError) as e:
        iot.update_thing_group(thingGroupName="floor-1", expectedVersion=d["version"],
                               thingGroupProperties={"thingGroupDescription": "stale"})
    assert error_code(e) == "VersionConflictException"

    iot.create_thing(thingName="lamp")
    api.aws("iot", "add-thing-to-thing-group", "--thing-group-name", "room-a", "--thing-name", "lamp")
    _, out = api.aws("iot", "list-things-in-thing-group", "--thing-group-name", "site", "--recursive")
    assert out["things"] == ["lamp"]
    assert iot.list_things_in_thing_group(thingGroupName="site")["things"] == []
    assert [g["groupName"] for g in iot.list_thing_groups_for_thing(thingName="lamp")["thingGroups"]] == ["room-a"]
    # Only one group per hierarchy.
    with pytest.raises(botocore.exceptions.ClientError) as e:
        iot.add_thing_to_thing_group(thingGroupName="floor-1", thingName="lamp")
    assert error_code(e) == "InvalidRequestException"
    children = iot.list_thing_groups(parentGroup="site", recursive=False)["thingGroups"]
    assert [g["groupName"] for g in children] == ["floor-1"]
    assert len(iot.list_thing_groups()["thingGroups"]) == 3

    with pytest.raises(botocore.exceptions.ClientError) as e:
        iot.delete_thing_group(thingGroupName="floor-1")  # has a child group
    assert error_code(e) == "InvalidRequestException"
    api.aws("iot", "remove-thing-from-thing-group", "--thing-group-name", "room-a", "--thing-name", "lamp")
    assert iot.list_thing_groups_for_thing(thingName="lamp")["thingGroups"] == []
    for g in ("room-a", "floor-1", "site"):
        iot.delete_thing_group(thingGroupName=g)
    assert iot.list_thing_groups()["thingGroups"] == []


def test_keys_and_certificate_lifecycle(api, tmp_path):
    _, out = api.aws("iot", "create-keys-and-certificate", "--set-as-active")
    cid = out["certificateId"]
    assert len(cid) == 64 and out["certificateArn"].endswith(":cert/" + cid)
    assert "BEGIN CERTIFICATE" in out["certificatePem"] and "PRIVATE KEY" in out["keyPair"]["PrivateKey"]
    _, d = api.aws("iot", "describe-certificate", "--certificate-id", cid)
    desc = d["certificateDescription"]
    assert desc["status"] == "ACTIVE" and desc["certificatePem"] == out["certificatePem"]
    assert desc["validity"]["notAfter"] > desc["validity"]["notBefore"]

    rc, err = api.aws("iot", "delete-certificate", "--certificate-id", cid, check=False)
    assert rc != 0 and "CertificateStateException" in err
    api.aws("iot", "update-certificate", "--certificate-id", cid, "--new-status", "REVOKED")
    rc, err = api.aws("iot", "update-certificate", "--certificate-id", cid, "--new-status", "ACTIVE", check=False)
    assert rc != 0 and "CertificateStateException" in err

    iot = api.iot()
    csr_pem, _ = pki.csr("from-csr")
    made = iot.create_certificate_from_csr(certificateSigningRequest=csr_pem, setAsActive=False)
    assert iot.describe_certificate(certificateId=made["certificateId"])["certificateDescription"]["status"] == "INACTIVE"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        iot.create_certificate_from_csr(certificateSigningRequest="not a csr")
    assert error_code(e) == "InvalidRequestException"

    listed = [c["certificateId"] for c in iot.list_certificates(ascendingOrder=True)["certificates"]]
    assert listed == [cid, made["certificateId"]]
    api.aws("iot", "delete-certificate", "--certificate-id", cid)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        iot.describe_certificate(certificateId=cid)
    assert error_code(e) == "ResourceNotFoundException"


def test_ca_registration_with_proof_of_possession(api):
    iot = api.iot()
    ca = pki.CA()
    code = iot.get_registration_code()["registrationCode"]
    assert iot.get_registration_code()["registrationCode"] == code
    wrong, _, _ = ca.issue("not-the-code")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        iot.register_ca_certificate(caCertificate=ca.pem, verificationCertificate=wrong)
    assert error_code(e) == "RegistrationCodeValidationException"
    other = pki.CA("someone else")
    foreign, _, _ = other.issue(code)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        iot.register_ca_certificate(caCertificate=ca.pem, verificationCertificate=foreign)
    assert error_code(e) == "CertificateValidationException"

    verification, _, _ = ca.issue(code)
    _, out = api.aws("iot", "register-ca-certificate", "--ca-certificate", ca.pem,
                     "--verification-certificate", verification, "--set-as-active", "--allow-auto-registration")
    ca_id = out["certificateId"]
    d = iot.describe_ca_certificate(certificateId=ca_id)["certificateDescription"]
    assert (d["status"], d["autoRegistrationStatus"]) == ("ACTIVE", "ENABLE")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        iot.register_ca_certificate(caCertificate=ca.pem, verificationCertificate=verification)
    assert error_code(e) == "ResourceAlreadyExistsException"
    assert [c["certificateId"] for c in iot.list_ca_certificates()["certificates"]] == [ca_id]

    device, _, _ = ca.issue("dev-byo")
    reg = iot.register_certificate(certificatePem=device, caCertificatePem=ca.pem, status="ACTIVE")
    assert iot.describe_certificate(certificateId=reg["certificateId"])["certificateDescription"]["caCertificateId"] == ca_id
    assert [c["certificateId"] for c in iot.list_certificates_by_ca(caCertificateId=ca_id)["certificates"]] == \
        [reg["certificateId"]]
    stranger, _, _ = other.issue("dev-x")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        iot.register_certificate(certificatePem=stranger)
    assert error_code(e) == "CertificateValidationException"
    no_ca = iot.register_certificate_without_ca(certificatePem=stranger, status="ACTIVE")
    assert iot.describe_certificate(certificateId=no_ca["certificateId"])["certificateDescription"]["certificateMode"] \
        == "SNI_ONLY"
    expired, _, _ = ca.issue("old", expired=True)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        iot.register_certificate(certificatePem=expired)
    assert error_code(e) == "CertificateValidationException"

    iot.update_ca_certificate(certificateId=ca_id, newStatus="INACTIVE", newAutoRegistrationStatus="DISABLE")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        iot.delete_ca_certificate(certificateId=ca_id)  # a certificate still registered with it
    assert error_code(e) == "DeleteConflictException"
    iot.update_certificate(certificateId=reg["certificateId"], newStatus="INACTIVE")
    iot.delete_certificate(certificateId=reg["certificateId"])
    iot.delete_ca_certificate(certificateId=ca_id)
    assert iot.list_ca_certificates()["certificates"] == []


def test_policies_versions_and_attachments(api):
    iot = api.iot()
    with pytest.raises(botocore.exceptions.ClientError) as e:
        iot.create_policy(policyName="bad", policyDocument='{"Statement": "nope"}')
    assert error_code(e) == "MalformedPolicyException"
    _, out = api.aws("iot", "create-policy", "--policy-name", "p", "--policy-document", ALLOW_CONNECT)
    assert out["policyVersionId"] == "1" and out["policyArn"].endswith(":policy/p")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        iot.create_policy(policyName="p", policyDocument=ALLOW_CONNECT)
    assert error_code(e) == "ResourceAlreadyExistsException"
    for _ in range(4):
        iot.create_policy_version(policyName="p", policyDocument=ALLOW_CONNECT)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        iot.create_policy_version(policyName="p", policyDocument=ALLOW_CONNECT)
    assert error_code(e) == "VersionsLimitExceededException"
    versions = iot.list_policy_versions(policyName="p")["policyVersions"]
    assert sorted(v["versionId"] for v in versions) == ["1", "2", "3", "4", "5"]
    assert [v["versionId"] for v in versions if v["isDefaultVersion"]] == ["1"]
    api.aws("iot", "set-default-policy-version", "--policy-name", "p", "--policy-version-id", "3")
    assert iot.get_policy(policyName="p")["defaultVersionId"] == "3"
    assert iot.get_policy_version(policyName="p", policyVersionId="3")["isDefaultVersion"] is True
    with pytest.raises(botocore.exceptions.ClientError) as e:
        iot.delete_policy_version(policyName="p", policyVersionId="3")
    assert error_code(e) == "DeleteConflictException"
    iot.delete_policy_version(policyName="p", policyVersionId="1")
    v = iot.create_policy_version(policyName="p", policyDocument=ALLOW_CONNECT, setAsDefault=True)
    assert v["isDefaultVersion"] is True and v["policyVersionId"] == "6"

    cert = iot.create_keys_and_certificate(setAsActive=True)
    iot.create_thing_group(thingGroupName="fleet")
    group_arn = iot.describe_thing_group(thingGroupName="fleet")["thingGroupArn"]
    api.aws("iot", "attach-policy", "--policy-name", "p", "--target", cert["certificateArn"])
    iot.attach_policy(policyName="p", target=group_arn)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        iot.attach_policy(policyName="p", target=cert["certificateArn"].replace(cert["certificateId"], "0" * 64))
    assert error_code(e) == "ResourceNotFoundException"
    _, out = api.aws("iot", "list-attached-policies", "--target", cert["certificateArn"])
    assert [p["policyName"] for p in out["policies"]] == ["p"]
    assert sorted(iot.list_targets_for_policy(policyName="p")["targets"]) == sorted([cert["certificateArn"], group_arn])

    iot.create_thing(thingName="member")
    iot.add_thing_to_thing_group(thingGroupName="fleet", thingName="member")
    eff = iot.get_effective_policies(thingName="member")["effectivePolicies"]
    assert [p["policyName"] for p in eff] == ["p"]

    with pytest.raises(botocore.exceptions.ClientError) as e:
        iot.delete_policy(policyName="p")  # attached
    assert error_code(e) == "DeleteConflictException"
    iot.detach_policy(policyName="p", target=cert["certificateArn"])
    iot.detach_policy(policyName="p", target=group_arn)
    assert iot.list_targets_for_policy(policyName="p")["targets"] == []
    for vid in ("2", "3", "4", "5"):
        iot.delete_policy_version(policyName="p", policyVersionId=vid)
    iot.delete_policy(policyName="p")
    assert iot.list_policies()["policies"] == []


def test_thing_principals(api):
    iot = api.iot()
    iot.create_thing(thingName="dev-p")
    cert = iot.create_keys_and_certificate(setAsActive=True)
    _, _ = api.aws("iot", "attach-thing-principal", "--thing-name", "dev-p", "--principal", cert["certificateArn"])
    assert iot.list_thing_principals(thingName="dev-p")["principals"] == [cert["certificateArn"]]
    _, out = api.aws("iot", "list-principal-things", "--principal", cert["certificateArn"])
    assert out["things"] == ["dev-p"]
    with pytest.raises(botocore.exceptions.ClientError) as e:
        iot.delete_thing(thingName="dev-p")
    assert error_code(e) == "InvalidRequestException"
    iot.update_certificate(certificateId=cert["certificateId"], newStatus="INACTIVE")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        iot.delete_certificate(certificateId=cert["certificateId"])
    assert error_code(e) == "DeleteConflictException"
    iot.detach_thing_principal(thingName="dev-p", principal=cert["certificateArn"])
    assert iot.list_thing_principals(thingName="dev-p")["principals"] == []
    iot.delete_thing(thingName="dev-p")
    iot.delete_certificate(certificateId=cert["certificateId"])


def test_describe_endpoint(api):
    _, out = api.aws("iot", "describe-endpoint", "--endpoint-type", "iot:Data-ATS")
    assert out["endpointAddress"] == "localhost"


def test_state_survives_restart(api):
    iot = api.iot()
    iot.create_thing(thingName="keeper", attributePayload={"attributes": {"a": "1"}})
    cert = iot.create_keys_and_certificate(setAsActive=True)
    iot.create_policy(policyName="kept", policyDocument=ALLOW_CONNECT)
    iot.attach_policy(policyName="kept", target=cert["certificateArn"])
    api.kill9()
    api.start()
    iot = api.iot()
    assert iot.describe_thing(thingName="keeper")["attributes"] == {"a": "1"}
    assert iot.describe_certificate(certificateId=cert["certificateId"])["certificateDescription"]["status"] == "ACTIVE"
    assert [p["policyName"] for p in iot.list_attached_policies(target=cert["certificateArn"])["policies"]] == ["kept"]


def test_unsigned_and_badly_signed_requests_are_refused(api):
    ctx = ssl.create_default_context(cafile=api.ca)
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(f"{api.api_url}/things", context=ctx, timeout=10)
    assert e.value.code == 403 and e.value.headers["x-amzn-ErrorType"] == "MissingAuthenticationTokenException"

    key, secret = api.credentials()
    import boto3
    wrong_secret = boto3.client("iot", endpoint_url=api.api_url, region_name="us-east-1", aws_access_key_id=key,
                                aws_secret_access_key="x" * 40, verify=api.ca)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        wrong_secret.list_things()
    assert error_code(e) == "InvalidSignatureException"
    unknown = boto3.client("iot", endpoint_url=api.api_url, region_name="us-east-1",
                           aws_access_key_id="AKIAUNKNOWNUNKNOWN00", aws_secret_access_key=secret, verify=api.ca)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        unknown.list_things()
    assert error_code(e) == "UnrecognizedClientException"
    assert api.metric("fleetcore_api_unauthenticated_total") == 3
    # Nothing was written by the refused calls.
    assert api.iot().list_things()["things"] == []


def test_admin_create_key_works_while_running(api):
    out = subprocess.run([FLEETCORE, "admin", "create-key", "--data-dir", api.data_dir], check=True,
                         capture_output=True, text=True).stdout
    k = json.loads(out)
    assert k["AccessKeyId"].startswith("AKIA") and len(k["SecretAccessKey"]) == 40
    assert oct(os.stat(os.path.join(api.data_dir, "admin-keys.json")).st_mode & 0o777) == "0o600"
    assert oct(os.stat(os.path.join(api.data_dir, "aws-credentials")).st_mode & 0o777) == "0o600"
    import boto3
    iot = boto3.client("iot", endpoint_url=api.api_url, region_name="us-east-1", aws_access_key_id=k["AccessKeyId"],
                       aws_secret_access_key=k["SecretAccessKey"], verify=api.ca)
    iot.create_thing(thingName="by-new-key")
    assert [t["thingName"] for t in iot.list_things()["things"]] == ["by-new-key"]
