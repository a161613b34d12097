"""The API's answers as types, for the OpenAPI document (docs/openapi.json) only: the
routes in function/app.py refer to these schemas by name (function/api_docs.py) and
certcorners_tools.openapi fills them in from here, so the function itself never imports
pydantic (about a tenth of a second of every cold start)."""

from __future__ import annotations

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
    upload_read: float = Field(description="ms; reading the request, and an s3_key's photo")
    model_fetch: float = Field(description="ms; non-zero only on the request that loaded it")
    decode: float
    inference: float = Field(description="ms; finding the corners")
    read: float = Field(description="ms; reading the text (0 when the model has no reader)")
    total: float


class CornersAnswer(BaseModel):
    corners: Corners
    polygon: list[list[float]] = Field(description="the corners as [x, y] in spec order")
    confidence: float | None = Field(
        description="0-1: how sure the refiner is that a registration number is there; "
                    "below the threshold the answer is 422 certificate_not_found")
    text: str | None = Field(description='the number, canonical: "BA123XY" (the spec\'s '
                                         'grammar, no separator); null when not read')
    text_as_printed: str | None = Field(description='the number as read, separator '
                                                    'included: "BA-123XY", "BA 123XY"')
    text_confidence: float | None = Field(
        description="0-1: the probability the reader gives this number (any separator) "
                    "among the numbers the grammar allows; below the model card's "
                    "reader_threshold, text is null (null: the model has no reader)")
    text_reason: str | None = Field(description="why text is null; null when it is read")
    image: ImageSize = Field(description="the photo's size as displayed")
    model: ModelRef
    crop: Crop | None = Field(None, description="only with ?include=crop")
    timing_ms: Timing


class UploadAnswer(BaseModel):
    url: str = Field(description="where to POST the form (S3)")
    fields: dict[str, str] = Field(description="the form's fields, in this order, before the "
                                               "file (field name: file)")
    key: str = Field(description='then POST /v1/corners with {"s3_key": key}')
    expires_in: int = Field(description="seconds the form stays valid")
    max_bytes: int = Field(description="S3 refuses a larger photo")


class ErrorDetail(BaseModel):
    code: str = Field(description="stable, for programs: bad_request, upload_not_found, "
                                  "payload_too_large, unsupported_media_type, undecodable_image, "
                                  "too_many_pixels, image_too_small, certificate_not_found, "
                                  "model_unavailable, uploads_unavailable, internal_error")
    message: str = Field(description="for people")


class ErrorBody(BaseModel):
    error: ErrorDetail


# The component schemas the routes name, in the document's order.
SCHEMAS = (CornersAnswer, UploadAnswer, ErrorBody)
