"""With CorsAllowOrigin set, the function's own answers carry CORS headers for that origin
(API Gateway answers the preflight; test_transformed_template checks that side)."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.conftest import EVENTS, ROOT, function_process_env

CALL = """
import json, sys
import app
from tests.conftest import Context
event = json.load(open(sys.argv[1]))
event["headers"] = {**(event.get("headers") or {}), "origin": sys.argv[2]}
event["multiValueHeaders"] = {k: [v] for k, v in event["headers"].items()}
response = app.lambda_handler(event, Context())
multi = {k: v[0] for k, v in (response.get("multiValueHeaders") or {}).items()}
print(json.dumps({"status": response["statusCode"],
                  "headers": {**(response.get("headers") or {}), **multi}}))
"""


def _answer(origin_setting: str, request_origin: str) -> dict:
    result = subprocess.run([sys.executable, "-c", CALL, str(EVENTS / "model.json"),
                             request_origin],
                            env=function_process_env(CORS_ALLOW_ORIGIN=origin_setting),
                            capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert result.returncode == 0, result.stderr[-1500:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_answers_carry_the_configured_origin():
    answer = _answer("https://app.example.com", "https://app.example.com")
    headers = {k.lower(): v for k, v in answer["headers"].items()}
    assert headers.get("access-control-allow-origin") == "https://app.example.com", answer


def test_no_cors_headers_by_default():
    answer = _answer("", "https://app.example.com")
    assert not any(k.lower().startswith("access-control-") for k in answer["headers"]), answer
