"""The card finder: the locator's network with its own head, trained to box the card on the
canvas and to say whether a card is there (certcorners.card_finder), on the shared fit loop.

It learns from any generated folder: each label's `card_corners` (photos without a card are
its negatives). The `phone-view` profile makes such photos ~15x faster than full-size ones.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import keras
import numpy as np
from certcorners.card_finder import OUTPUT_SIZE, box_target
from certcorners.preprocessing import INPUT_SIZE, PREPROCESSING_VERSION
from keras import ops

from training.dataset import Example, cached_arrays, canvas_of, read_examples
from training.fit import Batches, RunConfig, check_same_widths, distribution_strategy, fit
from training.locator import LocatorConfig, build_locator, strided_blocks

CACHE_FILE = "finder-400.npz"


@dataclass(frozen=True)
class FinderConfig(RunConfig):
    """The card finder. `init_from` may be a locator (.keras): every layer but the head
    starts from it."""

    model: LocatorConfig = field(default_factory=lambda: LocatorConfig(strided_blocks=3))


@keras.saving.register_keras_serializable(package="certcorners")
def finder_loss(y_true, y_pred):
    """Mean absolute error of the card's box edges where there is a card, plus the binary
    cross-entropy of "a card is here"."""
    present = y_true[:, 4]
    box_error = ops.mean(ops.abs(y_pred[:, :4] - y_true[:, :4]), axis=-1)
    box = ops.sum(box_error * present) / ops.maximum(ops.sum(present), 1.0)
    presence = ops.mean(keras.losses.binary_crossentropy(
        present[:, None], y_pred[:, 4:5], from_logits=True))
    return 10.0 * box + presence


@keras.saving.register_keras_serializable(package="certcorners")
def card_box_error_px(y_true, y_pred):
    """Mean error of the box's edges in pixels of the 400-px canvas, over photos with a card."""
    present = y_true[:, 4]
    error = ops.mean(ops.abs(y_pred[:, :4] - y_true[:, :4]), axis=-1) * INPUT_SIZE
    return ops.sum(error * present) / ops.maximum(ops.sum(present), 1.0)


def card_corners(example: Example) -> np.ndarray | None:
    corners = example.meta.get("card_corners")
    return None if corners is None else np.asarray(corners, dtype=np.float64)


def _prepare(example: Example) -> tuple[np.ndarray, np.ndarray]:
    canvas, letterbox = canvas_of(example)
    return canvas[np.newaxis], box_target(card_corners(example), letterbox)[np.newaxis]


def load_finder_arrays(folder: str | Path, workers: int | None = None):
    """(canvases uint8 [N, 400, 400, 1], targets float32 [N, 5]) of every photo in the
    folder, cached there and made again when the labels change."""
    folder = Path(folder)
    examples = read_examples(folder)
    if not any(card_corners(e) is not None for e in examples):
        raise ValueError(f"{folder} has no photo labelled with card_corners (generate it)")
    digest = hashlib.sha256(f"finder-preprocessing-{PREPROCESSING_VERSION}".encode())
    for e in examples:
        digest.update(f"{e.path.name}{e.meta.get('card_corners')}".encode())
    return cached_arrays(folder / CACHE_FILE, digest.hexdigest(), _prepare, examples,
                         ("inputs", "targets"), workers)


def build_finder(config: LocatorConfig | None = None) -> keras.Model:
    return build_locator(config or LocatorConfig(strided_blocks=3), OUTPUT_SIZE, "card_finder")


def train_finder(config: FinderConfig, datasets=None) -> dict:
    """Train and return the metrics. `datasets` = ((x_train, y_train), (x_val, y_val)), uint8
    canvases [N, 400, 400, 1] and targets [N, 5]; read from the config's folders when None."""
    if datasets is None:
        if not config.train_dirs or not config.val_dir:
            raise ValueError("train_dirs and val_dir are required when no datasets are given")
        parts = [load_finder_arrays(d) for d in config.train_dirs]
        train_data = tuple(np.concatenate([p[i] for p in parts]) for i in (0, 1))
        val_data = load_finder_arrays(config.val_dir)
    else:
        train_data, val_data = datasets
    for name, (x, y) in (("training", train_data), ("validation", val_data)):
        if len(x) == 0 or x.shape[1:] != (INPUT_SIZE, INPUT_SIZE, 1) or np.shape(y) != (
                len(x), OUTPUT_SIZE):
            raise ValueError(f"{name} data must be N x {INPUT_SIZE} x {INPUT_SIZE} x 1 with "
                             f"N x {OUTPUT_SIZE} targets, got {x.shape} and {np.shape(y)}")
    source = None
    if config.init_from:
        source = keras.saving.load_model(config.init_from, compile=False)
        if strided_blocks(source) > config.model.strided_blocks:
            raise ValueError(f"{config.init_from} strides more blocks than this finder's "
                             f"{config.model.strided_blocks}")
        check_same_widths(source, config.model.filters, config.init_from)

    def build() -> keras.Model:
        model = build_finder(config.model)
        if source is not None:  # the trunk from a locator or finder; the head too if it fits
            for layer in model.layers:
                try:
                    theirs = source.get_layer(layer.name if layer.name != "head" else
                                              source.layers[-1].name)
                except ValueError:
                    continue
                if [w.shape for w in theirs.get_weights()] == [w.shape for w in
                                                               layer.get_weights()]:
                    layer.set_weights(theirs.get_weights())
        return model

    scope, replicas = distribution_strategy()
    batch = config.batch_size * replicas
    fitted = fit(config, build, finder_loss, card_box_error_px,
                 Batches(*train_data, batch, shuffle=True, seed=config.seed),
                 Batches(*val_data, batch, shuffle=False), len(train_data[0]), replicas, scope)
    return fitted.write_metrics(config.out_dir, train_examples=int(len(train_data[0])),
                                val_examples=int(len(val_data[0])))
