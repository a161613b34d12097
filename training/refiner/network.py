"""The refiner's network, its loss and its metric."""

from __future__ import annotations

from dataclasses import dataclass

import keras
import numpy as np
from certcorners import refine
from keras import layers, ops

# Corner error weighs in crop pixels; the two yes/no answers in binary cross-entropy.
CORNER_WEIGHT, FLIP_WEIGHT, PRESENCE_WEIGHT = 0.1, 1.0, 1.0


@dataclass(frozen=True)
class RefinerConfig:
    filters: tuple[int, ...] = (16, 24, 32, 48, 64)
    dense: int = 96
    # Blocks after the first (1, 2, ...) whose first convolution strides by 2 instead of the
    # block ending in a max-pool: the same weights (a pooled refiner's load into it), and the
    # convolutions after it run on a quarter of the positions. Block 1's convolution on the
    # 36 x 96 map is a third of the pooled refiner's multiply-accumulates.
    strided_blocks: int = 0

    def __post_init__(self):
        if len(self.filters) != 5 or any(int(f) < 1 for f in self.filters):
            raise ValueError("filters: five positive widths (72 x 192 -> 2 x 6)")
        if self.dense < 1:
            raise ValueError(f"dense must be positive, got {self.dense}")
        # Beyond 2 a strided 9 x 24 map becomes 5 x 12 where the pool makes 4 x 12, and the
        # dense layer's weights no longer fit.
        if not 0 <= self.strided_blocks <= 2:
            raise ValueError(f"strided_blocks must be 0, 1 or 2, got {self.strided_blocks}")


def build_refiner(config: RefinerConfig | None = None) -> keras.Model:
    """Conv blocks down to 2 x 6 (a strided first convolution: the crop is mostly margin),
    Flatten to keep where things are, then one dense layer and the 10 outputs."""
    config = config or RefinerConfig()
    inputs = keras.Input((refine.CROP_HEIGHT, refine.CROP_WIDTH, 1), name="crop")
    first, *rest = config.filters
    x = layers.Conv2D(first, 3, strides=2, padding="same", use_bias=False, name="conv0")(inputs)
    x = layers.BatchNormalization(name="bn0")(x)
    x = layers.ReLU(name="relu0")(x)
    for block, filters in enumerate(rest, 1):
        strided = block <= config.strided_blocks
        for step in range(1 if block == 1 else 2):
            name = f"{block}{'ab'[step]}"
            x = layers.Conv2D(filters, 3, strides=2 if strided and step == 0 else 1,
                              padding="same", use_bias=False, name=f"conv{name}")(x)
            x = layers.BatchNormalization(name=f"bn{name}")(x)
            x = layers.ReLU(name=f"relu{name}")(x)
        if not strided:
            x = layers.MaxPooling2D(2, name=f"pool{block}")(x)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dense(config.dense, activation="relu", name="dense")(x)
    # Corners start on CROP_BOX (a guess is most likely right), the logits at 0.
    start = np.concatenate([(refine.CROP_BOX / refine.CROP_SCALE).reshape(8), [0.0, 0.0]])
    outputs = layers.Dense(refine.OUTPUT_SIZE, kernel_initializer="zeros",
                           bias_initializer=keras.initializers.Constant(start),
                           name="refined")(x)
    return keras.Model(inputs, outputs, name="refiner")


def _bce(labels, logits):
    return ops.mean(ops.maximum(logits, 0) - logits * labels + ops.log1p(ops.exp(-ops.abs(logits))))


@keras.saving.register_keras_serializable(package="certcorners")
def refiner_loss(y_true, y_pred):
    present = y_true[:, 9]
    scale = ops.convert_to_tensor(np.tile(refine.CROP_SCALE, 4).astype("float32"))
    corner = ops.mean(ops.abs(y_pred[:, :8] - y_true[:, :8]) * scale, axis=-1)
    weight = ops.sum(present) + 1e-6
    corner_loss = ops.sum(corner * present) / weight
    flip = ops.maximum(y_pred[:, 8], 0) - y_pred[:, 8] * y_true[:, 8] + ops.log1p(
        ops.exp(-ops.abs(y_pred[:, 8])))
    flip_loss = ops.sum(flip * present) / weight
    return (CORNER_WEIGHT * corner_loss + FLIP_WEIGHT * flip_loss
            + PRESENCE_WEIGHT * _bce(y_true[:, 9], y_pred[:, 9]))


@keras.saving.register_keras_serializable(package="certcorners")
def crop_corner_error_px(y_true, y_pred):
    """Mean Euclidean corner error in crop pixels over crops that hold a number."""
    present = y_true[:, 9]
    scale = ops.convert_to_tensor(refine.CROP_SCALE.astype("float32"))
    diff = ops.reshape(y_pred[:, :8] - y_true[:, :8], (-1, 4, 2)) * scale
    error = ops.mean(ops.sqrt(ops.sum(diff * diff, axis=-1) + 1e-12), axis=-1)
    return ops.sum(error * present) / (ops.sum(present) + 1e-6)
