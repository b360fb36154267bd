"""AWS IoT registry events (registry-events.md): off until UpdateEventConfigurations enables them, then
published by the server under $aws/events/ after each committed change, with AWS's topics and fields,
to paho and mosquitto_sub subscribers."""
import json
import subprocess
import time

import pytest

from conftest import TIMEOUT, Client

ALL_TYPES = ["THING", "THING_GROUP", "THING_TYPE", "THING_GROUP_MEMBERSHIP", "THING_GROUP_HIERARCHY",
             "THING_TYPE_ASSOCIATION", "JOB", "JOB_EXECUTION", "POLICY", "CERTIFICATE", "CA_CERTIFICATE",
             "TOPIC_RULE"]  # the last: fleetcore's extension (rule changes)
REGISTRY_TYPES = ["THING", "THING_GROUP", "THING_TYPE", "THING_GROUP_MEMBERSHIP", "THING_GROUP_HIERARCHY",
                  "THING_TYPE_ASSOCIATION"]
ARN = "arn:aws:iot:us-east-1:000000000000:"


@pytest.fixture
def api(make_server):
    # Thing types can be deleted right after deprecation here (AWS waits 5 minutes).
    return make_server("[registry]\nthing_type_delete_wait_s = 0\n")


@pytest.fixture
def watcher(api):
    # Registry events only: lifecycle events ($aws/events/presence/..., subscriptions/...) are not ours.
    filters = [f"$aws/events/{kind}/#" for kind in ("thing", "thingType", "thingTypeAssociation", "thingGroup",
                                                   "thingGroupMembership", "thingGroupHierarchy")]
    w = Client(api.port, "events-watcher")
    w.connect()
    assert w.subscribe([(f, 1) for f in filters]) == [1] * len(filters)
    yield w
    w.disconnect()


def enable(api, *types, enabled=True):
    api.aws("iot", "update-event-configurations", "--event-configurations",
            json.dumps({t: {"Enabled": enabled} for t in types}))


def event(watcher):
    m = watcher.get()
    return m.topic, json.loads(m.payload), m.qos


def check_common(e, event_type, operation, account=True):
    assert e["eventType"] == event_type and e["operation"] == operation
    assert isinstance(e["eventId"], str) and e["eventId"]
    assert isinstance(e["timestamp"], int) and abs(e["timestamp"] - time.time() * 1000) < 60_000  # milliseconds
    if account:
        assert e["accountId"] == "000000000000"
    else:
        assert "accountId" not in e


def test_describe_event_configurations_shape(api):
    _, d = api.aws("iot", "describe-event-configurations")
    assert d["eventConfigurations"] == {t: {"Enabled": False} for t in ALL_TYPES}
    iot = api.iot()
    first = iot.describe_event_configurations()
    assert first["creationDate"] <= first["lastModifiedDate"]
    iot.update_event_configurations(eventConfigurations={"THING": {"Enabled": True},
                                                         "THING_GROUP_MEMBERSHIP": {"Enabled": True}})
    after = iot.describe_event_configurations()
    assert after["eventConfigurations"] == {t: {"Enabled": t in ("THING", "THING_GROUP_MEMBERSHIP")} for t in ALL_TYPES}
    assert after["creationDate"] == first["creationDate"]
    assert after["lastModifiedDate"] >= first["lastModifiedDate"]
    # Only the types given change.
    iot.update_event_configurations(eventConfigurations={"THING": {"Enabled": False}})
    again = iot.describe_event_configurations()["eventConfigurations"]
    assert (again["THING"], again["THING_GROUP_MEMBERSHIP"]) == ({"Enabled": False}, {"Enabled": True})
    rc, err = api.aws("iot", "update-event-configurations", "--event-configurations",
                      '{"NOT_A_TYPE":{"Enabled":true}}', check=False)
    assert rc != 0 and "InvalidRequestException" in err
    # The configuration is stored: a restart keeps it.
    api.restart()
    assert api.iot().describe_event_configurations()["eventConfigurations"]["THING_GROUP_MEMBERSHIP"] == {"Enabled": True}


def test_nothing_is_published_until_enabled(api, watcher):
    api.aws("iot", "create-thing-type", "--thing-type-name", "quiet-type")
    api.aws("iot", "create-thing", "--thing-name", "quiet", "--thing-type-name", "quiet-type")
    api.aws("iot", "create-thing-group", "--thing-group-name", "quiet-group")
    api.aws("iot", "add-thing-to-thing-group", "--thing-group-name", "quiet-group", "--thing-name", "quiet")
    api.aws("iot", "delete-thing", "--thing-name", "quiet")
    enable(api, "THING_GROUP")
    api.aws("iot", "create-thing", "--thing-name", "still-quiet")  # THING is still off
    api.aws("iot", "create-thing-group", "--thing-group-name", "first")
    # Events are published in commit order: the first one to arrive is the first enabled change.
    topic, e, _ = event(watcher)
    assert topic == "$aws/events/thingGroup/first/created"
    enable(api, "THING_GROUP", enabled=False)
    api.aws("iot", "create-thing-group", "--thing-group-name", "not-seen")
    enable(api, "THING")
    api.aws("iot", "create-thing", "--thing-name", "seen")
    assert event(watcher)[0] == "$aws/events/thing/seen/created"


def test_thing_events(api, watcher):
    enable(api, *REGISTRY_TYPES)
    _, created = api.aws("iot", "create-thing", "--thing-name", "dev-1",
                         "--attribute-payload", '{"attributes":{"color":"red","floor":"2"}}')
    topic, e, qos = event(watcher)
    assert topic == "$aws/events/thing/dev-1/created" and qos == 1
    check_common(e, "THING_EVENT", "CREATED")
    assert (e["thingId"], e["thingName"], e["versionNumber"], e["thingTypeName"], e["attributes"]) == \
        (created["thingId"], "dev-1", 1, None, {"color": "red", "floor": "2"})
    assert set(e) == {"eventType", "eventId", "timestamp", "operation", "accountId", "thingId", "thingName",
                      "versionNumber", "thingTypeName", "attributes"}

    api.aws("iot", "update-thing", "--thing-name", "dev-1",
            "--attribute-payload", '{"attributes":{"color":"blue"},"merge":true}')
    topic, e, _ = event(watcher)
    assert topic == "$aws/events/thing/dev-1/updated"
    check_common(e, "THING_EVENT", "UPDATED")
    assert (e["versionNumber"], e["attributes"]) == (2, {"color": "blue", "floor": "2"})

    api.aws("iot", "delete-thing", "--thing-name", "dev-1")
    topic, e, _ = event(watcher)
    assert topic == "$aws/events/thing/dev-1/deleted"
    check_common(e, "THING_EVENT", "DELETED")
    assert (e["thingId"], e["thingName"], e["versionNumber"]) == (created["thingId"], "dev-1", 2)
    # Two events never share an id.
    api.aws("iot", "create-thing", "--thing-name", "dev-2")
    assert event(watcher)[1]["eventId"] != e["eventId"]


def test_thing_type_and_association_events(api, watcher):
    enable(api, *REGISTRY_TYPES)
    iot = api.iot()
    made = iot.create_thing_type(thingTypeName="sensor", thingTypeProperties={
        "thingTypeDescription": "temperature sensors", "searchableAttributes": ["room", "floor"]})
    topic, e, _ = event(watcher)
    assert topic == "$aws/events/thingType/sensor/created"
    check_common(e, "THING_TYPE_EVENT", "CREATED")
    assert (e["thingTypeId"], e["thingTypeName"], e["isDeprecated"], e["deprecationDate"], e["searchableAttributes"],
            e["description"]) == (made["thingTypeId"], "sensor", False, None, ["room", "floor"], "temperature sensors")

    thing = iot.create_thing(thingName="s-1", thingTypeName="sensor")
    assert event(watcher)[0] == "$aws/events/thing/s-1/created"
    topic, e, _ = event(watcher)
    assert topic == "$aws/events/thingTypeAssociation/thing/s-1/thingType/sensor/added"
    check_common(e, "THING_TYPE_ASSOCIATION_EVENT", "ADDED", account=False)
    assert (e["thingId"], e["thingName"], e["thingTypeName"]) == (thing["thingId"], "s-1", "sensor")
    assert set(e) == {"eventId", "eventType", "operation", "thingId", "thingName", "thingTypeName", "timestamp"}

    iot.update_thing(thingName="s-1", removeThingType=True)
    topic, e, _ = event(watcher)
    assert topic == "$aws/events/thing/s-1/updated" and e["thingTypeName"] is None
    topic, e, _ = event(watcher)
    assert topic == "$aws/events/thingTypeAssociation/thing/s-1/thingType/sensor/removed"
    assert (e["operation"], e["thingTypeName"]) == ("REMOVED", "sensor")

    before = time.time() * 1000
    iot.deprecate_thing_type(thingTypeName="sensor")
    topic, e, _ = event(watcher)
    assert topic == "$aws/events/thingType/sensor/updated"
    check_common(e, "THING_TYPE_EVENT", "UPDATED")
    assert e["isDeprecated"] is True and abs(e["deprecationDate"] - before) < 60_000
    iot.deprecate_thing_type(thingTypeName="sensor", undoDeprecate=True)
    topic, e, _ = event(watcher)
    assert (topic, e["isDeprecated"], e["deprecationDate"]) == ("$aws/events/thingType/sensor/updated", False, None)
    iot.deprecate_thing_type(thingTypeName="sensor")
    event(watcher)
    iot.delete_thing_type(thingTypeName="sensor")
    topic, e, _ = event(watcher)
    assert topic == "$aws/events/thingType/sensor/deleted"
    check_common(e, "THING_TYPE_EVENT", "DELETED")
    assert e["thingTypeId"] == made["thingTypeId"]


def test_thing_group_membership_and_hierarchy_events(api, watcher):
    enable(api, *REGISTRY_TYPES)
    iot = api.iot()
    root = iot.create_thing_group(thingGroupName="root")
    topic, e, _ = event(watcher)
    assert topic == "$aws/events/thingGroup/root/created"
    check_common(e, "THING_GROUP_EVENT", "CREATED")
    assert (e["thingGroupId"], e["thingGroupName"], e["versionNumber"], e["parentGroupName"], e["parentGroupId"],
            e["rootToParentThingGroups"], e["attributes"], e["dynamicGroupMappingId"]) == \
        (root["thingGroupId"], "root", 1, None, None, [], {}, None)

    mid = iot.create_thing_group(thingGroupName="mid", parentGroupName="root")
    assert event(watcher)[0] == "$aws/events/thingGroup/mid/created"
    topic, e, _ = event(watcher)
    assert topic == "$aws/events/thingGroupHierarchy/thingGroup/root/childThingGroup/mid/added"
    check_common(e, "THING_GROUP_HIERARCHY_EVENT", "ADDED")
    assert (e["thingGroupId"], e["thingGroupName"], e["childGroupId"], e["childGroupName"]) == \
        (root["thingGroupId"], "root", mid["thingGroupId"], "mid")

    leaf = iot.create_thing_group(thingGroupName="leaf", parentGroupName="mid",
                                  thingGroupProperties={"thingGroupDescription": "the leaf"})
    event(watcher), event(watcher)
    iot.update_thing_group(thingGroupName="leaf", thingGroupProperties={
        "thingGroupDescription": "new description", "attributePayload": {"attributes": {"site": "paris"}}})
    topic, e, _ = event(watcher)
    assert topic == "$aws/events/thingGroup/leaf/updated"
    check_common(e, "THING_GROUP_EVENT", "UPDATED")
    assert (e["thingGroupId"], e["versionNumber"], e["parentGroupName"], e["parentGroupId"], e["description"],
            e["attributes"]) == (leaf["thingGroupId"], 2, "mid", mid["thingGroupId"], "new description", {"site": "paris"})
    assert e["rootToParentThingGroups"] == [
        {"groupArn": ARN + "thinggroup/root", "groupId": root["thingGroupId"]},
        {"groupArn": ARN + "thinggroup/mid", "groupId": mid["thingGroupId"]}]

    thing = iot.create_thing(thingName="member")
    event(watcher)
    iot.add_thing_to_thing_group(thingGroupName="leaf", thingName="member")
    topic, added, _ = event(watcher)
    assert topic == "$aws/events/thingGroupMembership/thingGroup/leaf/thing/member/added"
    check_common(added, "THING_GROUP_MEMBERSHIP_EVENT", "ADDED")
    assert (added["groupArn"], added["groupId"], added["thingArn"], added["thingId"]) == \
        (ARN + "thinggroup/leaf", leaf["thingGroupId"], ARN + "thing/member", thing["thingId"])
    assert isinstance(added["membershipId"], str) and added["membershipId"]
    iot.remove_thing_from_thing_group(thingGroupName="leaf", thingName="member")
    topic, removed, _ = event(watcher)
    assert topic == "$aws/events/thingGroupMembership/thingGroup/leaf/thing/member/removed"
    check_common(removed, "THING_GROUP_MEMBERSHIP_EVENT", "REMOVED")
    assert removed["membershipId"] == added["membershipId"]

    # Deleting a group whose thing is a member: the membership goes, then the hierarchy, then the group.
    iot.add_thing_to_thing_group(thingGroupName="leaf", thingName="member")
    event(watcher)
    iot.delete_thing_group(thingGroupName="leaf")
    assert event(watcher)[0] == "$aws/events/thingGroupMembership/thingGroup/leaf/thing/member/removed"
    topic, e, _ = event(watcher)
    assert topic == "$aws/events/thingGroupHierarchy/thingGroup/mid/childThingGroup/leaf/removed"
    assert (e["operation"], e["childGroupId"], e["thingGroupId"]) == ("REMOVED", leaf["thingGroupId"], mid["thingGroupId"])
    topic, e, _ = event(watcher)
    assert topic == "$aws/events/thingGroup/leaf/deleted"
    check_common(e, "THING_GROUP_EVENT", "DELETED")
    assert e["thingGroupId"] == leaf["thingGroupId"]


def test_mosquitto_sub_sees_the_event(api):
    enable(api, "THING")
    # A retained message tells us when mosquitto_sub's subscriptions are in place: it arrives after SUBACK.
    marker = Client(api.port, "marker")
    marker.connect()
    marker.publish("sync/registry-events", "ready", qos=1, retain=True)
    marker.disconnect()
    sub = subprocess.Popen(["mosquitto_sub", "-h", "127.0.0.1", "-p", str(api.port), "-V", "mqttv5", "-q", "1",
                            "-C", "2", "-v", "-t", "sync/registry-events", "-t", "$aws/events/thing/+/created"],
                           stdout=subprocess.PIPE, text=True)
    try:
        assert sub.stdout.readline() == "sync/registry-events ready\n"
        _, created = api.aws("iot", "create-thing", "--thing-name", "cli-thing")
        topic, payload = sub.stdout.readline().rstrip("\n").split(" ", 1)
        assert sub.wait(timeout=TIMEOUT) == 0
    finally:
        if sub.poll() is None:
            sub.kill()
    e = json.loads(payload)
    assert topic == "$aws/events/thing/cli-thing/created"
    assert (e["eventType"], e["operation"], e["thingName"], e["thingId"]) == \
        ("THING_EVENT", "CREATED", "cli-thing", created["thingId"])
