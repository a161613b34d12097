"""Load and soak, bounded in count and time, on loopback only.

    python -m certcorners_tools.soak load --clients 8 --requests 50
        concurrent clients against the local API (moto S3 + the built handler over HTTP)
    python -m certcorners_tools.soak soak --calls 10000
        sequential warm invocations of the built handler; RSS every 1,000 calls
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
EVENTS = ROOT / "events"


def child_soak(calls: int, event: str) -> dict:
    """Runs in the bare interpreter with the built layer."""
    import app

    from certcorners_tools.bench import proc_status_mb
    from certcorners_tools.proxy import LambdaContext

    request = json.loads(Path(event).read_text())
    context = LambdaContext()
    samples, statuses = [], {}
    every = max(1, min(1000, calls // 10))  # at least ten samples after the first call
    for call in range(calls + 1):
        status = app.lambda_handler(request, context)["statusCode"]
        statuses[status] = statuses.get(status, 0) + 1
        if call % every == 0:
            samples.append({"call": call, "rss_mb": proc_status_mb("VmRSS")})
    return {"calls": calls, "statuses": statuses, "rss": samples}


def load(clients: int, requests: int, max_seconds: float) -> dict:
    from certcorners_tools import local

    photos = [p.read_bytes() for p in sorted((EVENTS / "photos").glob("*.*"))
              if p.suffix in (".jpg", ".png")]
    kinds = ["image/jpeg", "image/png"]
    s3_port, api_port = local.free_port(), local.free_port()
    with local.local_s3(s3_port), tempfile.TemporaryDirectory() as cache:
        process = local.handler_process("serve.py", ["--port", str(api_port)], s3_port, cache,
                                        stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL)
        url = f"http://127.0.0.1:{api_port}/v1/corners"
        deadline = time.monotonic() + max_seconds
        try:
            local.wait_for_http(f"http://127.0.0.1:{api_port}/v1/model")

            def client(number: int) -> list[tuple[int, float]]:
                results = []
                for i in range(requests):
                    if time.monotonic() > deadline:
                        break
                    which = (number + i) % len(photos)
                    request = urllib.request.Request(url, data=photos[which], method="POST",
                                                     headers={"Content-Type": kinds[which]})
                    started = time.perf_counter()
                    try:
                        with urllib.request.urlopen(request, timeout=30) as response:
                            response.read()
                            status = response.status
                    except urllib.error.HTTPError as error:
                        status = error.code
                    except OSError:
                        status = 0
                    results.append((status, (time.perf_counter() - started) * 1000))
                return results

            started = time.perf_counter()
            with ThreadPoolExecutor(clients) as pool:
                results = [r for rs in pool.map(client, range(clients)) for r in rs]
            elapsed = time.perf_counter() - started
        finally:
            process.terminate()
            process.wait(10)
    latencies = np.array([ms for status, ms in results if status == 200])
    statuses: dict[int, int] = {}
    for status, _ in results:
        statuses[status] = statuses.get(status, 0) + 1
    return {
        "clients": clients, "requests": len(results), "seconds": round(elapsed, 2),
        "throughput_rps": round(len(results) / elapsed, 1), "statuses": statuses,
        "errors": sum(n for s, n in statuses.items() if s != 200),
        "latency_ms": {q: round(float(np.percentile(latencies, p)), 2) for q, p in
                       (("p50", 50), ("p95", 95), ("p99", 99), ("max", 100))}
        if len(latencies) else {},
    }


def soak(calls: int) -> dict:
    from certcorners_tools import local

    s3_port = local.free_port()
    with local.local_s3(s3_port), tempfile.TemporaryDirectory() as cache:
        env = {**local.function_environment(s3_port, cache), "PYTHONPATH": local.layer_path(),
               "POWERTOOLS_LOG_LEVEL": "WARNING", "POWERTOOLS_METRICS_DISABLED": "true"}
        code = ("import json, sys; sys.path.append(sys.argv[1]); "
                "from certcorners_tools.soak import child_soak; "
                "print(json.dumps(child_soak(int(sys.argv[2]), sys.argv[3])))")
        result = subprocess.run([local.base_python(), "-S", "-c", code, str(ROOT / "tools"),
                                 str(calls), str(EVENTS / "corners-jpeg.json")],
                                env=env, capture_output=True, text=True, timeout=3600)
    if result.returncode != 0:
        raise SystemExit(result.stderr[-3000:])
    report = json.loads(result.stdout.strip().splitlines()[-1])
    rss = [s["rss_mb"] for s in report["rss"]]
    # Growth after warm-up: from the second sample (call `every`) to the last.
    report["rss_growth_after_warm_up_mb"] = round(rss[-1] - rss[min(1, len(rss) - 1)], 1)
    return report


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m certcorners_tools.soak")
    steps = parser.add_subparsers(dest="step", required=True)
    step = steps.add_parser("load")
    step.add_argument("--clients", type=int, default=8)
    step.add_argument("--requests", type=int, default=50, help="per client")
    step.add_argument("--max-seconds", type=float, default=300)
    step = steps.add_parser("soak")
    step.add_argument("--calls", type=_positive, default=10_000)
    args = parser.parse_args(argv)
    report = (load(args.clients, args.requests, args.max_seconds) if args.step == "load"
              else soak(args.calls))
    print(json.dumps(report, indent=2))
    return 0 if not report.get("errors") and set(report.get("statuses", {})) <= {200, "200"} \
        else 1


if __name__ == "__main__":
    sys.exit(main())
