"""Stage 1, the locator: its run configuration, its metric, and its run on the shared fit
loop (training.fit)."""

from __future__ import annotations

from dataclasses import dataclass, field

import keras
import numpy as np
from certcorners.preprocessing import INPUT_SIZE
from keras import ops

from training.dataset import load_arrays
from training.fit import Batches, RunConfig, distribution_strategy, fit
from training.model import ModelConfig, build_model, strided_blocks


@dataclass(frozen=True)
class TrainConfig(RunConfig):
    """Stage 1, the locator."""

    model: ModelConfig = field(default_factory=ModelConfig)


@keras.saving.register_keras_serializable(package="certcorners")
def corner_error_px(y_true, y_pred):
    """Mean Euclidean corner error in pixels of the 400-px input: the spec's metric scale."""
    diff = ops.reshape(y_pred - y_true, (-1, 4, 2)) * INPUT_SIZE
    return ops.mean(ops.sqrt(ops.sum(diff * diff, axis=-1) + 1e-12))


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
    if config.init_from:
        source = keras.saving.load_model(config.init_from, compile=False)
        source_strided = strided_blocks(source)
        if source_strided > config.model.strided_blocks:
            # The weights would load (the same shapes) into a network that pools where they
            # learnt to stride: a worse start, silently.
            raise ValueError(f"{config.init_from} strides its first {source_strided} blocks: "
                             f"train it with --strided-blocks {source_strided} (or more)")

    def build() -> keras.Model:
        model = build_model(config.model)
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
