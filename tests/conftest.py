"""Fixtures shared by the unit, integration and training tests."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import numpy as np
import pytest
from certcorners.labels import corner_errors_400
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
EVENTS = ROOT / "events"
REFERENCE_PACKAGE = ROOT / "training" / "reference" / "model.tar.gz"
# Photos of the project's generator that no training or validation set holds (seed 4242) and a
# desk without a card, committed: drawn by `make photos` (certcorners_tools.events), they are
# the same photos on every machine, whatever fonts and textures it has.
HELD_OUT = ROOT / "tests" / "photos" / "held-out"

# Tests that need `sam build`'s output (or run it): make test-fast leaves them out.
NEEDS_BUILD = {"test_local_api.py", "test_sam.py", "test_archive.py"}


def pytest_collection_modifyitems(items):
    """Marks each test by what it needs: `training` (tests/training) and `build`."""
    for item in items:
        path = Path(str(item.fspath))
        if path.parent.name == "training":
            item.add_marker(pytest.mark.training)
        elif path.name in NEEDS_BUILD:
            item.add_marker(pytest.mark.build)


os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("TQDM_DISABLE", "1")


@pytest.fixture(scope="session")
def synthetic_set(tmp_path_factory) -> Path:
    """Six synthetic photos to the spec, with labels.jsonl."""
    from training.dataset import generate

    return generate(tmp_path_factory.mktemp("synthetic") / "set", 6, seed=7, workers=2)


def ink_contrast(image: Image.Image, quad: np.ndarray) -> float:
    """Mean brightness of a ring around `quad` minus the mean inside it: positive when the
    quad sits on dark print on a pale card."""
    from PIL import ImageDraw

    gray = np.asarray(image.convert("L"), dtype=np.float64)
    centre = quad.mean(axis=0)
    inside = Image.new("L", image.size, 0)
    ImageDraw.Draw(inside).polygon([tuple(p) for p in quad], fill=1)
    ring = Image.new("L", image.size, 0)
    grown = centre + (quad - centre) * 1.6
    ImageDraw.Draw(ring).polygon([tuple(p) for p in grown], fill=1)
    inside_mask = np.asarray(inside, bool)
    ring_mask = np.asarray(ring, bool) & ~inside_mask
    return float(gray[ring_mask].mean() - gray[inside_mask].mean())


def jpeg_bytes(image: Image.Image, quality: int = 90, **kwargs) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=quality, **kwargs)
    return buffer.getvalue()


def png_bytes(image: Image.Image, **kwargs) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "PNG", **kwargs)
    return buffer.getvalue()


def load_event(name: str) -> dict:
    return json.loads((EVENTS / name).read_text())


# --- Serving --------------------------------------------------------------------------------

FUNCTION_DIR = ROOT / "function"


def function_process_env(**variables: str) -> dict[str, str]:
    """The environment of a fresh process that imports function/app.py as Lambda would:
    tracing off, no model preloaded; `variables` added or overriding."""
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(FUNCTION_DIR), str(ROOT / "layer"),
                                                         str(ROOT)]),
            "POWERTOOLS_TRACE_DISABLED": "true", "MODEL_PRELOAD": "false", "MODEL_S3_URI": "",
            "POWERTOOLS_SERVICE_NAME": "certcorners",
            "POWERTOOLS_METRICS_NAMESPACE": "CertcornersTest", **variables}


MODEL_BUCKET = "certcorners-test"
MODEL_KEY = "models/reference/model.tar.gz"


def photo_labels() -> dict[str, dict]:
    """The sample photos' true corners (events/photos/labels.jsonl)."""
    lines = (EVENTS / "photos" / "labels.jsonl").read_text().splitlines()
    return {r["file"]: r for r in map(json.loads, lines)}


def corner_errors_px(answer: dict, label: dict) -> np.ndarray:
    """Per-corner error at the spec's 400-px scale."""
    names = ("top_left", "top_right", "bottom_right", "bottom_left")
    got = np.array([[answer["corners"][n]["x"], answer["corners"][n]["y"]] for n in names])
    want = np.array([label["corners"][n] for n in names])
    return corner_errors_400(got[None], want[None], [label["width"], label["height"]])[0]


@pytest.fixture(scope="session")
def reference_package() -> Path:
    if not REFERENCE_PACKAGE.exists():
        pytest.fail(f"{REFERENCE_PACKAGE} is missing: the reference model must be committed")
    return REFERENCE_PACKAGE


def photo_bytes(name: str) -> bytes:
    return (EVENTS / "photos" / name).read_bytes()


@pytest.fixture(scope="session")
def reference_predictor(reference_package, tmp_path_factory):
    """The reference package's cascade, loaded directly (not through the handler)."""
    from certcorners.model_store import open_package, predictor_for

    folder = tmp_path_factory.mktemp("reference") / "package"
    return predictor_for(folder, open_package(reference_package, folder), num_threads=1)


@pytest.fixture(scope="session")
def predictor_without_card_finder(reference_package, tmp_path_factory):
    """The reference package's locator, refiner and reader without its card finder: the
    cascade a package made before the card finder gets (second look, search, scan)."""
    from certcorners.model_card import locator_file
    from certcorners.model_store import open_package
    from certcorners.policy import CascadePolicy
    from certcorners.predictor import Predictor

    folder = tmp_path_factory.mktemp("no-finder") / "package"
    card = open_package(reference_package, folder)
    return Predictor(folder / locator_file(card), 1, folder / card["refiner_model"],
                     CascadePolicy.from_card(card), None, folder / card["reader_model"])


@pytest.fixture(scope="session")
def reference_threshold(reference_package, tmp_path_factory) -> float:
    """The refusal threshold the handler serves the reference package with (its card's)."""
    from certcorners.model_store import open_package

    folder = tmp_path_factory.mktemp("reference-card") / "package"
    return float(open_package(reference_package, folder)["confidence_threshold"])


@pytest.fixture(scope="session")
def s3_server():
    """moto's S3 server on a free loopback port: the function fetches its model over HTTP."""
    import logging
    import socket

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture
def s3(s3_server, monkeypatch):
    """An empty model bucket in moto's S3 server, and the environment that points the
    function (and boto3) at it; emptied again after the test."""
    import urllib.request

    import boto3

    for key, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                       "AWS_DEFAULT_REGION": "us-east-1", "AWS_REGION": "us-east-1",
                       "AWS_ENDPOINT_URL_S3": s3_server}.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    # boto3's default session keeps the credentials it first resolved: these fake ones must
    # not outlive the test (a later test may need to find none).
    monkeypatch.setattr(boto3, "DEFAULT_SESSION", None)
    client = boto3.client("s3", region_name="us-east-1", endpoint_url=s3_server)
    client.create_bucket(Bucket=MODEL_BUCKET)
    yield client
    urllib.request.urlopen(urllib.request.Request(f"{s3_server}/moto-api/reset",
                                                  method="POST")).close()


def put_package(s3, data: bytes, key: str = MODEL_KEY, sha256: str | None = None) -> str:
    import hashlib

    digest = sha256 if sha256 is not None else hashlib.sha256(data).hexdigest()
    s3.put_object(Bucket=MODEL_BUCKET, Key=key, Body=data,
                  Metadata={"sha256": digest} if digest else {})
    return f"s3://{MODEL_BUCKET}/{key}"


@pytest.fixture(scope="session")
def app_module():
    """function/app.py, imported once as Lambda would (no model preloaded: tests set it)."""
    import importlib
    import sys

    os.environ.update(POWERTOOLS_SERVICE_NAME="certcorners", POWERTOOLS_TRACE_DISABLED="true",
                      POWERTOOLS_METRICS_NAMESPACE="CertcornersTest", MODEL_PRELOAD="false",
                      MODEL_S3_URI="")
    if str(FUNCTION_DIR) not in sys.path:
        sys.path.insert(0, str(FUNCTION_DIR))
    return importlib.import_module("app")


@pytest.fixture
def handler(app_module, s3, tmp_path, monkeypatch, reference_package):
    """The handler with the reference model published to moto; a fresh cold start."""
    from certcorners.model_store import ModelStore

    uri = put_package(s3, reference_package.read_bytes())
    store = ModelStore(uri, tmp_path / "model-cache")
    monkeypatch.setattr(app_module, "store", store)
    return app_module.lambda_handler


class Context:
    function_name = "CornersFunction"
    function_version = "$LATEST"
    memory_limit_in_mb = 1769
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:CornersFunction"
    aws_request_id = "test-request"

    @staticmethod
    def get_remaining_time_in_millis():
        return 20_000


def invoke(handler, event: dict) -> tuple[int, dict]:
    response = handler(event, Context())
    return response["statusCode"], json.loads(response["body"])


def png_header_only(width: int, height: int) -> bytes:
    """A valid PNG signature and IHDR declaring width x height, with one tiny IDAT: what a
    decompression bomb looks like before anyone decodes it."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr)
            + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b""))
