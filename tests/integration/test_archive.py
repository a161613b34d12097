"""Archives: `make batch-demo` (the state machine's work on a local S3, with the built batch
function) and `archive start` against the deployed state machine (moto)."""

from __future__ import annotations

import json

import boto3
import pytest
from certcorners_tools import archive, local
from moto import mock_aws


def test_batch_demo_writes_a_line_per_photo_and_one_error_for_the_corrupt_one(tmp_path,
                                                                           reference_package):
    if not (local.BUILD / "InferenceLayerX86" / "python").is_dir():
        pytest.fail("no sam build output: run `make build` (the test target does) first")
    summary = archive.demo(tmp_path, 50)
    lines = [json.loads(x) for x in (tmp_path / "SUCCEEDED_0.jsonl").read_text().splitlines()]
    assert len(lines) == summary["photos"] == 50
    assert len({line["key"] for line in lines}) == 50
    errors = {line["key"]: line["error"]["code"] for line in lines if "error" in line}
    assert errors.pop("scans/corrupt.jpg") == "undecodable_image"
    # The rest are answered, or refused because there is no certificate (the desk photos).
    assert set(errors.values()) <= {"certificate_not_found"}
    assert all(key.startswith("scans/desk-without-certificate") for key in errors), errors
    answered = [line for line in lines if "corners" in line]
    assert len(answered) == summary["answered"] == 50 - 1 - len(errors) >= 45
    assert summary["results"].endswith("/SUCCEEDED_0.jsonl")
    assert summary["ms_per_photo_warm"] > 0 and summary["lambda_usd_per_million_photos"] > 0


def test_cost_per_million_is_lambda_compute_plus_a_request_per_batch():
    # 100 ms at 1769 MB: 1e6 x 0.1 s x 1.7275 GB x $0.0000166667 + 20,000 requests x $0.2/1e6
    assert archive.cost_per_million(100) == pytest.approx(2.8792 + 0.004, abs=1e-3)


@mock_aws
def test_start_runs_the_stacks_state_machine_over_the_prefix(monkeypatch):
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    iam = boto3.client("iam")
    role = iam.create_role(RoleName="sfn", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    machine = boto3.client("stepfunctions").create_state_machine(
        name="certcorners-batch", roleArn=role,
        definition=json.dumps({"StartAt": "A", "States": {"A": {"Type": "Pass", "End": True}}}))
    template = {"Resources": {"Topic": {"Type": "AWS::SNS::Topic"}}, "Outputs": {
        "BatchStateMachineArn": {"Value": machine["stateMachineArn"]},
        "ResultsBucketName": {"Value": "my-results"}}}
    boto3.client("cloudformation").create_stack(StackName="certcorners",
                                                TemplateBody=json.dumps(template))
    started = archive.start("certcorners", "scans/2026/", "us-east-1")
    execution = boto3.client("stepfunctions").describe_execution(
        executionArn=started["execution"])
    assert json.loads(execution["input"]) == {"prefix": "scans/2026/"}
    assert started["results"].startswith("s3://my-results/results/")


@mock_aws
def test_start_without_the_batch_resources_says_how_to_deploy_them(monkeypatch):
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    template = {"Resources": {"Topic": {"Type": "AWS::SNS::Topic"}}}
    boto3.client("cloudformation").create_stack(StackName="certcorners",
                                                TemplateBody=json.dumps(template))
    with pytest.raises(SystemExit, match="EnableBatch=true"):
        archive.start("certcorners", "scans/", "us-east-1")
