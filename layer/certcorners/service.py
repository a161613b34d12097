"""One photo's bytes -> its answer, or the error that says why not: what the API's route and
the batch function both do with a photo (function/app.py, function/batch.py)."""

from __future__ import annotations

from dataclasses import dataclass

from certcorners.errors import CertificateNotFound, ImageTooSmall, TooManyPixels, UnprocessableImage
from certcorners.preprocessing import (
    CORNER_NAMES,
    ImageDecodeError,
    ImageTooLargeError,
    corners_dict,
    decode,
)
from certcorners.timing import RequestTiming


@dataclass(frozen=True)
class Limits:
    max_image_pixels: int
    min_image_side: int


@dataclass(frozen=True)
class Found:
    body: dict  # corners, polygon, confidence, text fields, image, model
    prediction: object  # the predictor's Prediction (turns, searched, scanned)
    decode_ms: float
    inference_ms: float


def decode_checked(data: bytes, limits: Limits):
    """The photo decoded once (certcorners.preprocessing.decode), or the 422 that says why not."""
    try:
        decoded = decode(data, limits.max_image_pixels)
    except ImageTooLargeError as exc:
        raise TooManyPixels(str(exc)) from exc
    except ImageDecodeError as exc:
        raise UnprocessableImage(str(exc)) from exc
    width, height = decoded.letterbox.width, decoded.letterbox.height
    if min(width, height) < limits.min_image_side:
        raise ImageTooSmall(f"the image is {width} x {height}; each side must be at least "
                            f"{limits.min_image_side} px")
    return decoded


def find_corners(model, data: bytes, limits: Limits, min_confidence: float | None,
                 scan_whole_photo: bool, timing: RequestTiming | None = None) -> Found:
    """Raises CertificateNotFound (with its inference_ms) below the confidence threshold:
    `min_confidence`, or the model card's when it is None. `timing` gets the decode and
    inference laps, whether the photo is answered or not."""
    timing = timing or RequestTiming()
    timing.skip()
    decoded = decode_checked(data, limits)
    decode_ms = timing.lap("decode")
    threshold = (min_confidence if min_confidence is not None
                 else float(model.card.get("confidence_threshold", 0.0)))
    prediction = model.predictor.predict_decoded(decoded, threshold, scan_whole_photo)
    inference_ms = timing.lap("inference")
    points, confidence = prediction.corners, prediction.confidence
    if confidence is not None and confidence < threshold:
        raise CertificateNotFound(f"no registration certificate number was found in the photo "
                                  f"(confidence {confidence:.3f} < {threshold})",
                                  inference_ms=inference_ms)
    body_text = reading_fields(model, decoded, points)
    timing.lap("read")
    named = corners_dict(points)
    letterbox = decoded.letterbox
    body = {
        "corners": named,
        "polygon": [[named[n]["x"], named[n]["y"]] for n in CORNER_NAMES],
        "confidence": None if confidence is None else round(confidence, 4),
        **body_text,
        "image": {"width": letterbox.width, "height": letterbox.height},
        "model": {"version": model.version, "sha256": model.sha256},
    }
    return Found(body, prediction, decode_ms, inference_ms)


def reading_fields(model, decoded, corners) -> dict:
    """The answer's text fields: the reading that fits the number's grammar best, when the
    reader is at least as sure as the model card's reader_threshold; otherwise text null
    and the reason."""
    predictor = model.predictor
    if predictor.reader is None:
        return _unread(None, "the served model has no reader")
    reading = predictor.read(decoded, corners)
    if reading is None:
        return _unread(0.0, "no reading fits the registration number's grammar")
    confidence = round(reading.confidence, 4)
    threshold = float(model.card.get("reader_threshold", 0.0))
    if reading.confidence < threshold:
        return _unread(confidence, f"read with confidence {confidence:.3f}, below the "
                                   f"reader's threshold {threshold}")
    return {"text": reading.text, "text_as_printed": reading.text_as_printed,
            "text_confidence": confidence, "text_reason": None}


def _unread(confidence: float | None, reason: str) -> dict:
    return {"text": None, "text_as_printed": None, "text_confidence": confidence,
            "text_reason": reason}
