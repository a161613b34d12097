"""Every environment installs from a lock that pins its whole tree with hashes, and each lock
still matches the requirements file it was made from (edit one, run `make lock`)."""

from __future__ import annotations

import re

import pytest

from tests.conftest import ROOT

PAIRS = [("layer/requirements.txt", "layer/requirements.lock"),
         ("requirements-serve.txt", "requirements-serve.lock"),
         ("requirements-dev.txt", "requirements-dev.lock"),
         ("requirements-sam.txt", "requirements-sam.lock"),
         ("requirements-checkov.txt", "requirements-checkov.lock"),
         ("requirements-uv.txt", "requirements-uv.lock")]


def _pins(path, seen=None) -> dict[str, str]:
    """name -> version of a requirements file, following -r includes."""
    seen = seen or set()
    pins = {}
    for line in (ROOT / path).read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line.startswith("-r "):
            include = (ROOT / path).parent / line[3:].strip()
            pins.update(_pins(include.relative_to(ROOT), seen))
        elif "==" in line:
            name, version = line.split("==", 1)
            pins[re.sub(r"[-_.]+", "-", name.split("[")[0]).lower()] = version.split(";")[0].strip()
    return pins


def _locked(path) -> dict[str, list[str]]:
    """name -> [version, hashes...] of a lock written by `uv pip compile --generate-hashes`."""
    entries, current = {}, None
    for line in (ROOT / path).read_text().splitlines():
        match = re.match(r"^([A-Za-z0-9_.-]+)==([^ ;\\]+)", line)
        if match:
            current = re.sub(r"[-_.]+", "-", match.group(1)).lower()
            entries[current] = [match.group(2)]
        elif current and "--hash=sha256:" in line:
            entries[current].append(line.split("--hash=sha256:", 1)[1].split()[0])
    return entries


@pytest.mark.parametrize("requirements, lock", PAIRS)
def test_the_lock_pins_every_requirement_at_its_version_with_hashes(requirements, lock):
    locked = _locked(lock)
    for name, version in _pins(requirements).items():
        assert name in locked, f"{name} is in {requirements} but not in {lock}: make lock"
        assert locked[name][0] == version, f"{name}: {version} vs {locked[name][0]}: make lock"
    assert all(len(entry) > 1 for entry in locked.values()), "every package needs its hashes"


def test_the_makefiles_install_from_the_locks_with_hashes_required():
    makefile = (ROOT / "Makefile").read_text()
    # uv installs each venv's lock (the venv macro: -r $(2)); pip bootstraps uv from its own.
    assert "--require-hashes --no-deps --python $(1)/bin/python -r $(2)" in makefile
    for folder, lock in ((".venv", "requirements-dev.lock"), (".venv-serve",
                                                             "requirements-serve.lock"),
                         (".venv-sam", "requirements-sam.lock"),
                         (".venv-checkov", "requirements-checkov.lock")):
        assert f"{lock}" in makefile and (f"$(call venv,{folder},{lock}" in makefile or (
            f"$(call venv,$(VENV),{lock}" in makefile and folder == ".venv") or (
            f"$(call venv,$(SERVE_VENV),{lock}" in makefile and folder == ".venv-serve"))
    assert ".venv-uv/bin/pip $(LOCKED_INSTALL) -r requirements-uv.lock" in makefile
    assert "--require-hashes" in makefile
    layer = (ROOT / "layer" / "Makefile").read_text()
    assert "--require-hashes" in layer and "-r requirements.lock" in layer
    # make demo installs the serving environment only: no TensorFlow, no checkov.
    serve = _locked("requirements-serve.lock")
    assert "tensorflow-cpu" not in serve and "tensorflow" not in serve
    assert "checkov" not in serve and "ai-edge-litert" in serve
