"""Recipes as data (training/recipe.py): a recipe is checked before anything runs, runs its
steps in order through the training CLI, and resumes, skipping what is done."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import sys
from pathlib import Path

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
    (tmp_path / "delivered" / "history-gone.csv").write_text("a phase no longer run\n")
    assert run(recipe, out=io.StringIO()) == ["train", "val", "locator", "export"]
    card = json.loads((tmp_path / "delivered" / "model_card.json").read_text())
    assert card["version"] == "tiny-1"
    assert (tmp_path / "delivered" / "model.tar.gz").stat().st_size > 1000
    # Its training file beside it, and none of an earlier package's left there.
    assert sorted(p.name for p in (tmp_path / "delivered").glob("*.keras")) == ["locator.keras"]
    assert sha256_file(tmp_path / "delivered" / "locator.keras") == card["training_files"][
        "locator.keras"]["sha256"]
    assert [p.name for p in (tmp_path / "delivered").glob("history-*")] == [
        "history-locator.csv"]
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
    (lambda t: t + '\n[[fetch]]\nname = "x"\ncommit = "abc"\n', "unknown keys.*fetch"),
    (lambda t: t.replace("[[datasets]]", "[[datasets", 1), "not valid TOML"),
])
def test_a_wrong_recipe_is_a_value_error_before_anything_runs(tmp_path, change, message):
    with pytest.raises(ValueError, match=message):
        load(write(tmp_path, change(TINY)))
    assert not (tmp_path / "runs").exists() and not (tmp_path / "data").exists()


def test_the_reference_recipe_is_what_the_committed_package_was_made_by():
    """export-fast -> reader-package-fast (whose cascade mines the hard negatives) ->
    refiner-fast-hard -> export-fast-hard (the same locator) -> package (a recard with the
    card finder and the reader): the committed card is the last's. Every network starts
    from random weights or from a run of the same recipe: nothing comes from git history."""
    recipe = load(RECIPES / "reference.toml")
    card = json.loads((ROOT / "training" / "reference" / "model_card.json").read_text())
    steps = {s.name: s.command for s in recipe.steps}

    def flag(step: str, name: str) -> str:
        return steps[step][steps[step].index(name) + 1]

    assert flag("export-fast-hard", "--notes") == card["notes"]
    assert flag("export-fast", "--run") == card["training"]["out_dir"]
    assert flag("export-fast-hard", "--locator-from").startswith(flag("export-fast", "--run"))
    assert flag("export-fast-hard", "--refiner-run") == card["refiner_training"]["out_dir"]
    assert flag("refiner-fast-hard", "--hard-negatives-from").startswith(
        flag("reader-package-fast", "--out"))
    assert flag("package", "--package").startswith(flag("export-fast-hard", "--run"))
    assert flag("package", "--card-finder") == card["card_finder_training"]["out_dir"]
    assert flag("package", "--reader") == card["reader_training"]["out_dir"]
    assert flag("package", "--version") == card["version"]
    assert flag("export-fast-hard", "--version") == card["recarded_from"]["version"]
    assert flag("package", "--why") == card["recarded_from"]["why"]
    flags = steps["package"]
    rules = dict(flags[i + 1].split("=", 1) for i, f in enumerate(flags) if f == "--policy")
    policy = card["cascade_policy"]
    assert json.loads(rules["reader_nudges"]) == policy["reader_nudges"]
    assert float(rules["reread_sure"]) == policy["reread_sure"]
    assert float(rules["card_presence"]) == policy["card_presence"]
    assert json.loads(rules["tiles_before_search"]) is policy["tiles_before_search"] is True
    assert json.loads(rules["fallback_reads"]) is policy["fallback_reads"] is True
    made_here = {str(recipe.runs / name) for name in steps}
    for name, command in steps.items():
        if "--init-from" in command:
            assert str(Path(flag(name, "--init-from")).parent) in made_here, name
    assert recipe.deliver == {"to": "training/reference"}
    assert recipe.exported == Path(flag("package", "--out"))


@pytest.mark.parametrize("name", sorted(p.name for p in RECIPES.glob("*.toml")))
def test_every_committed_recipe_loads_and_its_steps_parse(name):
    """A key misspelt in an experiment's recipe fails here, not hours into its run."""
    from training.__main__ import parser

    recipe = load(RECIPES / name)
    for step in recipe.steps:
        if step.command[1:3] == ["-m", "training"]:
            parser().parse_args(step.command[3:])
