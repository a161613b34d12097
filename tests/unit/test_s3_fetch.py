"""The model's fetch without an AWS SDK: Signature Version 4 as AWS specifies it and botocore
computes it, the credentials Lambda provides, and S3's answers over real HTTP (moto's server)."""

from __future__ import annotations

import datetime as dt
import hashlib
import http.server
import json
import threading

import pytest
from certcorners import s3_fetch
from certcorners.s3_fetch import Credentials, S3Error

from tests.conftest import MODEL_BUCKET, put_package

EXAMPLE_CREDENTIALS = Credentials("AKIAIOSFODNN7EXAMPLE",
                                  "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")


def test_signature_matches_the_example_in_awss_s3_documentation():
    # "Example: GET Object" of S3's Signature Version 4 header-based authentication page.
    headers = s3_fetch.signed_headers(
        "GET", "https://examplebucket.s3.amazonaws.com/test.txt", "us-east-1",
        EXAMPLE_CREDENTIALS, dt.datetime(2013, 5, 24, tzinfo=dt.UTC),
        headers={"Range": "bytes=0-9"})
    assert headers["authorization"] == (
        "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, "
        "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, "
        "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41")


@pytest.mark.parametrize("key, token, endpoint", [
    ("models/reference-20261121/model.tar.gz", None, None),
    ("models/a key with spaces/Čeština+(1)/model.tar.gz", "session-token", None),
    ("models/v1/model.tar.gz", "session-token", "http://127.0.0.1:5055"),
])
def test_signature_matches_botocores(key, token, endpoint, monkeypatch):
    import botocore.auth
    from botocore.auth import S3SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials as BotocoreCredentials

    now = dt.datetime(2026, 11, 22, 9, 30, 15, tzinfo=dt.UTC)
    url = s3_fetch.object_url("my-models", key, "eu-central-1", endpoint)
    ours = s3_fetch.signed_headers("GET", url, "eu-central-1",
                                   Credentials("AKIDEXAMPLE", "secret", token), now)
    request = AWSRequest(method="GET", url=url,
                         headers={"X-Amz-Content-SHA256": s3_fetch.EMPTY_SHA256})
    signer = S3SigV4Auth(BotocoreCredentials("AKIDEXAMPLE", "secret", token), "s3",
                         "eu-central-1")
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda: now)  # its clock, pinned
    signer.add_auth(request)
    assert ours["authorization"] == request.headers["Authorization"]


def test_urls_follow_s3s_addressing():
    assert s3_fetch.object_url("models", "a b/m.tar.gz", "eu-west-1") == \
        "https://models.s3.eu-west-1.amazonaws.com/a%20b/m.tar.gz"
    assert s3_fetch.object_url("my.models", "m.tar.gz", "eu-west-1") == \
        "https://s3.eu-west-1.amazonaws.com/my.models/m.tar.gz"  # dots: TLS needs path style
    assert s3_fetch.object_url("models", "m", "cn-north-1").endswith(".amazonaws.com.cn/m")
    assert s3_fetch.object_url("models", "m", "us-east-1", "http://127.0.0.1:9/") == \
        "http://127.0.0.1:9/models/m"


def test_the_object_and_its_metadata_come_back_over_http(s3):
    data = bytes(range(256)) * 5000
    put_package(s3, data)
    with s3_fetch.get_object(MODEL_BUCKET, "models/reference/model.tar.gz") as response:
        assert response.metadata["sha256"] == hashlib.sha256(data).hexdigest()
        assert response.length == len(data)
        assert b"".join(response.chunks(4096)) == data


def test_s3s_refusals_name_their_code(s3, monkeypatch):
    with pytest.raises(S3Error, match="NoSuchKey"), \
            s3_fetch.get_object(MODEL_BUCKET, "models/none/model.tar.gz"):
        pass
    with pytest.raises(S3Error, match="NoSuchBucket"), \
            s3_fetch.get_object("no-such-bucket", "model.tar.gz"):
        pass


def test_missing_credentials_and_region_are_named(monkeypatch):
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_CONTAINER_CREDENTIALS_FULL_URI",
                 "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(S3Error, match="no AWS credentials"):
        s3_fetch.credentials()
    with pytest.raises(S3Error, match="no AWS region"), \
            s3_fetch.get_object("b", "k", environ={"AWS_ACCESS_KEY_ID": "a",
                                                   "AWS_SECRET_ACCESS_KEY": "b"}):
        pass


def test_credentials_from_the_environment_with_a_session_token():
    found = s3_fetch.credentials({"AWS_ACCESS_KEY_ID": "AKID", "AWS_SECRET_ACCESS_KEY": "sk",
                                  "AWS_SESSION_TOKEN": "tok"})
    assert found == Credentials("AKID", "sk", "tok")
    assert "sk" not in repr(found)


class _CredentialsEndpoint(http.server.BaseHTTPRequestHandler):
    """What Lambda serves SnapStart functions at AWS_CONTAINER_CREDENTIALS_FULL_URI."""

    def do_GET(self):
        if self.headers.get("Authorization") != "the-token":
            self.send_response(403)
            self.end_headers()
            return
        body = json.dumps({"AccessKeyId": "ASIA", "SecretAccessKey": "sk", "Token": "tok",
                           "Expiration": "2026-11-22T12:00:00Z"}).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def test_snapstarts_container_credentials_are_read_with_their_token(tmp_path):
    server = http.server.HTTPServer(("127.0.0.1", 0), _CredentialsEndpoint)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    uri = f"http://127.0.0.1:{server.server_address[1]}/2021-04-23/credentials"
    try:
        token_file = tmp_path / "token"
        token_file.write_text("the-token\n")
        assert s3_fetch.credentials({"AWS_CONTAINER_CREDENTIALS_FULL_URI": uri,
                                     "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE": str(token_file)}
                                    ) == Credentials("ASIA", "sk", "tok")
        with pytest.raises(S3Error, match="answered 403"):
            s3_fetch.credentials({"AWS_CONTAINER_CREDENTIALS_FULL_URI": uri,
                                  "AWS_CONTAINER_AUTHORIZATION_TOKEN": "wrong"})
    finally:
        server.shutdown()
        server.server_close()


def test_credentials_are_never_fetched_over_plain_http_from_a_remote_host():
    with pytest.raises(S3Error, match="https or a local"):
        s3_fetch.credentials({"AWS_CONTAINER_CREDENTIALS_FULL_URI": "http://example.com/creds"})
