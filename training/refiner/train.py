"""A refiner run: crops from the configured folders, the network, the shared fit loop."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from training.fit import Batches, RunConfig, fit
from training.refiner.conversion import initial_refiner
from training.refiner.crops import CropConfig, load_crops
from training.refiner.network import (
    RefinerConfig,
    build_refiner,
    crop_corner_error_px,
    refiner_loss,
)


class CropBatches(Batches):
    """Crops as float32 batches in [0, 1]; training batches get photometric jitter (contrast
    and brightness) so the refiner leans on shapes, not levels."""

    def __getitem__(self, index):
        x, y = super().__getitem__(index)
        if self.shuffle:
            n = len(x)
            gain = self.rng.uniform(0.7, 1.3, (n, 1, 1, 1)).astype(np.float32)
            bias = self.rng.uniform(-0.15, 0.15, (n, 1, 1, 1)).astype(np.float32)
            x = np.clip(x * gain + bias, 0, 1)
        return x, y


@dataclass(frozen=True)
class RefinerTrainConfig(RunConfig):
    """Stage 2, the refiner: its own defaults, crops and network."""

    out_dir: str = "runs/refiner"
    epochs: int = 8
    batch_size: int = 64
    patience: int = 4
    crops: CropConfig = field(default_factory=CropConfig)
    model: RefinerConfig = field(default_factory=RefinerConfig)


def train_refiner(config: RefinerTrainConfig, datasets=None) -> dict:
    """Train the refiner; returns its metrics. `datasets` = ((crops, targets), (crops,
    targets)) or None to cut them from the config's folders."""
    if datasets is None:
        if not config.train_dirs or not config.val_dir:
            raise ValueError("train_dirs and val_dir are required when no datasets are given")
        source = config.crops.hard_negatives_from
        if config.crops.hard_negatives and not Path(source).is_file():
            raise ValueError(f"hard negatives from {source}: no such package file")
        parts = [load_crops(d, config.crops) for d in config.train_dirs]
        train_data = (np.concatenate([p[0] for p in parts]),
                      np.concatenate([p[1] for p in parts]))
        # Validation crops are cut as the run's are, from other guesses.
        val_data = load_crops(config.val_dir, replace(config.crops, seed=config.crops.seed + 1))
    else:
        train_data, val_data = datasets
    fitted = fit(config, lambda: (initial_refiner(config.init_from, config.model,
                                                  train_data[0][:2048])
                                  if config.init_from else build_refiner(config.model)),
                 refiner_loss, crop_corner_error_px,
                 CropBatches(*train_data, config.batch_size, shuffle=True, seed=config.seed),
                 CropBatches(*val_data, config.batch_size, shuffle=False), len(train_data[0]))
    return fitted.write_metrics(config.out_dir, train_crops=int(len(train_data[0])),
                                train_crops_with_number=int(train_data[1][:, 9].sum()),
                                val_crops=int(len(val_data[0])))
