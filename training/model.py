"""The corner regressor: a small Functional Keras CNN, ~0.1M parameters.

Conv -> BatchNorm -> ReLU -> MaxPool blocks (in the first `strided_blocks` of them a stride-2
Conv instead of the pool) shrink the 400 x 400 grayscale input to a 6 x 6 x 96 map; Flatten keeps
where things are (a global pool would throw the position away); Dense(8) gives x, y of the four
corners in spec order, as fractions of the 400-px input.
"""

from __future__ import annotations

from dataclasses import dataclass

import keras
import numpy as np
from certcorners.preprocessing import INPUT_SIZE
from keras import layers


@dataclass(frozen=True)
class ModelConfig:
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


def build_model(config: ModelConfig | None = None, outputs: int = 8,
                name: str = "corner_regressor") -> keras.Model:
    """The locator (8 outputs: the number's corners); the card finder is the same network
    with its own head (training.finder)."""
    config = config or ModelConfig()
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
    """How many leading blocks of a locator stride their convolution (ModelConfig)."""
    convolutions = [layer for layer in model.layers if isinstance(layer, layers.Conv2D)]
    return next((i for i, layer in enumerate(convolutions) if tuple(layer.strides) != (2, 2)),
                len(convolutions))


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
