"""A training recipe: the datasets, the phases and the export that make a package, as data.

    python -m training run training/recipes/reference.toml [--dry-run] [--only val,test]

A recipe file (TOML) holds:
- `data`, `runs`: the folders its datasets and runs go in;
- `[[datasets]]`: name, count, negatives, seed, phone-share, phone-profile, spec-profile
  (`training generate`); or name, kind = "reader-views", cards, seed (`training
  reader-views`: the reader's synthetic views);
- `[[phases]]`: name, command (train-locator, train-finder, train-refiner, train-reader, export
  or recard) and that command's flags, with `{data}` and `{runs}` in paths; train phases write
  `{runs}/<name>`, an export `run`'s or a recard `out`'s `package/`;
- `[deliver]` (optional): where the last export's (or recard's) package, its training files
  (the Keras models beside it), card, histories, evaluations and the run's log are copied
  (the committed reference) once every step is done; `deliver` alone copies them without
  running any step.

Running it again resumes: a dataset with its labels.jsonl, a training phase with its
model.keras, an export with its package are skipped. Each step's command and output go to
`{runs}/logs/<step>.log` as it runs, and are appended whole to `{runs}/<recipe>.log` when it
ends.
"""

from __future__ import annotations

import datetime as dt
import shutil
import subprocess
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from training import RUN_MODEL_FILE

COMMANDS = ("train-locator", "train-finder", "train-refiner", "train-reader", "export", "recard")
RECIPE_KEYS = {"data", "runs", "description", "datasets", "phases", "deliver"}
DATASET_KEYS = {"name", "count", "negatives", "seed", "phone-share", "phone-profile",
                "spec-profile"}
READER_VIEWS_KEYS = {"name", "kind", "cards", "seed"}


@dataclass(frozen=True)
class Step:
    """One thing a recipe does: its name, the command that does it, and the file whose
    existence means it is done."""

    name: str
    command: list[str]
    done: Path


@dataclass(frozen=True)
class Recipe:
    path: Path
    data: Path
    runs: Path
    steps: list[Step] = field(default_factory=list)
    deliver: dict | None = None
    exported: Path | None = None  # the last export's run folder

    @property
    def log(self) -> Path:
        return self.runs / f"{self.path.stem}.log"


def _flags(table: dict, where: str, values: dict[str, str]) -> list[str]:
    """{"learning-rate": 5e-4, "train": ["{data}/a", ...]} -> --learning-rate 0.0005 --train ..."""
    flags = []
    for key, value in table.items():
        if isinstance(value, bool):
            if value:
                flags.append(f"--{key}")
            continue
        items = value if isinstance(value, list) else [value]
        if not all(isinstance(v, str | int | float) for v in items):
            raise ValueError(f"{where}: {key} must be a string, a number or a list of them")
        texts = [v.format(**values) if isinstance(v, str) else str(v) for v in items]
        if key == "report":  # evaluation-only sets: reported where this machine has them
            for text in texts:
                if Path(text).exists():
                    flags += ["--report", text]
            continue
        if key == "policy":  # one cascade rule a flag
            for text in texts:
                flags += ["--policy", text]
            continue
        flags += [f"--{key}", *texts]
    return flags


def load(path: str | Path) -> Recipe:
    """The recipe at `path`, checked: ValueError names what is wrong before anything runs."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"no recipe at {path}")
    try:
        spec = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"{path} is not valid TOML: {exc}") from None
    unknown = set(spec) - RECIPE_KEYS
    if unknown:
        raise ValueError(f"{path}: unknown keys {sorted(unknown)}")
    for key in ("data", "runs"):
        if not isinstance(spec.get(key), str):
            raise ValueError(f"{path}: `{key}` (a folder) is required")
    data, runs = Path(spec["data"]), Path(spec["runs"])
    values = {"data": str(data), "runs": str(runs)}
    python = [sys.executable, "-m", "training"]
    steps: list[Step] = []
    names: set[str] = set()

    def named(entry: dict, kind: str) -> str:
        name = entry.get("name")
        if not isinstance(name, str) or not name or "/" in name:
            raise ValueError(f"{path}: every {kind} needs a name (a folder name)")
        if name in names:
            raise ValueError(f"{path}: the name {name!r} is used twice")
        names.add(name)
        return name

    for entry in spec.get("datasets", []):
        name = named(entry, "dataset")
        if entry.get("kind") == "reader-views":
            if set(entry) - READER_VIEWS_KEYS or not isinstance(entry.get("cards"), int):
                raise ValueError(f"{path}: reader views {name} take "
                                 f"{sorted(READER_VIEWS_KEYS)}, cards a whole number")
            out = data / name
            steps.append(Step(name, [*python, "reader-views", "--out", str(out), "--cards",
                                     str(entry["cards"]), "--seed", str(entry.get("seed", 1))],
                              out / "reader-views.npz"))
            continue
        if set(entry) - DATASET_KEYS or not isinstance(entry.get("count"), int):
            raise ValueError(f"{path}: dataset {name} takes {sorted(DATASET_KEYS)}, count "
                             f"a whole number")
        out = data / name
        steps.append(Step(name, [*python, "generate", "--out", str(out),
                                 "--count", str(entry["count"]),
                                 "--negatives", str(entry.get("negatives", 0)),
                                 "--seed", str(entry.get("seed", 1)),
                                 "--phone-share", str(entry.get("phone-share", 0.0)),
                                 "--phone-profile", str(entry.get("phone-profile", "phone")),
                                 "--spec-profile", str(entry.get("spec-profile", "spec"))],
                          out / "labels.jsonl"))
    exported = None
    for entry in spec.get("phases", []):
        name = named(entry, "phase")
        command = entry.get("command")
        if command not in COMMANDS:
            raise ValueError(f"{path}: phase {name}: command must be one of {COMMANDS}")
        flags = {k: v for k, v in entry.items() if k not in ("name", "command")}
        if command in ("export", "recard"):
            folder = "run" if command == "export" else "out"
            if not isinstance(flags.get(folder), str):
                raise ValueError(f"{path}: phase {name}: {command} needs `{folder}`, its folder")
            exported = Path(flags[folder].format(**values))
            done = exported / "package" / "model.tar.gz"
            argv = _flags(flags, f"{path}: phase {name}", values)
        else:
            done = runs / name / RUN_MODEL_FILE
            argv = ["--out", str(runs / name), *_flags(flags, f"{path}: phase {name}", values)]
        steps.append(Step(name, [*python, command, *argv], done))
    deliver = spec.get("deliver")
    if deliver is not None and (exported is None or not isinstance(deliver.get("to"), str)):
        raise ValueError(f"{path}: [deliver] needs `to` and an export phase before it")
    return Recipe(path, data, runs, steps, deliver, exported)


def run(recipe: Recipe, dry_run: bool = False, only: set[str] | None = None,
        out=sys.stdout) -> list[str]:
    """Runs every step not done yet, in order (of `only`, those steps alone, and no delivery);
    returns the names of those it ran."""
    unknown = (only or set()) - {step.name for step in recipe.steps}
    if unknown:
        raise ValueError(f"{recipe.path} has no steps named {sorted(unknown)}")
    ran = []
    if not dry_run:
        recipe.runs.mkdir(parents=True, exist_ok=True)
    for step in recipe.steps:
        if only and step.name not in only:
            continue
        if step.done.exists():
            print(f"[{step.name}] done already: {step.done}", file=out)
            continue
        print(f"[{step.name}] {' '.join(step.command)}", file=out, flush=True)
        if dry_run:
            continue
        _run_step(recipe, step)
        ran.append(step.name)
    if recipe.deliver is not None and not dry_run and not only:
        deliver(recipe, out)
    return ran


def deliver(recipe: Recipe, out=sys.stdout) -> None:
    """Copies the last package into [deliver].to and runs no step, not even a dataset's
    whose folder is gone: for a package made by `--only` steps."""
    if recipe.deliver is None:
        raise ValueError(f"{recipe.path} has no [deliver]")
    package = recipe.exported / "package" / "model.tar.gz"
    if not package.exists():
        raise ValueError(f"{package} is not there: run the recipe's last export or recard "
                         f"first")
    _deliver(recipe)
    print(f"[deliver] copied to {recipe.deliver['to']}", file=out)


def _run_step(recipe: Recipe, step: Step) -> None:
    """Runs one step with its output in its own log (`{runs}/logs/<step>.log`, to follow
    while it runs), then appends that log whole to the recipe's: two `--only` runs at once
    leave each step's lines together."""
    started = dt.datetime.now(dt.UTC)
    step_log = recipe.runs / "logs" / f"{step.name}.log"
    step_log.parent.mkdir(parents=True, exist_ok=True)
    with open(step_log, "w") as log:
        log.write(f"\n== {started:%Y-%m-%d %H:%M:%S} UTC [{step.name}] "
                  f"{' '.join(step.command)}\n")
        log.flush()
        result = subprocess.run(step.command, stdout=log, stderr=subprocess.STDOUT)
        seconds = (dt.datetime.now(dt.UTC) - started).total_seconds()
        log.write(f"== [{step.name}] exit {result.returncode} after {seconds:.0f} s\n")
    with open(recipe.log, "a") as whole:
        whole.write(step_log.read_text())
    if result.returncode != 0 or not step.done.exists():
        raise RuntimeError(f"step {step.name} failed (exit {result.returncode}); its output "
                           f"is in {step_log}")


def _deliver(recipe: Recipe) -> None:
    """The last export's package and card, the phases' histories, the evaluations and the
    run's log, into `deliver.to` (what the repository commits)."""
    target = Path(recipe.deliver["to"])
    package = recipe.exported / "package"
    target.mkdir(parents=True, exist_ok=True)
    for old in [*target.glob("evaluation"), *target.glob("evaluation-*")]:
        shutil.rmtree(old)
    for name in ("model.tar.gz", "model_card.json"):
        shutil.copy2(package / name, target / name)
    for stale in [*target.glob("*.keras"), *target.glob("history-*.csv"),
                  *target.glob("loss-*.png")]:  # an earlier package's training files
        stale.unlink()
    for keras_file in package.glob("*.keras"):  # its training files, beside it
        shutil.copy2(keras_file, target / keras_file.name)
    for step in recipe.steps:
        history = recipe.runs / step.name / "history.csv"
        if history.exists():
            shutil.copy2(history, target / f"history-{step.name}.csv")
            if (recipe.runs / step.name / "loss.png").exists():
                shutil.copy2(recipe.runs / step.name / "loss.png", target / f"loss-{step.name}.png")
    for folder in recipe.exported.glob("evaluation*"):
        shutil.copytree(folder, target / folder.name)
    if recipe.log.exists():
        shutil.copy2(recipe.log, target / "recipe.log")
