"""Errors a request can meet, each with its HTTP status and a stable code for clients.

Raised anywhere, turned into `{"error": {"code", "message"}}` in one place (function/app.py).
"""

from __future__ import annotations


class ApiError(Exception):
    status = 500
    code = "internal_error"

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message

    @property
    def client_message(self) -> str:
        """What the client is told; `message` (logged) may say more."""
        return self.message

    def body(self) -> dict:
        return {"error": {"code": self.code, "message": self.client_message}}


class BadRequest(ApiError):
    status, code = 400, "bad_request"


class PayloadTooLarge(ApiError):
    status, code = 413, "payload_too_large"


class UnsupportedMediaType(ApiError):
    status, code = 415, "unsupported_media_type"


class UnprocessableImage(ApiError):
    status, code = 422, "undecodable_image"


class TooManyPixels(UnprocessableImage):
    code = "too_many_pixels"


class ImageTooSmall(UnprocessableImage):
    code = "image_too_small"


class CertificateNotFound(UnprocessableImage):
    """The photo decoded, but the model is not confident a registration number is in it."""

    code = "certificate_not_found"

    def __init__(self, message: str, inference_ms: float | None = None):
        super().__init__(message)
        self.inference_ms = inference_ms  # what the refusal cost (the NotFound latency metric)


class ModelUnavailable(ApiError):
    """The model cannot be fetched or verified. The reason names the bucket and key: it goes
    to the function's logs, not to clients."""

    status, code = 503, "model_unavailable"

    @property
    def client_message(self) -> str:
        return "the model is not available right now; retry shortly"
