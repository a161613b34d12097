"""HTTPS API: where is the registration number on this photo of a registration certificate?

POST /v1/corners  the photo (raw JPEG/PNG/WebP, JSON {"image": base64} or {"s3_key": key})
                  -> four corners
POST /v1/uploads  a presigned S3 upload form for photos over ~4.5 MB -> then {"s3_key": key}
GET  /v1/model    the model card of the model being served
"""

import json
import os

from api_docs import (
    CORNERS_PARAMETERS,
    CORNERS_REQUEST_BODY,
    CORNERS_RESPONSES,
    INCLUDE_VALUES,
    MODEL_RESPONSES,
    UPLOADS_REQUEST_BODY,
    UPLOADS_RESPONSES,
)
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, CORSConfig, Response
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit
from certcorners import settings, uploads
from certcorners.crop import png_base64, rectified_crop
from certcorners.errors import ApiError, BadRequest, CertificateNotFound
from certcorners.model_store import ModelStore
from certcorners.request_body import image_request, media_type, parse_image_request
from certcorners.service import Limits, find_corners
from certcorners.timing import RequestTiming
from certcorners.tracing import make_tracer

logger = Logger()
tracer = make_tracer()  # Powertools' Tracer, or a no-op when tracing is off (no X-Ray SDK)
metrics = Metrics()
# CORS only when an origin is configured (template: CorsAllowOrigin): answers then carry its
# Access-Control-Allow-Origin; API Gateway answers the preflight itself.
CORS_ALLOW_ORIGIN = os.environ.get("CORS_ALLOW_ORIGIN", "")
# No enable_validation: its pydantic import costs ~0.1 s of every cold start for one query
# parameter, checked in the route instead.
app = APIGatewayRestResolver(cors=CORSConfig(
    allow_origin=CORS_ALLOW_ORIGIN, allow_headers=["Content-Type", "X-Api-Key"],
    expose_headers=["Server-Timing"]) if CORS_ALLOW_ORIGIN else None)
# Every response carries the request's steps as a Server-Timing header (timed() and the
# error handlers below), so a client sees what a refusal cost too.
timing = RequestTiming()

# Read once and checked here, in the init: a wrong value stops it with the variable's name.
MAX_IMAGE_BYTES = settings.whole_number("MAX_IMAGE_BYTES", 4_500_000)
MAX_IMAGE_PIXELS = settings.whole_number("MAX_IMAGE_PIXELS", 40_000_000)
MIN_IMAGE_SIDE = settings.whole_number("MIN_IMAGE_SIDE", 64)
LIMITS = Limits(MAX_IMAGE_PIXELS, MIN_IMAGE_SIDE)
# Photos uploaded with POST /v1/uploads: the bucket, the prefix keys must have, the size cap.
UPLOADS = uploads.UploadSettings.from_environment()
# Below this confidence the answer is 422 certificate_not_found; None: the model card's.
MIN_CONFIDENCE = settings.confidence_or_none("MIN_CONFIDENCE")
# The scan of the whole photo finds a few more certificates but makes every refusal ~1 s
# (docs/performance.md); false refuses in ~0.13 s instead.
SCAN_WHOLE_PHOTO = settings.flag("SCAN_WHOLE_PHOTO", True)

store = ModelStore.from_environment(on_load=lambda model: logger.info(
    "model loaded", extra={"version": model.version, "sha256": model.sha256,
                           "load_seconds": round(model.load_seconds, 3)}))
if settings.flag("MODEL_PRELOAD", True) and store.uri:
    try:  # in the init phase (and before a SnapStart snapshot); a failure retries per request
        store.get()
    except ApiError as error:
        logger.warning("model not loaded at start-up", extra={"reason": error.message})


@app.post("/v1/corners", summary="Find the registration number's four corners",
          responses=CORNERS_RESPONSES, openapi_extensions={
              "requestBody": CORNERS_REQUEST_BODY, "parameters": CORNERS_PARAMETERS})
@tracer.capture_method(capture_response=False)  # the answer may hold the number's crop
def corners() -> dict:
    event = app.current_event
    include = event.get_query_string_value("include")
    if include is not None and include not in INCLUDE_VALUES:
        raise BadRequest("invalid parameter: include (include accepts only 'crop')")
    request = parse_image_request(event.body, bool(event.is_base64_encoded),
                                  event.headers.get("content-type"), MAX_IMAGE_BYTES)
    if request.s3_key is not None:  # a photo uploaded with POST /v1/uploads
        key = uploads.checked_key(UPLOADS, request.s3_key)
        request = image_request(uploads.read_object(UPLOADS.bucket, key, UPLOADS.max_bytes),
                                UPLOADS.max_bytes)
        timing.lap("upload_read")
    cold = store.loaded is None
    timing.skip()
    model = store.get()
    if cold:  # the model's fetch and load, on the request that needed them only
        timing.lap("model_fetch")
    try:
        found = find_corners(model, request.data, LIMITS, MIN_CONFIDENCE, SCAN_WHOLE_PHOTO,
                             timing)
    except CertificateNotFound as refusal:
        metrics.add_metric(name="CertificateNotFound", unit=MetricUnit.Count, value=1)
        # Apart from InferenceLatency: a refusal has tried every look and the search, ~7x
        # an answer's time (docs/performance.md).
        metrics.add_metric(name="NotFoundInferenceLatency", unit=MetricUnit.Milliseconds,
                           value=refusal.inference_ms)
        raise
    metrics.add_metric(name="InferenceLatency", unit=MetricUnit.Milliseconds,
                       value=found.inference_ms)
    body = found.body
    metrics.add_metric(name="ImageMegapixels", unit=MetricUnit.Count,
                       value=body["image"]["width"] * body["image"]["height"] / 1e6)
    if include == "crop":
        body["crop"] = {"format": "png", "base64": png_base64(
            rectified_crop(request.data, found.prediction.corners, MAX_IMAGE_PIXELS))}
    body["timing_ms"] = {step: round(timing.steps.get(step, 0.0), 2) for step in (
        "upload_read", "model_fetch", "decode", "inference", "read")} | {
        "total": round(timing.total(), 2)}
    prediction = found.prediction
    logger.info("corners found", extra={"format": request.format, **body["image"],
                                        "turns": prediction.turns,
                                        "searched": prediction.searched,
                                        "scanned": prediction.scanned,
                                        "card_view": prediction.cut,
                                        "tiled": prediction.tiled,
                                        **body["timing_ms"]})
    return body


@app.post("/v1/uploads", summary="A presigned S3 upload for a photo over ~4.5 MB",
          responses=UPLOADS_RESPONSES, openapi_extensions={"requestBody": UPLOADS_REQUEST_BODY})
def upload() -> dict:
    content_type = "image/jpeg"
    if app.current_event.body:
        if media_type(app.current_event.headers.get("content-type")) != "application/json":
            raise BadRequest('send no body, or JSON {"content_type": "image/png"}')
        try:
            document = json.loads(app.current_event.body)
        except (ValueError, RecursionError) as exc:
            raise BadRequest("the body is not valid JSON") from exc
        if not isinstance(document, dict) or set(document) - {"content_type"}:
            raise BadRequest('the body may hold only {"content_type": "image/jpeg"}')
        content_type = document.get("content_type", content_type)
    return uploads.presigned_post(UPLOADS, uploads.new_key(UPLOADS, content_type))


@app.get("/v1/model", summary="The served model's card", responses=MODEL_RESPONSES)
def model_card() -> dict:
    return store.get().card


def timed(app, next_middleware) -> Response:
    timing.start()
    response = next_middleware(app)
    response.headers["Server-Timing"] = timing.header()
    return response


app.use(middlewares=[timed])


@app.exception_handler(ApiError)
def api_error(error: ApiError) -> Response:
    logger.warning("request refused", extra={"status": error.status, "code": error.code,
                                             "reason": error.message})
    return Response(error.status, "application/json", error.body(),
                    headers={"Server-Timing": timing.header()})


@app.exception_handler(Exception)
def unexpected(error: Exception) -> Response:
    logger.exception("unexpected error")
    return Response(500, "application/json", ApiError("an unexpected error occurred").body(),
                    headers={"Server-Timing": timing.header()})


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics(capture_cold_start_metric=True)
def lambda_handler(event, context):
    return app.resolve(event, context)
