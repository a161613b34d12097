"""The Makefile holds the product's commands only: few enough to read, each one listed by
`make help` (experiments are recipes in training/recipes/, not targets)."""

import re
import subprocess

from tests.conftest import ROOT

MAKEFILE = ROOT / "Makefile"


def _targets() -> list[str]:
    text = MAKEFILE.read_text()
    phony = re.search(r"^\.PHONY:(.*?)(?<!\\)\n", text, re.S | re.M).group(1)
    return phony.replace("\\\n", " ").split()


def test_the_makefile_stays_short():
    assert len(MAKEFILE.read_text().splitlines()) <= 200
    assert len(_targets()) <= 30


def test_make_help_lists_every_target():
    listed = subprocess.run(["make", "-s", "help"], cwd=ROOT, capture_output=True, text=True,
                            check=True).stdout
    names = {line.split()[0] for line in listed.splitlines() if line.strip()}
    assert names == set(_targets())
