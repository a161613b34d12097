"""The exported model as served: a LiteRT interpreter, loaded once, reused for every photo."""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from certcorners.preprocessing import (
    DEFAULT_MAX_PIXELS,
    INPUT_SIZE,
    Letterbox,
    output_to_corners,
    to_model_input,
)


@dataclass(frozen=True)
class Prediction:
    corners: np.ndarray  # (4, 2) photo pixels, spec order
    letterbox: Letterbox


class Predictor:
    def __init__(self, model_path: str | Path, num_threads: int | None = None):
        from ai_edge_litert.interpreter import Interpreter

        threads = num_threads or int(os.environ.get("LITERT_NUM_THREADS", "0")) or (
            os.cpu_count() or 1)
        self.interpreter = Interpreter(model_path=str(model_path), num_threads=threads)
        self.interpreter.allocate_tensors()
        input_detail = self.interpreter.get_input_details()[0]
        expected = [1, INPUT_SIZE, INPUT_SIZE, 1]
        if list(input_detail["shape"]) != expected:
            raise ValueError(f"the model takes {list(input_detail['shape'])}, not {expected}")
        self._input = input_detail["index"]
        self._output = self.interpreter.get_output_details()[0]["index"]
        # One interpreter holds one set of tensors: callers on threads take turns.
        self._lock = threading.Lock()

    def run(self, model_input: np.ndarray) -> np.ndarray:
        """[400, 400, 1] float32 in [0, 1] -> the model's 8 outputs."""
        with self._lock:
            self.interpreter.set_tensor(self._input, model_input[np.newaxis].astype(np.float32))
            self.interpreter.invoke()
            return self.interpreter.get_tensor(self._output)[0].copy()

    def predict(self, image, max_pixels: int = DEFAULT_MAX_PIXELS) -> Prediction:
        """Photo bytes or a PIL image -> the number's four corners in photo pixels."""
        model_input, letterbox = to_model_input(image, max_pixels)
        return Prediction(output_to_corners(self.run(model_input), letterbox), letterbox)
