"""Hard negatives for the refiner: on photos without a certificate, the print a package's
cascade is surest is a number (what serving's search and scan could take for one)."""

from __future__ import annotations

import functools
import tempfile

import numpy as np
from certcorners import refine
from certcorners.predictor import Predictor, px_per_400
from certcorners.preprocessing import Decoded

from training.evaluate import load_predictor


@functools.lru_cache(maxsize=1)
def miner(package: str) -> tuple[Predictor, tempfile.TemporaryDirectory]:
    """The package's cascade, loaded once in each worker process (with its folder, kept)."""
    folder = tempfile.TemporaryDirectory(prefix="hard-negatives-")
    return load_predictor(package, folder.name)[0], folder


def hard_negative_quads(predictor: Predictor, decoded: Decoded, count: int
                        ) -> list[np.ndarray]:
    """On a photo without a certificate, the `count` quads where `predictor`'s refiner is
    surest of a number: each guess serving's search (around the locator's answer) and scan
    (over the whole photo) would try, refined once, the surest answers kept, where its next
    pass would look."""
    size = (decoded.letterbox.width, decoded.letterbox.height)
    scale = px_per_400(decoded)
    located = predictor.locate(decoded)
    answers = []
    for guess in [located, *refine.neighbours(located, scale, predictor.policy),
                  *refine.scan([located], size, scale, predictor.policy)]:
        answer = predictor.refine(decoded, guess)
        if refine.is_plausible(answer.corners, size):
            answers.append((answer.confidence, answer.corners))
    answers.sort(key=lambda a: -a[0])
    return [corners for _, corners in answers[:count]]
