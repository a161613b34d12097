"""The Docker-free local path: an embedded S3 with the model (and an upload bucket) in it,
and the real handler.

    python -m certcorners_tools.local invoke events/corners-jpeg.json
    python -m certcorners_tools.local serve [--port 3000]
    python -m certcorners_tools.local demo            # the README's main job
    python -m certcorners_tools.local --s3-port 5055 s3   # only the S3, for `sam local`

The S3 is moto's server on 127.0.0.1; the reference model is published into it with the
training CLI's own publish. The handler runs in a separate bare Python 3.12 (`-S`: no
site-packages) whose path holds only the folders `sam build` made, as in Lambda.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BUILD = ROOT / ".aws-sam" / "build"
TOOLS = Path(__file__).resolve().parent
ENV_FILE = ROOT / "events" / "env.json"
PHOTOS = ROOT / "events" / "photos"
REFERENCE_PACKAGE = ROOT / "training" / "reference" / "model.tar.gz"
DOCKER_HOST = "host.docker.internal"


def function_environment(s3_port: int, cache_dir: str) -> dict[str, str]:
    """events/env.json (what `sam local invoke --env-vars` reads), pointed at this machine."""
    values = json.loads(ENV_FILE.read_text())["CornersFunction"]
    env = {k: str(v).replace(f"{DOCKER_HOST}:5055", f"127.0.0.1:{s3_port}")
           for k, v in values.items()}
    env.update(MODEL_CACHE_DIR=cache_dir, POWERTOOLS_TRACE_DISABLED="true",
               PATH=os.environ.get("PATH", ""), TZ="UTC", LANG="C.UTF-8")
    return env


def layer_path(arch_folder: str = "InferenceLayerX86") -> str:
    layer, function = BUILD / arch_folder / "python", BUILD / "CornersFunction"
    if not (layer.is_dir() and function.is_dir()):
        raise SystemExit("no built layer: run `make build` (sam build) first")
    return f"{layer}{os.pathsep}{function}"


def base_python() -> str:
    """The interpreter behind this virtual environment: no packages of its own."""
    return getattr(sys, "_base_executable", sys.executable)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def local_s3(port: int, package: Path = REFERENCE_PACKAGE):
    """moto's S3 server on 127.0.0.1:port holding `package` where env.json expects it."""
    import logging

    import boto3
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no line per S3 request

    env = function_environment(port, "")
    bucket, _, key = env["MODEL_S3_URI"].removeprefix("s3://").partition("/")
    version = key.split("/")[-2]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        s3 = boto3.client("s3", endpoint_url=f"http://127.0.0.1:{port}", region_name="us-east-1",
                          aws_access_key_id="local", aws_secret_access_key="local")
        s3.create_bucket(Bucket=bucket)
        s3.create_bucket(Bucket=env["UPLOAD_BUCKET"])  # POST /v1/uploads' photos
        if package.exists():
            _publish_locally(s3, package, bucket, key, version)
        else:
            print(f"warning: {package} is missing: the function will answer 503",
                  file=sys.stderr)
        yield s3
    finally:
        server.stop()


def _publish_locally(s3, package: Path, bucket: str, key: str, version: str) -> None:
    """Publish with the training CLI's code. moto keeps one store per process, so a second
    local S3 in the same process may already hold this key: the same package is reused, a
    different one replaced (this S3 is disposable; a real bucket's versions are not)."""
    from certcorners.model_card import sha256_file

    from training.publish import VersionExistsError, publish

    prefix = "/".join(key.split("/")[:-2])
    try:
        publish(package, bucket, prefix, version, s3_client=s3)
    except VersionExistsError:
        existing = s3.head_object(Bucket=bucket, Key=key)["Metadata"].get("sha256")
        if existing != sha256_file(package):
            s3.delete_object(Bucket=bucket, Key=key)
            publish(package, bucket, prefix, version, s3_client=s3)


def handler_process(script: str, args: list[str], s3_port: int, cache_dir: str,
                    extra_env: dict[str, str] | None = None, **kwargs):
    env = function_environment(s3_port, cache_dir) | (extra_env or {})
    env["PYTHONPATH"] = layer_path()
    command = [base_python(), "-S", str(TOOLS / script), *args]
    return subprocess.Popen(command, env=env, **kwargs)


def wait_for_http(url: str, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url, timeout=2)
            return
        except urllib.error.HTTPError:
            return  # it answered
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"{url} did not answer within {seconds} s")


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m certcorners_tools.local")
    steps = parser.add_subparsers(dest="step", required=True)
    step = steps.add_parser("invoke", help="one event through the handler")
    step.add_argument("event", type=Path)
    step = steps.add_parser("serve", help="local HTTP API (like sam local start-api)")
    step.add_argument("--port", type=int, default=3000)
    step.add_argument("--api-key", default=None)
    steps.add_parser("s3", help="only the local S3 with the model, until Ctrl-C")
    step = steps.add_parser("demo", help="serve, send the sample photos, save overlays")
    step.add_argument("--out", type=Path, default=ROOT / "out")
    parser.add_argument("--s3-port", type=int, default=0, help="0: any free port")
    parser.add_argument("--package", type=Path, default=REFERENCE_PACKAGE,
                        help="the model.tar.gz to serve (default: the reference model)")
    args = parser.parse_args(argv)
    s3_port = args.s3_port or free_port()
    # SIGTERM (a process manager, `kill`) ends things as Ctrl-C does: children and S3 too.
    signal.signal(signal.SIGTERM, _interrupt)

    cache_dir = tempfile.TemporaryDirectory(prefix="model-cache-")
    with local_s3(s3_port, args.package), cache_dir as cache:
        if args.step == "s3":
            print(f"local S3 on 127.0.0.1:{s3_port} (events/env.json expects 5055); Ctrl-C ends",
                  flush=True)
            with contextlib.suppress(KeyboardInterrupt):
                while True:
                    time.sleep(3600)
            return 0
        if args.step == "invoke":
            if not args.event.exists():
                raise SystemExit(f"no such event: {args.event}")
            return handler_process("invoke.py", [str(args.event)], s3_port, cache).wait()
        if args.step == "serve":
            extra = ["--port", str(args.port)] + (["--api-key", args.api_key]
                                                  if args.api_key else [])
            process = handler_process("serve.py", extra, s3_port, cache)
            try:
                return process.wait()
            except KeyboardInterrupt:
                process.terminate()
                process.wait(timeout=10)
                return 0
        return demo(s3_port, cache, args.out)


def phone_sized(photo: Path, long_side: int = 4032, quality: int = 95) -> tuple[bytes, float]:
    """The photo enlarged to a phone's 12 MP with sensor noise: a JPEG of ~4.6 MB, over what a
    request body may carry (4.5 MB), and the scale applied."""
    import io

    import numpy as np
    from PIL import Image

    image = Image.open(photo).convert("RGB")
    scale = long_side / max(image.size)
    image = image.resize((round(image.width * scale), round(image.height * scale)),
                         Image.BICUBIC)
    noisy = np.asarray(image, np.int16) + np.random.default_rng(0).normal(0, 6, (
        image.height, image.width, 3))
    buffer = io.BytesIO()
    Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8)).save(buffer, "JPEG",
                                                                  quality=quality)
    return buffer.getvalue(), scale


def demo(s3_port: int, cache: str, out: Path) -> int:
    from certcorners_tools.client import predict

    port = free_port()
    out.mkdir(parents=True, exist_ok=True)
    log = open(out / "local-api.log", "w")  # noqa: SIM115 - closed below, after the process
    process = handler_process("serve.py", ["--port", str(port)], s3_port, cache, stdout=log,
                              stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    print(f"local API on {url} (its logs: {out / 'local-api.log'})")
    try:
        wait_for_http(f"{url}/v1/model")
        # And a phone's 12 MP photo, too large for a request body: the client uploads it.
        phone = out / "phone-12mp.jpg"
        phone.write_bytes(phone_sized(PHOTOS / "certificate-1200x847.jpg")[0])
        for photo in [*sorted(PHOTOS.glob("*.*")), phone]:
            if photo.suffix.lower() not in (".jpg", ".jpeg", ".png", ".webp"):
                continue
            overlay = out / f"{photo.stem}-overlay.png"
            status, answer = predict(url, photo, overlay=overlay)
            way = "uploaded to S3, then s3_key" if photo == phone else "in the body"
            print(f"{photo.name} ({photo.stat().st_size / 1e6:.1f} MB, {way}): HTTP {status}")
            print(json.dumps({k: answer.get(k) for k in (
                "corners", "confidence", "text", "text_as_printed", "text_confidence",
                "text_reason", "model", "timing_ms", "error") if k in answer}, indent=2))
            if status == 200:
                print(f"overlay: {overlay}")
    finally:
        process.terminate()
        process.wait(10)
        log.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
