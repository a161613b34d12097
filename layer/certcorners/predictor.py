"""The exported models as served: LiteRT interpreters, loaded once, reused for every photo.

Stage 1 (the locator) finds the number on the whole photo letterboxed to 400 x 400. Stage 2
(the refiner, when the package has one) looks again at the number cut out of the decoded photo
at up to 3-5x the resolution, corrects the corners and their naming, and says how sure it is
that a registration number is there (certcorners.refine).
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from certcorners import refine
from certcorners.preprocessing import (
    DEFAULT_MAX_PIXELS,
    INPUT_SIZE,
    Decoded,
    Letterbox,
    decode,
    letterbox_array,
    output_to_corners,
    scaled_upright,
)

# The refiner runs three times: the first pass brings stage 1's guess close, the later ones,
# each from a crop centred on the last answer, make it precise (measured: README "Accuracy").
# A package's card may name another count.
REFINE_PASSES = 3


@dataclass(frozen=True)
class Prediction:
    corners: np.ndarray  # (4, 2) photo pixels, spec order
    letterbox: Letterbox
    confidence: float | None  # None: the package has no refiner to judge it
    located: np.ndarray  # stage 1's corners, before refinement


class _Network:
    """One LiteRT interpreter with one input and one output of fixed shapes."""

    def __init__(self, path: str | Path, input_shape: list[int], num_threads: int):
        from ai_edge_litert.interpreter import Interpreter

        self.interpreter = Interpreter(model_path=str(path), num_threads=num_threads)
        self.interpreter.allocate_tensors()
        detail = self.interpreter.get_input_details()[0]
        if list(detail["shape"]) != input_shape:
            raise ValueError(f"{Path(path).name} takes {list(detail['shape'])}, "
                             f"not {input_shape}")
        self._input = detail["index"]
        self._output = self.interpreter.get_output_details()[0]["index"]
        # One interpreter holds one set of tensors: callers on threads take turns.
        self._lock = threading.Lock()

    def run(self, array: np.ndarray) -> np.ndarray:
        with self._lock:
            self.interpreter.set_tensor(self._input, array[np.newaxis].astype(np.float32))
            self.interpreter.invoke()
            return self.interpreter.get_tensor(self._output)[0].copy()


class Predictor:
    def __init__(self, model_path: str | Path, num_threads: int | None = None,
                 refiner_path: str | Path | None = None, refine_passes: int = REFINE_PASSES):
        threads = num_threads or int(os.environ.get("LITERT_NUM_THREADS", "0")) or (
            os.cpu_count() or 1)
        self.locator = _Network(model_path, [1, INPUT_SIZE, INPUT_SIZE, 1], threads)
        self.refiner = None if refiner_path is None else _Network(
            refiner_path, [1, refine.CROP_HEIGHT, refine.CROP_WIDTH, 1], threads)
        self.refine_passes = refine_passes

    def run(self, model_input: np.ndarray) -> np.ndarray:
        """Stage 1 alone: [400, 400, 1] float32 in [0, 1] -> its 8 outputs."""
        return self.locator.run(model_input)

    def locate(self, decoded: Decoded) -> np.ndarray:
        """Stage 1's corners (4, 2) in photo pixels."""
        canvas = letterbox_array(scaled_upright(decoded), decoded.letterbox)
        return output_to_corners(self.run(canvas.astype(np.float32) / 255.0),
                                 decoded.letterbox)

    def refine(self, decoded: Decoded, quad: np.ndarray) -> refine.Refined:
        """One refiner pass from a guessed quad."""
        crop, crop_to_photo = refine.cut(decoded, refine.reading_order(quad))
        return refine.to_photo(self.refiner.run(crop.astype(np.float32) / 255.0),
                               crop_to_photo)

    def predict_decoded(self, decoded: Decoded) -> Prediction:
        located = self.locate(decoded)
        if self.refiner is None:
            return Prediction(located, decoded.letterbox, None, located)
        size = (decoded.letterbox.width, decoded.letterbox.height)
        corners, confidence = refine.first_guess(located), 0.0
        for _ in range(self.refine_passes):
            if not refine.is_plausible(corners, size):
                return Prediction(corners, decoded.letterbox, 0.0, located)
            refined = self.refine(decoded, corners)
            corners, confidence = refined.corners, refined.confidence
        return Prediction(corners, decoded.letterbox, confidence, located)

    def predict(self, image, max_pixels: int = DEFAULT_MAX_PIXELS) -> Prediction:
        """Photo bytes or a PIL image -> the number's four corners in photo pixels."""
        return self.predict_decoded(decode(image, max_pixels))
