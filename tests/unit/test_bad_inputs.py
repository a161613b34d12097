"""Everything users send: each input gets its documented answer, never a 5xx, and the next
request is still served. The README's "Reliability" table counts these cases."""

from __future__ import annotations

import base64
import io
import json
import struct
import zlib

import pytest
from PIL import Image, PngImagePlugin

from tests.conftest import invoke, jpeg_bytes, load_event, png_bytes, png_header_only
from tests.unit.test_handler import _event_with

PHOTO = Image.open(io.BytesIO(base64.b64decode(load_event("corners-jpeg.json")["body"])))
PHOTO.load()


def _save(image: Image.Image, kind: str, **kwargs) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, kind, **kwargs)
    return buffer.getvalue()


def _png_with_chunk(kind: bytes, data: bytes) -> bytes:
    """The sample photo as PNG with one extra chunk inserted after IHDR."""
    png = png_bytes(PHOTO.resize((600, 424)))
    chunk = (struct.pack(">I", len(data)) + kind + data
             + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))
    return png[:33] + chunk + png[33:]


def _animated(kind: str) -> bytes:
    frames = [PHOTO.resize((600, 424)), PHOTO.resize((600, 424)).rotate(10)]
    return _save(frames[0], kind, save_all=True, append_images=frames[1:], duration=100)


def _json_event(text: str | bytes, base64_body: bool = False):
    body = text if isinstance(text, bytes) else text.encode()
    if base64_body:
        return _event_with(body, "application/json", True)
    return _event_with(text, "application/json", False)


GOOD_B64 = base64.b64encode(jpeg_bytes(PHOTO)).decode()
SMALL_JPEG = jpeg_bytes(PHOTO)

# (id, event, expected status, expected error code or None for 200)
CASES = [
    ("empty-body", _event_with(None), 400, "bad_request"),
    ("empty-string-body", _event_with("", is_base64=False), 400, "bad_request"),
    ("not-base64", _event_with("@@@ not base64 @@@", is_base64=True), 400, "bad_request"),
    ("base64-of-garbage", _event_with(bytes(range(256)) * 40), 422, "undecodable_image"),
    ("truncated-jpeg", _event_with(SMALL_JPEG[: len(SMALL_JPEG) // 2]), 422,
     "undecodable_image"),
    ("truncated-png", _event_with(png_bytes(PHOTO)[:5000], "image/png"), 422,
     "undecodable_image"),
    ("one-pixel", _event_with(png_bytes(Image.new("RGB", (1, 1))), "image/png"), 422,
     "image_too_small"),
    ("bomb-30000x30000", _event_with(png_header_only(30000, 30000), "image/png"), 422,
     "too_many_pixels"),
    ("png-huge-ztxt-chunk", _event_with(_png_with_chunk(
        b"zTXt", b"Comment\x00\x00" + zlib.compress(bytes(200_000_000), 9)), "image/png"),
     422, "undecodable_image"),
    ("png-huge-iccp-chunk", _event_with(_png_with_chunk(
        b"iCCP", b"icc\x00\x00" + zlib.compress(bytes(200_000_000), 9)), "image/png"),
     422, "undecodable_image"),
    ("cmyk-jpeg", _event_with(jpeg_bytes(PHOTO.convert("CMYK"))), 200, None),
    ("16-bit-png", _event_with(png_bytes(Image.fromarray(
        __import__("numpy").asarray(PHOTO.convert("L"), dtype="uint16") * 257)),
        "image/png"), 200, None),
    ("palette-png", _event_with(png_bytes(PHOTO.convert("P", palette=Image.Palette.ADAPTIVE)),
                                "image/png"), 200, None),
    ("alpha-png", _event_with(png_bytes(PHOTO.convert("RGBA")), "image/png"), 200, None),
    ("grayscale-jpeg", _event_with(jpeg_bytes(PHOTO.convert("L"))), 200, None),
    ("webp", _event_with(_save(PHOTO, "WEBP", quality=80), "image/webp"), 200, None),
    ("animated-webp", _event_with(_animated("WEBP"), "image/webp"), 200, None),
    ("animated-gif", _event_with(_animated("GIF"), "image/png"), 415,
     "unsupported_media_type"),
    ("gif-as-json", _json_event(json.dumps({"image": base64.b64encode(
        _animated("GIF")).decode()})), 415, "unsupported_media_type"),
    ("png-declared-jpeg", _event_with(png_bytes(PHOTO)), 415, "unsupported_media_type"),
    ("jpeg-declared-webp", _event_with(SMALL_JPEG, "image/webp"), 415,
     "unsupported_media_type"),
    ("text-plain", _event_with("hello", "text/plain", False), 415, "unsupported_media_type"),
    ("no-content-type", _event_with(SMALL_JPEG, ""), 415, "unsupported_media_type"),
    ("image-as-text", _event_with("\xff\xd8\xff", "image/jpeg", False), 415,
     "unsupported_media_type"),
    ("over-size-limit", _event_with(bytes(4_600_000)), 413, "payload_too_large"),
    ("json-over-size-limit", _json_event(json.dumps({"image": "A" * 6_200_000})), 413,
     "payload_too_large"),
    ("json-without-image", _json_event('{"photo": "abc"}'), 400, "bad_request"),
    ("json-extra-fields", _json_event(json.dumps({"image": GOOD_B64, "lang": "sk"})), 400,
     "bad_request"),
    ("json-image-number", _json_event('{"image": 12}'), 400, "bad_request"),
    ("json-image-null", _json_event('{"image": null}'), 400, "bad_request"),
    ("json-image-list", _json_event('{"image": ["a"]}'), 400, "bad_request"),
    ("json-array", _json_event("[1, 2]"), 400, "bad_request"),
    ("json-string", _json_event('"image"'), 400, "bad_request"),
    ("json-deeply-nested", _json_event("[" * 100_000 + "]" * 100_000), 400, "bad_request"),
    ("json-invalid-utf8", _json_event(b'{"image": "\xff\xfe"}', base64_body=True), 400,
     "bad_request"),
    ("json-image-garbage-base64", _json_event('{"image": "*&^%"}'), 400, "bad_request"),
    ("json-image-undecodable", _json_event(json.dumps(
        {"image": base64.b64encode(b"not an image at all").decode()})), 422,
     "undecodable_image"),
    ("json-good", _json_event(json.dumps({"image": GOOD_B64})), 200, None),
    ("content-type-with-charset", _event_with(SMALL_JPEG, "IMAGE/JPEG; charset=binary"), 200,
     None),
    # Formats Pillow could decode but the API does not: their decoders never see the bytes.
    *[(f"{fmt.lower()}-declared-jpeg", _event_with(_save(PHOTO.resize((200, 141)), fmt)), 422,
       "undecodable_image") for fmt in ("PPM", "TGA", "PCX", "SGI", "ICO", "DDS", "QOI")],
]


@pytest.mark.parametrize("event, status, code", [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])
def test_bad_input_gets_its_documented_answer_and_service_goes_on(handler, event, status,
                                                                  code):
    got, body = invoke(handler, event)
    assert got == status, body
    if code is None:
        assert set(body["corners"]) == {"top_left", "top_right", "bottom_right", "bottom_left"}
    else:
        assert body["error"]["code"] == code and body["error"]["message"]
    assert invoke(handler, load_event("corners-png.json"))[0] == 200


def test_pillow_text_chunk_limit_is_what_refuses_the_ztxt_bomb():
    # The zTXt case above relies on Pillow's own limit; make the dependency explicit.
    assert PngImagePlugin.MAX_TEXT_CHUNK <= 1 << 20
