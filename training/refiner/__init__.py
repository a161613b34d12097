"""Stage 2, the refiner: a small CNN on the number's crop (certcorners.refine) that answers the
four corners in crop pixels, whether the crop is upside down, and whether a registration
number is there at all.

It trains on crops cut from generated photos (through the serving decode and cut) around
guesses made by perturbing the true quad with errors wider than stage 1's, and on crops
without a number: scenes without a card, covered numbers, and other print on the card.
Written in backend-agnostic Keras 3 (keras.ops), so it trains under JAX or PyTorch too.

One job a module: crops (what it learns from), mining (hard negatives), network (its layers
and loss), conversion (a packaged refiner back into Keras) and train (the run).
"""

from training.refiner.conversion import REFINER_KERAS_FILE, initial_refiner, refiner_from_litert
from training.refiner.crops import CROPS_FILE, CropConfig, GuessErrors, load_crops
from training.refiner.mining import hard_negative_quads
from training.refiner.network import (
    RefinerConfig,
    build_refiner,
    crop_corner_error_px,
    refiner_loss,
)
from training.refiner.train import RefinerTrainConfig, train_refiner

__all__ = ["CROPS_FILE", "REFINER_KERAS_FILE", "CropConfig", "GuessErrors", "RefinerConfig",
           "RefinerTrainConfig", "build_refiner", "crop_corner_error_px", "hard_negative_quads",
           "initial_refiner", "load_crops", "refiner_from_litert", "refiner_loss",
           "train_refiner"]
