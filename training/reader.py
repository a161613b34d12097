"""Stage 3, the reader: a small CNN over the number's view with a CTC head
(certcorners.reader), trained on the shared fit loop.

The view (32 x 160) goes through four convolution blocks to 2 x 40; each of the 40 columns
becomes one step of a short 1-D convolution, then the logits of a blank and each character.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np
from certcorners.geometry import homography, warp
from certcorners.reader import (
    MAX_TEXT,
    NUM_CLASSES,
    TIME_STEPS,
    VIEW_BOX,
    VIEW_HEIGHT,
    VIEW_WIDTH,
)
from certcorners.reader import model_input as reader_input
from keras import layers, ops
from PIL import Image

from training.fit import Batches, RunConfig, distribution_strategy, fit
from training.reader_data import CACHE_FILE, photo_views

# Each block halves the rows; the first two halve the columns too (160 -> 40 steps).
POOLS = ((2, 2), (2, 2), (2, 1), (2, 1))


@dataclass(frozen=True)
class ReaderConfig(RunConfig):
    """The reader. `train_dirs` and `val_dir` are folders of synthetic views
    (reader-views.npz, `python -m training reader-views`) or labelled photos with `text`."""

    filters: tuple[int, ...] = (16, 48, 64, 96)
    # Every block after the first a depthwise-separable convolution: ~3x fewer
    # multiply-accumulates, what keeps the reader near a millisecond on one core.
    separable: bool = True
    # The first convolution strides 2 instead of being max-pooled: the same weights (a
    # pooled reader starts a strided one), and no full-resolution feature map, which is
    # what dominates the reader's time (few of its multiply-accumulates are there).
    strided_stem: bool = False
    sequence_units: int = 128
    # Each training view warped as if its four corners were off by up to this many pixels of
    # the view (normal, a spread drawn per view): the refiner's corners are, a little.
    view_jitter_px: float = 0.0
    # And each edge moved as a whole by up to this many pixels: served corners' errors are
    # correlated (a quad too tall or too low, more than independent corners would make).
    edge_jitter_px: float = 0.0
    epochs: int = 30
    batch_size: int = 64

    def __post_init__(self):
        super().__post_init__()
        if len(self.filters) != len(POOLS) or min(self.filters) < 1:
            raise ValueError(f"filters must be {len(POOLS)} positive counts, got {self.filters}")
        if self.sequence_units < 1:
            raise ValueError(f"sequence_units must be positive, got {self.sequence_units}")
        if not 0.0 <= self.view_jitter_px <= 8.0:
            raise ValueError(f"view_jitter_px must be 0-8 px, got {self.view_jitter_px}")
        if not 0.0 <= self.edge_jitter_px <= 8.0:
            raise ValueError(f"edge_jitter_px must be 0-8 px, got {self.edge_jitter_px}")


def build_reader(config: ReaderConfig | None = None) -> keras.Model:
    config = config or ReaderConfig()
    inputs = keras.Input((VIEW_HEIGHT, VIEW_WIDTH, 1), name="view")
    x = inputs
    for index, (filters, pool) in enumerate(zip(config.filters, POOLS, strict=True)):
        strided = index == 0 and config.strided_stem
        if config.separable and index > 0:
            x = layers.SeparableConv2D(filters, 3, padding="same", use_bias=False,
                                       name=f"conv{index}")(x)
        else:
            x = layers.Conv2D(filters, 3, strides=pool if strided else 1, padding="same",
                              use_bias=False, name=f"conv{index}")(x)
        x = layers.BatchNormalization(name=f"norm{index}")(x)
        x = layers.ReLU(name=f"relu{index}")(x)
        if not strided:
            x = layers.MaxPooling2D(pool, name=f"pool{index}")(x)
    rows = VIEW_HEIGHT // int(np.prod([p[0] for p in POOLS]))
    x = layers.Permute((2, 1, 3), name="columns")(x)  # [steps, rows, filters]
    x = layers.Reshape((TIME_STEPS, rows * config.filters[-1]), name="steps")(x)
    x = layers.Dense(config.sequence_units, activation="relu", name="step_features")(x)
    x = layers.Conv1D(config.sequence_units, 3, padding="same", activation="relu",
                      name="context")(x)
    logits = layers.Dense(NUM_CLASSES, name="head")(x)
    return keras.Model(inputs, logits, name="reader")


def _labels(y_true):
    y_true = ops.cast(y_true, "int32")
    steps = ops.full((ops.shape(y_true)[0],), TIME_STEPS, dtype="int32")
    return y_true[:, 0], y_true[:, 1:], steps


@keras.saving.register_keras_serializable(package="certcorners")
def reader_loss(y_true, y_pred):
    """CTC loss; y_true is [length, classes zero-padded] per view (reader_data.targets)."""
    lengths, labels, steps = _labels(y_true)
    return ops.mean(ops.ctc_loss(labels, y_pred, lengths, steps))


@keras.saving.register_keras_serializable(package="certcorners")
def read_error(y_true, y_pred):
    """Share of views whose best path (unconstrained) is not the text."""
    _, labels, steps = _labels(y_true)
    decoded = ops.ctc_decode(y_pred, steps, strategy="greedy")[0][0][:, :MAX_TEXT]
    decoded = ops.where(decoded < 0, 0, ops.cast(decoded, "int32"))
    wrong = ops.any(ops.not_equal(decoded, labels), axis=-1)
    return ops.mean(ops.cast(wrong, "float32"))


class ReaderBatches(Batches):
    """Views as the reader takes them (certcorners.reader.model_input), with their targets;
    with `jitter_px` or `edge_px`, each warped as if its corners were off (jittered)."""

    def __init__(self, *args, jitter_px: float = 0.0, edge_px: float = 0.0, **kwargs):
        super().__init__(*args, **kwargs)
        self.jitter_px, self.edge_px = jitter_px, edge_px

    def __getitem__(self, index):
        rows = np.sort(self.order[index * self.batch_size : (index + 1) * self.batch_size])
        views = self.inputs[rows]
        if self.jitter_px or self.edge_px:
            views = np.stack([jittered(v, self.rng, self.jitter_px, self.edge_px)
                              for v in views])
        return reader_input(views), self.targets[rows]


# Which corners each edge moves (VIEW_BOX order: top-left, top-right, bottom-right,
# bottom-left) and along which axis: top and bottom up or down, left and right sideways.
_EDGES = (((0, 1), 1), ((3, 2), 1), ((0, 3), 0), ((1, 2), 0))


def jittered(view: np.ndarray, rng: np.random.Generator, jitter_px: float,
             edge_px: float = 0.0) -> np.ndarray:
    """The view cut again from corners moved by a normal of spread up to `jitter_px`, and
    each edge by one of spread up to `edge_px` (one spread a view for both)."""
    share = rng.uniform(0, 1)
    moved = VIEW_BOX + rng.normal(0, share * jitter_px, VIEW_BOX.shape)
    if edge_px:
        for corners, axis in _EDGES:
            moved[list(corners), axis] += rng.normal(0, share * edge_px)
    to_view = homography(VIEW_BOX, moved)
    image = warp(Image.fromarray(view[..., 0]), to_view, (VIEW_WIDTH, VIEW_HEIGHT),
                 Image.Resampling.BILINEAR, int(np.median(view)))
    return np.asarray(image, dtype=np.uint8)[..., np.newaxis]


def load_views(folder: str | Path) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(views, targets, fonts) of a folder of synthetic views or of labelled photos."""
    folder = Path(folder)
    if (folder / CACHE_FILE).exists() and not (folder / "labels.jsonl").exists():
        stored = np.load(folder / CACHE_FILE)
        return stored["inputs"], stored["targets"], list(stored["fonts"])
    return photo_views(folder)


def train_reader(config: ReaderConfig, datasets=None) -> dict:
    """Train and return the metrics. `datasets` = ((views, targets), (views, targets)): uint8
    [N, VIEW_HEIGHT, VIEW_WIDTH, 1] and int32 [N, 1 + MAX_TEXT]; read from the config's
    folders when None."""
    if datasets is None:
        if not config.train_dirs or not config.val_dir:
            raise ValueError("train_dirs and val_dir are required when no datasets are given")
        parts = [load_views(d) for d in config.train_dirs]
        train_data = tuple(np.concatenate([p[i] for p in parts]) for i in (0, 1))
        val_data = load_views(config.val_dir)[:2]
    else:
        train_data, val_data = datasets
    for name, (x, y) in (("training", train_data), ("validation", val_data)):
        if len(x) == 0 or x.shape[1:] != (VIEW_HEIGHT, VIEW_WIDTH, 1) or np.shape(y) != (
                len(x), 1 + MAX_TEXT):
            raise ValueError(f"{name} data must be N x {VIEW_HEIGHT} x {VIEW_WIDTH} x 1 views "
                             f"with N x {1 + MAX_TEXT} targets, got {x.shape} and "
                             f"{np.shape(y)}")
    source = keras.saving.load_model(config.init_from, compile=False) if config.init_from \
        else None

    def build() -> keras.Model:
        model = build_reader(config)
        if source is not None:
            model.set_weights(source.get_weights())
        return model

    scope, replicas = distribution_strategy()
    batch = config.batch_size * replicas
    fitted = fit(config, build, reader_loss, read_error,
                 ReaderBatches(*train_data, batch, shuffle=True, seed=config.seed,
                               jitter_px=config.view_jitter_px,
                               edge_px=config.edge_jitter_px),
                 ReaderBatches(*val_data, batch, shuffle=False), len(train_data[0]),
                 replicas, scope)
    return fitted.write_metrics(config.out_dir, train_examples=int(len(train_data[0])),
                                val_examples=int(len(val_data[0])))
