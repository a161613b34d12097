"""With tracing on, what the handler sends to X-Ray: timings and names, never the request's
photo or the answer (which may hold the number's crop, personal data)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap

from tests.conftest import (
    EVENTS,
    FUNCTION_DIR,
    MODEL_BUCKET,
    MODEL_KEY,
    ROOT,
    load_event,
    put_package,
)

SCRIPT = textwrap.dedent('''
    import json
    import app
    from certcorners.model_store import ModelStore
    app.store = ModelStore("s3://{bucket}/{key}", "{cache}")

    class Context:
        function_name = "CornersFunction"
        function_version = "$LATEST"
        memory_limit_in_mb = 1769
        invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:CornersFunction"
        aws_request_id = "trace-test"

        @staticmethod
        def get_remaining_time_in_millis():
            return 20_000

    event = json.load(open("{event}"))
    response = app.lambda_handler(event, Context())
    print(json.dumps({{"status": response["statusCode"], "body": response["body"]}}))
''')


def test_traces_carry_no_request_or_response_body(tmp_path, s3, s3_server, reference_package):
    put_package(s3, reference_package.read_bytes())
    daemon = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    daemon.bind(("127.0.0.1", 0))
    daemon.settimeout(0.5)
    port = daemon.getsockname()[1]
    script = SCRIPT.format(bucket=MODEL_BUCKET, key=MODEL_KEY, cache=tmp_path / "cache",
                           event=EVENTS / "corners-jpeg-crop.json")
    env = {**os.environ,
           "PYTHONPATH": os.pathsep.join([str(FUNCTION_DIR), str(ROOT / "layer")]),
           "POWERTOOLS_SERVICE_NAME": "certcorners", "POWERTOOLS_TRACE_DISABLED": "false",
           "POWERTOOLS_TRACER_CAPTURE_RESPONSE": "false",
           "POWERTOOLS_TRACER_CAPTURE_ERROR": "false",
           "POWERTOOLS_METRICS_NAMESPACE": "CertcornersTest", "MODEL_PRELOAD": "false",
           "MODEL_S3_URI": "", "LAMBDA_TASK_ROOT": str(FUNCTION_DIR),
           "AWS_LAMBDA_FUNCTION_NAME": "CornersFunction",
           "_X_AMZN_TRACE_ID": "Root=1-5759e988-bd862e3fe1be46a994272793;"
                               "Parent=53995c3f42cd8ad8;Sampled=1",
           "AWS_XRAY_DAEMON_ADDRESS": f"127.0.0.1:{port}",
           "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
           "AWS_DEFAULT_REGION": "us-east-1", "AWS_REGION": "us-east-1"}
    env["AWS_ENDPOINT_URL_S3"] = s3_server
    result = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    answer = json.loads(result.stdout.strip().splitlines()[-1])
    assert answer["status"] == 200
    crop = json.loads(answer["body"])["crop"]["base64"]
    segments = []
    try:
        while True:
            segments.append(daemon.recv(1 << 16).decode())
    except TimeoutError:
        pass
    finally:
        daemon.close()
    # Tracing ran: the handler's and the route's subsegments reached the daemon...
    names = [json.loads(s.split("\n", 1)[1])["name"] for s in segments]
    assert "## lambda_handler" in names and "## app.corners" in names, names
    sent = "".join(segments)
    # ...without the answer, the crop, or the photo.
    photo = load_event("corners-jpeg-crop.json")["body"]
    assert crop[:200] not in sent and photo[:200] not in sent
    assert " response" not in sent  # Powertools names captured answers "<method> response"


def test_with_tracing_off_the_cold_path_imports_no_x_ray_sdk_aws_sdk_or_pydantic():
    # Each costs ~0.1 s or more of every cold start (the model's GET is certcorners.s3_fetch).
    code = ("import sys, app; "
            "heavy = {'aws_xray_sdk', 'boto3', 'botocore.session', 'pydantic'} & set(sys.modules);"
            " assert not heavy, heavy; print(type(app.tracer).__name__)")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(FUNCTION_DIR), str(ROOT / "layer")]),
           "POWERTOOLS_TRACE_DISABLED": "true", "MODEL_PRELOAD": "false", "MODEL_S3_URI": "",
           "POWERTOOLS_SERVICE_NAME": "certcorners", "AWS_DEFAULT_REGION": "eu-central-1"}
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stderr[-1500:]
    assert result.stdout.strip() == "NoTracer"
