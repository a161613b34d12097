"""Upload a model package to s3://BUCKET/PREFIX/<version>/model.tar.gz, never overwriting.

boto3 honours AWS_ENDPOINT_URL_S3, so the same code publishes to a local S3 (moto's server)
and to AWS.
"""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import boto3
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError
from certcorners.model_card import CARD_FILE, PACKAGE_FILE, SHA256_METADATA_KEY, sha256_file


class PublishError(RuntimeError):
    """Publishing failed for a reason the user can act on; the message says which."""


class VersionExistsError(PublishError):
    """The version is already published; versions are immutable."""


def read_card(package: Path) -> dict:
    with tarfile.open(package, "r:gz") as tar:
        member = tar.extractfile(CARD_FILE)
        if member is None:
            raise ValueError(f"{package} has no {CARD_FILE}")
        return json.loads(member.read())


def publish(package: str | Path, bucket: str, prefix: str = "models",
            version: str | None = None, s3_client=None) -> str:
    """Upload and return the s3:// URI to configure the function with (MODEL_S3_URI)."""
    package = Path(package)
    if not package.is_file():
        raise ValueError(f"{package} does not exist: export a model first")
    if not bucket:
        raise ValueError("a bucket name is required")
    try:
        card = read_card(package)
    except (tarfile.TarError, KeyError, json.JSONDecodeError) as exc:
        raise ValueError(f"{package} is not a model package: {exc}") from exc
    version = version or card["version"]
    if not version or "/" in version:
        raise ValueError(f"invalid version {version!r}")
    key = "/".join(part for part in (prefix.strip("/"), version, PACKAGE_FILE) if part)
    s3 = s3_client or boto3.client("s3")
    digest = sha256_file(package)
    try:
        with open(package, "rb") as body:
            # IfNoneMatch makes "refuse to overwrite" atomic where S3 supports conditional
            # writes; the head_object check below gives the clear message everywhere.
            _refuse_existing(s3, bucket, key)
            s3.put_object(Bucket=bucket, Key=key, Body=body, IfNoneMatch="*",
                          ContentType="application/gzip",
                          Metadata={SHA256_METADATA_KEY: digest, "version": version})
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code")
        if code in ("PreconditionFailed", "412"):
            raise VersionExistsError(f"s3://{bucket}/{key} already exists") from exc
        if code in ("NoSuchBucket", "404"):
            raise PublishError(f"bucket {bucket!r} does not exist (deploy the stack, or pass "
                               "the ModelBucketName output)") from exc
        if code in ("AccessDenied", "403", "InvalidAccessKeyId", "SignatureDoesNotMatch"):
            raise PublishError(f"not allowed to write s3://{bucket}/{key}: {code}") from exc
        raise PublishError(f"cannot publish to s3://{bucket}/{key}: {code}") from exc
    except NoCredentialsError as exc:
        raise PublishError("no AWS credentials: configure the AWS CLI (aws configure) or set "
                           "AWS_PROFILE") from exc
    except BotoCoreError as exc:  # unreachable endpoint, timeouts
        raise PublishError(f"cannot reach S3: {exc}") from exc
    uri = f"s3://{bucket}/{key}"
    print(f"published {uri} (sha256 {digest})")
    print(f"configure the function with MODEL_S3_URI={uri}")
    return uri


def _refuse_existing(s3, bucket: str, key: str) -> None:
    try:
        s3.head_object(Bucket=bucket, Key=key)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
            return
        raise
    raise VersionExistsError(
        f"s3://{bucket}/{key} already exists: versions are immutable, publish a new one")
