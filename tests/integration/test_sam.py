"""The template lints, `sam build` works with no Docker, and the layer fits Lambda's limit."""

from __future__ import annotations

import os
import subprocess

import pytest
import yaml

from tests.conftest import ROOT

SAM = ROOT / ".venv-sam" / "bin" / "sam"
LAMBDA_UNZIPPED_LIMIT = 250 * 1024 * 1024


def _sam(*args, timeout=600, **env):
    if not SAM.exists():
        pytest.fail("AWS SAM CLI is missing: run `make setup`")
    environment = {**os.environ, "SAM_CLI_TELEMETRY": "0", **env}
    return subprocess.run([str(SAM), *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout, env=environment)


def _size(folder) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file() and not p.is_symlink())


def test_template_passes_sam_validate_lint():
    result = _sam("validate", "--lint")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "is a valid SAM Template" in result.stdout + result.stderr


@pytest.fixture(scope="module")
def fresh_build(tmp_path_factory):
    """A full `sam build` into an empty folder, with Docker unreachable."""
    build = tmp_path_factory.mktemp("sam") / "build"
    result = _sam("build", "--build-dir", str(build), "--cache-dir", str(build.parent / "c"),
                  "--no-cached", DOCKER_HOST="unix:///nonexistent/docker.sock")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return build


@pytest.mark.parametrize("layer", ["InferenceLayerX86", "InferenceLayerArm64"])
def test_sam_build_without_docker_makes_a_layer_under_lambdas_limit(fresh_build, layer):
    function = fresh_build / "CornersFunction"
    python = fresh_build / layer / "python"
    assert (function / "app.py").exists()
    for package in ("ai_edge_litert", "numpy", "PIL", "aws_lambda_powertools", "certcorners"):
        assert (python / package).is_dir(), package
    assert not (python / "certcorners_tools").exists()  # local tools stay out
    assert not (python / "tensorflow").exists()
    total = _size(python) + _size(function)
    assert total < LAMBDA_UNZIPPED_LIMIT, f"{total / 2**20:.0f} MB unzipped"
    print(f"{layer}: {total / 2**20:.0f} MB unzipped with the function")


def test_arm64_layer_holds_arm64_binaries(fresh_build):
    so = next((fresh_build / "InferenceLayerArm64" / "python" / "numpy").rglob("*.so"))
    assert so.read_bytes()[18:20] == b"\xb7\x00"  # ELF e_machine: AArch64
    so = next((fresh_build / "InferenceLayerX86" / "python" / "numpy").rglob("*.so"))
    assert so.read_bytes()[18:20] == b"\x3e\x00"  # ELF e_machine: x86-64


def test_built_template_picks_the_layer_of_the_chosen_architecture(fresh_build):
    class Loader(yaml.SafeLoader):
        pass

    Loader.add_multi_constructor("!", lambda loader, suffix, node: {suffix: None})
    template = yaml.load((fresh_build / "template.yaml").read_text(), Loader=Loader)
    resources = template["Resources"]
    assert resources["InferenceLayerX86"]["Condition"] == "IsX86"
    assert resources["InferenceLayerArm64"]["Condition"] == "IsArm64"
