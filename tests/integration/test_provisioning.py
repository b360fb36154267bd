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
