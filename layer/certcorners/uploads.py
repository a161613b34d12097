"""Photos too large for a request body: a presigned S3 upload form, and the upload read back.

POST /v1/uploads answers a presigned POST (the form S3 accepts from a browser or curl) for one
new key under the upload prefix, capped in size by its policy. POST /v1/corners with
{"s3_key": ...} then reads that object. Standard library only, signed as botocore signs
(tests compare the two): the layer carries no boto3 (docs/performance.md).
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass

from certcorners import s3_fetch
from certcorners.errors import ApiError, BadRequest, PayloadTooLarge

EXPIRES_IN_S = 900  # long enough for a 40 MB upload on a slow phone connection
_KEY_NAME = re.compile(r"[0-9a-f]{32}\.(jpg|png|webp)")
EXTENSIONS = {"image/jpeg": "jpg", "image/png": "png", "image/webp": "webp"}


class UploadNotFound(ApiError):
    status, code = 404, "upload_not_found"


class UploadsUnavailable(ApiError):
    """The function has no upload bucket configured, or S3 cannot be reached. The reason
    names the bucket: it goes to the function's logs, not to clients."""

    status, code = 503, "uploads_unavailable"

    @property
    def client_message(self) -> str:
        return "uploads are not available right now; retry shortly"


@dataclass(frozen=True)
class UploadSettings:
    bucket: str
    prefix: str
    max_bytes: int

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] = os.environ) -> UploadSettings:
        from certcorners import settings

        prefix = environ.get("UPLOAD_PREFIX", "uploads/").strip() or "uploads/"
        if not prefix.endswith("/") or prefix.startswith("/"):
            raise ValueError(f"UPLOAD_PREFIX must be a folder like uploads/, got {prefix!r}")
        return cls(environ.get("UPLOAD_BUCKET", "").strip(), prefix,
                   settings.whole_number("MAX_UPLOAD_BYTES", 40_000_000, environ=environ))


def new_key(settings: UploadSettings, content_type: str) -> str:
    """A fresh, unguessable key for one upload of this media type."""
    if content_type not in EXTENSIONS:
        raise BadRequest(f"content_type must be one of {', '.join(EXTENSIONS)}")
    return f"{settings.prefix}{uuid.uuid4().hex}.{EXTENSIONS[content_type]}"


def checked_key(settings: UploadSettings, key: object) -> str:
    """The key a client sends back, accepted only as one POST /v1/uploads hands out."""
    if not isinstance(key, str):
        raise BadRequest('"s3_key" must be a string')
    if not (key.startswith(settings.prefix) and _KEY_NAME.fullmatch(key[len(settings.prefix):])):
        raise BadRequest(f'"s3_key" must be a key that POST /v1/uploads gave, like '
                         f'{settings.prefix}<32 hex digits>.jpg')
    return key


def presigned_post(settings: UploadSettings, key: str, environ: Mapping[str, str] = os.environ,
                   now: dt.datetime | None = None) -> dict:
    """{"url", "fields", "key", "expires_in", "max_bytes"}: POST the fields and then the file
    (as the form's last field, "file") to the url; S3 refuses bodies over max_bytes."""
    if not settings.bucket:
        raise UploadsUnavailable("uploads are not configured: UPLOAD_BUCKET is unset")
    region = environ.get("AWS_REGION") or environ.get("AWS_DEFAULT_REGION")
    if not region:
        raise UploadsUnavailable("no AWS region: AWS_REGION is unset")
    try:
        creds = s3_fetch.credentials(environ)
    except s3_fetch.S3Error as exc:
        raise UploadsUnavailable(f"no credentials to sign an upload: {exc}") from exc
    now = (now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC)
    amz_date = now.strftime("%Y%m%dT%H%M%SZ")
    credential = f"{creds.access_key}/{amz_date[:8]}/{region}/s3/aws4_request"
    fields = {"key": key, "x-amz-algorithm": "AWS4-HMAC-SHA256",
              "x-amz-credential": credential, "x-amz-date": amz_date}
    conditions: list = [["content-length-range", 1, settings.max_bytes],
                        {"bucket": settings.bucket}, {"key": key},
                        {"x-amz-algorithm": "AWS4-HMAC-SHA256"},
                        {"x-amz-credential": credential}, {"x-amz-date": amz_date}]
    if creds.token:
        fields["x-amz-security-token"] = creds.token
        conditions.append({"x-amz-security-token": creds.token})
    expiration = (now + dt.timedelta(seconds=EXPIRES_IN_S)).strftime("%Y-%m-%dT%H:%M:%SZ")
    policy = base64.b64encode(json.dumps({"expiration": expiration,
                                          "conditions": conditions}).encode()).decode()
    fields["policy"] = policy
    fields["x-amz-signature"] = s3_fetch.sign(creds, amz_date[:8], region, policy)
    endpoint = environ.get("AWS_ENDPOINT_URL_S3") or environ.get("AWS_ENDPOINT_URL")
    url = s3_fetch.object_url(settings.bucket, "", region, endpoint)
    return {"url": url, "fields": fields, "key": key, "expires_in": EXPIRES_IN_S,
            "max_bytes": settings.max_bytes}


def read_object(bucket: str, key: str, max_bytes: int,
                environ: Mapping[str, str] = os.environ) -> bytes:
    """The object's bytes; refused by its size before its body is read."""
    try:
        with s3_fetch.get_object(bucket, key, environ) as response:
            if response.length > max_bytes:
                raise PayloadTooLarge(f"the photo is {response.length} bytes; at most "
                                      f"{max_bytes} are accepted")
            return b"".join(response.chunks(1 << 20))
    except s3_fetch.S3Error as exc:
        if str(exc).startswith("NoSuchKey"):
            raise UploadNotFound(f"no photo at {key}: upload it first (POST /v1/uploads); "
                                 f"uploads are deleted after a day") from exc
        raise UploadsUnavailable(f"cannot read s3://{bucket}/{key}: {exc}") from exc
