"""What the routes declare for the OpenAPI document (docs/openapi.json): the request body,
the query parameter and the answers. Plain data: the answers' schemas are named here and
filled in by certcorners_tools.openapi from its pydantic models, so serving needs no pydantic.
"""

from __future__ import annotations

from typing import Any

INCLUDE_VALUES = ("crop",)


def _schema(name: str) -> dict[str, Any]:
    return {"schema": {"$ref": f"#/components/schemas/{name}"}}


# Every answer, refusals and errors included, says where its time went (W3C Server Timing).
_SERVER_TIMING = {"Server-Timing": {
    "description": "the handler's steps in ms, e.g. `decode;dur=1.8, inference;dur=4.3, "
                   "read;dur=0.9, total;dur=7.3` (model_fetch on a cold start, upload_read "
                   "for an s3_key, read once the corners are found)",
    "schema": {"type": "string"}}}


def _timed(responses: dict[int, dict]) -> dict[int, dict]:
    return {status: {**answer, "headers": _SERVER_TIMING} for status, answer in responses.items()}


def _error(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": _schema("ErrorBody")}}


_IMAGE = {"schema": {"type": "string", "format": "binary"}}
CORNERS_REQUEST_BODY = {
    "required": True,
    "description": "The photo itself, JSON {\"image\": base64 or a data: URL} (at most 4.5 MB "
                   "of image: Lambda's 6 MB payload after base64), or JSON {\"s3_key\": key} "
                   "naming a photo uploaded with POST /v1/uploads (at most 40 MB).",
    "content": {
        "image/jpeg": _IMAGE, "image/png": _IMAGE, "image/webp": _IMAGE,
        "application/json": {"schema": {"oneOf": [
            {"type": "object", "required": ["image"], "additionalProperties": False,
             "properties": {"image": {"type": "string",
                                      "description": "base64 of the photo, or a data: URL"}}},
            {"type": "object", "required": ["s3_key"], "additionalProperties": False,
             "properties": {"s3_key": {"type": "string",
                                       "description": "the key POST /v1/uploads answered"}}},
        ]}},
    },
}
CORNERS_PARAMETERS = [{
    "name": "include", "in": "query", "required": False,
    "description": "crop: add the number rectified upright as a PNG (for OCR)",
    "schema": {"type": "string", "enum": list(INCLUDE_VALUES)},
}]
CORNERS_RESPONSES = _timed({
    200: {"description": "the number's four corners, and its text where the reader is sure "
                         "of it",
          "content": {"application/json": _schema("CornersAnswer")}},
    400: _error("bad_request: no body, bad base64 or JSON, unknown fields, include not crop"),
    404: _error("upload_not_found: no object at s3_key (not uploaded, or over a day old)"),
    413: _error("payload_too_large: over MAX_IMAGE_BYTES (a body) or MAX_UPLOAD_BYTES (s3_key)"),
    415: _error("unsupported_media_type: another Content-Type, or bytes of another format"),
    422: _error("undecodable_image, too_many_pixels, image_too_small, or "
                "certificate_not_found (confidence below the threshold)"),
    503: _error("model_unavailable or uploads_unavailable: cannot fetch the model or the "
                "upload; retry"),
})
UPLOADS_REQUEST_BODY = {
    "required": False,
    "description": "Optional: the photo's type, image/jpeg (the default), image/png or "
                   "image/webp.",
    "content": {"application/json": {"schema": {
        "type": "object", "additionalProperties": False,
        "properties": {"content_type": {"type": "string",
                                        "enum": ["image/jpeg", "image/png", "image/webp"]}}}}},
}
UPLOADS_RESPONSES = _timed({
    200: {"description": "a presigned S3 POST: send `fields` and then the photo as the form "
                         "field `file` to `url` within `expires_in` seconds, then POST "
                         "/v1/corners with {\"s3_key\": key}. Uploads are deleted after a day.",
          "content": {"application/json": _schema("UploadAnswer")}},
    400: _error("bad_request: a body other than {\"content_type\": ...}"),
    503: _error("uploads_unavailable: uploads are not configured or S3 cannot be reached"),
})
MODEL_RESPONSES = _timed({
    200: {"description": "the served model's card (model_card.json)",
          "content": {"application/json": {"schema": {"type": "object"}}}},
    503: _error("model_unavailable: the model cannot be fetched or verified; retry"),
})
