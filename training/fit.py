"""The one fit loop every network trains with: Adam on a cosine schedule over the planned
run, validation every epoch, the best checkpoint, early stopping, CSV history, a loss chart,
and resumption after an interruption (BackupAndRestore) that keeps the best score and the
patience already spent."""

from __future__ import annotations

import contextlib
import csv
import json
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import keras
import numpy as np
from certcorners.preprocessing import unit_range
from keras import layers

from training import RUN_MODEL_FILE


@dataclass(frozen=True)
class RunConfig:
    """What every training run takes: data, run folder, schedule, starting point."""

    train_dirs: tuple[str, ...] = ()
    val_dir: str = ""
    out_dir: str = "runs/latest"
    epochs: int = 40
    batch_size: int = 32
    learning_rate: float = 2e-3
    patience: int = 8
    seed: int = 0
    # A .keras model to start from: continue a run, or fine-tune the reference model on your
    # own photos (far better than starting from scratch with a few dozen).
    init_from: str = ""

    def __post_init__(self):
        if self.epochs < 1:
            raise ValueError(f"epochs must be at least 1, got {self.epochs}")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {self.batch_size}")
        if not (0 < self.learning_rate < 1):
            raise ValueError(f"learning_rate must be in (0, 1), got {self.learning_rate}")
        if self.patience < 1:
            raise ValueError(f"patience must be at least 1, got {self.patience}")
        if self.init_from and not Path(self.init_from).is_file():
            raise ValueError(f"init_from {self.init_from} does not exist")

    def to_json(self) -> dict:
        return asdict(self)


def convolution_widths(network: keras.Model) -> tuple[int, ...]:
    """The widths of a network's convolutions, in order."""
    return tuple(int(layer.filters) for layer in network.layers
                 if isinstance(layer, layers.Conv2D))


def check_same_widths(source: keras.Model, widths: tuple[int, ...],
                      init_from: str | Path) -> None:
    """Raises ValueError where the network started from (`source`) has convolutions of other
    `widths` than the one being trained: its weights would not load, or (the finder's trunk)
    would load only where they fit."""
    if convolution_widths(source) != tuple(widths):
        raise ValueError(f"{init_from} has convolutions {list(convolution_widths(source))} "
                         f"wide, this network {list(widths)}: train it with the --filters it "
                         f"was made with")


class Batches(keras.utils.PyDataset):
    """uint8 images [N, H, W, 1] in memory -> float32 batches in [0, 1], reshuffled each
    epoch when `shuffle`."""

    def __init__(self, inputs, targets, batch_size, shuffle, seed=0, **kwargs):
        super().__init__(**kwargs)
        self.inputs, self.targets = inputs, targets
        self.batch_size, self.shuffle = batch_size, shuffle
        self.rng = np.random.default_rng(seed)
        self.order = np.arange(len(inputs))
        self.on_epoch_end()

    def __len__(self):
        return math.ceil(len(self.inputs) / self.batch_size)

    def __getitem__(self, index):
        rows = np.sort(self.order[index * self.batch_size : (index + 1) * self.batch_size])
        return unit_range(self.inputs[rows]), self.targets[rows]

    def on_epoch_end(self):
        if self.shuffle:
            self.rng.shuffle(self.order)


class LossChart(keras.callbacks.Callback):
    """Redraws loss.png from history.csv after every epoch, so a long run can be watched."""

    def __init__(self, history_csv: Path, chart_png: Path):
        super().__init__()
        self.history_csv, self.chart_png = history_csv, chart_png

    def on_epoch_end(self, epoch, logs=None):
        draw_loss_chart(self.history_csv, self.chart_png)


def draw_loss_chart(history_csv: Path, chart_png: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with open(history_csv) as handle:
        rows = list(csv.DictReader(handle))
    if not rows:
        return
    epochs = [int(r["epoch"]) + 1 for r in rows]
    figure, (loss_axes, error_axes) = plt.subplots(1, 2, figsize=(10, 4))
    for key, label in (("loss", "train"), ("val_loss", "validation")):
        loss_axes.plot(epochs, [float(r[key]) for r in rows], label=label)
    loss_axes.set(title="loss", xlabel="epoch", yscale="log")
    metric = next((k for k in rows[0] if k not in ("epoch", "loss", "learning_rate")
                   and not k.startswith("val_")), None)
    if metric is not None:
        for key, label in ((metric, "train"), (f"val_{metric}", "validation")):
            if key in rows[0]:
                error_axes.plot(epochs, [float(r[key]) for r in rows], label=label)
        error_axes.set(title=metric.replace("_", " "), xlabel="epoch", yscale="log")
    for axes in (loss_axes, error_axes):
        axes.grid(True, alpha=0.3)
        axes.legend()
    figure.tight_layout()
    figure.savefig(chart_png, dpi=90)
    plt.close(figure)


def distribution_strategy():
    """All GPUs TensorFlow sees (MirroredStrategy when several), else its default; under
    another Keras backend (JAX on a GPU machine) a no-op scope: that backend places the work."""
    import contextlib

    if keras.backend.backend() != "tensorflow":
        return contextlib.nullcontext(), 1
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    strategy = tf.distribute.MirroredStrategy() if len(gpus) > 1 else tf.distribute.get_strategy()
    return strategy.scope(), strategy.num_replicas_in_sync


def _best_so_far(history_csv: Path, monitor: str) -> tuple[float, int]:
    """(best value of `monitor`, epochs since it) in a run's history, for a resumed run."""
    if not history_csv.exists():
        return math.inf, 0
    with open(history_csv) as handle:
        values = [float(r[monitor]) for r in csv.DictReader(handle) if r.get(monitor)]
    if not values:
        return math.inf, 0
    best = int(np.argmin(values))
    return values[best], len(values) - 1 - best


class ResumableEarlyStopping(keras.callbacks.EarlyStopping):
    """EarlyStopping that, on a resumed run, starts from the best score and the epochs without
    improvement already in the history (Keras' own restarts both at every fit())."""

    def __init__(self, history_csv: Path, **kwargs):
        super().__init__(**kwargs)
        self.history_csv = history_csv

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        best, wait = _best_so_far(self.history_csv, self.monitor)
        if math.isfinite(best):
            self.best, self.wait = best, wait


def fit_callbacks(out: Path, patience: int, monitor: str = "val_loss") -> list:
    """Checkpoints, early stopping, history and chart for a run folder; a resumed run keeps
    its best score, so a worse epoch after the resume cannot overwrite best.keras."""
    history_csv = out / "history.csv"
    if not (out / "backup").exists() and history_csv.exists():
        history_csv.unlink()  # a fresh run, not a resumed one: start a fresh history
    best, _ = _best_so_far(history_csv, monitor)
    return [
        keras.callbacks.BackupAndRestore(str(out / "backup")),
        keras.callbacks.ModelCheckpoint(
            str(out / "best.keras"), monitor=monitor, save_best_only=True, mode="min",
            initial_value_threshold=best if math.isfinite(best) else None),
        ResumableEarlyStopping(history_csv, monitor=monitor, patience=patience, mode="min",
                               restore_best_weights=True),
        keras.callbacks.CSVLogger(str(history_csv), append=True),
        LossChart(history_csv, out / "loss.png"),
    ]


@dataclass
class Fitted:
    """What a fit leaves: the best model (saved as model.keras), and how the run went."""

    model: keras.Model
    epochs_run: int
    train_seconds: float
    evaluation: dict  # the best model's loss and metrics on the validation batches

    def write_metrics(self, out_dir: str | Path, **counts: int) -> dict:
        """The run's metrics (train_metrics.json): how it went, `counts` of its data, and
        the best model's validation loss and metric (val_<name>)."""
        metrics = {"epochs_run": self.epochs_run, "train_seconds": self.train_seconds,
                   **counts, **{f"val_{name}": float(value)
                                for name, value in self.evaluation.items()},
                   "parameters": int(self.model.count_params())}
        (Path(out_dir) / "train_metrics.json").write_text(json.dumps(metrics, indent=2))
        return metrics


def fit(config: RunConfig, build, loss, metric, train_batches: keras.utils.PyDataset,
        val_batches: keras.utils.PyDataset, examples: int, replicas: int = 1,
        scope=None) -> Fitted:
    """Builds the network with `build()` (inside `scope`, a distribution strategy's), trains
    it on the batches for the planned epochs, and writes config, checkpoints, history and
    model.keras into config.out_dir. `examples`: training examples an epoch."""
    out = Path(config.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "train_config.json").write_text(json.dumps(config.to_json(), indent=2))
    keras.utils.set_random_seed(config.seed)
    with scope or contextlib.nullcontext():
        model = build()
        # Cosine decay over the planned run: a fixed budget ends at a low rate, and the
        # schedule resumes where it was because BackupAndRestore restores the step count.
        steps = config.epochs * math.ceil(examples / (config.batch_size * replicas))
        schedule = keras.optimizers.schedules.CosineDecay(config.learning_rate, steps,
                                                          alpha=0.02)
        model.compile(optimizer=keras.optimizers.Adam(schedule), loss=loss, metrics=[metric])
    started = time.perf_counter()
    history = model.fit(train_batches, validation_data=val_batches, epochs=config.epochs,
                        callbacks=fit_callbacks(out, config.patience), verbose=2)
    best = keras.saving.load_model(out / "best.keras") if (out / "best.keras").exists() else model
    best.save(out / RUN_MODEL_FILE)
    evaluation = best.evaluate(val_batches, verbose=0, return_dict=True)
    return Fitted(best, len(history.history.get("loss", [])),
                  round(time.perf_counter() - started, 1), evaluation)


def multiply_accumulates(model: keras.Model) -> int:
    """MACs per image of the convolutions and the dense layers (the rest is negligible); a
    dense layer on a sequence counts once per step."""
    total = 0
    for layer in model.layers:
        c_in = layer.input.shape[-1] if hasattr(layer, "kernel_size") or isinstance(
            layer, layers.Dense) else 0
        if isinstance(layer, layers.SeparableConv2D):  # depthwise, then pointwise
            _, h, w, c_out = layer.output.shape
            kh, kw = layer.kernel_size
            total += h * w * c_in * (kh * kw + c_out)
        elif isinstance(layer, layers.Conv2D | layers.Conv1D):
            positions = int(np.prod(layer.output.shape[1:-1]))
            total += positions * layer.output.shape[-1] * int(np.prod(layer.kernel_size)) * c_in
        elif isinstance(layer, layers.Dense):
            steps = int(np.prod(layer.output.shape[1:-1])) if len(layer.output.shape) > 2 else 1
            total += steps * c_in * layer.units
    return int(total)
