"""Recipes as data (training/recipe.py): a recipe is checked before anything runs, runs its
steps in order through the training CLI, and resumes, skipping what is done."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import sys

import pytest
from certcorners.model_card import sha256_file

from tests.conftest import ROOT
from training.recipe import deliver, load, run

RECIPES = ROOT / "training" / "recipes"

TINY = """
data = "{root}/data"
runs = "{root}/runs"

[[datasets]]
name = "train"
count = 4
seed = 7

[[datasets]]
name = "val"
count = 3
negatives = 1
seed = 8

[[phases]]
name = "locator"
command = "train-locator"
train = ["{{data}}/train"]
val = "{{data}}/val"
epochs = 1
batch-size = 2

[[phases]]
name = "export"
command = "export"
run = "{{runs}}/locator"
test = "{{data}}/val"
version = "tiny-1"
report = ["{root}/not-here"]

[deliver]
to = "{root}/delivered"
"""


def write(tmp_path, text: str):
    path = tmp_path / "tiny.toml"
    path.write_text(text.format(root=tmp_path))
    return path


def test_a_recipe_runs_resumes_and_delivers(tmp_path):
    recipe = load(write(tmp_path, TINY))
    (tmp_path / "delivered").mkdir()
    (tmp_path / "delivered" / "model.keras").write_bytes(b"an earlier package's")
    assert run(recipe, out=io.StringIO()) == ["train", "val", "locator", "export"]
    card = json.loads((tmp_path / "delivered" / "model_card.json").read_text())
    assert card["version"] == "tiny-1"
    assert (tmp_path / "delivered" / "model.tar.gz").stat().st_size > 1000
    # Its training file beside it, and none of an earlier package's left there.
    assert sorted(p.name for p in (tmp_path / "delivered").glob("*.keras")) == ["locator.keras"]
    assert sha256_file(tmp_path / "delivered" / "locator.keras") == card["training_files"][
        "locator.keras"]["sha256"]
    assert (tmp_path / "delivered" / "history-locator.csv").exists()
    log = (tmp_path / "delivered" / "recipe.log").read_text()
    assert "[locator]" in log and "exit 0" in log
    # Run again: everything is there, nothing runs.
    printed = io.StringIO()
    assert run(load(write(tmp_path, TINY)), out=printed) == []
    assert printed.getvalue().count("done already") == 4
    # Lose the export: only it would run again (a dry run says so without the export's time).
    (tmp_path / "runs" / "locator" / "package" / "model.tar.gz").unlink()
    printed = io.StringIO()
    run(load(write(tmp_path, TINY)), dry_run=True, out=printed)
    assert printed.getvalue().count("done already") == 3
    assert "[export] " in printed.getvalue() and "training export" in printed.getvalue()


def test_deliver_only_copies_the_package_and_regenerates_no_missing_dataset(tmp_path):
    """A package made by --only steps is delivered without running the rest: a dataset
    folder deleted since (to save disk) stays deleted. Before its export it is refused."""
    recipe = load(write(tmp_path, TINY))
    with pytest.raises(ValueError, match="run the recipe's last export"):
        deliver(recipe)
    run(recipe, only={"train", "val", "locator", "export"}, out=io.StringIO())
    assert not (tmp_path / "delivered").exists()  # --only delivers nothing
    shutil.rmtree(tmp_path / "data" / "train")
    cli = [sys.executable, "-m", "training", "run", str(recipe.path), "--deliver-only"]
    done = subprocess.run(cli, capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert "[deliver] copied to" in done.stdout and "[train]" not in done.stdout
    assert json.loads((tmp_path / "delivered" / "model_card.json").read_text())[
        "version"] == "tiny-1"
    assert not (tmp_path / "data" / "train").exists()
    refused = subprocess.run([*cli, "--only", "val"], capture_output=True, text=True, cwd=ROOT)
    assert refused.returncode != 0 and "--deliver-only runs nothing" in refused.stderr


def test_only_runs_the_named_steps_and_refuses_unknown_names(tmp_path):
    recipe = load(write(tmp_path, TINY))
    printed = io.StringIO()
    assert run(recipe, dry_run=True, only={"val"}, out=printed) == []
    assert printed.getvalue().startswith("[val] ") and "[train]" not in printed.getvalue()
    with pytest.raises(ValueError, match="no steps named"):
        run(recipe, only={"vall"})


def test_a_missing_report_set_is_left_out_and_placeholders_are_filled(tmp_path):
    (export,) = [s for s in load(write(tmp_path, TINY)).steps if s.name == "export"]
    assert "--report" not in export.command
    assert export.command[export.command.index("--run") + 1] == f"{tmp_path}/runs/locator"


@pytest.mark.parametrize("change, message", [
    (lambda t: t.replace('command = "train-locator"', 'command = "fit"'), "command must be one of"),
    (lambda t: t.replace('name = "val"', 'name = "train"'), "used twice"),
    (lambda t: t.replace('data = "', 'dta = "'), "unknown keys"),
    (lambda t: t.replace('count = 4', 'count = "four"'), "count a whole number"),
    (lambda t: t.replace('run = "{{runs}}/locator"\n', ''), "export needs `run`"),
    (lambda t: t + '\n[[fetch]]\nname = "x"\ncommit = "abc"\n', "fetch x takes exactly"),
    (lambda t: t.replace("[[datasets]]", "[[datasets", 1), "not valid TOML"),
])
def test_a_wrong_recipe_is_a_value_error_before_anything_runs(tmp_path, change, message):
    with pytest.raises(ValueError, match=message):
        load(write(tmp_path, change(TINY)))
    assert not (tmp_path / "runs").exists() and not (tmp_path / "data").exists()


def test_the_reference_recipe_is_what_the_committed_package_was_made_by():
    recipe = load(RECIPES / "reference.toml")
    card = json.loads((ROOT / "training" / "reference" / "model_card.json").read_text())
    steps = {s.name: s.command for s in recipe.steps}
    # export -> card-finder -> reader-package -> turned-search -> settled-stands -> tiles
    # -> reading-box -> reader-nudges (recards): the card is the last's, and names the one
    # before it.
    flags = steps["export"]
    assert flags[flags.index("--notes") + 1] == card["notes"]
    assert float(flags[flags.index("--threshold") + 1]) == card["confidence_threshold"]
    flags = steps["card-finder"]
    assert flags[flags.index("--package") + 1].startswith(
        steps["export"][steps["export"].index("--run") + 1])
    assert flags[flags.index("--policy") + 1] == (
        f"card_presence={card['cascade_policy']['card_presence']}")
    flags = steps["reader-package"]
    assert flags[flags.index("--package") + 1].startswith(
        steps["card-finder"][steps["card-finder"].index("--out") + 1])
    # Each recard takes the package of the step before it.
    chain = ["reader-package", "turned-search", "settled-stands", "tiles", "reading-box",
             "reader-nudges"]
    for before, step in zip(chain, chain[1:], strict=False):
        flags = steps[step]
        assert flags[flags.index("--package") + 1].startswith(
            steps[before][steps[before].index("--out") + 1])
    flags = steps["turned-search"]
    rule, _, steps_json = flags[flags.index("--policy") + 1].partition("=")
    assert rule == "search_steps"
    assert json.loads(steps_json) == card["cascade_policy"]["search_steps"]
    flags = steps["tiles"]
    rule, _, sides_json = flags[flags.index("--policy") + 1].partition("=")
    assert rule == "tile_sides"
    assert json.loads(sides_json) == card["cascade_policy"]["tile_sides"]
    flags = steps["reader-nudges"]
    rules = dict(flags[i + 1].split("=", 1) for i, flag in enumerate(flags) if flag == "--policy")
    assert json.loads(rules["reader_nudges"]) == card["cascade_policy"]["reader_nudges"]
    assert float(rules["reread_sure"]) == card["cascade_policy"]["reread_sure"]
    flags = steps[chain[-2]]
    assert flags[flags.index("--version") + 1] == card["recarded_from"]["version"]
    flags = steps[chain[-1]]
    assert flags[flags.index("--version") + 1] == card["version"]
    assert flags[flags.index("--why") + 1] == card["recarded_from"]["why"]
    assert card["reader_model"] == "reader.tflite"
    fetches = {s.name: s.command for s in recipe.steps if s.unpack is not None}
    assert fetches["locator-from"] == ["git", "show", "0d2da4a:training/reference/model.tar.gz"]


def test_a_fetch_takes_the_keras_locator_inside_an_older_package_or_beside_a_newer_one(
        tmp_path, monkeypatch):
    """Packages before 2026-12-06 held model.keras inside; from then on it lies beside the
    package in the same commit, named locator.keras once files were named by stage. All fetch
    to the run's model.keras (a repository made here)."""
    import tarfile

    repo = tmp_path / "repo"
    (repo / "reference").mkdir(parents=True)

    def git(*args: str) -> str:
        return subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args],
                              cwd=repo, capture_output=True, check=True, text=True).stdout

    def commit(files: dict[str, bytes]) -> str:
        for name, data in files.items():
            (repo / "reference" / name).write_bytes(data)
        git("add", "-A")
        git("commit", "-q", "-m", "package")
        return git("rev-parse", "--short", "HEAD").strip()

    def package(members: dict[str, bytes]) -> bytes:
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
            for name, data in members.items():
                info = tarfile.TarInfo(name)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
        return buffer.getvalue()

    git("init", "-q")
    older = commit({"model.tar.gz": package({"model.tflite": b"a", "model.keras": b"inside"})})
    (repo / "reference" / "model.tar.gz").unlink()
    beside = commit({"model.tar.gz": package({"model.tflite": b"b"}), "model.keras": b"beside"})
    # From the stage-naming on, the locator's Keras model is locator.keras.
    git("rm", "-q", "reference/model.keras")
    newer = commit({"model.tar.gz": package({"locator.tflite": b"c"}),
                    "locator.keras": b"named"})
    text = f"""
data = "{tmp_path}/data"
runs = "{tmp_path}/runs"
[[fetch]]
name = "older"
commit = "{older}"
path = "reference/model.tar.gz"
[[fetch]]
name = "beside"
commit = "{beside}"
path = "reference/model.tar.gz"
[[fetch]]
name = "newer"
commit = "{newer}"
path = "reference/model.tar.gz"
"""
    (tmp_path / "fetch.toml").write_text(text)
    monkeypatch.chdir(repo)
    # A package whose Keras file is neither inside nor beside it: the fetch fails, and leaves
    # no model.keras that a run again would take for done.
    missing = tmp_path / "missing.toml"
    git("rm", "-q", "reference/locator.keras")
    git("commit", "-q", "-m", "no keras")
    bare = git("rev-parse", "--short", "HEAD").strip()
    missing.write_text(f"""
data = "{tmp_path}/data"
runs = "{tmp_path}/runs"
[[fetch]]
name = "bare"
commit = "{bare}"
path = "reference/model.tar.gz"
""")
    with pytest.raises(RuntimeError, match="step bare failed.*logs/bare.log"):
        run(load(missing), out=io.StringIO())
    assert not (tmp_path / "runs" / "bare" / "model.keras").exists()
    # The step's own log says why, and the recipe's log holds it whole.
    step_log = (tmp_path / "runs" / "logs" / "bare.log").read_text()
    assert "has no Keras locator" in step_log and "exit 1" in step_log
    assert step_log in (tmp_path / "runs" / "missing.log").read_text()
    assert run(load(tmp_path / "fetch.toml"), out=io.StringIO()) == ["older", "beside", "newer"]
    assert (tmp_path / "runs" / "older" / "model.keras").read_bytes() == b"inside"
    assert (tmp_path / "runs" / "beside" / "model.keras").read_bytes() == b"beside"
    assert (tmp_path / "runs" / "newer" / "model.keras").read_bytes() == b"named"


@pytest.mark.parametrize("name", sorted(p.name for p in RECIPES.glob("*.toml")))
def test_every_committed_recipe_loads_and_its_steps_parse(name):
    """A key misspelt in an experiment's recipe fails here, not hours into its run."""
    from training.__main__ import parser

    recipe = load(RECIPES / name)
    for step in recipe.steps:
        if step.command[1:3] == ["-m", "training"]:
            parser().parse_args(step.command[3:])
