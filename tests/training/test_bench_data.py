"""The data benchmark runs through the CLI and prints each way's rate and each pair's
speed-up (the figures themselves are for docs/, never asserted)."""

import json
import subprocess
import sys

from tests.conftest import ROOT


def test_bench_data_prints_every_rate_and_speed_up():
    done = subprocess.run([sys.executable, "-m", "training", "bench-data", "--count", "1",
                           "--rounds", "1"], cwd=ROOT, capture_output=True, text=True,
                          check=True, timeout=300)
    figures = json.loads(done.stdout)
    assert set(figures["examples_per_second"]) == {
        "locator canvas, spec photo, hinted faces", "locator canvas, spec photo",
        "locator canvas, spec-view photo", "finder canvas, phone photo, hinted faces",
        "finder canvas, phone-view photo", "reader view, from a spec photo, hinted faces",
        "reader view, drawn alone"}
    assert all(rate > 0 for rate in figures["examples_per_second"].values())
    assert set(figures["speed-up"]) == {"locator", "card finder", "reader"}
    assert all(ratio > 0 for ratio in figures["speed-up"].values())
