"""Every photo under a prefix -> JSONL of corners (or each photo's error).

    python -m certcorners_tools.archive start --stack certcorners --prefix scans/2026/
    python -m certcorners_tools.archive demo --out out/batch      # make batch-demo, no AWS

`start` runs the deployed state machine (EnableBatch=true) and says where its results land.
`demo` does what that state machine does, on the local S3: it lists the prefix, cuts the same
batches, runs the same batch function (function/batch.py, from the built layer) and writes the
same layout: results/<run>/SUCCEEDED_0.jsonl (one line per photo) and manifest.json.
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from certcorners_tools import local

MAX_ITEMS_PER_BATCH = 50  # the state machine's ItemBatcher (template.yaml)
ARCHIVE_BUCKET = "certcorners-local-archive"
RESULTS_BUCKET = "certcorners-local-results"
# Lambda's x86_64 price in us-east-1 (USD, 2026): per GB-second and per million requests.
PRICE_GB_SECOND = 0.0000166667
PRICE_MILLION_REQUESTS = 0.20
MEMORY_MB = 1769  # the template's MemorySize default


def list_items(s3, bucket: str, prefix: str) -> list[dict]:
    """ListObjectsV2 over the prefix, as the Distributed Map's ItemReader hands items on."""
    items = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for entry in page.get("Contents", []):
            if not entry["Key"].endswith("/"):
                items.append({"Key": entry["Key"], "Size": entry["Size"],
                              "Etag": entry["ETag"], "LastModified": str(entry["LastModified"])})
    return items


def run_batches(items: list[dict], bucket: str, s3_port: int, cache: str,
                log) -> tuple[list, float]:
    """Every batch through function/batch.py in one warm process: (lines, ms per photo);
    the function's logs go to `log`."""
    process = local.handler_process(
        "batch_runner.py", [], s3_port, cache, extra_env={"ARCHIVE_BUCKET": bucket},
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, text=True)
    lines, per_photo = [], []

    def send(batch: list[dict]) -> list[dict]:
        process.stdin.write(json.dumps({"Items": batch, "BatchInput": {"bucket": bucket}}) + "\n")
        process.stdin.flush()
        answer = process.stdout.readline()
        if not answer:
            raise SystemExit(f"the batch function stopped: see its log, {log.name}")
        return json.loads(answer)["results"]

    try:
        send([])  # loads the model (a cold start), which is not a photo's cost
        for start in range(0, len(items), MAX_ITEMS_PER_BATCH):
            batch = items[start:start + MAX_ITEMS_PER_BATCH]
            began = time.perf_counter()
            lines.extend(send(batch))
            per_photo.append((time.perf_counter() - began) * 1000 / len(batch))
    finally:
        process.stdin.close()
        process.wait(30)
    return lines, statistics.median(per_photo) if per_photo else 0.0


def write_results(s3, lines: list[dict], run: str, prefix: str) -> dict:
    """The ResultWriter's layout (JSONL, FLATTEN): one line per photo, and a manifest."""
    body = "".join(json.dumps(line) + "\n" for line in lines)
    key = f"results/{run}/SUCCEEDED_0.jsonl"
    s3.put_object(Bucket=RESULTS_BUCKET, Key=key, Body=body.encode())
    manifest = {"DestinationBucket": RESULTS_BUCKET, "MapRunArn": f"local:{run}",
                "ResultFiles": {"SUCCEEDED": [{"Key": key, "Size": len(body)}],
                                "FAILED": [], "PENDING": []}}
    s3.put_object(Bucket=RESULTS_BUCKET, Key=f"results/{run}/manifest.json",
                  Body=json.dumps(manifest).encode())
    codes: dict[str, int] = {}
    for line in lines:
        if "error" in line:
            codes[line["error"]["code"]] = codes.get(line["error"]["code"], 0) + 1
    return {"prefix": prefix, "photos": len(lines),
            "answered": sum("corners" in line for line in lines), "errors": codes,
            "results": f"s3://{RESULTS_BUCKET}/{key}"}


def cost_per_million(ms_per_photo: float, memory_mb: int = MEMORY_MB) -> float:
    """Lambda's cost of a million photos: compute at `memory_mb` plus one request a batch."""
    compute = 1e6 * ms_per_photo / 1000 * memory_mb / 1024 * PRICE_GB_SECOND
    return compute + PRICE_MILLION_REQUESTS / MAX_ITEMS_PER_BATCH


def demo_photos(count: int) -> list[tuple[str, bytes]]:
    """`count` photos for the demo: the committed held-out and sample photos, each also turned
    by 90, 180 and 270 degrees, and one corrupt file among them."""
    from PIL import Image

    sources = sorted((local.ROOT / "tests" / "photos" / "held-out").glob("*.jpg"))
    sources += sorted(local.PHOTOS.glob("*.jpg"))
    photos = []
    for turn in (0, 90, 180, 270):
        for path in sources:
            image = Image.open(path).convert("RGB").rotate(turn, expand=True)
            buffer = io.BytesIO()
            image.save(buffer, "JPEG", quality=90)
            photos.append((f"{path.stem}-{turn}.jpg", buffer.getvalue()))
    photos = photos[:count - 1]
    photos.insert(len(photos) // 2, ("corrupt.jpg", b"\xff\xd8\xff\xe0" + bytes(2000)))
    return photos


def demo(out: Path, count: int = 50, prefix: str = "scans/") -> dict:
    import boto3

    s3_port = local.free_port()
    out.mkdir(parents=True, exist_ok=True)
    with local.local_s3(s3_port), tempfile.TemporaryDirectory(prefix="model-cache-") as cache:
        s3 = boto3.client("s3", endpoint_url=f"http://127.0.0.1:{s3_port}",
                          region_name="us-east-1", aws_access_key_id="local",
                          aws_secret_access_key="local")
        s3.create_bucket(Bucket=ARCHIVE_BUCKET)
        s3.create_bucket(Bucket=RESULTS_BUCKET)
        for name, data in demo_photos(count):
            s3.put_object(Bucket=ARCHIVE_BUCKET, Key=prefix + name, Body=data)
        items = list_items(s3, ARCHIVE_BUCKET, prefix)
        with open(out / "batch-function.log", "w") as log:
            lines, ms_per_photo = run_batches(items, ARCHIVE_BUCKET, s3_port, cache, log)
        summary = write_results(s3, lines, uuid.uuid4().hex[:12], prefix)
        summary["ms_per_photo_warm"] = round(ms_per_photo, 1)
        summary["lambda_usd_per_million_photos"] = round(cost_per_million(ms_per_photo), 2)
        key = summary["results"].split("/", 3)[3]
        (out / "SUCCEEDED_0.jsonl").write_bytes(
            s3.get_object(Bucket=RESULTS_BUCKET, Key=key)["Body"].read())
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def start(stack: str, prefix: str, region: str | None) -> dict:
    import boto3

    outputs = {o["OutputKey"]: o["OutputValue"] for o in boto3.client(
        "cloudformation", region_name=region).describe_stacks(StackName=stack)["Stacks"][0].get(
        "Outputs", [])}
    if "BatchStateMachineArn" not in outputs:
        raise SystemExit(f"stack {stack} has no batch state machine: deploy it with "
                         f"--parameter-overrides EnableBatch=true ArchiveBucketName=...")
    execution = boto3.client("stepfunctions", region_name=region).start_execution(
        stateMachineArn=outputs["BatchStateMachineArn"], input=json.dumps({"prefix": prefix}))
    return {"execution": execution["executionArn"],
            "results": f"s3://{outputs['ResultsBucketName']}/results/<map run id>/"
                       f"SUCCEEDED_0.jsonl (and FAILED_0.jsonl for batches that failed)"}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m certcorners_tools.archive",
                                     description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    steps = parser.add_subparsers(dest="step", required=True)
    step = steps.add_parser("start", help="run the deployed state machine over a prefix")
    step.add_argument("--stack", default="certcorners")
    step.add_argument("--prefix", required=True, help="of ArchiveBucketName, e.g. scans/")
    step.add_argument("--region", default=None)
    step = steps.add_parser("demo", help="the same, locally, over photos it puts in local S3")
    step.add_argument("--out", type=Path, default=local.ROOT / "out" / "batch")
    step.add_argument("--photos", type=int, default=50)
    args = parser.parse_args(argv)
    if args.step == "start":
        print(json.dumps(start(args.stack, args.prefix, args.region), indent=2))
        return 0
    if args.photos < 2:
        parser.error("--photos must be at least 2 (one of them is corrupt)")
    summary = demo(args.out, args.photos)
    print(json.dumps(summary, indent=2))
    print(f"lines: {args.out / 'SUCCEEDED_0.jsonl'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
