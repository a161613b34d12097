"""Photos over ~4.5 MB: POST /v1/uploads' presigned form, the upload to S3 (moto's server,
over HTTP), then POST /v1/corners with {"s3_key"}, through the real handler."""

from __future__ import annotations

import datetime as dt
import io
import json
import urllib.request

import numpy as np
import pytest
from certcorners import s3_fetch, uploads
from certcorners_tools import local
from certcorners_tools.client import multipart_form
from PIL import Image

from tests.conftest import HELD_OUT, corner_errors_400, invoke, load_event

UPLOAD_BUCKET = "certcorners-test-uploads"


@pytest.fixture
def uploading(handler, app_module, s3, monkeypatch):
    """The handler with an upload bucket in moto's S3."""
    s3.create_bucket(Bucket=UPLOAD_BUCKET)
    settings = uploads.UploadSettings(UPLOAD_BUCKET, "uploads/", 40_000_000)
    monkeypatch.setattr(app_module, "UPLOADS", settings)
    return handler, s3, settings


def phone_photo() -> tuple[bytes, np.ndarray]:
    """A held-out photo at a phone's 4032 px (~4.6 MB of JPEG, over the 4.5 MB a request body
    may carry), and its true corners."""
    label = json.loads((HELD_OUT / "labels.jsonl").read_text().splitlines()[0])
    data, scale = local.phone_sized(HELD_OUT / label["file"])
    names = ("top_left", "top_right", "bottom_right", "bottom_left")
    return data, np.array([label["corners"][n] for n in names]) * scale


def post_form(form: dict, data: bytes, content_type: str = "image/jpeg") -> int:
    body, kind = multipart_form(form["fields"], data, content_type)
    request = urllib.request.Request(form["url"], data=body, method="POST",
                                     headers={"Content-Type": kind})
    with urllib.request.urlopen(request, timeout=60) as response:
        return response.status


def corners_event(key: str) -> dict:
    event = load_event("corners-s3-key.json")
    event["body"] = json.dumps({"s3_key": key})
    return event


def test_a_12_mp_photo_too_large_for_a_body_gets_its_corners_by_upload(uploading):
    handler, s3, _ = uploading
    data, truth = phone_photo()
    assert len(data) > 4_500_000  # a body this large is refused 413 (MAX_IMAGE_BYTES)
    status, form = invoke(handler, load_event("uploads.json"))
    assert status == 200, form
    assert form["key"].startswith("uploads/") and form["key"].endswith(".jpg")
    assert form["max_bytes"] == 40_000_000 and form["expires_in"] > 0
    assert post_form(form, data) in (200, 204)
    assert s3.head_object(Bucket=UPLOAD_BUCKET, Key=form["key"])["ContentLength"] == len(data)
    status, answer = invoke(handler, corners_event(form["key"]))
    assert status == 200, answer
    width, height = Image.open(io.BytesIO(data)).size
    assert answer["image"] == {"width": width, "height": height}
    errors = corner_errors_400(np.array(answer["polygon"])[None], truth[None],
                               [answer["image"]["width"], answer["image"]["height"]])[0]
    assert errors.max() < 3, errors
    assert answer["timing_ms"]["upload_read"] > 0


def test_the_presigned_form_is_signed_as_botocore_signs_it(monkeypatch):
    """Same fields, same policy, same signature as boto3's generate_presigned_post for the
    same key, size cap, time and temporary credentials."""
    import boto3
    import botocore.auth
    import botocore.signers

    now = dt.datetime(2026, 12, 5, 21, 30, 15)
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda *a, **k: now)
    monkeypatch.setattr(botocore.signers, "get_current_datetime", lambda *a, **k: now)
    environ = {"AWS_ACCESS_KEY_ID": "AKIDEXAMPLE", "AWS_SECRET_ACCESS_KEY": "secret/key+1",
               "AWS_SESSION_TOKEN": "token==", "AWS_REGION": "eu-west-1"}
    settings = uploads.UploadSettings("my-uploads", "uploads/", 40_000_000)
    key = "uploads/0123456789abcdef0123456789abcdef.jpg"
    ours = uploads.presigned_post(settings, key, environ, now.replace(tzinfo=dt.UTC))
    from botocore.config import Config

    client = boto3.client("s3", region_name="eu-west-1", aws_access_key_id="AKIDEXAMPLE",
                          aws_secret_access_key="secret/key+1", aws_session_token="token==",
                          config=Config(signature_version="s3v4"))
    theirs = client.generate_presigned_post(
        "my-uploads", key, Conditions=[["content-length-range", 1, 40_000_000]],
        ExpiresIn=uploads.EXPIRES_IN_S)
    assert ours["fields"] == theirs["fields"]
    policy = json.loads(__import__("base64").b64decode(ours["fields"]["policy"]))
    assert ["content-length-range", 1, 40_000_000] in policy["conditions"]
    assert {"key": key} in policy["conditions"]


@pytest.mark.parametrize("key", ["models/reference/model.tar.gz", "uploads/../models/x.jpg",
                                 "uploads/abc.jpg", "other/0123456789abcdef0123456789abcdef.jpg",
                                 "uploads/0123456789abcdef0123456789abcdef.jpg/x"])
def test_only_keys_that_uploads_hand_out_are_read(uploading, key):
    handler, _, _ = uploading
    status, body = invoke(handler, corners_event(key))
    assert status == 400 and body["error"]["code"] == "bad_request", body
    assert "s3_key" in body["error"]["message"]


def test_a_key_never_uploaded_is_404_upload_not_found(uploading):
    handler, _, _ = uploading
    status, body = invoke(handler, corners_event("uploads/" + "0" * 32 + ".jpg"))
    assert status == 404 and body["error"]["code"] == "upload_not_found", body


def test_an_upload_over_the_limit_is_refused_before_its_bytes_are_read(uploading, app_module,
                                                                       monkeypatch):
    handler, s3, settings = uploading
    key = "uploads/" + "1" * 32 + ".jpg"
    s3.put_object(Bucket=UPLOAD_BUCKET, Key=key, Body=b"\xff\xd8\xff" + bytes(5000))
    monkeypatch.setattr(app_module, "UPLOADS", uploads.UploadSettings(
        settings.bucket, settings.prefix, 4000))

    def never(*args, **kwargs):
        raise AssertionError("the body was read")

    monkeypatch.setattr(s3_fetch.S3Object, "chunks", never)
    status, body = invoke(handler, corners_event(key))
    assert status == 413 and body["error"]["code"] == "payload_too_large", body


def test_an_upload_that_is_not_a_photo_is_refused_like_a_body(uploading):
    handler, s3, _ = uploading
    key = "uploads/" + "2" * 32 + ".jpg"
    s3.put_object(Bucket=UPLOAD_BUCKET, Key=key, Body=b"GIF89a" + bytes(100))
    status, body = invoke(handler, corners_event(key))
    assert status == 415 and body["error"]["code"] == "unsupported_media_type", body


@pytest.mark.parametrize("body", ['{"content_type": "image/gif"}', '{"other": 1}', "not json",
                                  "[1]"])
def test_a_wrong_uploads_request_is_400(uploading, body):
    handler, _, _ = uploading
    event = load_event("uploads.json")
    event["body"] = body
    status, answer = invoke(handler, event)
    assert status == 400 and answer["error"]["code"] == "bad_request", answer


def test_uploads_without_a_bucket_are_503_without_naming_it(handler, app_module, monkeypatch):
    monkeypatch.setattr(app_module, "UPLOADS", uploads.UploadSettings("", "uploads/", 1000))
    status, body = invoke(handler, load_event("uploads.json"))
    assert status == 503 and body["error"]["code"] == "uploads_unavailable", body
    assert "UPLOAD_BUCKET" not in body["error"]["message"]


def test_s3_key_with_other_fields_is_400(uploading):
    handler, _, _ = uploading
    event = load_event("corners-s3-key.json")
    event["body"] = json.dumps({"s3_key": "uploads/" + "0" * 32 + ".jpg", "image": "x"})
    status, body = invoke(handler, event)
    assert status == 400 and "s3_key" in body["error"]["message"], body
