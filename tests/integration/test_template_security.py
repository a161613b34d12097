"""Security by default, read off the template: an API key is required, the function may only
read the model object, the bucket is private, encrypted and TLS-only; checkov agrees."""

from __future__ import annotations

import json
import os
import subprocess

import pytest
import yaml

from tests.conftest import ROOT

CHECKOV = ROOT / ".venv-checkov" / "bin" / "checkov"


class _CloudFormationLoader(yaml.SafeLoader):
    pass


def _intrinsic(loader, suffix, node):
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    return {("Ref" if suffix == "Ref" else f"Fn::{suffix}"): value}


_CloudFormationLoader.add_multi_constructor("!", _intrinsic)


@pytest.fixture(scope="module")
def template() -> dict:
    return yaml.load((ROOT / "template.yaml").read_text(), Loader=_CloudFormationLoader)


def test_api_key_is_required_by_default(template):
    # What each setting deploys is checked on the transformed template
    # (test_transformed_template.py); here, the defaults.
    assert template["Parameters"]["ApiKeyRequired"]["Default"] == "true"
    auth = template["Resources"]["CornersApi"]["Properties"]["Auth"]
    assert template["Conditions"]["RequireApiKey"] == {
        "Fn::Equals": [{"Ref": "ApiKeyRequired"}, "true"]}
    assert auth["UsagePlan"]["CreateUsagePlan"] == "PER_API"


def test_function_may_only_get_the_model_object_and_uploads(template):
    function = template["Resources"]["CornersFunction"]["Properties"]
    (policy,) = function["Policies"]
    statement = policy["Statement"][0]
    assert statement["Effect"] == "Allow" and statement["Action"] == "s3:GetObject"
    resource = statement["Resource"]["Fn::Sub"][0]
    assert resource == "arn:${AWS::Partition}:s3:::${Bucket}/${ModelKey}"  # one object
    # The only wildcard: the keys under uploads/ (fresh ones, handed out by POST /v1/uploads).
    text = json.dumps(policy)
    assert text.count("*") == 2 and "${UploadBucket.Arn}/uploads/*" in text
    assert '"s3:prefix": "uploads/*"' in text
    # The environment tells the function the same object it may read.
    uri = function["Environment"]["Variables"]["MODEL_S3_URI"]["Fn::Sub"][0]
    assert uri == "s3://${Bucket}/${ModelKey}"


def test_model_bucket_is_private_encrypted_versioned_and_tls_only(template):
    bucket = template["Resources"]["ModelBucket"]["Properties"]
    assert bucket["VersioningConfiguration"] == {"Status": "Enabled"}
    assert all(bucket["PublicAccessBlockConfiguration"].values())
    assert bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    (deny,) = template["Resources"]["ModelBucketPolicy"]["Properties"]["PolicyDocument"][
        "Statement"]
    assert deny["Effect"] == "Deny"
    assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_timeout_default_fits_api_gateway(template):
    assert int(template["Parameters"]["Timeout"]["Default"]) < 29
    assert int(template["Parameters"]["Timeout"]["MaxValue"]) < 29


def test_checkov_finds_nothing_unjustified():
    if not CHECKOV.exists():
        pytest.fail("checkov is missing: run `make setup`")
    result = subprocess.run(
        [str(CHECKOV), "--file", "template.yaml", "--framework", "cloudformation",
         "--output", "json", "--quiet", "--compact"],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
        env={**os.environ, "BC_SKIP_MAPPING": "TRUE", "CHECKOV_RUN_SCA_PACKAGE_SCAN_V2": "false"})
    report = json.loads(result.stdout or "{}")
    failed = report.get("results", {}).get("failed_checks", [])
    assert not failed, [(f["check_id"], f["resource"], f["check_name"]) for f in failed]
    assert report["summary"]["passed"] > 10
