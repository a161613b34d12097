"""Publishing a model package to S3 (moto in-process)."""

from __future__ import annotations

import io
import json
import tarfile

import boto3
import pytest
from certcorners.model_card import CARD_FILE, sha256_file
from moto import mock_aws

from training.publish import VersionExistsError, publish


def _package(tmp_path, version="v1"):
    path = tmp_path / "model.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        for name, data in ((CARD_FILE, json.dumps({"version": version}).encode()),
                           ("model.tflite", b"flatbuffer bytes")):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


@pytest.fixture
def s3():
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket="models")
        yield client


def test_publish_uploads_with_sha256_metadata(s3, tmp_path, capsys):
    package = _package(tmp_path)
    uri = publish(package, "models", "cert", s3_client=s3)
    assert uri == "s3://models/cert/v1/model.tar.gz"
    head = s3.head_object(Bucket="models", Key="cert/v1/model.tar.gz")
    assert head["Metadata"]["sha256"] == sha256_file(package)
    body = s3.get_object(Bucket="models", Key="cert/v1/model.tar.gz")["Body"].read()
    assert body == package.read_bytes()
    assert "MODEL_S3_URI=s3://models/cert/v1/model.tar.gz" in capsys.readouterr().out


def test_publishing_the_same_version_twice_is_refused(s3, tmp_path):
    package = _package(tmp_path)
    publish(package, "models", "cert", s3_client=s3)
    before = s3.get_object(Bucket="models", Key="cert/v1/model.tar.gz")["Body"].read()
    (tmp_path / "other").mkdir()
    other = _package(tmp_path / "other", "v1")
    with pytest.raises(VersionExistsError, match="already exists"):
        publish(other, "models", "cert", s3_client=s3)
    after = s3.get_object(Bucket="models", Key="cert/v1/model.tar.gz")["Body"].read()
    assert after == before


def test_explicit_version_overrides_the_card(s3, tmp_path):
    uri = publish(_package(tmp_path), "models", "", version="2026-11-21", s3_client=s3)
    assert uri == "s3://models/2026-11-21/model.tar.gz"


def test_not_a_package_is_a_value_error(s3, tmp_path):
    bogus = tmp_path / "model.tar.gz"
    bogus.write_bytes(b"not a tarball")
    with pytest.raises(ValueError, match="not a model package"):
        publish(bogus, "models", s3_client=s3)
    with pytest.raises(ValueError, match="does not exist"):
        publish(tmp_path / "missing.tar.gz", "models", s3_client=s3)


def _cli(*args) -> int:
    from training.__main__ import main

    return main(["publish", *args])


def test_cli_publish_errors_are_one_line_with_exit_code_1(s3, tmp_path, capsys):
    package = _package(tmp_path)
    assert _cli("--package", str(package), "--bucket", "models") == 0
    capsys.readouterr()
    cases = [("--bucket", "models", "already exists"),  # the same version again
             ("--bucket", "no-such-bucket", "does not exist")]
    for flag, bucket, message in cases:
        assert _cli("--package", str(package), flag, bucket) == 1
        err = capsys.readouterr().err.strip()
        assert err.startswith("error: ") and message in err and "\n" not in err


def test_cli_publish_without_credentials_is_one_line(tmp_path, capsys, monkeypatch):
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
                 "AWS_PROFILE", "AWS_ENDPOINT_URL_S3"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    assert _cli("--package", str(_package(tmp_path)), "--bucket", "models") == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: no AWS credentials") and "\n" not in err


def test_the_steps_that_make_data_and_train_need_no_boto3(tmp_path):
    """A GPU machine (tools/gpu/train.sh) has no boto3: only publish may import it."""
    import subprocess
    import sys

    blocked = ("import sys; sys.modules['boto3'] = None; sys.modules['botocore'] = None; "
               "from training.__main__ import main; sys.exit(main(sys.argv[1:]))")
    out = tmp_path / "set"
    done = subprocess.run([sys.executable, "-c", blocked, "generate", "--out", str(out),
                           "--count", "1", "--workers", "1"], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    assert (out / "labels.jsonl").exists()
    refused = subprocess.run([sys.executable, "-c", blocked, "publish", "--package",
                              str(out / "none.tar.gz"), "--bucket", "b"],
                             capture_output=True, text=True, timeout=300)
    assert refused.returncode != 0 and "boto3" in refused.stderr
