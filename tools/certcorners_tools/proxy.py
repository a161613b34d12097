"""HTTP request <-> API Gateway REST proxy event, the way API Gateway does it.

Standard library only: it runs beside the handler in the bare interpreter that has nothing
but the built layer on its path.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from urllib.parse import parse_qs, urlsplit

# The API's binary media types (template.yaml): these bodies arrive base64-encoded.
BINARY_MEDIA_TYPES = ("image/jpeg", "image/png", "image/webp")
ROUTES = {("POST", "/v1/corners"), ("POST", "/v1/uploads"), ("GET", "/v1/model")}
# The template's GatewayResponses (status and body) for the refusals API Gateway makes itself;
# tests/integration/test_local_api.py checks them against template.yaml.
GATEWAY_RESPONSES = {
    "MISSING_AUTHENTICATION_TOKEN": (404, {"error": {
        "code": "not_found",
        "message": "no such route: POST /v1/corners, POST /v1/uploads and GET /v1/model exist"}}),
    "INVALID_API_KEY": (403, {"error": {
        "code": "invalid_api_key", "message": "a valid x-api-key header is required"}}),
    "REQUEST_TOO_LARGE": (413, {"error": {
        "code": "payload_too_large",
        "message": "the request is larger than API Gateway accepts (10 MB): upload the photo "
                   "with POST /v1/uploads"}}),
    "DEFAULT_5XX": (502, {"error": {"code": "internal_error",
                                    "message": "Internal server error"}}),
}


def to_event(method: str, target: str, headers: dict[str, str], body: bytes) -> dict:
    url = urlsplit(target)
    query = parse_qs(url.query, keep_blank_values=True)
    content_type = next((v for k, v in headers.items() if k.lower() == "content-type"), "")
    binary = content_type.split(";")[0].strip().lower() in BINARY_MEDIA_TYPES
    if binary:
        text, encoded = base64.b64encode(body).decode("ascii"), True
    else:
        try:
            text, encoded = body.decode("utf-8"), False
        except UnicodeDecodeError:  # API Gateway would pass such bytes through base64
            text, encoded = base64.b64encode(body).decode("ascii"), True
    now = time.time()
    return {
        "resource": url.path,
        "path": url.path,
        "httpMethod": method,
        "headers": dict(headers),
        "multiValueHeaders": {k: [v] for k, v in headers.items()},
        "queryStringParameters": {k: v[-1] for k, v in query.items()} or None,
        "multiValueQueryStringParameters": query or None,
        "pathParameters": None,
        "stageVariables": None,
        "requestContext": {
            "resourcePath": url.path,
            "httpMethod": method,
            "path": f"/prod{url.path}",
            "stage": "prod",
            "requestId": str(uuid.uuid4()),
            "requestTimeEpoch": int(now * 1000),
            "identity": {"sourceIp": "127.0.0.1", "userAgent": headers.get("User-Agent", "")},
            "accountId": "123456789012",
            "apiId": "local",
            "protocol": "HTTP/1.1",
        },
        "body": text if body else None,
        "isBase64Encoded": encoded and bool(body),
    }


def from_response(response: dict) -> tuple[int, dict[str, str], bytes]:
    body = response.get("body") or ""
    data = base64.b64decode(body) if response.get("isBase64Encoded") else body.encode()
    headers = dict(response.get("headers") or {})
    for key, values in (response.get("multiValueHeaders") or {}).items():
        headers[key] = ", ".join(values)
    return int(response.get("statusCode", 502)), headers, data


def gateway_response(kind: str) -> tuple[int, dict[str, str], bytes]:
    """What the deployed API answers for a refusal of API Gateway's own, e.g. an unknown
    route or method (MISSING_AUTHENTICATION_TOKEN, as REST APIs report both)."""
    status, body = GATEWAY_RESPONSES[kind]
    return status, {"Content-Type": "application/json"}, json.dumps(body).encode()


class LambdaContext:
    """The attributes Powertools reads from the real context object."""

    function_name = "CornersFunction"
    function_version = "$LATEST"
    memory_limit_in_mb = 1769
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:CornersFunction"

    def __init__(self):
        self.aws_request_id = str(uuid.uuid4())

    @staticmethod
    def get_remaining_time_in_millis() -> int:
        return 20_000
