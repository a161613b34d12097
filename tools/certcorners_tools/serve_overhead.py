"""What `make serve` adds to a request: the client's round trip minus the handler's own total
(timing_ms.total), over one keep-alive connection, as a client timing the local API sees it.

    python -m certcorners_tools.serve_overhead [--requests 100]

Runs the local API twice, side by side: as served, and with Nagle's algorithm on (as it was),
and prints the median and p95 of each.
"""

from __future__ import annotations

import argparse
import http.client
import json
import statistics
import subprocess
import sys
import tempfile
import time

from certcorners_tools import local


def overhead_ms(port: int, photo: bytes, requests: int) -> list[float]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    samples = []
    for index in range(requests + 5):
        began = time.perf_counter()
        connection.request("POST", "/v1/corners", body=photo,
                           headers={"Content-Type": "image/jpeg"})
        response = connection.getresponse()
        answer = json.loads(response.read())
        round_trip = (time.perf_counter() - began) * 1000
        if response.status != 200:
            raise SystemExit(f"HTTP {response.status}: {answer}")
        if index >= 5:  # the first ones load the model and warm the caches
            samples.append(round_trip - answer["timing_ms"]["total"])
    connection.close()
    return samples


def measure(requests: int) -> dict:
    photo = (local.PHOTOS / "certificate-1200x847.jpg").read_bytes()
    s3_port = local.free_port()
    report = {}
    with local.local_s3(s3_port), tempfile.TemporaryDirectory() as cache:
        for name, extra in (("served", []), ("nagle_on", ["--nagle"])):
            port = local.free_port()
            process = local.handler_process("serve.py", ["--port", str(port), *extra], s3_port,
                                            cache, stdout=subprocess.DEVNULL,
                                            stderr=subprocess.DEVNULL)
            try:
                local.wait_for_http(f"http://127.0.0.1:{port}/v1/model")
                samples = sorted(overhead_ms(port, photo, requests))
            finally:
                process.terminate()
                process.wait(10)
            report[name] = {"median_ms": round(statistics.median(samples), 2),
                            "p95_ms": round(samples[int(0.95 * (len(samples) - 1))], 2),
                            "requests": len(samples)}
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m certcorners_tools.serve_overhead",
                                     description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=100)
    args = parser.parse_args(argv)
    print(json.dumps(measure(args.requests), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
