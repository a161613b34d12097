"""Training: fit() with validation every epoch, best checkpoint, early stopping, CSV history,
a loss chart, and resumption after an interruption (BackupAndRestore) that keeps the best
score and the patience already spent."""

from __future__ import annotations

import csv
import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import keras
import numpy as np
from certcorners.preprocessing import INPUT_SIZE, unit_range
from keras import ops

from training.dataset import load_arrays
from training.model import ModelConfig, build_model, strided_blocks


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


@dataclass(frozen=True)
class TrainConfig(RunConfig):
    """Stage 1, the locator."""

    model: ModelConfig = field(default_factory=ModelConfig)


@keras.saving.register_keras_serializable(package="certcorners")
def corner_error_px(y_true, y_pred):
    """Mean Euclidean corner error in pixels of the 400-px input: the spec's metric scale."""
    diff = ops.reshape(y_pred - y_true, (-1, 4, 2)) * INPUT_SIZE
    return ops.mean(ops.sqrt(ops.sum(diff * diff, axis=-1) + 1e-12))


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


def train(config: TrainConfig, datasets=None) -> dict:
    """Train and return the metrics. `datasets` = ((x_train, y_train), (x_val, y_val)) with
    uint8 inputs [N, 400, 400, 1] and float targets [N, 8]; read from the config's folders
    when None."""
    if datasets is None:
        if not config.train_dirs or not config.val_dir:
            raise ValueError("train_dirs and val_dir are required when no datasets are given")
        parts = [load_arrays(d) for d in config.train_dirs]
        train_data = (np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]))
        val_data = load_arrays(config.val_dir)
    else:
        train_data, val_data = datasets
    for name, (x, y) in (("training", train_data), ("validation", val_data)):
        if len(x) == 0 or len(x) != len(y) or x.shape[1:] != (INPUT_SIZE, INPUT_SIZE, 1):
            raise ValueError(f"{name} data must be N x {INPUT_SIZE} x {INPUT_SIZE} x 1 with N"
                             f" targets, got {x.shape} and {np.shape(y)}")

    out = Path(config.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "train_config.json").write_text(json.dumps(config.to_json(), indent=2))
    keras.utils.set_random_seed(config.seed)
    scope, replicas = distribution_strategy()
    print(f"training with Keras' {keras.backend.backend()} backend", flush=True)
    with scope:
        model = build_model(config.model)
        if config.init_from:
            source = keras.saving.load_model(config.init_from, compile=False)
            source_strided = strided_blocks(source)
            if source_strided > config.model.strided_blocks:
                # The weights would load (the same shapes) into a network that pools where
                # they learnt to stride: a worse start, silently.
                raise ValueError(f"{config.init_from} strides its first {source_strided} "
                                 f"blocks: train it with --strided-blocks {source_strided} "
                                 "(or more)")
            model.set_weights(source.get_weights())
        # Cosine decay over the planned run: a fixed budget ends at a low rate, and the
        # schedule resumes where it was because BackupAndRestore restores the step count.
        steps = config.epochs * math.ceil(len(train_data[0]) / (config.batch_size * replicas))
        schedule = keras.optimizers.schedules.CosineDecay(config.learning_rate, steps,
                                                          alpha=0.02)
        model.compile(optimizer=keras.optimizers.Adam(schedule),
                      loss="mean_absolute_error", metrics=[corner_error_px])
    batch = config.batch_size * replicas
    callbacks = fit_callbacks(out, config.patience)
    started = time.perf_counter()
    history = model.fit(
        Batches(*train_data, batch, shuffle=True, seed=config.seed),
        validation_data=Batches(*val_data, batch, shuffle=False),
        epochs=config.epochs,
        callbacks=callbacks,
        verbose=2,
    )
    best = keras.saving.load_model(out / "best.keras") if (out / "best.keras").exists() else model
    best.save(out / "model.keras")
    evaluation = best.evaluate(Batches(*val_data, batch, shuffle=False), verbose=0,
                               return_dict=True)
    metrics = {
        "epochs_run": len(history.history.get("loss", [])),
        "train_seconds": round(time.perf_counter() - started, 1),
        "train_examples": int(len(train_data[0])),
        "val_examples": int(len(val_data[0])),
        "val_loss": float(evaluation["loss"]),
        "val_corner_error_px": float(evaluation["corner_error_px"]),
        "parameters": int(best.count_params()),
    }
    (out / "train_metrics.json").write_text(json.dumps(metrics, indent=2))
    return metrics
