"""Stage 1, the locator: a small Functional Keras CNN (~0.1 M parameters) that finds the
number's four corners on the whole photo letterboxed to 400 x 400, and its run on the shared
fit loop (training.fit).

Conv -> BatchNorm -> ReLU -> MaxPool blocks (in the first `strided_blocks` of them a stride-2
Conv instead of the pool) shrink the 400 x 400 grayscale input to a 6 x 6 x 96 map; Flatten keeps
where things are (a global pool would throw the position away); Dense(8) gives x, y of the four
corners in spec order, as fractions of the 400-px input.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import keras
import numpy as np
from certcorners.preprocessing import INPUT_SIZE
from keras import layers, ops

from training.dataset import load_arrays
from training.fit import Batches, RunConfig, check_same_widths, distribution_strategy, fit


@dataclass(frozen=True)
class LocatorConfig:
    """The locator's network (the card finder shares it, with its own head)."""

    input_size: int = INPUT_SIZE
    filters: tuple[int, ...] = (8, 16, 24, 32, 48, 96)
    dropout: float = 0.0
    # Leading blocks whose convolution strides by 2 instead of being max-pooled: the same
    # weights (a pooled model's weights load into a strided one), a quarter of the block's
    # multiply-accumulates, and no full-size activations written and read back, where the
    # first blocks on the 400 x 400 input cost most of the locator's time.
    strided_blocks: int = 0

    def __post_init__(self):
        if self.input_size != INPUT_SIZE:
            raise ValueError(f"input_size must be {INPUT_SIZE}: serving letterboxes to it")
        if not self.filters or any(int(f) < 1 for f in self.filters):
            raise ValueError(f"filters must be positive integers, got {self.filters}")
        if len(self.filters) > 8:
            raise ValueError("at most 8 blocks: each halves the 400-px input")
        if not 0 <= self.strided_blocks <= len(self.filters):
            raise ValueError(f"strided_blocks must be in [0, {len(self.filters)}], got "
                             f"{self.strided_blocks}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")


def build_locator(config: LocatorConfig | None = None, outputs: int = 8,
                  name: str = "locator") -> keras.Model:
    """The locator (8 outputs: the number's corners); the card finder is the same network
    with its own head (training.finder)."""
    config = config or LocatorConfig()
    inputs = keras.Input((config.input_size, config.input_size, 1), name="image")
    x = inputs
    for block, filters in enumerate(config.filters):
        strided = block < config.strided_blocks
        x = layers.Conv2D(filters, 3, strides=2 if strided else 1, padding="same",
                          use_bias=False, name=f"conv{block}")(x)
        x = layers.BatchNormalization(name=f"bn{block}")(x)
        x = layers.ReLU(name=f"relu{block}")(x)
        if not strided:
            x = layers.MaxPooling2D(2, name=f"pool{block}")(x)
    x = layers.Flatten(name="flatten")(x)
    if config.dropout:
        x = layers.Dropout(config.dropout, name="dropout")(x)
    # Start every corner at the centre of the input rather than far outside it.
    head = layers.Dense(outputs, bias_initializer=keras.initializers.Constant(0.5),
                        name="corners" if outputs == 8 else "head")(x)
    return keras.Model(inputs, head, name=name)


def strided_blocks(model: keras.Model) -> int:
    """How many leading blocks of a locator stride their convolution (LocatorConfig)."""
    convolutions = [layer for layer in model.layers if isinstance(layer, layers.Conv2D)]
    return next((i for i, layer in enumerate(convolutions) if tuple(layer.strides) != (2, 2)),
                len(convolutions))


@dataclass(frozen=True)
class LocatorTrainConfig(RunConfig):
    """A run of the locator."""

    model: LocatorConfig = field(default_factory=LocatorConfig)


@keras.saving.register_keras_serializable(package="certcorners")
def corner_error_px(y_true, y_pred):
    """Mean Euclidean corner error in pixels of the 400-px input: the spec's metric scale."""
    diff = ops.reshape(y_pred - y_true, (-1, 4, 2)) * INPUT_SIZE
    return ops.mean(ops.sqrt(ops.sum(diff * diff, axis=-1) + 1e-12))


def train_locator(config: LocatorTrainConfig, datasets=None) -> dict:
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
    if config.init_from:
        source = keras.saving.load_model(config.init_from, compile=False)
        source_strided = strided_blocks(source)
        if source_strided > config.model.strided_blocks:
            # The weights would load (the same shapes) into a network that pools where they
            # learnt to stride: a worse start, silently.
            raise ValueError(f"{config.init_from} strides its first {source_strided} blocks: "
                             f"train it with --strided-blocks {source_strided} (or more)")

    if config.init_from:
        check_same_widths(source, config.model.filters, config.init_from)

    def build() -> keras.Model:
        model = build_locator(config.model)
        if config.init_from:
            model.set_weights(source.get_weights())
        return model

    scope, replicas = distribution_strategy()
    print(f"training with Keras' {keras.backend.backend()} backend", flush=True)
    batch = config.batch_size * replicas
    fitted = fit(config, build, "mean_absolute_error", corner_error_px,
                 Batches(*train_data, batch, shuffle=True, seed=config.seed),
                 Batches(*val_data, batch, shuffle=False), len(train_data[0]), replicas, scope)
    return fitted.write_metrics(config.out_dir, train_examples=int(len(train_data[0])),
                                val_examples=int(len(val_data[0])))
