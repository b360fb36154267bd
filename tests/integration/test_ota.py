"""OTA updates end to end (issue 13): the operator signs an image with the signer API (aws signer) or
brings a signature (openssl), creates the update (aws iot create-ota-update); a device built here from
paho, cbor2 and cryptography reads its job, downloads the image by MQTT stream and by HTTPS, verifies
the signature against the code-signing certificate and reports the outcome."""
import base64
import json
import os
import subprocess
import time

import cbor2
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from conftest import FLEETCORE, Client, wait_for

ROLE = "arn:aws:iam::000000000000:role/ota"
BUCKET = "fleet-firmware"


def code_signing_pair(tmp_path):
    key, cert = tmp_path / "code.key", tmp_path / "code.crt"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                    "-keyout", str(key), "-out", str(cert), "-days", "30", "-subj", "/CN=fleet code signing"],
                   check=True, capture_output=True)
    return cert, key


def import_certificate(server, cert, key):
    r = subprocess.run([FLEETCORE, "signer", "import", "--cert", str(cert), "--key", str(key), "--data-dir",
                        server.data_dir], check=True, capture_output=True, text=True)
    return json.loads(r.stdout)["CertificateArn"]


def upload(server, tmp_path, key, data):
    server.aws("s3", "mb", "s3://" + BUCKET, check=False)
    path = tmp_path / key.replace("/", "_")
    path.write_bytes(data)
    server.aws("s3", "cp", str(path), f"s3://{BUCKET}/{key}")


def wait_created(server, update_id):
    def done():
        info = server.aws("iot", "get-ota-update", "--ota-update-id", update_id)[1]["otaUpdateInfo"]
        return info if info["otaUpdateStatus"] in ("CREATE_COMPLETE", "CREATE_FAILED") else None
    return wait_for(done, what=f"OTA update {update_id} created")


class OtaDevice:
    """What the FreeRTOS OTA agent does, in Python: start-next, download, verify, report."""

    def __init__(self, server, thing, cert_pem):
        self.server, self.thing = server, thing
        self.cert = x509.load_pem_x509_certificate(cert_pem)
        self.c = Client(server.port, thing)
        self.c.connect()
        self.jobs = f"$aws/things/{thing}/jobs/"

    def next_job(self):
        assert self.c.subscribe(self.jobs + "start-next/accepted", 1) == [1]
        self.c.publish(self.jobs + "start-next", json.dumps({"clientToken": "1:" + self.thing}), qos=1)
        return json.loads(self.c.get().payload)["execution"]

    def download_mqtt(self, stream, file_id, size, block=1024):
        base = f"$aws/things/{self.thing}/streams/{stream}/"
        self.c.subscribe(base + "data/cbor", 1)
        blocks = {}
        count = (size + block - 1) // block
        missing = set(range(count))
        while missing:
            bitmap = bytearray((count + 7) // 8)
            for b in missing:
                bitmap[b // 8] |= 1 << (b % 8)
            self.c.publish(base + "get/cbor", cbor2.dumps({"c": "rdy", "f": file_id, "l": block, "o": 0,
                                                           "b": bytes(bitmap), "n": 4}), qos=1)
            for _ in range(min(4, len(missing))):
                m = cbor2.loads(self.c.get().payload)
                blocks[m["i"]] = m["p"]
                missing.discard(m["i"])
        return b"".join(blocks[i] for i in range(count))

    def download_https(self, url):
        r = subprocess.run(["curl", "-sf", "--cacert", self.server.ca, url], capture_output=True, timeout=30)
        assert r.returncode == 0, r.stderr
        return r.stdout

    def verifies(self, image, signature_b64):
        try:
            self.cert.public_key().verify(base64.b64decode(signature_b64), image, ec.ECDSA(hashes.SHA256()))
            return True
        except InvalidSignature:
            return False

    def report(self, job_id, status, details):
        self.c.subscribe(self.jobs + job_id + "/update/accepted", 1)
        self.c.publish(self.jobs + job_id + "/update", json.dumps({"status": status, "statusDetails": details}), qos=1)
        assert json.loads(self.c.get().payload)


def test_signed_ota_over_mqtt_and_https(server, tmp_path):
    cert, key = code_signing_pair(tmp_path)
    cert_arn = import_certificate(server, cert, key)
    assert oct(os.stat(os.path.join(server.data_dir, "signer", "certificates", cert_arn.rsplit("/", 1)[1] + ".key")).st_mode & 0o777) == "0o600"
    image = os.urandom(20_000)
    # A versioned bucket, as AWS Signer requires: the job signs one version, the update streams it.
    server.aws("s3", "mb", "s3://" + BUCKET)
    server.aws("s3api", "put-bucket-versioning", "--bucket", BUCKET, "--versioning-configuration", "Status=Enabled")
    upload(server, tmp_path, "app/2.0.bin", image)
    version = server.aws("s3api", "head-object", "--bucket", BUCKET, "--key", "app/2.0.bin")[1]["VersionId"]
    upload(server, tmp_path, "app/2.0.bin", b"a later upload that is not the one signed")

    # The signer API, as the aws CLI drives it.
    platforms = server.aws("signer", "list-signing-platforms")[1]["platforms"]
    assert [p["platformId"] for p in platforms] == ["AmazonFreeRTOS-Default"]
    platform = server.aws("signer", "get-signing-platform", "--platform-id", "AmazonFreeRTOS-Default")[1]
    assert platform["signingConfiguration"]["encryptionAlgorithmOptions"]["defaultValue"] == "ECDSA"
    profile = server.aws("signer", "put-signing-profile", "--profile-name", "fleet_fw", "--platform-id",
                         "AmazonFreeRTOS-Default", "--signing-material", "certificateArn=" + cert_arn,
                         "--signing-parameters", "certname=/certs/code.pem")[1]
    assert profile["arn"].endswith(":/signing-profiles/fleet_fw") and len(profile["profileVersion"]) == 10
    listed = server.aws("signer", "list-signing-profiles")[1]["profiles"]
    assert [(p["profileName"], p["signingParameters"]) for p in listed] == [("fleet_fw", {"certname": "/certs/code.pem"})]
    started = server.aws("signer", "start-signing-job", "--source",
                         f"s3={{bucketName={BUCKET},key=app/2.0.bin,version={version}}}", "--destination",
                         f"s3={{bucketName={BUCKET},prefix=signed/}}", "--profile-name", "fleet_fw")[1]
    job = server.aws("signer", "describe-signing-job", "--job-id", started["jobId"])[1]
    assert job["status"] == "Succeeded" and job["platformId"] == "AmazonFreeRTOS-Default"
    assert job["signedObject"]["s3"] == {"bucketName": BUCKET, "key": "signed/" + started["jobId"]}
    signed_path = tmp_path / "signed.json"
    server.aws("s3", "cp", f"s3://{BUCKET}/signed/{started['jobId']}", str(signed_path))
    signed = json.loads(signed_path.read_text())
    assert signed["rawPayloadSize"] == len(image) and signed["signatureAlgorithm"] == "SHA256withECDSA"
    assert base64.b64decode(signed["payload"]) == image
    assert [j["jobId"] for j in server.aws("signer", "list-signing-jobs")[1]["jobs"]] == [started["jobId"]]

    thing_arn = server.aws("iot", "create-thing", "--thing-name", "ota-dev")[1]["thingArn"]
    files = [{"fileName": "/fw/app.bin", "fileType": 1,
              "fileLocation": {"s3Location": {"bucket": BUCKET, "key": "app/2.0.bin", "version": version}},
              "codeSigning": {"awsSignerJobId": started["jobId"]}}]
    created = server.aws("iot", "create-ota-update", "--ota-update-id", "fw-2-0", "--targets", thing_arn,
                         "--protocols", "MQTT", "HTTP", "--role-arn", ROLE, "--files", json.dumps(files),
                         "--aws-job-abort-config",
                         "abortCriteriaList=[{failureType=FAILED,action=CANCEL,thresholdPercentage=50,minNumberOfExecutedThings=1}]",
                         "--aws-job-executions-rollout-config", "maximumPerMinute=100")[1]
    assert created["otaUpdateStatus"] == "CREATE_PENDING" and created["awsIotJobId"] == "AFR_OTA-fw-2-0"
    info = wait_created(server, "fw-2-0")
    assert info["otaUpdateStatus"] == "CREATE_COMPLETE", info
    described = server.aws("iot", "describe-job", "--job-id", "AFR_OTA-fw-2-0")[1]["job"]
    assert described["jobExecutionsRolloutConfig"]["maximumPerMinute"] == 100
    assert described["abortConfig"]["criteriaList"][0]["thresholdPercentage"] == 50
    doc = json.loads(server.aws("iot", "get-job-document", "--job-id", "AFR_OTA-fw-2-0")[1]["document"])
    afr = doc["afr_ota"]
    assert afr["protocols"] == ["MQTT", "HTTP"] and afr["streamname"].startswith("AFR_OTA-")
    f = afr["files"][0]
    assert (f["filepath"], f["filesize"], f["fileid"], f["certfile"], f["fileType"]) == \
        ("/fw/app.bin", len(image), 0, "/certs/code.pem", 1)
    assert f["sig-sha256-ecdsa"] == signed["signature"] and f["auth_scheme"] == "aws.s3.presigned"
    # The stream belongs to the update.
    rc, err = server.aws("iot", "delete-stream", "--stream-id", afr["streamname"], check=False)
    assert rc != 0 and "DeleteConflictException" in err

    dev = OtaDevice(server, "ota-dev", cert.read_bytes())
    execution = dev.next_job()
    assert execution["jobId"] == "AFR_OTA-fw-2-0"
    got = execution["jobDocument"]["afr_ota"]["files"][0]
    assert got["update_data_url"].startswith("https://localhost:")  # the placeholder replaced for the device
    by_mqtt = dev.download_mqtt(afr["streamname"], got["fileid"], got["filesize"])
    by_https = dev.download_https(got["update_data_url"])
    assert by_mqtt == image and by_https == image
    assert dev.verifies(by_mqtt, got["sig-sha256-ecdsa"])
    dev.report("AFR_OTA-fw-2-0", "IN_PROGRESS", {"self_test": "ready", "updatedBy": "0x20000"})
    dev.report("AFR_OTA-fw-2-0", "SUCCEEDED", {"reason": "accepted v2.0"})
    execution = server.aws("iot", "describe-job-execution", "--job-id", "AFR_OTA-fw-2-0", "--thing-name", "ota-dev")[1]
    assert execution["execution"]["status"] == "SUCCEEDED"
    assert execution["execution"]["statusDetails"]["detailsMap"] == {"reason": "accepted v2.0"}

    listed = server.aws("iot", "list-ota-updates")[1]["otaUpdates"]
    assert [u["otaUpdateId"] for u in listed] == ["fw-2-0"]
    server.aws("iot", "delete-ota-update", "--ota-update-id", "fw-2-0", "--delete-stream", "--force-delete-aws-job")
    rc, err = server.aws("iot", "describe-stream", "--stream-id", afr["streamname"], check=False)
    assert rc != 0 and "ResourceNotFoundException" in err
    rc, err = server.aws("iot", "describe-job", "--job-id", "AFR_OTA-fw-2-0", check=False)
    assert rc != 0 and "ResourceNotFoundException" in err


def test_custom_signature_and_a_tampered_image(server, tmp_path):
    # The operator signs with openssl; the image in the store is not the one signed: the device's
    # verification fails and it reports FAILED, which fails the execution (and the rollout's abort).
    cert, key = code_signing_pair(tmp_path)
    signed_image, stored_image = os.urandom(4000), os.urandom(4000)
    (tmp_path / "signed.bin").write_bytes(signed_image)
    sig = subprocess.run(["openssl", "dgst", "-sha256", "-sign", str(key), str(tmp_path / "signed.bin")],
                         check=True, capture_output=True).stdout
    upload(server, tmp_path, "app/evil.bin", stored_image)
    thing_arn = server.aws("iot", "create-thing", "--thing-name", "ota-dev2")[1]["thingArn"]
    files = [{"fileName": "app.bin", "fileLocation": {"s3Location": {"bucket": BUCKET, "key": "app/evil.bin"}},
              "codeSigning": {"customCodeSigning": {
                  "signature": {"inlineDocument": base64.b64encode(sig).decode()},
                  "certificateChain": {"certificateName": "code.crt"},
                  "hashAlgorithm": "SHA256", "signatureAlgorithm": "ECDSA"}}}]
    server.aws("iot", "create-ota-update", "--ota-update-id", "tampered", "--targets", thing_arn, "--role-arn", ROLE,
               "--files", json.dumps(files))
    assert wait_created(server, "tampered")["otaUpdateStatus"] == "CREATE_COMPLETE"
    dev = OtaDevice(server, "ota-dev2", cert.read_bytes())
    execution = dev.next_job()
    f = execution["jobDocument"]["afr_ota"]["files"][0]
    assert execution["jobDocument"]["afr_ota"]["protocols"] == ["MQTT"] and "update_data_url" not in f
    assert f["sig-sha256-ecdsa"] == base64.b64encode(sig).decode() and f["certfile"] == "code.crt"
    image = dev.download_mqtt(execution["jobDocument"]["afr_ota"]["streamname"], f["fileid"], f["filesize"])
    assert image == stored_image and dev.verifies(signed_image, f["sig-sha256-ecdsa"])
    assert not dev.verifies(image, f["sig-sha256-ecdsa"])
    dev.report("AFR_OTA-tampered", "FAILED", {"reason": "signature check failed"})
    status = server.aws("iot", "describe-job-execution", "--job-id", "AFR_OTA-tampered", "--thing-name", "ota-dev2")[1]
    assert status["execution"]["status"] == "FAILED"


def test_failures_are_reported_in_error_info(server, tmp_path):
    thing_arn = server.aws("iot", "create-thing", "--thing-name", "d3")[1]["thingArn"]
    server.aws("s3", "mb", "s3://" + BUCKET)
    missing = [{"fileName": "x", "fileLocation": {"s3Location": {"bucket": BUCKET, "key": "nope.bin"}}}]
    server.aws("iot", "create-ota-update", "--ota-update-id", "broken", "--targets", thing_arn, "--role-arn", ROLE,
               "--files", json.dumps(missing))
    info = wait_created(server, "broken")
    assert info["otaUpdateStatus"] == "CREATE_FAILED"
    assert info["errorInfo"]["code"] == "InvalidRequest" and "nope.bin" in info["errorInfo"]["message"]
    rc, err = server.aws("iot", "create-ota-update", "--ota-update-id", "broken", "--targets", thing_arn,
                         "--role-arn", ROLE, "--files", json.dumps(missing), check=False)
    assert rc != 0 and "ResourceAlreadyExistsException" in err
    # A signing job whose source is missing fails, and says why.
    cert, key = code_signing_pair(tmp_path)
    arn = import_certificate(server, cert, key)
    server.aws("signer", "put-signing-profile", "--profile-name", "p2", "--platform-id", "AmazonFreeRTOS-Default",
               "--signing-material", "certificateArn=" + arn)
    job = server.aws("signer", "start-signing-job", "--source", f"s3={{bucketName={BUCKET},key=nope.bin,version=null}}",
                     "--destination", f"s3={{bucketName={BUCKET}}}", "--profile-name", "p2")[1]
    described = server.aws("signer", "describe-signing-job", "--job-id", job["jobId"])[1]
    assert described["status"] == "Failed" and "nope.bin" in described["statusReason"]
    rc, err = server.aws("signer", "put-signing-profile", "--profile-name", "p3", "--platform-id", "AWSLambda-SHA384-ECDSA",
                         "--signing-material", "certificateArn=" + arn, check=False)
    assert rc != 0 and "ValidationException" in err
    server.aws("signer", "cancel-signing-profile", "--profile-name", "p2")
    assert server.aws("signer", "get-signing-profile", "--profile-name", "p2")[1]["status"] == "Canceled"
    # A restart keeps profiles, jobs and updates.
    server.restart()
    assert server.aws("iot", "get-ota-update", "--ota-update-id", "broken")[1]["otaUpdateInfo"]["otaUpdateStatus"] == "CREATE_FAILED"
    assert server.aws("signer", "describe-signing-job", "--job-id", job["jobId"])[1]["status"] == "Failed"


def test_malformed_requests_are_refused_and_the_server_stays_up(server, tmp_path):
    from test_hardening_api import send, signed
    thing_arn = server.aws("iot", "create-thing", "--thing-name", "d4")[1]["thingArn"]
    for files in ([{"fileLocation": {"s3Location": "x"}}], [{"fileLocation": {"stream": 7}}],
                  [{"fileLocation": {"s3Location": {"bucket": BUCKET}}}], "files"):
        body = json.dumps({"targets": [thing_arn], "roleArn": ROLE, "files": files}).encode()
        status, error, _ = send(server, "POST", "/otaUpdates/bad", signed(server, "POST", "/otaUpdates/bad", body,
                                                                           service="execute-api"), body)
        assert (status, error) == (400, "InvalidRequestException"), files
    # The signer refuses a validity whose end is past any date.
    cert, key = code_signing_pair(tmp_path)
    arn = import_certificate(server, cert, key)
    rc, err = server.aws("signer", "put-signing-profile", "--profile-name", "p5", "--platform-id", "AmazonFreeRTOS-Default",
                         "--signing-material", "certificateArn=" + arn, "--signature-validity-period",
                         "value=1000000000000,type=YEARS", check=False)
    assert rc != 0 and "ValidationException" in err
    assert server.aws("iot", "list-ota-updates")[1]["otaUpdates"] == []


def test_a_stream_file_is_signed_as_streamed(server, tmp_path):
    # The stream captured the latest version; signing it by startSigningJobParameter signs that
    # version, not the "null" one made before versioning.
    cert, key = code_signing_pair(tmp_path)
    arn = import_certificate(server, cert, key)
    server.aws("s3", "mb", "s3://" + BUCKET)
    upload(server, tmp_path, "fw.bin", b"old image before versioning")
    server.aws("s3api", "put-bucket-versioning", "--bucket", BUCKET, "--versioning-configuration", "Status=Enabled")
    image = os.urandom(3000)
    upload(server, tmp_path, "fw.bin", image)
    server.aws("iot", "create-stream", "--stream-id", "s-fw", "--role-arn", ROLE, "--files",
               json.dumps([{"fileId": 4, "s3Location": {"bucket": BUCKET, "key": "fw.bin"}}]))
    thing_arn = server.aws("iot", "create-thing", "--thing-name", "d5")[1]["thingArn"]
    files = [{"fileName": "fw", "fileLocation": {"stream": {"streamId": "s-fw", "fileId": 4}},
              "codeSigning": {"startSigningJobParameter": {
                  "signingProfileName": "made_here",
                  "signingProfileParameter": {"certificateArn": arn, "platform": "AmazonFreeRTOS-Default",
                                              "certificatePathOnDevice": "/c.pem"},
                  "destination": {"s3Destination": {"bucket": BUCKET, "prefix": "signed/"}}}}}]
    server.aws("iot", "create-ota-update", "--ota-update-id", "from-stream", "--targets", thing_arn, "--role-arn", ROLE,
               "--files", json.dumps(files))
    assert wait_created(server, "from-stream")["otaUpdateStatus"] == "CREATE_COMPLETE"
    afr = json.loads(server.aws("iot", "get-job-document", "--job-id", "AFR_OTA-from-stream")[1]["document"])["afr_ota"]
    assert afr["streamname"] == "s-fw" and afr["files"][0]["fileid"] == 4 and afr["files"][0]["certfile"] == "/c.pem"
    dev = OtaDevice(server, "d5", cert.read_bytes())
    got = dev.download_mqtt("s-fw", 4, afr["files"][0]["filesize"])
    assert got == image and dev.verifies(got, afr["files"][0]["sig-sha256-ecdsa"])
    # Deleting the update and creating it again signs again (a new signing job, not the old one).
    jobs_before = len(server.aws("signer", "list-signing-jobs")[1]["jobs"])
    server.aws("iot", "delete-ota-update", "--ota-update-id", "from-stream", "--force-delete-aws-job")
    server.aws("iot", "create-ota-update", "--ota-update-id", "from-stream", "--targets", thing_arn, "--role-arn", ROLE,
               "--files", json.dumps(files))
    assert wait_created(server, "from-stream")["otaUpdateStatus"] == "CREATE_COMPLETE"
    assert len(server.aws("signer", "list-signing-jobs")[1]["jobs"]) == jobs_before + 1
