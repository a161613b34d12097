"""What the template becomes after SAM's transform: API Gateway's own refusals in the
function's error shape, one stage, alarms behind their switch, tracing behind its switch."""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from tests.conftest import ROOT

SAM_PYTHON = ROOT / ".venv-sam" / "bin" / "python"


def transformed(**parameters) -> dict:
    if not SAM_PYTHON.exists():
        pytest.fail("the SAM CLI's environment is missing: run `make setup`")
    result = subprocess.run(
        [str(SAM_PYTHON), str(ROOT / "tests" / "integration" / "transform_template.py"),
         str(ROOT / "template.yaml"), json.dumps(parameters)],
        capture_output=True, text=True, timeout=120,
        env={**os.environ, "AWS_DEFAULT_REGION": "us-east-1"})
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads(result.stdout)


@pytest.fixture(scope="module")
def default() -> dict:
    return transformed()


def deployed(template: dict, **parameters):
    """The template's resources as CloudFormation would create them with these parameters:
    conditions evaluated, Fn::If resolved, AWS::NoValue dropped, unconditioned-off
    resources removed."""
    values = {name: str(spec.get("Default", "")) for name, spec in
              template.get("Parameters", {}).items()}
    values.update(parameters)
    conditions: dict[str, bool] = {}

    def condition(name):
        if name not in conditions:
            conditions[name] = truth(template["Conditions"][name])
        return conditions[name]

    def value(node):
        if isinstance(node, dict) and list(node) == ["Ref"] and node["Ref"] in values:
            return values[node["Ref"]]
        return node

    def truth(node):
        (kind, args), = node.items()
        if kind == "Fn::Equals":
            return value(args[0]) == value(args[1])
        if kind == "Fn::Not":
            return not truth(args[0])
        if kind == "Fn::And":
            return all(truth(a) for a in args)
        if kind == "Fn::Or":
            return any(truth(a) for a in args)
        if kind == "Condition":
            return condition(args)
        raise ValueError(kind)

    no_value = object()

    def resolve(node):
        if isinstance(node, dict):
            if list(node) == ["Fn::If"]:
                name, yes, no = node["Fn::If"]
                return resolve(yes if condition(name) else no)
            if node == {"Ref": "AWS::NoValue"}:
                return no_value
            out = {k: resolve(v) for k, v in node.items()}
            return {k: v for k, v in out.items() if v is not no_value}
        if isinstance(node, list):
            return [v for v in map(resolve, node) if v is not no_value]
        return node

    return {name: resolve(resource) for name, resource in template["Resources"].items()
            if "Condition" not in resource or condition(resource["Condition"])}


def _of_type(template: dict, kind: str) -> dict:
    return {k: v for k, v in template["Resources"].items() if v["Type"] == kind}


def test_every_api_gateway_refusal_has_the_documented_error_shape(default):
    api = default["Resources"]["CornersApi"]["Properties"]["Body"]
    responses = api["x-amazon-apigateway-gateway-responses"]
    expected = {"INVALID_API_KEY": ("403", "invalid_api_key"),
                "MISSING_AUTHENTICATION_TOKEN": ("404", "not_found"),
                "THROTTLED": ("429", "throttled"), "QUOTA_EXCEEDED": ("429", "quota_exceeded"),
                "REQUEST_TOO_LARGE": ("413", "payload_too_large"),
                "INTEGRATION_TIMEOUT": ("504", "timeout")}
    for kind, (status, code) in expected.items():
        body = json.loads(responses[kind]["responseTemplates"]["application/json"])
        assert responses[kind]["statusCode"] == status
        assert body["error"]["code"] == code and body["error"]["message"]
    for kind, code in (("DEFAULT_4XX", "bad_request"), ("DEFAULT_5XX", "internal_error")):
        template = responses[kind]["responseTemplates"]["application/json"]
        # API Gateway fills $context.error.messageString with a quoted JSON string.
        body = json.loads(template.replace("$context.error.messageString", '"Forbidden"'))
        assert body == {"error": {"code": code, "message": "Forbidden"}}


def test_one_stage_named_prod_and_no_stray_stage(default):
    stages = _of_type(default, "AWS::ApiGateway::Stage")
    assert [s["Properties"]["StageName"] for s in stages.values()] == ["prod"]
    for deployment in _of_type(default, "AWS::ApiGateway::Deployment").values():
        assert "StageName" not in deployment["Properties"]


def test_alarms_on_5xx_rate_latency_and_throttles_behind_a_switch(default):
    alarms = _of_type(default, "AWS::CloudWatch::Alarm")
    metrics = {a["Properties"]["MetricName"]: a for a in alarms.values()}
    assert set(metrics) == {"5XXError", "InferenceLatency", "Throttles"}
    assert metrics["InferenceLatency"]["Properties"]["ExtendedStatistic"] == "p99"
    # The latency alarm reads the metric the function emits, in the namespace it emits it to.
    function = default["Resources"]["CornersFunction"]["Properties"]
    namespace = function["Environment"]["Variables"]["POWERTOOLS_METRICS_NAMESPACE"]
    assert metrics["InferenceLatency"]["Properties"]["Namespace"] == namespace
    assert all(a["Condition"] == "UseAlarms" for a in alarms.values())
    assert default["Conditions"]["UseAlarms"] == {"Fn::Equals": [{"Ref": "EnableAlarms"},
                                                                 "true"]}
    assert default["Parameters"]["EnableAlarms"]["Default"] == "true"


def test_tracing_is_off_by_default_and_never_records_bodies(default):
    function = default["Resources"]["CornersFunction"]["Properties"]
    variables = function["Environment"]["Variables"]
    assert function["TracingConfig"]["Mode"] == {"Fn::If": ["UseTracing", "Active",
                                                            "PassThrough"]}
    assert variables["POWERTOOLS_TRACE_DISABLED"] == {"Fn::If": ["UseTracing", "false", "true"]}
    assert variables["POWERTOOLS_TRACER_CAPTURE_RESPONSE"] == "false"
    assert variables["POWERTOOLS_TRACER_CAPTURE_ERROR"] == "false"
    assert default["Parameters"]["EnableTracing"]["Default"] == "false"


def test_the_refusal_threshold_is_a_parameter_passed_to_the_function(default):
    variables = default["Resources"]["CornersFunction"]["Properties"]["Environment"][
        "Variables"]
    assert variables["MIN_CONFIDENCE"] == {"Ref": "MinConfidence"}
    assert default["Parameters"]["MinConfidence"]["Default"] == ""


def test_the_scan_before_a_refusal_is_a_parameter_on_by_default(default):
    variables = default["Resources"]["CornersFunction"]["Properties"]["Environment"][
        "Variables"]
    assert variables["SCAN_WHOLE_PHOTO"] == {"Ref": "ScanWholePhoto"}
    parameter = default["Parameters"]["ScanWholePhoto"]
    assert parameter["Default"] == "true" and parameter["AllowedValues"] == ["true", "false"]


def _methods(resources: dict) -> dict:
    return resources["CornersApi"]["Properties"]["Body"]["paths"]


@pytest.mark.parametrize("required", ["true", "false"])
def test_the_api_key_switch_does_what_it_says(default, required):
    paths = _methods(deployed(default, ApiKeyRequired=required))
    for path, verb in (("/v1/corners", "post"), ("/v1/model", "get")):
        method = paths[path][verb]
        if required == "true":
            assert method["security"] == [{"api_key": []}]
        else:
            assert "security" not in method
        integration = method["x-amazon-apigateway-integration"]
        assert integration["type"] == "aws_proxy"
        assert "CornersFunctionAliaslive" in integration["uri"]["Fn::Sub"]
    # The function may be invoked by API Gateway for both routes, whatever the switch.
    permissions = _of_type(default, "AWS::Lambda::Permission")
    assert len(permissions) == 2


def test_cors_is_off_by_default_with_no_preflight_methods(default):
    paths = _methods(deployed(default))
    assert set(paths["/v1/corners"]) == {"post"} and set(paths["/v1/model"]) == {"get"}
    variables = deployed(default)["CornersFunction"]["Properties"]["Environment"]["Variables"]
    assert variables["CORS_ALLOW_ORIGIN"] == {"Ref": "CorsAllowOrigin"}
    assert default["Parameters"]["CorsAllowOrigin"]["Default"] == ""


def test_cors_with_an_origin_answers_the_preflight_with_that_origin(default):
    origin = "https://app.example.com"
    paths = _methods(deployed(default, CorsAllowOrigin=origin))
    for path, allowed in (("/v1/corners", "POST"), ("/v1/model", "GET")):
        preflight = paths[path]["options"]
        assert "security" not in preflight  # browsers send no key with a preflight
        headers = preflight["x-amazon-apigateway-integration"]["responses"]["default"][
            "responseParameters"]
        assert headers["method.response.header.Access-Control-Allow-Origin"] == {
            "Fn::Sub": "'${CorsAllowOrigin}'"}
        assert allowed in headers["method.response.header.Access-Control-Allow-Methods"]
        assert "X-Api-Key" in headers["method.response.header.Access-Control-Allow-Headers"]


def _role_statements(resources: dict) -> list[dict]:
    role = resources["CornersFunctionRole"]["Properties"]
    return [statement for policy in role["Policies"]
            for statement in policy["PolicyDocument"]["Statement"]]


def test_the_role_reads_the_model_object_and_lists_only_its_key(default):
    statements = {s["Sid"]: s for s in _role_statements(deployed(default))}
    assert set(statements) == {"ReadTheModelOnly", "SeeWhetherTheModelExists"}
    assert statements["ReadTheModelOnly"]["Action"] == "s3:GetObject"
    listing = statements["SeeWhetherTheModelExists"]
    assert listing["Action"] == "s3:ListBucket"
    assert listing["Resource"]["Fn::Sub"][0] == "arn:${AWS::Partition}:s3:::${Bucket}"
    assert listing["Condition"] == {"StringEquals": {"s3:prefix": {"Ref": "ModelKey"}}}
    assert "kms:Decrypt" not in json.dumps(statements)


def test_a_kms_encrypted_bucket_adds_decrypt_through_s3_only(default):
    key = "arn:aws:kms:us-east-1:123456789012:key/abcd"
    statements = {s["Sid"]: s for s in _role_statements(
        deployed(default, ModelBucketKmsKeyArn=key))}
    decrypt = statements["DecryptTheModel"]
    assert decrypt["Action"] == "kms:Decrypt" and decrypt["Resource"] == {
        "Ref": "ModelBucketKmsKeyArn"}
    assert decrypt["Condition"]["StringEquals"]["kms:ViaService"] == {
        "Fn::Sub": "s3.${AWS::Region}.amazonaws.com"}


def test_samconfig_does_not_pin_the_model_key():
    samconfig = (ROOT / "samconfig.toml").read_text()
    overrides = next(line for line in samconfig.splitlines()
                     if line.startswith("parameter_overrides"))
    assert "ModelKey" not in overrides  # a rotated key survives a plain `sam deploy`
