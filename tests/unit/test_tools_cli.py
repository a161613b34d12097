"""The local tools' command lines: help renders, small call counts work."""

from __future__ import annotations

import subprocess
import sys

import pytest


def test_client_help_shows_its_examples_line_by_line():
    out = subprocess.run([sys.executable, "-m", "certcorners_tools.client", "--help"],
                         capture_output=True, text=True, check=True).stdout
    lines = out.splitlines()
    # Each example's shell continuation stays at the end of its own line.
    assert any(line.rstrip().endswith("--api-key KEY \\") for line in lines), out
    assert any(line.strip().startswith("--url https://") for line in lines), out


def test_soak_refuses_a_call_count_below_one():
    from certcorners_tools.soak import main

    with pytest.raises(SystemExit) as exit_info:
        main(["soak", "--calls", "0"])
    assert exit_info.value.code == 2
