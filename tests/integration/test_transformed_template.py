"""What the template becomes after SAM's transform: API Gateway's own refusals in the
function's error shape, one stage, alarms behind their switch, tracing behind its switch."""

from __future__ import annotations

import json
import os
import re
import subprocess

import pytest

from tests.conftest import ROOT

SAM_PYTHON = ROOT / ".venv-sam" / "bin" / "python"


_translator: subprocess.Popen | None = None


def transformed(code_locations: dict | None = None, **parameters) -> dict:
    """template.yaml through SAM's translator with these parameters (one translator process
    serves every call: its start costs a second)."""
    global _translator
    if not SAM_PYTHON.exists():
        pytest.fail("the SAM CLI's environment is missing: run `make setup`")
    if _translator is None or _translator.poll() is not None:
        _translator = subprocess.Popen(
            [str(SAM_PYTHON), str(ROOT / "tests" / "integration" / "transform_template.py"),
             str(ROOT / "template.yaml"), "--serve"], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env={**os.environ, "AWS_DEFAULT_REGION": "us-east-1"})
    _translator.stdin.write(json.dumps([parameters, code_locations or {}]) + "\n")
    _translator.stdin.flush()
    line = _translator.stdout.readline()
    if not line:
        _translator.wait(10)
        pytest.fail("SAM's translator failed: " + _translator.stderr.read()[-2000:])
    return json.loads(line)


@pytest.fixture(scope="module", autouse=True)
def _stop_translator():
    yield
    if _translator is not None:
        _translator.stdin.close()
        _translator.wait(10)


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
    assert "TracingConfig" not in function  # Lambda's default: no X-Ray
    assert variables["POWERTOOLS_TRACE_DISABLED"] == {"Fn::If": ["UseTracing", "false", "true"]}
    assert variables["POWERTOOLS_TRACER_CAPTURE_RESPONSE"] == "false"
    assert variables["POWERTOOLS_TRACER_CAPTURE_ERROR"] == "false"
    assert default["Parameters"]["Tracing"]["Default"] == "Disabled"


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
    for path, verb in (("/v1/corners", "post"), ("/v1/uploads", "post"), ("/v1/model", "get")):
        method = paths[path][verb]
        if required == "true":
            assert method["security"] == [{"api_key": []}]
        else:
            assert "security" not in method
        integration = method["x-amazon-apigateway-integration"]
        assert integration["type"] == "aws_proxy"
        assert "CornersFunctionAliaslive" in integration["uri"]["Fn::Sub"]
    # The function may be invoked by API Gateway for every route, whatever the switch.
    permissions = _of_type(default, "AWS::Lambda::Permission")
    assert len(permissions) == 3


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
    assert set(statements) == {"ReadTheModelOnly", "SeeWhetherTheModelExists",
                               "ReadAndPresignUploads", "SeeWhetherAnUploadExists"}
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


# --- Rotation: every change the function reads reaches `live` ---------------------------

# The parameters whose values the function reads (environment, memory, timeout, layer,
# SnapStart), each with another value than its default.
READ_BY_THE_FUNCTION = {
    "ModelKey": "models/reference-20261205a/model.tar.gz", "MinConfidence": "0.99",
    "MemorySize": "3008", "LiteRtThreads": "2", "EnableSnapStart": "true",
    "ScanWholePhoto": "false", "Tracing": "Active", "CorsAllowOrigin": "https://a.example.com",
    "Timeout": "10", "ModelBucketName": "my-models", "Architecture": "arm64",
}


def _published_version(template: dict, **parameters) -> tuple[str, str]:
    """The version `live` points at, as CloudFormation tells versions apart: its logical id
    (a new id publishes a new version) and its resolved Description (a Lambda version's
    Description cannot be updated: a new one replaces it, publishing a new version). A new
    LayerVersion resource is a new layer version: its logical id stands in for the number."""
    resources = deployed(template, **parameters)
    (alias,) = [r for r in resources.values() if r["Type"] == "AWS::Lambda::Alias"]
    version_id = alias["Properties"]["FunctionVersion"]["Fn::GetAtt"][0]
    values = {name: str(spec.get("Default", "")) for name, spec in
              template["Parameters"].items()} | parameters

    def resolve(node):
        if isinstance(node, str):
            return node
        (kind, args), = node.items()
        if kind == "Ref":
            if args in values:
                return values[args]
            if template["Resources"][args]["Type"] == "AWS::Lambda::LayerVersion":
                return f"arn:aws:lambda:us-east-1:123456789012:layer:layer:{args}"
            return f"{args}-physical-name"
        if kind == "Fn::Sub":
            text, variables = args if isinstance(args, list) else (args, {})
            variables = {k: resolve(v) for k, v in variables.items()}
            return re.sub(r"\$\{([^}]+)\}", lambda m: variables.get(m[1]) or resolve(
                {"Ref": m[1]}), text)
        if kind == "Fn::Select":
            return resolve(args[1])[args[0]] if isinstance(args[1], dict) and "Fn::Split" in \
                args[1] else args[1][args[0]]
        if kind == "Fn::Split":
            return resolve(args[1]).split(args[0])
        raise ValueError(kind)

    description = resources[version_id]["Properties"].get("Description")

    def split_select(node):  # Fn::Select over Fn::Split: resolve the list first
        if isinstance(node, dict) and list(node) == ["Fn::Select"]:
            index, inner = node["Fn::Select"]
            return resolve(inner["Fn::Split"][1]).split(inner["Fn::Split"][0])[index]
        return resolve(node)

    if isinstance(description, dict) and "Fn::Sub" in description:
        text, variables = description["Fn::Sub"]
        variables = {k: split_select(v) for k, v in variables.items()}
        description = re.sub(r"\$\{([^}]+)\}", lambda m: variables.get(m[1]) or resolve(
            {"Ref": m[1]}), text)
    return version_id, description


def test_an_unchanged_deploy_publishes_no_new_version(default):
    assert _published_version(default) == _published_version(transformed())


@pytest.mark.parametrize("name", sorted(READ_BY_THE_FUNCTION))
def test_a_changed_setting_publishes_a_new_version_for_live(default, name):
    value = READ_BY_THE_FUNCTION[name]
    changed = transformed(**{name: value})
    assert _published_version(changed, **{name: value}) != _published_version(default)


def test_a_layer_only_change_publishes_a_new_version_for_live(default):
    changed = transformed({"InferenceLayerX86": "s3://bucket/layer-2"})
    assert _published_version(changed) != _published_version(default)


def test_a_code_only_change_publishes_a_new_version_for_live(default):
    changed = transformed({"CornersFunction": "s3://bucket/code-2"})
    assert _published_version(changed)[0] != _published_version(default)[0]


def test_every_parameter_the_function_reads_is_in_its_version(default):
    function = deployed(default)["CornersFunction"]["Properties"]
    read = {m for m in re.findall(r'"Ref": "([A-Za-z0-9]+)"', json.dumps(function))
            if m in default["Parameters"]}
    read |= set(re.findall(r"\$\{([A-Za-z0-9]+)\}", json.dumps(function))) & set(
        default["Parameters"])
    read -= {"ReservedConcurrency"}  # the function's, not a version's
    version_id, _ = _published_version(default)
    text = default["Resources"][version_id]["Properties"]["Description"]["Fn::Sub"][0]
    named = set(re.findall(r"\$\{([A-Za-z0-9]+)\}", text))
    assert read <= named | {"ModelBucketName"} and "ModelBucketName" in named, read - named


def test_the_version_description_fits_lambdas_256_characters(default):
    longest = {}
    for name, spec in default["Parameters"].items():
        if "AllowedValues" in spec:
            longest[name] = max(map(str, spec["AllowedValues"]), key=len)
        elif "MaxLength" in spec:
            longest[name] = "x" * int(spec["MaxLength"])
        elif spec["Type"] == "Number":
            longest[name] = str(spec.get("MaxValue", spec["Default"]))
    _, description = _published_version(default, **longest)
    # The layer's version number stands for its logical id here: allow five digits.
    layer_id = next(k for k in default["Resources"] if k.startswith("InferenceLayerX86"))
    length = len(description) - len(layer_id) + 5
    assert length <= 256, description


@pytest.mark.parametrize("name, value", [("ApiKeyRequired", "false"),
                                         ("CorsAllowOrigin", "https://a.example.com")])
def test_a_changed_api_setting_deploys_the_stage_again(default, name, value):
    def deployment(template):
        (stage,) = _of_type(template, "AWS::ApiGateway::Stage").values()
        return stage["Properties"]["DeploymentId"]["Ref"]

    assert deployment(transformed(**{name: value})) != deployment(default)


# --- Smaller gaps ---------------------------------------------------------------------------

def test_without_api_keys_the_stage_itself_is_throttled(default):
    stage = next(r for r in deployed(default, ApiKeyRequired="false").values()
                 if r["Type"] == "AWS::ApiGateway::Stage")
    (setting,) = stage["Properties"]["MethodSettings"]
    assert setting["ResourcePath"] == "/*" and setting["HttpMethod"] == "*"
    assert setting["ThrottlingRateLimit"] == {"Ref": "ThrottleRateLimit"}
    assert setting["ThrottlingBurstLimit"] == {"Ref": "ThrottleBurstLimit"}
    keyed = next(r for r in deployed(default).values() if r["Type"] == "AWS::ApiGateway::Stage")
    assert "MethodSettings" not in keyed["Properties"]  # the usage plan throttles each key
    (plan,) = _of_type(default, "AWS::ApiGateway::UsagePlan").values()
    assert set(plan["Properties"]["Throttle"]) == {"RateLimit", "BurstLimit"}


@pytest.mark.parametrize("origin", ["", "https://app.example.com"])
def test_api_gateways_own_refusals_carry_the_cors_origin(default, origin):
    api = deployed(default, CorsAllowOrigin=origin)["CornersApi"]["Properties"]["Body"]
    for kind, response in api["x-amazon-apigateway-gateway-responses"].items():
        headers = response.get("responseParameters", {})
        if origin:
            header = headers["gatewayresponse.header.Access-Control-Allow-Origin"]
            assert header == {"Fn::Sub": "'${CorsAllowOrigin}'"}, kind
        else:
            assert headers == {}, kind


@pytest.mark.parametrize("tracing, granted", [("Disabled", False), ("Active", True)])
def test_xray_permission_only_with_tracing_on(tracing, granted):
    template = transformed(Tracing=tracing)
    role = deployed(template, Tracing=tracing)["CornersFunctionRole"]["Properties"]
    assert ("AWSXrayWriteOnlyAccess" in json.dumps(role.get("ManagedPolicyArns", []))) is granted
    function = deployed(template, Tracing=tracing)["CornersFunction"]["Properties"]
    assert ("TracingConfig" in function) is granted


def test_metrics_and_alarms_use_the_stacks_own_namespace(default):
    resources = deployed(default)
    variables = resources["CornersFunction"]["Properties"]["Environment"]["Variables"]
    namespace = {"Fn::Sub": "Certcorners/${AWS::StackName}"}
    assert variables["POWERTOOLS_METRICS_NAMESPACE"] == namespace
    assert resources["InferenceLatencyP99Alarm"]["Properties"]["Namespace"] == namespace


def test_the_api_is_regional(default):
    api = default["Resources"]["CornersApi"]["Properties"]
    assert api["EndpointConfiguration"] == {"Types": ["REGIONAL"]}


def test_bucket_policies_are_kept_with_their_retained_buckets(default):
    for bucket, policy in (("ModelBucket", "ModelBucketPolicy"),
                           ("UploadBucket", "UploadBucketPolicy")):
        for name in (bucket, policy):
            resource = default["Resources"][name]
            assert resource["DeletionPolicy"] == resource["UpdateReplacePolicy"] == "Retain"


# --- Uploads ------------------------------------------------------------------------------

def test_the_upload_bucket_is_private_encrypted_tls_only_and_forgets_in_a_day(default):
    resources = deployed(default)
    bucket = resources["UploadBucket"]["Properties"]
    assert all(bucket["PublicAccessBlockConfiguration"].values())
    assert bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"][0][
        "ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    (rule,) = bucket["LifecycleConfiguration"]["Rules"]
    assert rule["Status"] == "Enabled" and rule["ExpirationInDays"] == 1
    (deny,) = resources["UploadBucketPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    assert deny["Effect"] == "Deny" and deny["Condition"] == {
        "Bool": {"aws:SecureTransport": "false"}}
    variables = resources["CornersFunction"]["Properties"]["Environment"]["Variables"]
    assert variables["UPLOAD_BUCKET"] == {"Ref": "UploadBucket"}
    assert variables["UPLOAD_PREFIX"] == "uploads/"


def test_the_role_reads_and_presigns_uploads_under_the_prefix_only(default):
    statements = {s["Sid"]: s for s in _role_statements(deployed(default))}
    grant = statements["ReadAndPresignUploads"]
    assert sorted(grant["Action"]) == ["s3:GetObject", "s3:PutObject"]
    assert grant["Resource"] == {"Fn::Sub": "${UploadBucket.Arn}/uploads/*"}
    paths = _methods(deployed(default))
    assert set(paths) == {"/v1/corners", "/v1/uploads", "/v1/model"}
    assert paths["/v1/uploads"]["post"]["security"] == [{"api_key": []}]


# --- Batch ----------------------------------------------------------------------------------

def test_batch_resources_are_off_by_default(default):
    kinds = {r["Type"] for r in deployed(default).values()}
    assert "AWS::StepFunctions::StateMachine" not in kinds
    assert "BatchFunction" not in deployed(default)
    assert default["Rules"]["BatchNeedsAnArchiveBucket"]["Assertions"][0]["Assert"] == {
        "Fn::Not": [{"Fn::Equals": [{"Ref": "ArchiveBucketName"}, ""]}]}


@pytest.fixture(scope="module")
def batch():
    return transformed(EnableBatch="true", ArchiveBucketName="scans")


def _definition(resources: dict, template: dict, concurrency: str) -> dict:
    machine = resources["BatchStateMachine"]["Properties"]
    text = "\n".join(machine["DefinitionString"]["Fn::Join"][1])
    limits = template["Mappings"]["BatchLimits"][concurrency]
    values = {"ArchiveBucket": "scans", "ResultsBucket": "results-bucket",
              "BatchFunctionArn": "arn:aws:lambda:us-east-1:123456789012:function:batch",
              "MaxConcurrency": str(limits["MaxConcurrency"])}
    for key in machine["DefinitionSubstitutions"]:
        assert key in values, key
    return json.loads(re.sub(r"\$\{(\w+)\}", lambda m: values[m[1]], text))


@pytest.mark.parametrize("concurrency", ["10", "20", "50", "100", "200"])
def test_the_state_machine_maps_batches_below_the_functions_reserved_concurrency(batch,
                                                                              concurrency):
    resources = deployed(batch, EnableBatch="true", ArchiveBucketName="scans",
                         BatchConcurrency=concurrency)
    definition = _definition(resources, batch, concurrency)
    limits = definition["States"]["Limits"]["Parameters"]
    max_concurrency = json.loads(re.search(r"StringToJson\('(\d+)'\)",
                                           limits["max_concurrency.$"])[1])
    reserved = int(resources["BatchFunction"]["Properties"]["ReservedConcurrentExecutions"]
                   ["Ref"] == "BatchConcurrency" and concurrency)
    assert 0 < max_concurrency < reserved
    mapped = definition["States"]["FindCorners"]
    assert mapped["MaxConcurrencyPath"] == "$.max_concurrency"
    assert mapped["ItemProcessor"]["ProcessorConfig"]["Mode"] == "DISTRIBUTED"
    assert mapped["ItemReader"]["Resource"] == "arn:aws:states:::s3:listObjectsV2"
    assert mapped["ItemReader"]["Parameters"]["Bucket"] == "scans"
    assert mapped["ItemBatcher"]["MaxItemsPerBatch"] > 1
    assert mapped["ToleratedFailurePercentage"] == 100
    writer = mapped["ResultWriter"]
    assert writer["WriterConfig"] == {"OutputType": "JSONL", "Transformation": "FLATTEN"}
    assert writer["Parameters"]["Bucket"] == "results-bucket"


def test_the_batch_function_shares_the_layer_and_code_and_reads_only_the_archive(batch):
    resources = deployed(batch, EnableBatch="true", ArchiveBucketName="scans")
    function = resources["BatchFunction"]["Properties"]
    api_function = resources["CornersFunction"]["Properties"]
    assert function["Layers"] == api_function["Layers"]
    assert function["Code"] == api_function["Code"]
    assert function["Handler"] == "batch.lambda_handler"
    statements = {s["Sid"]: s for policy in resources["BatchFunctionRole"]["Properties"][
        "Policies"] for s in policy["PolicyDocument"]["Statement"]}
    assert set(statements) == {"ReadTheModelOnly", "ReadTheArchive"}
    assert statements["ReadTheArchive"]["Action"] == "s3:GetObject"
