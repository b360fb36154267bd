"""AWS IoT Jobs: the control plane through the aws CLI and boto3, devices through paho and the npm
aws-iot-device-sdk jobs client. A device's replies reach its session alone (another client subscribed
to the same topics sees the notifications only), and what was acknowledged survives kill -9."""
import json
import os
import queue
import subprocess
import threading

import pytest

from conftest import TIMEOUT, Client, publish_rc

JS = os.path.join(os.path.dirname(__file__), "js")


def create_thing(server, name):
    return server.aws("iot", "create-thing", "--thing-name", name)[1]["thingArn"]


def messages(client, count):
    """The next `count` messages, by topic (replies and notifications travel different paths)."""
    got = {}
    for _ in range(count):
        m = client.get()
        got[m.topic] = json.loads(m.payload)
    return got


def test_device_runs_a_job_over_mqtt_and_its_replies_reach_it_alone(server):
    arn = create_thing(server, "t1")
    jobs = "$aws/things/t1/jobs/"
    dev = Client(server.port, "dev-t1")
    dev.connect()
    # As the Python v2 SDK subscribes: the update replies through a wildcard.
    for topic in ("notify-next", "start-next/accepted", "+/update/accepted", "+/update/rejected"):
        assert dev.subscribe(jobs + topic, 1) == [1]
    spy = Client(server.port, "spy")
    spy.connect()
    assert spy.subscribe(jobs + "#", 1) == [1]
    server.aws("iot", "update-event-configurations", "--event-configurations", '{"JOB":{"Enabled":true}}')
    events = Client(server.port, "events")
    events.connect()
    assert events.subscribe("$aws/events/job/#", 1) == [1]

    _, out = server.aws("iot", "create-job", "--job-id", "j1", "--targets", arn, "--document",
                        '{"operation":"reboot"}', "--timeout-config", "inProgressTimeoutInMinutes=10")
    assert out["jobId"] == "j1" and out["jobArn"].endswith(":job/j1")
    nxt = json.loads(dev.get().payload)
    assert nxt["execution"]["jobId"] == "j1" and nxt["execution"]["jobDocument"] == {"operation": "reboot"}
    assert nxt["execution"]["status"] == "QUEUED" and nxt["execution"]["versionNumber"] == 1

    dev.publish(jobs + "start-next", json.dumps({"clientToken": "c1", "statusDetails": {"step": "1"}}), qos=1)
    started = json.loads(dev.get().payload)
    assert started["clientToken"] == "c1"
    ex = started["execution"]
    assert (ex["status"], ex["versionNumber"], ex["statusDetails"]) == ("IN_PROGRESS", 2, {"step": "1"})
    assert 590 <= ex["approximateSecondsBeforeTimedOut"] <= 600
    assert isinstance(ex["startedAt"], int) and ex["startedAt"] < 10**10  # epoch seconds

    dev.publish(jobs + "j1/update", json.dumps({"status": "SUCCEEDED", "expectedVersion": "2",
                                                "statusDetails": {"result": "ok"},
                                                "includeJobExecutionState": True}), qos=1)
    done = messages(dev, 2)
    assert done[jobs + "j1/update/accepted"]["executionState"]["status"] == "SUCCEEDED"
    assert list(done[jobs + "notify-next"]) == ["timestamp"]  # nothing pending any more
    dev.publish(jobs + "j1/update", json.dumps({"status": "FAILED", "clientToken": "late"}), qos=1)
    late = json.loads(dev.get().payload)
    assert late["code"] == "InvalidStateTransition" and late["executionState"]["status"] == "SUCCEEDED"
    assert late["clientToken"] == "late"

    # The other client saw the notifications and none of the replies.
    seen = []
    while True:
        try:
            seen.append(spy.get(timeout=1).topic)
        except queue.Empty:
            break
    assert seen and all(t.endswith("/notify") or t.endswith("/notify-next") for t in seen), seen
    assert seen.count(jobs + "notify-next") == 2

    completed = json.loads(events.get().payload)
    assert (completed["operation"], completed["jobId"], completed["status"]) == ("completed", "j1", "COMPLETED")
    assert completed["jobProcessDetails"]["numberOfSucceededThings"] == 1
    events.no_message()  # once
    job = server.aws("iot", "describe-job", "--job-id", "j1")[1]["job"]
    assert job["status"] == "COMPLETED" and job["jobProcessDetails"]["numberOfSucceededThings"] == 1
    execution = server.aws("iot", "describe-job-execution", "--job-id", "j1", "--thing-name", "t1")[1]["execution"]
    assert (execution["status"], execution["versionNumber"]) == ("SUCCEEDED", 3)
    assert execution["statusDetails"] == {"detailsMap": {"result": "ok"}}
    listed = server.aws("iot", "list-job-executions-for-thing", "--thing-name", "t1")[1]["executionSummaries"]
    assert [(e["jobId"], e["jobExecutionSummary"]["status"]) for e in listed] == [("j1", "SUCCEEDED")]


def test_a_client_cannot_publish_replies_or_notifications(server):
    create_thing(server, "t2")
    dev = Client(server.port, "dev-t2")
    dev.connect()
    assert dev.subscribe("$aws/things/t2/jobs/#", 1) == [1]
    forger = Client(server.port, "forger")
    forger.connect()
    # Requests are the service's alone (publish-only topics, as on AWS): nobody subscribes to them.
    assert forger.subscribe("$aws/things/t2/jobs/start-next", 1) == [0x87]
    assert forger.subscribe("$aws/things/t2/jobs/+/update", 1) == [0x87]
    # Replies and notifications are the server's alone: the publish itself is refused (PUBACK 0x87),
    # and the device subscribed to them all receives nothing.
    for topic in ("$aws/things/t2/jobs/notify-next", "$aws/things/t2/jobs/notify", "$aws/things/t2/jobs/j1/update/accepted",
                  "$aws/things/t2/jobs/start-next/rejected", "$aws/things/t2/jobs/$next/get/accepted"):
        assert publish_rc(server.port, topic, client_id="forger-pub", payload='{"execution":{"jobId":"evil"}}') == 0x87, topic
    dev.no_message()


# Node connects over mutual TLS with a certificate of the built-in CA, as a fleet device would.
def test_aws_iot_device_sdk_jobs_client(server, tmp_path):
    from conftest import FLEETCORE
    r = subprocess.run([FLEETCORE, "device", "create", "--name", "js-jobs", "--out", str(tmp_path), "--data-dir",
                        server.data_dir], capture_output=True, text=True, check=True)
    info = json.loads(r.stdout)
    spy = Client(server.port, "spy-js")
    spy.connect()
    assert spy.subscribe("$aws/things/js-jobs/jobs/$next/get/accepted", 1) == [1]
    proc = subprocess.Popen(["node", os.path.join(JS, "jobs_device.js"), "127.0.0.1", str(server.ports["mqtts"]),
                             info["rootCAFile"], info["certificateFile"], info["privateKeyFile"], "js-jobs", "install"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    events = queue.Queue()
    threading.Thread(target=lambda: [events.put(json.loads(line)) for line in proc.stdout], daemon=True).start()

    def next_event(kind):
        while True:
            e = events.get(timeout=TIMEOUT)
            if e["event"] in ("error", "close"):
                raise AssertionError(f"device SDK: {e}\n{proc.stderr.read() if proc.poll() is not None else ''}")
            if e["event"] == kind:
                return e

    def command(cmd):
        proc.stdin.write(cmd + "\n")
        proc.stdin.flush()

    try:
        next_event("notifications_started")
        arn = server.iot().describe_thing(thingName="js-jobs")["thingArn"]
        for job_id, version in (("install-1", "1.0"), ("install-2", "2.0")):
            server.aws("iot", "create-job", "--job-id", job_id, "--targets", arn, "--document",
                       json.dumps({"operation": "install", "version": version}))
        first = next_event("job")
        assert (first["id"], first["operation"], first["document"]["version"]) == ("install-1", "install", "1.0")
        command("succeed")
        next_event("updated")
        second = next_event("job")  # notify-next brought the next job
        assert (second["id"], second["status"]) == ("install-2", "QUEUED")
        command("fail")
        next_event("updated")
        server_side = server.iot().describe_job_execution(jobId="install-2", thingName="js-jobs")["execution"]
        assert server_side["status"] == "FAILED" and server_side["statusDetails"]["detailsMap"] == {"reason": "test"}
        assert server.iot().describe_job(jobId="install-1")["job"]["status"] == "COMPLETED"
        spy.no_message()  # the SDK's $next/get reply went to the SDK alone
    finally:
        proc.kill()
        proc.wait()


def test_boto3_control_plane_errors_and_listing(server):
    iot = server.iot()
    arns = [create_thing(server, f"b{i}") for i in range(3)]
    iot.create_job(jobId="bj", targets=arns, document=json.dumps({"operation": "x"}))
    with pytest.raises(iot.exceptions.ResourceAlreadyExistsException):
        iot.create_job(jobId="bj", targets=arns, document="{}")
    with pytest.raises(iot.exceptions.ResourceNotFoundException):
        iot.describe_job(jobId="missing")
    with pytest.raises(iot.exceptions.InvalidStateTransitionException):
        iot.delete_job(jobId="bj")
    with pytest.raises(iot.exceptions.InvalidRequestException):  # both a document and a documentSource
        iot.create_job(jobId="bad", targets=arns, document="{}", documentSource="https://s3.amazonaws.com/b/k")
    page = iot.list_job_executions_for_job(jobId="bj", maxResults=2)
    assert [s["thingArn"] for s in page["executionSummaries"]] == arns[:2]
    rest = iot.list_job_executions_for_job(jobId="bj", maxResults=2, nextToken=page["nextToken"])
    assert [s["thingArn"] for s in rest["executionSummaries"]] == arns[2:]
    iot.cancel_job(jobId="bj", reasonCode="OPERATOR", comment="enough")
    job = iot.describe_job(jobId="bj")["job"]
    assert (job["status"], job["reasonCode"], job["jobProcessDetails"]["numberOfCanceledThings"]) == ("CANCELED", "OPERATOR", 3)
    assert iot.get_job_document(jobId="bj")["document"] == '{"operation": "x"}'
    iot.delete_job(jobId="bj")
    assert iot.list_jobs()["jobs"] == []


def test_acknowledged_updates_survive_kill9(server):
    arn = create_thing(server, "k1")
    jobs = "$aws/things/k1/jobs/"
    server.aws("iot", "create-job", "--job-id", "kj", "--targets", arn, "--document", '{"operation":"reboot"}')
    dev = Client(server.port, "dev-k1")
    dev.connect()
    assert dev.subscribe(jobs + "kj/update/accepted", 1) == [1]
    dev.publish(jobs + "kj/update", json.dumps({"status": "IN_PROGRESS", "statusDetails": {"ota": "step-3"}}), qos=1)
    dev.get()  # accepted: stored
    dev.drop()
    server.kill9()
    server.restart()
    execution = server.iot().describe_job_execution(jobId="kj", thingName="k1")["execution"]
    assert execution["status"] == "IN_PROGRESS" and execution["statusDetails"]["detailsMap"] == {"ota": "step-3"}
    dev = Client(server.port, "dev-k1b")
    dev.connect()
    assert dev.subscribe(jobs + "kj/get/accepted", 1) == [1]
    dev.publish(jobs + "kj/get", "{}", qos=1)
    got = json.loads(dev.get().payload)["execution"]
    assert got["statusDetails"] == {"ota": "step-3"} and got["versionNumber"] == 2  # what the agent stored


def test_abort_and_retry_configurations_with_the_cli(server):
    # The scenario: a SNAPSHOT job on 4 things, abort at FAILED >= 50 % once 2 finished.
    arns = [create_thing(server, f"a{i}") for i in range(4)]
    server.aws("iot", "create-job", "--job-id", "ab", "--targets", *arns, "--document", '{"operation":"flash"}',
               "--abort-config", json.dumps({"criteriaList": [{"failureType": "FAILED", "action": "CANCEL",
                                                               "thresholdPercentage": 50, "minNumberOfExecutedThings": 2}]}),
               "--job-executions-retry-config", json.dumps({"criteriaList": [{"failureType": "FAILED", "numberOfRetries": 1}]}))
    dev = Client(server.port, "abort-devs")
    dev.connect()
    for i in range(3):
        assert dev.subscribe(f"$aws/things/a{i}/jobs/ab/update/accepted", 1) == [1]
    dev.publish("$aws/things/a2/jobs/ab/update", '{"status":"IN_PROGRESS"}', qos=1)
    dev.get()
    dev.publish("$aws/things/a0/jobs/ab/update", '{"status":"FAILED"}', qos=1)
    dev.get()
    first = server.aws("iot", "describe-job-execution", "--job-id", "ab", "--thing-name", "a0")[1]["execution"]
    assert (first["status"], first["executionNumber"]) == ("QUEUED", 2)  # retried: 1 finished, below the minimum
    dev.publish("$aws/things/a1/jobs/ab/update", '{"status":"FAILED"}', qos=1)
    dev.get()
    job = server.aws("iot", "describe-job", "--job-id", "ab")[1]["job"]
    assert (job["status"], job["reasonCode"]) == ("CANCELED", "FAILURE_THRESHOLD_EXCEEDED")
    summaries = server.aws("iot", "list-job-executions-for-job", "--job-id", "ab")[1]["executionSummaries"]
    states = {s["thingArn"].rsplit("/", 1)[1]: (s["jobExecutionSummary"]["status"], s["jobExecutionSummary"]["retryAttempt"])
              for s in summaries}
    assert states == {"a0": ("CANCELED", 1), "a1": ("FAILED", 0), "a2": ("IN_PROGRESS", 0), "a3": ("CANCELED", 0)}


def test_continuous_job_follows_thing_group_membership(server):
    # The scenario: a thing added to the group gets its execution (and notify-next) at once;
    # removed, its execution is REMOVED.
    group_arn = server.aws("iot", "create-thing-group", "--thing-group-name", "field")[1]["thingGroupArn"]
    create_thing(server, "c1")
    server.aws("iot", "create-job", "--job-id", "cj", "--targets", group_arn, "--target-selection", "CONTINUOUS",
               "--document", '{"operation":"configure"}')
    dev = Client(server.port, "dev-c1")
    dev.connect()
    assert dev.subscribe("$aws/things/c1/jobs/notify-next", 1) == [1]
    server.aws("iot", "add-thing-to-thing-group", "--thing-group-name", "field", "--thing-name", "c1")
    nxt = json.loads(dev.get(timeout=1.5).payload)
    assert nxt["execution"]["jobId"] == "cj" and nxt["execution"]["jobDocument"] == {"operation": "configure"}
    server.aws("iot", "remove-thing-from-thing-group", "--thing-group-name", "field", "--thing-name", "c1")
    assert list(json.loads(dev.get().payload)) == ["timestamp"]
    execution = server.iot().describe_job_execution(jobId="cj", thingName="c1")["execution"]
    assert execution["status"] == "REMOVED"
    job = server.iot().describe_job(jobId="cj")["job"]
    assert (job["status"], job["targetSelection"], job["jobProcessDetails"]["numberOfRemovedThings"]) == \
        ("IN_PROGRESS", "CONTINUOUS", 1)


def test_jobs_data_plane_over_https_with_sigv4_and_with_the_device_certificate(server, tmp_path):
    # The aws CLI's iot-jobs-data (signed for iot-jobs-data) and iot's list-job-executions-for-thing share
    # GET /things/{t}/jobs: the signing name tells them apart.
    arn = create_thing(server, "h1")
    for job_id in ("h-a", "h-b"):
        server.aws("iot", "create-job", "--job-id", job_id, "--targets", arn, "--document", '{"operation":"x"}')
    pending = server.aws("iot-jobs-data", "get-pending-job-executions", "--thing-name", "h1")[1]
    assert [j["jobId"] for j in pending["queuedJobs"]] == ["h-a", "h-b"] and pending["inProgressJobs"] == []
    listed = server.aws("iot", "list-job-executions-for-thing", "--thing-name", "h1")[1]
    assert len(listed["executionSummaries"]) == 2
    started = server.aws("iot-jobs-data", "start-next-pending-job-execution", "--thing-name", "h1",
                         "--status-details", "step=download", "--step-timeout-in-minutes", "5")[1]["execution"]
    assert (started["jobId"], started["status"], started["statusDetails"]) == ("h-a", "IN_PROGRESS", {"step": "download"})
    assert started["jobDocument"] == '{"operation":"x"}'  # a string over HTTP
    described = server.aws("iot-jobs-data", "describe-job-execution", "--thing-name", "h1", "--job-id", "$next")[1]
    assert described["execution"]["jobId"] == "h-a"
    updated = server.aws("iot-jobs-data", "update-job-execution", "--thing-name", "h1", "--job-id", "h-a", "--status",
                         "SUCCEEDED", "--expected-version", "2", "--include-job-execution-state")[1]
    assert updated["executionState"]["status"] == "SUCCEEDED" and updated["executionState"]["versionNumber"] == 3
    rc, err = server.aws("iot-jobs-data", "update-job-execution", "--thing-name", "h1", "--job-id", "h-a", "--status",
                         "FAILED", check=False)
    assert rc != 0 and "InvalidStateTransitionException" in err

    # The device itself, with its certificate on the HTTPS port, as far as its policy lets it.
    from test_identity import device
    cert, key, cid = device(server, tmp_path, "h2", policy=None)
    iot = server.iot()
    prefix = "arn:aws:iot:us-east-1:000000000000"
    iot.create_policy(policyName="h2-jobs", policyDocument=json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": ["iot:GetPendingJobExecutions", "iot:StartNextPendingJobExecution",
                                       "iot:UpdateJobExecution"], "Resource": f"{prefix}:thing/h2"}]}))
    iot.attach_policy(policyName="h2-jobs",
                      target=iot.describe_certificate(certificateId=cid)["certificateDescription"]["certificateArn"])
    iot.create_job(jobId="h-c", targets=[f"{prefix}:thing/h2"], document='{"operation":"y"}')
    curl = server.device_https(cert, key)

    code, text = curl("GET", "/things/h2/jobs")
    assert code == 200 and [j["jobId"] for j in json.loads(text)["queuedJobs"]] == ["h-c"]
    code, text = curl("PUT", "/things/h2/jobs/$next", "{}")
    assert code == 200 and json.loads(text)["execution"]["status"] == "IN_PROGRESS"
    code, text = curl("POST", "/things/h2/jobs/h-c", '{"status":"SUCCEEDED","expectedVersion":2}')
    assert code == 200, text
    assert curl("GET", "/things/h2/jobs/h-c")[0] == 403  # no iot:DescribeJobExecution
    assert curl("GET", "/things/h1/jobs")[0] == 403      # another thing
    assert iot.describe_job(jobId="h-c")["job"]["status"] == "COMPLETED"
    # A body member cannot move the checked resource: allowed on every thing but h1, a request on h1
    # that carries a shadowName is still checked against thing/h1.
    iot.create_job(jobId="h-d", targets=[f"{prefix}:thing/h1"], document='{"operation":"z"}')
    iot.create_policy(policyName="h2-all-but-h1", policyDocument=json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "iot:UpdateJobExecution", "Resource": f"{prefix}:thing/*"},
        {"Effect": "Deny", "Action": "iot:UpdateJobExecution", "Resource": f"{prefix}:thing/h1"}]}))
    iot.attach_policy(policyName="h2-all-but-h1",
                      target=iot.describe_certificate(certificateId=cid)["certificateDescription"]["certificateArn"])
    assert curl("POST", "/things/h1/jobs/h-d", '{"status":"SUCCEEDED","shadowName":"x"}')[0] == 403
    assert iot.describe_job_execution(jobId="h-d", thingName="h1")["execution"]["status"] == "QUEUED"


def test_job_templates_with_the_cli(server):
    arn = create_thing(server, "tp1")
    out = server.aws("iot", "create-job-template", "--job-template-id", "reboot-tpl", "--description", "nightly reboot",
                     "--document", '{"operation":"reboot"}', "--timeout-config", "inProgressTimeoutInMinutes=15")[1]
    server.aws("iot", "create-job", "--job-id", "from-tpl", "--targets", arn, "--job-template-arn", out["jobTemplateArn"])
    job = server.aws("iot", "describe-job", "--job-id", "from-tpl")[1]["job"]
    assert (job["description"], job["timeoutConfig"]["inProgressTimeoutInMinutes"]) == ("nightly reboot", 15)
    assert server.aws("iot", "get-job-document", "--job-id", "from-tpl")[1]["document"] == '{"operation":"reboot"}'
    rc, err = server.aws("iot", "create-job-template", "--job-template-id", "reboot-tpl", "--description", "x",
                         "--document", "{}", check=False)
    assert rc != 0 and "ConflictException" in err
    listed = server.aws("iot", "list-job-templates")[1]["jobTemplates"]
    assert [t["jobTemplateId"] for t in listed] == ["reboot-tpl"]

    managed = server.aws("iot", "describe-managed-job-template", "--template-name", "AWS-Install-Application")[1]
    assert [p["key"] for p in managed["documentParameters"]] == ["packages", "runAsUser", "pathToHandler"]
    server.aws("iot", "create-job", "--job-id", "install", "--targets", arn, "--job-template-arn", managed["templateArn"],
               "--document-parameters", "packages=nginx curl")
    doc = json.loads(server.aws("iot", "get-job-document", "--job-id", "install")[1]["document"])
    assert doc["steps"][0]["action"]["input"]["args"] == ["nginx curl"]
    names = [t["templateName"] for t in server.aws("iot", "list-managed-job-templates")[1]["managedJobTemplates"]]
    assert "AWS-Reboot" in names and len(names) == 7


def test_readme_flow_with_mosquitto_clients(server):
    # The README's example: mosquitto_sub sees the notifications, mosquitto_rr asks and gets its reply
    # (a request and its reply share one connection: the reply goes to that session alone).
    from conftest import mosquitto
    arn = create_thing(server, "device-1")
    port = str(server.port)
    watch = subprocess.Popen(["mosquitto_sub", "-h", "127.0.0.1", "-p", port, "-t", "$aws/things/device-1/jobs/notify-next",
                              "-C", "2", "-W", str(TIMEOUT), "-q", "1"], stdout=subprocess.PIPE, text=True)
    from conftest import wait_for
    wait_for(lambda: server.metric("fleetcore_subscriptions") == 1, what="mosquitto_sub subscribed")
    server.aws("iot", "create-job", "--job-id", "reboot-1", "--targets", arn, "--document", '{"operation":"reboot"}')
    started = mosquitto("mosquitto_rr", "-h", "127.0.0.1", "-p", port, "-i", "device-1", "-t",
                        "$aws/things/device-1/jobs/start-next", "-e", "$aws/things/device-1/jobs/start-next/accepted",
                        "-m", "{}", "-W", str(TIMEOUT))
    assert json.loads(started.stdout)["execution"]["status"] == "IN_PROGRESS"
    done = mosquitto("mosquitto_rr", "-h", "127.0.0.1", "-p", port, "-i", "device-1", "-t",
                     "$aws/things/device-1/jobs/reboot-1/update", "-e", "$aws/things/device-1/jobs/reboot-1/update/accepted",
                     "-m", '{"status":"SUCCEEDED"}', "-W", str(TIMEOUT))
    assert "timestamp" in json.loads(done.stdout)
    lines = watch.communicate(timeout=TIMEOUT)[0].splitlines()
    assert json.loads(lines[0])["execution"]["jobId"] == "reboot-1" and list(json.loads(lines[1])) == ["timestamp"]
    assert server.aws("iot", "describe-job", "--job-id", "reboot-1")[1]["job"]["status"] == "COMPLETED"


def test_a_request_flood_is_throttled_on_the_connection(server):
    # More than 10 requests in flight on one connection are answered RequestThrottled at once (AWS's
    # limit); nothing queues up for them, and the connection keeps working.
    from conftest import Raw, connect_bytes, encode_varint, parse_publish, subscribe_bytes
    create_thing(server, "flood")
    raw = Raw(server.port)
    raw.send(connect_bytes(b"flooder", version=4))
    assert raw.read_packet()[:2] == b"\x20\x02"
    prefix = b"$aws/things/flood/jobs/get"
    raw.send(subscribe_bytes(1, (prefix + b"/accepted", 0), (prefix + b"/rejected", 0), version=4))
    assert raw.read_packet()[0] == 0x90
    burst = b""
    for i in range(60):
        body = len(prefix).to_bytes(2, "big") + prefix + json.dumps({"clientToken": f"c{i}"}).encode()
        burst += b"\x30" + encode_varint(len(body)) + body
    # One read on the server: the worker admits or refuses all 60 before it queues any answer, and a
    # request counts until its answer is queued, so 10 are admitted whatever the threads' speeds.
    raw.send(burst)
    accepted, throttled = 0, 0
    while accepted + throttled < 60:
        p = parse_publish(raw.read_packet(), version=4)
        topic, payload = p.topic.decode(), json.loads(p.payload)
        if topic.endswith("/accepted"):
            accepted += 1
        else:
            assert payload["code"] == "RequestThrottled", payload
            throttled += 1
    assert (accepted, throttled) == (10, 50)
    assert server.metric("fleetcore_jobs_device_throttled_total") == throttled
    raw.close()


def test_document_from_the_object_store_with_presigned_urls(server, tmp_path):
    # The operator's OTA flow: image and job document in the object store, the document read with
    # --document-source, its placeholder replaced by a URL the device can download with curl.
    image = os.urandom(50_000)
    (tmp_path / "app.bin").write_bytes(image)
    doc = {"operation": "ota", "url": "${aws:iot:s3-presigned-url:https://s3.amazonaws.com/fleet-fw/app/1.2.bin}"}
    (tmp_path / "job.json").write_text(json.dumps(doc))
    server.aws("s3", "mb", "s3://fleet-fw")
    server.aws("s3", "cp", str(tmp_path / "app.bin"), "s3://fleet-fw/app/1.2.bin")
    server.aws("s3", "cp", str(tmp_path / "job.json"), "s3://fleet-fw/jobs/ota.json")
    arn = create_thing(server, "t-ota")
    rc, err = server.aws("iot", "create-job", "--job-id", "bad-src", "--targets", arn, "--document-source",
                         "https://s3.amazonaws.com/fleet-fw/jobs/missing.json", check=False)
    assert rc != 0 and "InvalidRequestException" in err and "does not exist" in err
    server.aws("iot", "create-job", "--job-id", "ota-1", "--targets", arn, "--document-source",
               "https://s3.amazonaws.com/fleet-fw/jobs/ota.json", "--presigned-url-config",
               "roleArn=arn:aws:iam::000000000000:role/ota,expiresInSec=300")
    _, described = server.aws("iot", "describe-job", "--job-id", "ota-1")
    assert described["documentSource"] == "https://s3.amazonaws.com/fleet-fw/jobs/ota.json"
    assert described["job"]["presignedUrlConfig"] == {"roleArn": "arn:aws:iam::000000000000:role/ota",
                                                      "expiresInSec": 300}
    # The operator sees the placeholder; the device gets a URL.
    _, stored = server.aws("iot", "get-job-document", "--job-id", "ota-1")
    assert json.loads(stored["document"]) == doc

    jobs = "$aws/things/t-ota/jobs/"
    dev = Client(server.port, "dev-ota")
    dev.connect()
    assert dev.subscribe(jobs + "start-next/accepted", 1) == [1]
    dev.publish(jobs + "start-next", "{}", qos=1)
    got = json.loads(dev.get().payload)["execution"]["jobDocument"]
    assert got["operation"] == "ota"
    url = got["url"]
    assert url.startswith("https://localhost:") and "X-Amz-Expires=300" in url
    r = subprocess.run(["curl", "-sf", "--cacert", server.ca, url], capture_output=True, timeout=30)
    assert r.returncode == 0 and r.stdout == image
    # The URL reads that object and nothing else.
    other = url.replace("/app/1.2.bin?", "/jobs/ota.json?")
    r = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--cacert", server.ca, other],
                       capture_output=True, text=True, timeout=30)
    assert r.stdout == "403"
