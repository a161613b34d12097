"""One S3 object, fetched with the standard library: a GET signed with AWS Signature Version 4.

The model is one GetObject per execution environment. botocore's client for it cost more of
every cold start than any other phase (its import and its S3 service model's JSON: 0.3-0.6 s
in make bench), and the request needs none of that. This module signs the GET as botocore
does (tests check it against botocore and against AWS's published example), takes the
credentials Lambda provides (the environment, or the container endpoint that SnapStart
functions get instead), and fails in bounded time: 2 s to connect, 5 s per read, one retry.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import hmac
import http.client
import ipaddress
import json
import os
import re
import socket
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urlsplit

CONNECT_TIMEOUT_S = 2.0
READ_TIMEOUT_S = 5.0
ATTEMPTS = 2  # the first try and one retry, before any byte of the body
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
_RETRIED_STATUSES = {429, 500, 502, 503, 504}
# Hosts a container-credentials URI may name over plain http (as botocore allows): the
# loopback, and the ECS/EKS link-local agents.
_CREDENTIAL_HOSTS = {"localhost", "169.254.170.2", "169.254.170.23", "fd00:ec2::23"}


class S3Error(Exception):
    """The object cannot be fetched; the message says why (an S3 error code, or the fault)."""


@dataclass(frozen=True)
class Credentials:
    access_key: str
    secret_key: str
    token: str | None = None

    def __repr__(self) -> str:  # never the secret, should it reach a log
        return f"Credentials(access_key={self.access_key!r}, secret_key=***)"


@dataclass
class S3Object:
    """An object being read: its user metadata (x-amz-meta-*), its length, its bytes."""

    metadata: dict[str, str]
    length: int
    response: http.client.HTTPResponse

    def chunks(self, size: int = 1 << 20) -> Iterator[bytes]:
        received = 0
        try:
            while chunk := self.response.read(size):
                received += len(chunk)
                yield chunk
        except (OSError, http.client.HTTPException) as exc:
            raise S3Error(_fault(exc)) from exc
        if received != self.length:
            raise S3Error(f"the connection closed after {received} of {self.length} bytes")


def credentials(environ: Mapping[str, str] = os.environ) -> Credentials:
    """Lambda's credentials: the environment's keys, or (SnapStart, ECS) the container
    endpoint named by AWS_CONTAINER_CREDENTIALS_FULL_URI / _RELATIVE_URI."""
    key, secret = environ.get("AWS_ACCESS_KEY_ID"), environ.get("AWS_SECRET_ACCESS_KEY")
    if key and secret:
        return Credentials(key, secret, environ.get("AWS_SESSION_TOKEN") or None)
    uri = environ.get("AWS_CONTAINER_CREDENTIALS_FULL_URI")
    if not uri and environ.get("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"):
        uri = "http://169.254.170.2" + environ["AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"]
    if not uri:
        raise S3Error("no AWS credentials: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are unset")
    return _container_credentials(uri, environ)


def _container_credentials(uri: str, environ: Mapping[str, str]) -> Credentials:
    parts = urlsplit(uri)
    if parts.scheme != "https" and not (parts.scheme == "http" and _local(parts.hostname)):
        raise S3Error("the container credentials URI must be https or a local http address")
    token = environ.get("AWS_CONTAINER_AUTHORIZATION_TOKEN")
    if not token and environ.get("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"):
        token = Path(environ["AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"]).read_text().strip()
    headers = {"Accept": "application/json", **({"Authorization": token} if token else {})}
    try:
        connection = _connection(parts)
        try:
            connection.request("GET", parts.path + (f"?{parts.query}" if parts.query else ""),
                               headers=headers)
            response = connection.getresponse()
            body = response.read(1 << 16)
        finally:
            connection.close()
        if response.status != 200:
            raise S3Error(f"the container credentials endpoint answered {response.status}")
        values = json.loads(body)
        return Credentials(values["AccessKeyId"], values["SecretAccessKey"], values.get("Token"))
    except (OSError, http.client.HTTPException, ValueError, KeyError, TypeError) as exc:
        raise S3Error(f"cannot read the container credentials: {_fault(exc)}") from exc


def _local(host: str | None) -> bool:
    if host in _CREDENTIAL_HOSTS:
        return True
    try:
        return ipaddress.ip_address(host or "").is_loopback
    except ValueError:
        return False


def object_url(bucket: str, key: str, region: str, endpoint: str | None = None) -> str:
    """The GET's URL: path-style on a configured endpoint (a local S3), else S3's regional
    virtual-hosted address (path-style for bucket names with dots, which TLS cannot match)."""
    path = quote(key, safe="/-_.~")
    if endpoint:
        return f"{endpoint.rstrip('/')}/{bucket}/{path}"
    domain = "amazonaws.com.cn" if region.startswith("cn-") else "amazonaws.com"
    if "." in bucket:
        return f"https://s3.{region}.{domain}/{bucket}/{path}"
    return f"https://{bucket}.s3.{region}.{domain}/{path}"


def signed_headers(method: str, url: str, region: str, creds: Credentials, now: dt.datetime,
                   headers: Mapping[str, str] | None = None,
                   payload_sha256: str = EMPTY_SHA256) -> dict[str, str]:
    """The request's headers with Signature Version 4 for S3 added (Authorization,
    x-amz-date, x-amz-content-sha256, and x-amz-security-token for temporary credentials).
    `url` must be encoded already (object_url does it)."""
    parts = urlsplit(url)
    amz_date = now.astimezone(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    day = amz_date[:8]
    signed = {name.lower(): " ".join(str(value).split()) for name, value in (headers or {}).items()}
    default_port = {"http": 80, "https": 443}[parts.scheme]
    signed["host"] = parts.hostname if parts.port in (None, default_port) else parts.netloc
    signed.update({"x-amz-date": amz_date, "x-amz-content-sha256": payload_sha256})
    if creds.token:
        signed["x-amz-security-token"] = creds.token
    names = sorted(signed)
    query = "&".join(sorted(
        f"{quote(k, safe='-_.~')}={quote(v, safe='-_.~')}"
        for k, _, v in (pair.partition("=") for pair in parts.query.split("&") if pair)))
    canonical = "\n".join([method, parts.path or "/", query,
                           "".join(f"{name}:{signed[name]}\n" for name in names),
                           ";".join(names), payload_sha256])
    scope = f"{day}/{region}/s3/aws4_request"
    to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope,
                         hashlib.sha256(canonical.encode()).hexdigest()])
    signature = sign(creds, day, region, to_sign)
    signed["authorization"] = (f"AWS4-HMAC-SHA256 Credential={creds.access_key}/{scope}, "
                               f"SignedHeaders={';'.join(names)}, Signature={signature}")
    return signed


def sign(creds: Credentials, day: str, region: str, text: str) -> str:
    """Signature Version 4 of `text` for S3 on `day` (YYYYMMDD) in `region`: a request's
    string to sign, or a presigned POST's policy."""
    key = ("AWS4" + creds.secret_key).encode()
    for part in (day, region, "s3", "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return hmac.new(key, text.encode(), hashlib.sha256).hexdigest()


@contextlib.contextmanager
def get_object(bucket: str, key: str,
               environ: Mapping[str, str] = os.environ) -> Iterator[S3Object]:
    """GetObject, as an S3Object open for reading. Raises S3Error."""
    region = environ.get("AWS_REGION") or environ.get("AWS_DEFAULT_REGION")
    if not region:
        raise S3Error("no AWS region: AWS_REGION is unset")
    endpoint = environ.get("AWS_ENDPOINT_URL_S3") or environ.get("AWS_ENDPOINT_URL")
    url = object_url(bucket, key, region, endpoint)
    creds = credentials(environ)
    parts = urlsplit(url)
    failure = "no attempt"
    for _ in range(ATTEMPTS):
        connection = _connection(parts)
        try:
            connection.connect()
            connection.sock.settimeout(READ_TIMEOUT_S)
            connection.request("GET", parts.path, headers=signed_headers(
                "GET", url, region, creds, dt.datetime.now(dt.UTC)))
            response = connection.getresponse()
            if response.status != 200:
                failure = _error_code(response)
        except (OSError, http.client.HTTPException) as exc:
            connection.close()
            failure = _fault(exc)
            continue
        if response.status == 200:
            try:  # the caller's own errors (a full disk) pass through, never retried
                yield S3Object(
                    {name[len("x-amz-meta-"):].lower(): value
                     for name, value in response.getheaders()
                     if name.lower().startswith("x-amz-meta-")},
                    int(response.getheader("Content-Length", "-1")), response)
            finally:
                connection.close()
            return
        connection.close()
        if response.status not in _RETRIED_STATUSES:
            break
    raise S3Error(failure)


def _connection(parts) -> http.client.HTTPConnection:
    kind = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    return kind(parts.hostname, parts.port, timeout=CONNECT_TIMEOUT_S)


def _error_code(response: http.client.HTTPResponse) -> str:
    """S3's error code from its XML answer (NoSuchKey, AccessDenied, ...), or the status."""
    body = response.read(1 << 16).decode("utf-8", "replace")
    found = re.search(r"<Code>([A-Za-z0-9.]{1,64})</Code>", body)
    code = found.group(1) if found else f"HTTP {response.status}"
    if code == "PermanentRedirect":
        code += " (the bucket is in another region than AWS_REGION)"
    return code


def _fault(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError | socket.timeout):
        return "timeout: S3 did not answer in time"
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
