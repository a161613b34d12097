"""What the routes declare for the OpenAPI document (docs/openapi.json): the request body,
the query parameter and the answers. Plain data: the answers' schemas are named here and
filled in by certcorners_tools.openapi from its pydantic models, so serving needs no pydantic.
"""

from __future__ import annotations

from typing import Any

INCLUDE_VALUES = ("crop",)


def _schema(name: str) -> dict[str, Any]:
    return {"schema": {"$ref": f"#/components/schemas/{name}"}}


def _error(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": _schema("ErrorBody")}}


_IMAGE = {"schema": {"type": "string", "format": "binary"}}
CORNERS_REQUEST_BODY = {
    "required": True,
    "description": "The photo itself, or JSON {\"image\": base64 or a data: URL}. At most "
                   "4.5 MB of image (Lambda's 6 MB payload after base64).",
    "content": {
        "image/jpeg": _IMAGE, "image/png": _IMAGE, "image/webp": _IMAGE,
        "application/json": {"schema": {
            "type": "object", "required": ["image"], "additionalProperties": False,
            "properties": {"image": {"type": "string",
                                     "description": "base64 of the photo, or a data: URL"}}}},
    },
}
CORNERS_PARAMETERS = [{
    "name": "include", "in": "query", "required": False,
    "description": "crop: add the number rectified upright as a PNG (for OCR)",
    "schema": {"type": "string", "enum": list(INCLUDE_VALUES)},
}]
CORNERS_RESPONSES = {
    200: {"description": "the number's four corners",
          "content": {"application/json": _schema("CornersAnswer")}},
    400: _error("bad_request: no body, bad base64 or JSON, unknown fields, include not crop"),
    413: _error("payload_too_large: over MAX_IMAGE_BYTES"),
    415: _error("unsupported_media_type: another Content-Type, or bytes of another format"),
    422: _error("undecodable_image, too_many_pixels, image_too_small, or "
                "certificate_not_found (confidence below the threshold)"),
    503: _error("model_unavailable: the model cannot be fetched or verified; retry"),
}
MODEL_RESPONSES = {
    200: {"description": "the served model's card (model_card.json)",
          "content": {"application/json": {"schema": {"type": "object"}}}},
    503: _error("model_unavailable: the model cannot be fetched or verified; retry"),
}
