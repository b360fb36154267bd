"""SigV4 on the HTTP API beyond a valid signature: the credential scope must name the configured
region and the signing name botocore's model gives the operation's API (execute-api for iot,
iotdata for iot-data), and the path routed must be the path signed (no dot or empty segments), so a
captured request cannot be replayed onto another topic."""
import http.client
import json
import socket
import ssl

import boto3
import botocore.auth
import botocore.awsrequest
import botocore.credentials
import botocore.exceptions
import pytest

from helpers import Client

REFUSED = "fleetcore_api_unauthenticated_total"


def signed(server, method, path, body=b"", service="iotdata", region="us-east-1"):
    """Headers botocore's SigV4Auth (the aws CLI's signer) puts on `method path`."""
    key, secret = server.credentials()
    req = botocore.awsrequest.AWSRequest(method=method, url=server.api_url + path, data=body)
    botocore.auth.SigV4Auth(botocore.credentials.Credentials(key, secret), service, region).add_auth(req)
    return dict(req.prepare().headers)


def send(server, method, path, headers, body=b""):
    """Sends `path` exactly as given (http.client does not normalize it): (status, error type, JSON)."""
    conn = http.client.HTTPSConnection("localhost", server.ports["api"], timeout=10,
                                       context=ssl.create_default_context(cafile=server.ca))
    conn.request(method, path, body=body, headers=headers)
    r = conn.getresponse()
    text = r.read()
    conn.close()
    return r.status, r.getheader("x-amzn-ErrorType"), json.loads(text) if text else {}


def test_signed_publish_cannot_be_replayed_onto_another_path(server):
    sub = Client(server.port, "watcher")
    sub.connect()
    sub.subscribe("things/#", 1)
    before = server.metric(REFUSED)
    headers = signed(server, "POST", "/topics/things/dev2/cmd", b"open")
    replays = ["/topics/things/dev1/../dev2/cmd", "/topics/things//dev2/cmd", "/topics/things/./dev2/cmd"]
    for replay in replays:
        status, error, _ = send(server, "POST", replay, headers, b"open")
        assert (status, error) == (400, "InvalidRequestException"), replay
    assert server.metric(REFUSED) == before + len(replays)
    # The request as signed is delivered, and it is the first message the watcher sees.
    assert send(server, "POST", "/topics/things/dev2/cmd", headers, b"open")[0] == 200
    m = sub.get()
    assert (m.topic, m.payload) == ("things/dev2/cmd", b"open")
    # Encoded slashes are data: signed and routed as the same topic.
    path = "/topics/things%2Fdev3%2F..%2Fcmd"
    assert send(server, "POST", path, signed(server, "POST", path, b"x"), b"x")[0] == 200
    assert sub.get().topic == "things/dev3/../cmd"
    sub.disconnect()


@pytest.mark.parametrize("method, path, service, region", [
    ("GET", "/things", "iot", "us-east-1"),  # the iot model's signing name is execute-api
    ("GET", "/things", "iotdata", "us-east-1"),
    ("POST", "/topics/t", "execute-api", "us-east-1"),
    ("POST", "/topics/t", "iot", "us-east-1"),
    ("GET", "/things", "execute-api", "eu-west-1"),
    ("POST", "/topics/t", "iotdata", "eu-west-1"),
])
def test_credential_scope_of_another_service_or_region_is_refused(server, method, path, service, region):
    before = server.metric(REFUSED)
    body = b"" if method == "GET" else b"x"
    status, error, out = send(server, method, path, signed(server, method, path, body, service, region), body)
    assert (status, error) == (403, "InvalidSignatureException")
    assert server.metric(REFUSED) == before + 1
    # The same request scoped correctly passes.
    right = "execute-api" if path == "/things" else "iotdata"
    assert send(server, method, path, signed(server, method, path, body, right), body)[0] == 200


def test_boto3_in_another_region_is_refused_and_the_clients_still_work(server):
    key, secret = server.credentials()
    other = boto3.client("iot", endpoint_url=server.api_url, region_name="eu-west-1", aws_access_key_id=key,
                         aws_secret_access_key=secret, verify=server.ca)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        other.list_things()
    assert e.value.response["Error"]["Code"] == "InvalidSignatureException"
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    # The aws CLI and boto3, scoped as their models say, are unaffected.
    server.aws("iot", "create-thing", "--thing-name", "dev-1")
    assert server.iot().describe_thing(thingName="dev-1")["thingName"] == "dev-1"
    sub = Client(server.port, "watcher")
    sub.connect()
    sub.subscribe("alerts/#", 1)
    data = boto3.client("iot-data", endpoint_url=server.api_url, region_name="us-east-1", aws_access_key_id=key,
                        aws_secret_access_key=secret, verify=server.ca)
    data.publish(topic="alerts/a", qos=1, payload=b"boto3")
    server.aws("iot-data", "publish", "--topic", "alerts/b", "--qos", "1", "--cli-binary-format", "raw-in-base64-out",
               "--payload", "cli")
    assert [(m.topic, m.payload) for m in (sub.get(), sub.get())] == [("alerts/a", b"boto3"), ("alerts/b", b"cli")]
    sub.disconnect()


def test_a_body_over_the_limit_is_refused_before_it_is_read(server):
    # Only the object store streams bodies; an IoT API request declaring more than 1 MiB gets 413 at
    # once, whether signed or not, and an S3 request of the same size goes through.
    body = b"x" * (2 * 1024 * 1024)
    headers = signed(server, "POST", "/topics/t", body)
    with socket.create_connection(("localhost", server.ports["api"]), timeout=10) as raw:
        with ssl.create_default_context(cafile=server.ca).wrap_socket(raw, server_hostname="localhost") as tls:
            head = "POST /topics/t HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items())
            tls.sendall(head.encode() + b"\r\n")  # the head only: the answer must not wait for the body
            answer = tls.recv(4096).decode()
    assert answer.startswith("HTTP/1.1 413") and "x-amzn-ErrorType: InvalidRequestException" in answer
    s3 = server.client("s3")
    s3.create_bucket(Bucket="big-bodies")
    s3.put_object(Bucket="big-bodies", Key="k", Body=body)
    assert s3.head_object(Bucket="big-bodies", Key="k")["ContentLength"] == len(body)
