"""Cold-start faults: a model that cannot be fetched or verified is never served (503), nothing
is written outside the cache folder, and the next call retries and recovers."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile

import pytest
from certcorners.errors import ModelUnavailable
from certcorners.model_card import locator_file
from certcorners.model_store import ModelStore, parse_s3_uri

from tests.conftest import MODEL_BUCKET, invoke, load_event, put_package


def _tarball(entries) -> bytes:
    """entries: (TarInfo-like kwargs, data or None)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for fields, data in entries:
            info = tarfile.TarInfo(fields.pop("name"))
            for key, value in fields.items():
                setattr(info, key, value)
            if data is not None:
                info.size = len(data)
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return buffer.getvalue()


def _reference_members(reference_package) -> list:
    with tarfile.open(reference_package) as tar:
        return [({"name": m.name}, tar.extractfile(m).read()) for m in tar.getmembers()]


@pytest.fixture
def cold_app(app_module, s3, tmp_path, monkeypatch):
    """Returns install(data, **put_kwargs) -> the handler, on a fresh store each time."""
    cache = tmp_path / "cache"

    def install(data: bytes, **kwargs):
        uri = put_package(s3, data, **kwargs)
        monkeypatch.setattr(app_module, "store", ModelStore(uri, cache))
        return app_module.lambda_handler

    return install, cache


def _assert_503_then_recovers(install, cache, tmp_path, s3, reference_package, bad: bytes,
                              **kwargs):
    handler = install(bad, **kwargs)
    before = {p for p in tmp_path.rglob("*")}
    status, body = invoke(handler, load_event("corners-jpeg.json"))
    assert status == 503 and body["error"]["code"] == "model_unavailable", body
    # Nothing escaped the cache folder, and no half-made model folder was left in it.
    created = {p for p in tmp_path.rglob("*")} - before
    assert all(cache in p.parents or p == cache for p in created), created
    assert not [p for p in cache.glob("*") if p.is_dir()]
    # The next call retries: once the good model is in place it answers 200.
    put_package(s3, reference_package.read_bytes())
    assert invoke(handler, load_event("corners-jpeg.json"))[0] == 200


def test_missing_object_is_503_then_recovers(cold_app, app_module, s3, tmp_path,
                                             reference_package, monkeypatch, caplog):
    install, cache = cold_app
    uri = f"s3://{MODEL_BUCKET}/models/reference/model.tar.gz"
    monkeypatch.setattr(app_module, "store", ModelStore(uri, cache))
    status, body = invoke(app_module.lambda_handler, load_event("corners-jpeg.json"))
    assert status == 503 and body["error"]["code"] == "model_unavailable"
    assert MODEL_BUCKET not in body["error"]["message"]  # the client is told no names...
    reasons = " ".join(str(getattr(r, "reason", "")) for r in caplog.records)
    assert "NoSuchKey" in reasons and uri in reasons  # ...the log says what is missing
    put_package(s3, reference_package.read_bytes())
    assert invoke(app_module.lambda_handler, load_event("corners-jpeg.json"))[0] == 200


def test_checksum_mismatch_is_503(cold_app, s3, tmp_path, reference_package):
    install, cache = cold_app
    _assert_503_then_recovers(install, cache, tmp_path, s3, reference_package,
                              reference_package.read_bytes(), sha256="0" * 64)


def test_missing_checksum_metadata_is_503(cold_app, s3, tmp_path, reference_package):
    install, cache = cold_app
    _assert_503_then_recovers(install, cache, tmp_path, s3, reference_package,
                              reference_package.read_bytes(), sha256="")


def test_corrupt_archive_is_503(cold_app, s3, tmp_path, reference_package):
    install, cache = cold_app
    data = reference_package.read_bytes()
    _assert_503_then_recovers(install, cache, tmp_path, s3, reference_package,
                              data[: len(data) // 2])


@pytest.mark.parametrize("evil", [
    ({"name": "../escaped.txt"}, b"outside"),
    ({"name": "/tmp/absolute.txt"}, b"outside"),
    ({"name": "nested/model.tflite"}, b"x"),
    ({"name": "link.tflite", "type": tarfile.SYMTYPE, "linkname": "/etc/passwd"}, None),
    ({"name": "hard.tflite", "type": tarfile.LNKTYPE, "linkname": "model.tflite"}, None),
    ({"name": "device", "type": tarfile.CHRTYPE}, None),
], ids=["dotdot", "absolute", "nested", "symlink", "hardlink", "device"])
def test_archive_with_unsafe_entries_is_503_and_writes_nothing_outside(
        cold_app, s3, tmp_path, reference_package, evil):
    install, cache = cold_app
    data = _tarball([*_reference_members(reference_package), evil])
    _assert_503_then_recovers(install, cache, tmp_path, s3, reference_package, data)
    assert not (tmp_path / "escaped.txt").exists()


def test_file_not_matching_the_card_is_503(cold_app, s3, tmp_path, reference_package):
    install, cache = cold_app
    members = _reference_members(reference_package)
    locator = locator_file(json.loads(next(d for f, d in members
                                           if f["name"] == "model_card.json")))
    members = [(f, b"tampered" if f["name"] == locator else d) for f, d in members]
    assert any(d == b"tampered" for _, d in members)
    _assert_503_then_recovers(install, cache, tmp_path, s3, reference_package,
                              _tarball(members))


def test_archive_without_card_is_503(cold_app, s3, tmp_path, reference_package):
    install, cache = cold_app
    members = [(f, d) for f, d in _reference_members(reference_package)
               if f["name"] != "model_card.json"]
    _assert_503_then_recovers(install, cache, tmp_path, s3, reference_package,
                              _tarball(members))


def test_model_is_loaded_once_and_reused(s3, tmp_path, reference_package):
    uri = put_package(s3, reference_package.read_bytes())
    store = ModelStore(uri, tmp_path)
    first = store.get()
    s3.delete_object(Bucket=MODEL_BUCKET, Key=uri.split("/", 3)[3])
    assert store.get() is first  # no second download
    assert first.sha256 == hashlib.sha256(reference_package.read_bytes()).hexdigest()
    assert (first.folder / "model_card.json").exists()
    assert json.loads((first.folder / "model_card.json").read_text()) == first.card


@pytest.mark.parametrize("uri", ["", "bucket/key", "s3://bucket", "s3:///key", "https://x/y"])
def test_bad_model_uri_is_a_clear_503(uri):
    with pytest.raises(ModelUnavailable, match="MODEL_S3_URI"):
        parse_s3_uri(uri)


def _locator_named(reference_package, key: str | None, name: str) -> bytes:
    """The reference package with its locator's file renamed `name`, and its card naming it
    under `key` (None: under no key, as the first packages did)."""
    members = _reference_members(reference_package)
    card = json.loads(next(d for f, d in members if f["name"] == "model_card.json"))
    old = locator_file(card)
    card["files"][name] = card["files"].pop(old)
    for known in ("locator_model", "serving_model"):
        card.pop(known, None)
    if key is not None:
        card[key] = name
    return _tarball([({"name": name if f["name"] == old else f["name"]},
                      json.dumps(card).encode() if f["name"] == "model_card.json" else d)
                     for f, d in members])


@pytest.mark.parametrize("key, name", [
    ("locator_model", "locator.tflite"),  # packages from 2026-12-06 on
    ("serving_model", "model.tflite"),  # before
    (None, "model.tflite"),  # the first packages: no key, the default file
])
def test_the_locator_is_found_by_its_name_in_todays_and_older_cards(cold_app, reference_package,
                                                                    key, name):
    install, _ = cold_app
    handler = install(_locator_named(reference_package, key, name))
    status, body = invoke(handler, load_event("corners-jpeg.json"))
    assert status == 200 and len(body["polygon"]) == 4, body


def test_a_card_naming_a_locator_it_does_not_list_is_503(cold_app, reference_package):
    install, _ = cold_app
    members = _reference_members(reference_package)
    card = json.loads(next(d for f, d in members if f["name"] == "model_card.json"))
    card["locator_model"] = "elsewhere.tflite"
    handler = install(_tarball([(f, json.dumps(card).encode() if f["name"] == "model_card.json"
                                 else d) for f, d in members]))
    status, body = invoke(handler, load_event("corners-jpeg.json"))
    assert status == 503 and body["error"]["code"] == "model_unavailable", body
