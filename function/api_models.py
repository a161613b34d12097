"""The API's contract as types, for the OpenAPI document (docs/openapi.json): what
POST /v1/corners accepts and answers, and the one error shape every refusal has."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class Point(BaseModel):
    x: float = Field(description="pixels from the photo's left edge, as displayed")
    y: float = Field(description="pixels from the photo's top edge, as displayed")


class Corners(BaseModel):
    top_left: Point = Field(description="top of the number's first character")
    top_right: Point = Field(description="top of its last character")
    bottom_right: Point
    bottom_left: Point


class ImageSize(BaseModel):
    width: int
    height: int


class ModelRef(BaseModel):
    version: str
    sha256: str = Field(description="sha256 of the served model.tar.gz")


class Crop(BaseModel):
    format: str = Field(description="png")
    base64: str = Field(description="the number rectified upright, with a small margin")


class Timing(BaseModel):
    model_fetch: float = Field(description="ms; non-zero only on the request that loaded it")
    decode: float
    inference: float = Field(description="ms; both networks")
    total: float


class CornersAnswer(BaseModel):
    corners: Corners
    polygon: list[list[float]] = Field(description="the corners as [x, y] in spec order")
    confidence: float | None = Field(
        description="0-1: how sure the refiner is that a registration number is there; "
                    "below the threshold the answer is 422 certificate_not_found")
    image: ImageSize = Field(description="the photo's size as displayed")
    model: ModelRef
    crop: Crop | None = Field(None, description="only with ?include=crop")
    timing_ms: Timing


class ErrorDetail(BaseModel):
    code: str = Field(description="stable, for programs: bad_request, payload_too_large, "
                                  "unsupported_media_type, undecodable_image, too_many_pixels, "
                                  "image_too_small, certificate_not_found, model_unavailable, "
                                  "internal_error")
    message: str = Field(description="for people")


class ErrorBody(BaseModel):
    error: ErrorDetail


def _error(description: str) -> dict[str, Any]:
    return {"description": description,
            "content": {"application/json": {"model": ErrorBody}}}


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
CORNERS_RESPONSES = {
    200: {"description": "the number's four corners",
          "content": {"application/json": {"model": CornersAnswer}}},
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
