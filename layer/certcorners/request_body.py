"""An API Gateway request body -> image bytes of a supported type, or a precise 4xx.

Accepted: the raw image with Content-Type image/jpeg, image/png or image/webp (API Gateway
passes binary media types base64-encoded), JSON {"image": "<base64>"}, or JSON
{"s3_key": "<key>"} naming a photo uploaded with POST /v1/uploads (read by the caller).
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass

from certcorners.errors import BadRequest, PayloadTooLarge, UnsupportedMediaType

IMAGE_TYPES = {"image/jpeg": "JPEG", "image/png": "PNG", "image/webp": "WEBP"}
JSON_TYPE = "application/json"
# Lambda's synchronous payload limit is 6 MB; base64 makes 4.5 MB of image about 6 MB.
DEFAULT_MAX_IMAGE_BYTES = 4_500_000

_SIGNATURES = (
    (b"\xff\xd8\xff", "JPEG"),
    (b"\x89PNG\r\n\x1a\n", "PNG"),
    (b"GIF87a", "GIF"),
    (b"GIF89a", "GIF"),
    (b"BM", "BMP"),
    (b"II*\x00", "TIFF"),
    (b"MM\x00*", "TIFF"),
)


@dataclass(frozen=True)
class ImageRequest:
    data: bytes
    format: str  # JPEG, PNG or WEBP, sniffed from the bytes; "S3" for an upload's key
    s3_key: str | None = None  # {"s3_key": ...}: the bytes are still to be read


def sniff_format(data: bytes) -> str | None:
    """The image format the bytes start with, or None."""
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    for signature, name in _SIGNATURES:
        if data.startswith(signature):
            return name
    return None


def media_type(content_type: str | None) -> str:
    """'image/JPEG; charset=x' -> 'image/jpeg'."""
    return (content_type or "").split(";", 1)[0].strip().lower()


def _b64decode(text: str | bytes, what: str, max_bytes: int) -> bytes:
    # Refuse before decoding: base64 needs 4 characters for every 3 bytes.
    if len(text) * 3 // 4 > max_bytes + 3:
        raise PayloadTooLarge(f"the image is larger than the {max_bytes} bytes allowed")
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise BadRequest(f"{what} is not valid base64") from exc


def parse_image_request(body: str | None, is_base64: bool, content_type: str | None,
                        max_bytes: int = DEFAULT_MAX_IMAGE_BYTES) -> ImageRequest:
    kind = media_type(content_type)
    if not body:
        raise BadRequest("the request has no body: send an image or JSON {\"image\": base64}")
    if kind in IMAGE_TYPES:
        if is_base64:
            data = _b64decode(body, "the body", max_bytes)
        else:  # a text body cannot carry a binary image intact
            raise UnsupportedMediaType(
                f"{kind} arrived as text: the API's binary media types must include it")
        declared = IMAGE_TYPES[kind]
    elif kind == JSON_TYPE:
        raw = _b64decode(body, "the body", 4 * max_bytes) if is_base64 else body
        data = _image_from_json(raw, max_bytes)
        if isinstance(data, ImageRequest):
            return data
        declared = None
    else:
        supported = ", ".join([*IMAGE_TYPES, JSON_TYPE])
        raise UnsupportedMediaType(
            f"Content-Type {kind or '(none)'!r} is not supported; use one of {supported}")
    return image_request(data, max_bytes, declared, kind)


def image_request(data: bytes, max_bytes: int, declared: str | None = None,
                  kind: str = "") -> ImageRequest:
    """Bytes of a photo (a body's, or an upload's) checked for size and format."""
    if len(data) > max_bytes:
        raise PayloadTooLarge(f"the image is larger than the {max_bytes} bytes allowed")
    if not data:
        raise BadRequest("the image is empty")
    found = sniff_format(data)
    if found is None:
        # Not one of the formats we know the signature of: let the decoder say (422).
        return ImageRequest(data, declared or "UNKNOWN")
    if found not in IMAGE_TYPES.values():
        raise UnsupportedMediaType(f"the image is a {found}; send JPEG, PNG or WebP")
    if declared and found != declared:
        raise UnsupportedMediaType(
            f"the body is a {found} but Content-Type says {kind}; send the matching type")
    return ImageRequest(data, found)


def _image_from_json(raw: str | bytes, max_bytes: int) -> bytes | ImageRequest:
    try:
        document = json.loads(raw)
    except UnicodeDecodeError as exc:
        raise BadRequest("the JSON body is not valid UTF-8") from exc
    except (json.JSONDecodeError, RecursionError) as exc:
        raise BadRequest("the body is not valid JSON") from exc
    if not isinstance(document, dict):
        raise BadRequest('the JSON body must be an object: {"image": "<base64>"} or '
                         '{"s3_key": "<key>"}')
    if "s3_key" in document:
        unknown = sorted(set(document) - {"s3_key"})
        if unknown:
            raise BadRequest(f"with s3_key, no other fields: {', '.join(unknown)}")
        if not isinstance(document["s3_key"], str) or not document["s3_key"]:
            raise BadRequest('"s3_key" must be the key POST /v1/uploads gave')
        return ImageRequest(b"", "S3", s3_key=document["s3_key"])
    if "image" not in document:
        raise BadRequest('the JSON body has no "image" field (or "s3_key")')
    unknown = sorted(set(document) - {"image"})
    if unknown:
        raise BadRequest(f"unknown fields in the JSON body: {', '.join(unknown)}")
    image = document["image"]
    if not isinstance(image, str):
        raise BadRequest('"image" must be a base64 string')
    if image.startswith("data:"):  # accept data URLs as browsers produce them
        image = image.partition(",")[2]
    return _b64decode(image, '"image"', max_bytes)
