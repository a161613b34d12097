"""Fuzzing request parsing and the decode/preprocess path: only documented errors escape,
never an exception that would become a 500; memory stays bounded."""

from __future__ import annotations

import base64
import contextlib
import io
import json
import tracemalloc

import pytest
from certcorners.errors import ApiError
from certcorners.preprocessing import ImageDecodeError, ImageTooLargeError, to_model_input
from certcorners.request_body import IMAGE_TYPES, parse_image_request
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from tests.conftest import invoke, jpeg_bytes, png_bytes
from tests.unit.test_handler import _event_with

CONTENT_TYPES = st.sampled_from([*IMAGE_TYPES, "application/json", "text/plain", "", None,
                                 "image/JPEG; q=1", "application/json; charset=utf-8"])
SEED_IMAGE = Image.radial_gradient("L").resize((160, 120)).convert("RGB")
SEEDS = [jpeg_bytes(SEED_IMAGE), png_bytes(SEED_IMAGE)]


@st.composite
def mutated_images(draw):
    """Real JPEG/PNG bytes with random bytes flipped, cut or inserted."""
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 8))):
        position = draw(st.integers(0, len(data) - 1))
        action = draw(st.sampled_from(["flip", "cut", "insert"]))
        if action == "flip":
            data[position] = draw(st.integers(0, 255))
        elif action == "cut":
            del data[position: position + draw(st.integers(1, 200))]
        else:
            data[position:position] = draw(st.binary(min_size=1, max_size=64))
        if not data:
            data = bytearray(b"\x00")
    return bytes(data)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=st.one_of(st.none(), st.text(max_size=300), st.binary(max_size=300).map(
    lambda b: base64.b64encode(b).decode())), is_base64=st.booleans(), kind=CONTENT_TYPES)
def test_request_parsing_raises_only_api_errors(body, is_base64, kind):
    try:
        request = parse_image_request(body, is_base64, kind, max_bytes=10_000)
    except ApiError as error:
        assert 400 <= error.status < 500
    else:
        assert request.data


@settings(max_examples=200, deadline=None)
@given(document=st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                 max_size=4), max_leaves=12))
def test_any_json_document_is_a_4xx_or_an_image(document):
    body = json.dumps({"image": document} if not isinstance(document, dict) else document)
    try:
        parse_image_request(body, False, "application/json")
    except ApiError as error:
        assert 400 <= error.status < 500


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=mutated_images())
def test_decode_and_preprocess_raise_only_decode_errors(data):
    try:
        model_input, letterbox = to_model_input(data, max_pixels=4_000_000)
    except (ImageDecodeError, ImageTooLargeError):
        return
    assert model_input.shape == (400, 400, 1)
    assert letterbox.width * letterbox.height <= 4_000_000


@settings(max_examples=60, deadline=None, suppress_health_check=[
    HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(data=mutated_images(), kind=st.sampled_from([*IMAGE_TYPES, "application/json"]))
def test_handler_never_answers_5xx_to_mutated_photos(handler, data, kind):
    if kind == "application/json":
        event = _event_with(json.dumps({"image": base64.b64encode(data).decode()}), kind, False)
    else:
        event = _event_with(data, kind)
    status, body = invoke(handler, event)
    assert status < 500, body


def test_memory_stays_bounded_over_many_mutated_decodes():
    """Peak Python-side allocation over 300 random broken images stays under 64 MB."""
    import random

    rng = random.Random(7)
    tracemalloc.start()
    try:
        for _ in range(300):
            data = bytearray(rng.choice(SEEDS))
            for _ in range(rng.randint(1, 8)):
                data[rng.randrange(len(data))] = rng.randrange(256)
            with contextlib.suppress(ImageDecodeError, ImageTooLargeError):
                to_model_input(bytes(data), max_pixels=4_000_000)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 64 * 2**20, f"peak {peak / 2**20:.1f} MB"


def _png_declaring(width: int, height: int) -> bytes:
    """A real 64 x 64 PNG whose IHDR is rewritten to declare width x height, with its CRC
    recomputed so the header is valid and only the pixel guard can refuse it."""
    import struct
    import zlib

    buffer = io.BytesIO()
    Image.new("L", (64, 64)).save(buffer, "PNG")
    data = bytearray(buffer.getvalue())
    data[16:24] = struct.pack(">II", width, height)  # IHDR width and height
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])) & 0xFFFFFFFF)
    return bytes(data)


def test_a_header_declaring_huge_size_is_refused_without_allocating():
    # 144 MP: under Pillow's own bomb error (179 MP), over this project's guard (60 MP).
    data = _png_declaring(12_000, 12_000)
    with pytest.warns(Image.DecompressionBombWarning):
        Image.open(io.BytesIO(data))  # the header itself is valid: Pillow opens it
    tracemalloc.start()
    try:
        with pytest.raises(ImageTooLargeError):
            to_model_input(data)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 8 * 2**20


def test_the_handler_refuses_a_valid_header_declaring_too_many_pixels(handler):
    status, body = invoke(handler, _event_with(_png_declaring(8000, 6000), "image/png"))
    assert status == 422 and body["error"]["code"] == "too_many_pixels", body
