"""The object store's S3 API (issue 13), driven by Debian's aws CLI, boto3 and curl."""
import datetime
import hashlib
import http.client
import os
import ssl
import subprocess
import unittest.mock

import botocore.auth
import botocore.config
import botocore.credentials
import botocore.exceptions
import pytest
from botocore.awsrequest import AWSRequest

from conftest import wait_for


def curl(server, url, *args):
    """(HTTP status, body) of a curl request to the API listener."""
    r = subprocess.run(["curl", "-s", "--cacert", server.ca, "-o", "-", "-w", "\n%{http_code}", *args,
                        server.api_url + url], capture_output=True, timeout=30)
    body, _, status = r.stdout.rpartition(b"\n")
    return int(status), body


def test_cli_round_trip(server, tmp_path):
    data = os.urandom(100_000)
    src = tmp_path / "f.bin"
    src.write_bytes(data)
    server.aws("s3", "mb", "s3://fleet-images")
    server.aws("s3", "cp", str(src), "s3://fleet-images/dir/f w+ü.bin")
    _, listing = server.aws("s3", "ls", "s3://fleet-images/")
    assert listing.split() == ["PRE", "dir/"]
    _, listed = server.aws("s3api", "list-objects-v2", "--bucket", "fleet-images")
    assert [(o["Key"], o["Size"]) for o in listed["Contents"]] == [("dir/f w+ü.bin", len(data))]
    assert listed["Contents"][0]["ETag"] == '"%s"' % hashlib.md5(data).hexdigest()

    dst = tmp_path / "g.bin"
    server.aws("s3", "cp", "s3://fleet-images/dir/f w+ü.bin", str(dst))
    assert dst.read_bytes() == data
    _, head = server.aws("s3api", "head-object", "--bucket", "fleet-images", "--key", "dir/f w+ü.bin")
    assert head["ContentLength"] == len(data) and head["AcceptRanges"] == "bytes"
    part = tmp_path / "part.bin"
    _, got = server.aws("s3api", "get-object", "--bucket", "fleet-images", "--key", "dir/f w+ü.bin",
                        "--range", "bytes=99990-", str(part))
    assert got["ContentRange"] == "bytes 99990-99999/100000"
    assert part.read_bytes() == data[99990:]

    rc, err = server.aws("s3", "rb", "s3://fleet-images", check=False)
    assert rc != 0 and "BucketNotEmpty" in err
    server.aws("s3", "rm", "s3://fleet-images/dir/f w+ü.bin")
    rc, err = server.aws("s3api", "head-object", "--bucket", "fleet-images", "--key", "dir/f w+ü.bin", check=False)
    assert rc != 0 and "404" in err
    server.aws("s3", "rb", "s3://fleet-images")
    _, buckets = server.aws("s3api", "list-buckets")
    assert buckets["Buckets"] == []


def test_boto3_pages_metadata_and_errors(server):
    s3 = server.client("s3")
    s3.create_bucket(Bucket="fleet-logs")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        s3.create_bucket(Bucket="fleet-logs")
    assert e.value.response["Error"]["Code"] == "BucketAlreadyOwnedByYou"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        s3.create_bucket(Bucket="Not_Valid")
    assert e.value.response["Error"]["Code"] == "InvalidBucketName"

    keys = [f"d{i % 3}/k{i:02d}" for i in range(20)] + ["top1", "top2"]
    for k in keys:
        s3.put_object(Bucket="fleet-logs", Key=k, Body=k.encode())
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket="fleet-logs", PaginationConfig={"PageSize": 4})
    listed = [o["Key"] for p in pages for o in p.get("Contents", [])]
    assert listed == sorted(keys)
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket="fleet-logs", Delimiter="/",
                                                         PaginationConfig={"PageSize": 2})
    prefixes, top = [], []
    for p in pages:
        prefixes += [c["Prefix"] for c in p.get("CommonPrefixes", [])]
        top += [o["Key"] for o in p.get("Contents", [])]
    assert prefixes == ["d0/", "d1/", "d2/"] and top == ["top1", "top2"]

    s3.put_object(Bucket="fleet-logs", Key="meta", Body=b"{}", ContentType="application/json",
                  Metadata={"Firmware": "1.2.3"}, CacheControl="no-cache")
    got = s3.get_object(Bucket="fleet-logs", Key="meta")
    assert got["Body"].read() == b"{}"
    assert got["ContentType"] == "application/json" and got["CacheControl"] == "no-cache"
    assert got["Metadata"] == {"firmware": "1.2.3"}
    got = s3.get_object(Bucket="fleet-logs", Key="meta", ResponseContentType="text/plain")
    assert got["ContentType"] == "text/plain"

    with pytest.raises(botocore.exceptions.ClientError) as e:
        s3.put_object(Bucket="fleet-logs", Key="x", Body=b"abc", ContentMD5="XUFAKrxLKna5cZ2REBfFkg==")
    assert e.value.response["Error"]["Code"] == "BadDigest"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        s3.get_object(Bucket="fleet-logs", Key="x")
    assert e.value.response["Error"]["Code"] == "NoSuchKey"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        s3.put_object(Bucket="no-such-bucket", Key="x", Body=b"abc")
    assert e.value.response["Error"]["Code"] == "NoSuchBucket"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        s3.get_object(Bucket="fleet-logs", Key="meta", Range="bytes=5-")
    assert e.value.response["Error"]["Code"] == "InvalidRange"
    assert server.metric("fleetcore_s3_requests_total") > 0


def test_presigned_urls_work_until_they_expire(server):
    s3 = server.client("s3")
    s3.create_bucket(Bucket="fleet-ota")
    s3.put_object(Bucket="fleet-ota", Key="fw/image 1.bin", Body=b"firmware-bytes")
    for signature in ("s3", "s3v4"):  # boto3's default in us-east-1 is SigV2 ("s3")
        signer = server.client("s3", config=botocore.config.Config(signature_version=signature))
        url = signer.generate_presigned_url("get_object", Params={"Bucket": "fleet-ota", "Key": "fw/image 1.bin"},
                                            ExpiresIn=300)
        path = url[len(server.api_url):]
        assert curl(server, path) == (200, b"firmware-bytes"), signature
        status, body = curl(server, path.replace("image%201", "image%202"))
        assert status == 403 and b"SignatureDoesNotMatch" in body, signature

    # A SigV4 URL signed an hour ago for 60 seconds has expired.
    key, secret = server.credentials()
    hour_ago = datetime.datetime.utcnow() - datetime.timedelta(hours=1)

    class Then(datetime.datetime):
        @classmethod
        def utcnow(cls):
            return hour_ago

    with unittest.mock.patch("botocore.auth.datetime.datetime", Then):
        req = AWSRequest(method="GET", url=server.api_url + "/fleet-ota/fw/image%201.bin")
        botocore.auth.S3SigV4QueryAuth(botocore.credentials.Credentials(key, secret), "s3", "us-east-1",
                                       expires=60).add_auth(req)
    status, body = curl(server, req.url[len(server.api_url):])
    assert status == 403 and b"<Code>AccessDenied</Code>" in body and b"expired" in body


def test_objects_and_uploads_in_progress_survive_kill9(server, tmp_path):
    s3 = server.client("s3")
    s3.create_bucket(Bucket="fleet-keep")
    data = os.urandom(300_000)
    s3.put_object(Bucket="fleet-keep", Key="a", Body=data)
    up = s3.create_multipart_upload(Bucket="fleet-keep", Key="b")["UploadId"]
    part = s3.upload_part(Bucket="fleet-keep", Key="b", UploadId=up, PartNumber=1, Body=data[:1000])["ETag"]
    server.kill9()
    server.restart()
    s3 = server.client("s3")
    assert s3.get_object(Bucket="fleet-keep", Key="a")["Body"].read() == data
    assert [b["Name"] for b in s3.list_buckets()["Buckets"]] == ["fleet-keep"]
    s3.complete_multipart_upload(Bucket="fleet-keep", Key="b", UploadId=up,
                                 MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": part}]})
    assert s3.get_object(Bucket="fleet-keep", Key="b")["Body"].read() == data[:1000]
    # A range past the end is cut at the end, however large its numbers.
    got = s3.get_object(Bucket="fleet-keep", Key="a", Range="bytes=299990-18446744073709551615")
    assert got["ContentRange"] == "bytes 299990-299999/300000" and got["Body"].read() == data[299990:]


def test_cli_multipart_upload_of_a_large_file(server, tmp_path):
    # The CLI switches to multipart uploads at 8 MB: 20 MB go up as parts of 8, 8 and 4 MiB.
    data = os.urandom(20_000_000)
    src = tmp_path / "big.bin"
    src.write_bytes(data)
    server.aws("s3", "mb", "s3://fleet-big")
    server.aws("s3", "cp", str(src), "s3://fleet-big/fw/big.bin")
    _, head = server.aws("s3api", "head-object", "--bucket", "fleet-big", "--key", "fw/big.bin")
    mib = 8 * 1024 * 1024
    parts = [data[i:i + mib] for i in range(0, len(data), mib)]
    expected = hashlib.md5(b"".join(hashlib.md5(p).digest() for p in parts)).hexdigest() + "-3"
    assert head["ContentLength"] == len(data) and head["ETag"] == f'"{expected}"'
    dst = tmp_path / "back.bin"
    server.aws("s3", "cp", "s3://fleet-big/fw/big.bin", str(dst))  # ranged parallel downloads
    assert dst.read_bytes() == data


def test_multipart_rules_and_abort(server):
    s3 = server.client("s3")
    s3.create_bucket(Bucket="fleet-parts")
    up = s3.create_multipart_upload(Bucket="fleet-parts", Key="obj", ContentType="application/octet-stream",
                                    Metadata={"build": "7"})["UploadId"]
    small = s3.upload_part(Bucket="fleet-parts", Key="obj", UploadId=up, PartNumber=1, Body=b"a" * 100)["ETag"]
    last = s3.upload_part(Bucket="fleet-parts", Key="obj", UploadId=up, PartNumber=2, Body=b"b" * 10)["ETag"]

    def complete(parts):
        with pytest.raises(botocore.exceptions.ClientError) as e:
            s3.complete_multipart_upload(Bucket="fleet-parts", Key="obj", UploadId=up,
                                         MultipartUpload={"Parts": parts})
        return e.value.response["Error"]["Code"]

    assert complete([{"PartNumber": 1, "ETag": small}, {"PartNumber": 2, "ETag": last}]) == "EntityTooSmall"
    assert complete([{"PartNumber": 2, "ETag": last}, {"PartNumber": 1, "ETag": small}]) == "InvalidPartOrder"
    assert complete([{"PartNumber": 1, "ETag": last}]) == "InvalidPart"
    assert complete([{"PartNumber": 3, "ETag": last}]) == "InvalidPart"
    # One part of any size is a whole object.
    done = s3.complete_multipart_upload(Bucket="fleet-parts", Key="obj", UploadId=up,
                                        MultipartUpload={"Parts": [{"PartNumber": 2, "ETag": last}]})
    assert done["ETag"] == '"%s-1"' % hashlib.md5(hashlib.md5(b"b" * 10).digest()).hexdigest()
    got = s3.get_object(Bucket="fleet-parts", Key="obj")
    assert got["Body"].read() == b"b" * 10 and got["Metadata"] == {"build": "7"}
    with pytest.raises(botocore.exceptions.ClientError) as e:
        s3.upload_part(Bucket="fleet-parts", Key="obj", UploadId=up, PartNumber=1, Body=b"x")
    assert e.value.response["Error"]["Code"] == "NoSuchUpload"

    # An aborted upload leaves nothing behind, and a bucket with an upload in progress is not empty.
    up = s3.create_multipart_upload(Bucket="fleet-parts", Key="gone")["UploadId"]
    s3.upload_part(Bucket="fleet-parts", Key="gone", UploadId=up, PartNumber=1, Body=b"z" * 1000)
    s3.delete_object(Bucket="fleet-parts", Key="obj")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        s3.delete_bucket(Bucket="fleet-parts")
    assert e.value.response["Error"]["Code"] == "BucketNotEmpty"
    s3.abort_multipart_upload(Bucket="fleet-parts", Key="gone", UploadId=up)
    s3.delete_bucket(Bucket="fleet-parts")
    blobs = [f for _, _, files in os.walk(os.path.join(server.data_dir, "objects")) for f in files if len(f) == 64]
    assert blobs == []


def test_kill9_in_the_middle_of_an_upload_and_of_a_download(server, tmp_path):
    s3 = server.client("s3", config=botocore.config.Config(signature_version="s3v4"))
    s3.create_bucket(Bucket="fleet-crash")
    # Larger than the kernel's socket buffers (a few MB): a cut download cannot have been buffered whole.
    kept = os.urandom(32_000_000)
    s3.put_object(Bucket="fleet-crash", Key="fw.bin", Body=kept)

    # An upload cut by kill -9 halfway through its body: never acknowledged, never visible, and its
    # temporary file is gone after the restart; the object it would have replaced is intact.
    url = s3.generate_presigned_url("put_object", Params={"Bucket": "fleet-crash", "Key": "fw.bin"}, ExpiresIn=300)
    host, port = server.api_url[len("https://"):].rsplit(":", 1)
    ctx = ssl.create_default_context(cafile=server.ca)
    conn = http.client.HTTPSConnection(host, int(port), context=ctx, timeout=30)
    conn.putrequest("PUT", url[len(server.api_url):], skip_accept_encoding=True)
    conn.putheader("Content-Length", str(len(kept)))
    conn.endheaders()
    conn.send(os.urandom(3_000_000))
    tmp_dir = os.path.join(server.data_dir, "objects", "tmp")
    wait_for(lambda: any(os.path.getsize(os.path.join(tmp_dir, f)) > 0 for f in os.listdir(tmp_dir)),
             what="the upload's temporary file")

    # A download cut the same way: curl reading slowly.
    slow = subprocess.Popen(["curl", "-s", "--limit-rate", "200k", "--cacert", server.ca, "-o", str(tmp_path / "part"),
                             s3.generate_presigned_url("get_object", Params={"Bucket": "fleet-crash", "Key": "fw.bin"},
                                                       ExpiresIn=300)])
    wait_for(lambda: (tmp_path / "part").exists() and (tmp_path / "part").stat().st_size > 0, what="download started")
    server.kill9()
    slow.wait(timeout=30)
    conn.close()
    assert (tmp_path / "part").stat().st_size < len(kept)

    server.start()
    s3 = server.client("s3")
    assert s3.get_object(Bucket="fleet-crash", Key="fw.bin")["Body"].read() == kept
    assert os.listdir(tmp_dir) == []
    blobs = [f for d in os.listdir(os.path.join(server.data_dir, "objects")) if d != "tmp" and len(d) == 2
             for f in os.listdir(os.path.join(server.data_dir, "objects", d))]
    assert blobs == [hashlib.sha256(kept).hexdigest()]


def test_bucket_versioning_with_the_cli(server, tmp_path):
    server.aws("s3", "mb", "s3://fleet-versions")
    assert server.aws("s3api", "get-bucket-versioning", "--bucket", "fleet-versions")[1] == ""
    server.aws("s3api", "put-bucket-versioning", "--bucket", "fleet-versions",
               "--versioning-configuration", "Status=Enabled")
    assert server.aws("s3api", "get-bucket-versioning", "--bucket", "fleet-versions")[1] == {"Status": "Enabled"}
    v = []
    for i in range(2):
        (tmp_path / f"v{i}").write_bytes(b"image %d" % i)
        put = server.aws("s3api", "put-object", "--bucket", "fleet-versions", "--key", "fw.bin", "--body",
                         str(tmp_path / f"v{i}"))[1]
        v.append(put["VersionId"])
    assert v[0] != v[1]
    head = server.aws("s3api", "head-object", "--bucket", "fleet-versions", "--key", "fw.bin")[1]
    assert head["VersionId"] == v[1]
    server.aws("s3api", "get-object", "--bucket", "fleet-versions", "--key", "fw.bin", "--version-id", v[0],
               str(tmp_path / "old"))
    assert (tmp_path / "old").read_bytes() == b"image 0"

    deleted = server.aws("s3api", "delete-object", "--bucket", "fleet-versions", "--key", "fw.bin")[1]
    assert deleted["DeleteMarker"] is True
    rc, err = server.aws("s3api", "head-object", "--bucket", "fleet-versions", "--key", "fw.bin", check=False)
    assert rc != 0 and "404" in err
    listed = server.aws("s3api", "list-object-versions", "--bucket", "fleet-versions")[1]
    assert [(m["VersionId"], m["IsLatest"]) for m in listed["DeleteMarkers"]] == [(deleted["VersionId"], True)]
    assert [x["VersionId"] for x in listed["Versions"]] == [v[1], v[0]]
    page = server.client("s3").list_object_versions(Bucket="fleet-versions", MaxKeys=0)
    assert "Versions" not in page and "DeleteMarkers" not in page
    # Removing the marker by its id brings the object back; removing a version by id is for good.
    server.aws("s3api", "delete-object", "--bucket", "fleet-versions", "--key", "fw.bin", "--version-id",
               deleted["VersionId"])
    assert server.aws("s3api", "head-object", "--bucket", "fleet-versions", "--key", "fw.bin")[1]["VersionId"] == v[1]
    server.aws("s3api", "delete-object", "--bucket", "fleet-versions", "--key", "fw.bin", "--version-id", v[1])
    rc, err = server.aws("s3api", "get-object", "--bucket", "fleet-versions", "--key", "fw.bin", "--version-id", v[1],
                         str(tmp_path / "gone"), check=False)
    assert rc != 0 and "NoSuchVersion" in err
    assert server.aws("s3api", "head-object", "--bucket", "fleet-versions", "--key", "fw.bin")[1]["VersionId"] == v[0]
    # Versions survive a restart.
    server.restart()
    listed = server.aws("s3api", "list-object-versions", "--bucket", "fleet-versions")[1]
    assert [x["VersionId"] for x in listed["Versions"]] == [v[0]] and "DeleteMarkers" not in listed
