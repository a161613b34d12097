"""A batch of archive photos -> one result per photo: the task of the batch state machine's
Distributed Map (template.yaml, BatchStateMachine), invoked directly, not through the API.

In:  {"Items": [{"Key": "scans/0001.jpg", "Size": 812345}, ...], "BatchInput": {"bucket": B}}
Out: {"results": [{"key", "corners", "polygon", "confidence", "text", ..., "model"} or
                  {"key", "error": {"code", "message"}}, ...]}, in the items' order.

A photo that cannot be answered is an error line, never the batch's failure: only a fault of
the batch itself (the model unavailable) fails it, and the state machine retries it.
"""

import os

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from certcorners import settings, uploads
from certcorners.errors import ApiError, BadRequest, PayloadTooLarge
from certcorners.model_store import ModelStore
from certcorners.request_body import image_request
from certcorners.service import Limits, find_corners

logger = Logger()
metrics = Metrics()

ARCHIVE_BUCKET = os.environ.get("ARCHIVE_BUCKET", "")
MAX_PHOTO_BYTES = settings.whole_number("MAX_UPLOAD_BYTES", 40_000_000)
LIMITS = Limits(settings.whole_number("MAX_IMAGE_PIXELS", 40_000_000),
                settings.whole_number("MIN_IMAGE_SIDE", 64))
MIN_CONFIDENCE = settings.confidence_or_none("MIN_CONFIDENCE")
SCAN_WHOLE_PHOTO = settings.flag("SCAN_WHOLE_PHOTO", True)
store = ModelStore.from_environment()


def result_of(model, bucket: str, item: dict) -> dict:
    """One photo's line: its answer, or the error that says why there is none."""
    key = item.get("Key")
    try:
        if not isinstance(key, str) or not key:
            raise BadRequest("the item has no Key")
        if int(item.get("Size") or 0) > MAX_PHOTO_BYTES:  # the listing says so: not read
            raise PayloadTooLarge(f"the photo is {item['Size']} bytes; at most "
                                          f"{MAX_PHOTO_BYTES} are accepted")
        data = uploads.read_object(bucket, key, MAX_PHOTO_BYTES)
        found = find_corners(model, image_request(data, MAX_PHOTO_BYTES).data, LIMITS,
                             MIN_CONFIDENCE, SCAN_WHOLE_PHOTO)
        return {"key": key, **found.body}
    except uploads.UploadNotFound:
        return {"key": key, "error": {"code": "not_found",
                                      "message": "no such object (deleted since it was listed?)"}}
    except uploads.UploadsUnavailable as exc:  # S3 refused or failed: say why, with the key
        return {"key": key, "error": {"code": "unreadable", "message": exc.message}}
    except ApiError as exc:
        return {"key": key, **exc.body()}


@logger.inject_lambda_context
@metrics.log_metrics
def lambda_handler(event, context):
    bucket = (event.get("BatchInput") or {}).get("bucket", "")
    if bucket != ARCHIVE_BUCKET:  # the role reads this bucket only; say so plainly
        raise ValueError(f"this function reads s3://{ARCHIVE_BUCKET}/ only, not {bucket!r}")
    items = event.get("Items") or []
    model = store.get()  # ModelUnavailable fails the batch: the state machine retries it
    results = [result_of(model, bucket, item) for item in items]
    failed = sum("error" in line for line in results)
    metrics.add_metric(name="BatchPhotos", unit=MetricUnit.Count, value=len(results))
    metrics.add_metric(name="BatchPhotosUnanswered", unit=MetricUnit.Count, value=failed)
    logger.info("batch done", extra={"photos": len(results), "unanswered": failed})
    return {"results": results}
