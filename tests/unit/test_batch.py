"""The batch function (function/batch.py) on a Distributed Map's batch: one line per photo,
an error line for a photo that cannot be answered, with S3 from moto."""

from __future__ import annotations

import importlib
import json
import sys

import numpy as np
import pytest
from certcorners.model_store import ModelStore

from tests.conftest import FUNCTION_DIR, HELD_OUT, Context, corner_errors_400, put_package

ARCHIVE = "certcorners-test-archive"


@pytest.fixture
def batch(app_module, s3, tmp_path, monkeypatch, reference_package):
    """function/batch.py with the reference model in moto and an archive bucket of photos."""
    if str(FUNCTION_DIR) not in sys.path:
        sys.path.insert(0, str(FUNCTION_DIR))
    module = importlib.import_module("batch")
    monkeypatch.setattr(module, "store", ModelStore(put_package(s3, reference_package.read_bytes()),
                                                    tmp_path / "cache"))
    monkeypatch.setattr(module, "ARCHIVE_BUCKET", ARCHIVE)
    s3.create_bucket(Bucket=ARCHIVE)
    return module, s3


def items(s3, keys: list[str]) -> list[dict]:
    """What the Distributed Map's ItemReader (ListObjectsV2) hands a batch: Key and Size."""
    found = {o["Key"]: o for o in s3.list_objects_v2(Bucket=ARCHIVE)["Contents"]}
    return [{"Key": k, "Size": found[k]["Size"] if k in found else 10,
             "Etag": "x", "LastModified": "2026-12-05T00:00:00Z"} for k in keys]


def test_a_batch_answers_each_photo_and_names_each_failure_in_order(batch):
    module, s3 = batch
    labels = [json.loads(line) for line in (HELD_OUT / "labels.jsonl").read_text().splitlines()]
    for label in labels[:3]:
        s3.put_object(Bucket=ARCHIVE, Key=f"scans/{label['file']}",
                      Body=(HELD_OUT / label["file"]).read_bytes())
    s3.put_object(Bucket=ARCHIVE, Key="scans/corrupt.jpg", Body=b"\xff\xd8\xff" + bytes(900))
    s3.put_object(Bucket=ARCHIVE, Key="scans/desk.jpg",
                  Body=(HELD_OUT / "desk-without-certificate.jpg").read_bytes())
    keys = ["scans/000000.jpg", "scans/corrupt.jpg", "scans/000001.jpg", "scans/gone.jpg",
            "scans/desk.jpg", "scans/000002.jpg"]
    event = {"Items": items(s3, keys), "BatchInput": {"bucket": ARCHIVE}}
    results = module.lambda_handler(event, Context())["results"]
    assert [r["key"] for r in results] == keys
    codes = {r["key"]: r.get("error", {}).get("code") for r in results}
    assert codes == {"scans/000000.jpg": None, "scans/corrupt.jpg": "undecodable_image",
                     "scans/000001.jpg": None, "scans/gone.jpg": "not_found",
                     "scans/desk.jpg": "certificate_not_found", "scans/000002.jpg": None}
    names = ("top_left", "top_right", "bottom_right", "bottom_left")
    for result in results:
        if "error" in result:
            assert set(result) == {"key", "error"} and result["error"]["message"]
            continue
        label = next(x for x in labels if f"scans/{x['file']}" == result["key"])
        truth = np.array([label["corners"][n] for n in names])
        errors = corner_errors_400(np.array(result["polygon"])[None], truth[None],
                                   [label["width"], label["height"]])[0]
        assert errors.max() < 4, (result["key"], errors)
        assert json.loads(json.dumps(result)) == result  # one JSONL line as it is


def test_a_photo_larger_than_allowed_is_an_error_line_without_being_read(batch, monkeypatch):
    module, s3 = batch
    s3.put_object(Bucket=ARCHIVE, Key="scans/huge.jpg", Body=b"\xff\xd8\xff" + bytes(100))
    monkeypatch.setattr(module, "MAX_PHOTO_BYTES", 50)
    (result,) = module.lambda_handler({"Items": items(s3, ["scans/huge.jpg"]),
                                       "BatchInput": {"bucket": ARCHIVE}}, Context())["results"]
    assert result["error"]["code"] == "payload_too_large"


def test_a_batch_from_another_bucket_fails_loudly(batch):
    module, _ = batch
    with pytest.raises(ValueError, match=ARCHIVE):
        module.lambda_handler({"Items": [], "BatchInput": {"bucket": "someone-elses"}},
                              Context())
