"""The refiner's training examples: crops cut from labelled photos, as serving cuts them,
around guesses wider than stage 1's errors, and crops without a number."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from certcorners import refine
from certcorners.model_card import sha256_file
from certcorners.preprocessing import decode

from training.dataset import Example, cached_arrays, read_examples
from training.refiner.mining import hard_negative_quads, miner

CROPS_FILE = "refiner-crops.npz"
# Bumped when the way crops are cut changes without a CropConfig field changing, so that
# cached crops are rebuilt. 2: guesses serving would not refine, or whose truth lies more
# than a crop's width away, are drawn again.
CROPS_VERSION = 2

@dataclass(frozen=True)
class GuessErrors:
    """How far the guesses that crops are cut around stray from the truth, in pixels at the
    spec's 400-px scale: wider than stage 1's measured errors (model card), so the refiner has
    seen worse than it will meet."""

    shift: float = 4.0  # sigma of the whole quad's shift
    wide_shift: float = 9.0  # ... for one guess in four
    corner: float = 1.5  # sigma of each corner's own error
    scale: float = 0.08  # sigma of the log of the quad's size
    rotation_degrees: float = 3.0
    upside_down: float = 0.25  # share of guesses named 180 degrees wrong

    def __post_init__(self):
        if min(self.shift, self.wide_shift, self.corner, self.scale,
               self.rotation_degrees) < 0 or not 0 <= self.upside_down <= 1:
            raise ValueError("guess errors must be >= 0 and upside_down a share in [0, 1]")

    def perturb(self, rng: np.random.Generator, quad: np.ndarray, px: float,
                fine: bool = False) -> np.ndarray:
        """A guess around `quad` (4, 2); `px` photo pixels per 400-scale pixel. `fine`: the
        small errors a first refiner pass leaves, which the second pass starts from."""
        shrink = 0.25 if fine else 1.0
        centre = quad.mean(axis=0)
        angle = np.radians(rng.normal(0, self.rotation_degrees * shrink))
        rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
        scale = np.exp(rng.normal(0, self.scale * shrink))
        sigma = self.wide_shift if rng.random() < 0.25 else self.shift
        guess = (quad - centre) @ rotation.T * scale + centre + rng.normal(0, sigma * px * shrink,
                                                                           2)
        guess = guess + rng.normal(0, self.corner * px * shrink, (4, 2))
        return np.roll(guess, 2, axis=0) if rng.random() < self.upside_down else guess


@dataclass(frozen=True)
class CropConfig:
    copies: int = 6  # guesses per photo with a number
    negatives_per_photo: int = 3  # crops per photo without one
    seed: int = 0
    errors: GuessErrors = field(default_factory=GuessErrors)
    # Share of the wide guesses cut as serving cuts its first crop: around the rectangle
    # refine.first_guess makes of stage 1's quad, not around the quad itself.
    rectangles: float = 0.0
    # Crops more per photo without a certificate, where the cascade of the package
    # `hard_negatives_from` is surest of a number (hard_negative_quads): the print serving's
    # search and scan could take for one. Random quads seldom land on it.
    hard_negatives: int = 0
    hard_negatives_from: str = ""

    def __post_init__(self):
        if self.copies < 1 or self.negatives_per_photo < 0:
            raise ValueError("copies must be >= 1 and negatives_per_photo >= 0")
        if not 0 <= self.rectangles <= 1:
            raise ValueError(f"rectangles must be a share in [0, 1], got {self.rectangles}")
        if self.hard_negatives < 0:
            raise ValueError(f"hard_negatives must be >= 0, got {self.hard_negatives}")
        if self.hard_negatives and not self.hard_negatives_from:
            raise ValueError("hard_negatives needs hard_negatives_from: the package whose "
                             "cascade finds them")


def _random_quad(rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    """A quad of a number's size and shape anywhere in the photo, at any angle."""
    long_side = max(width, height)
    w = rng.uniform(0.08, 0.3) * long_side
    h = w * rng.uniform(0.1, 0.25)
    angle = rng.uniform(0, 2 * np.pi)
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    box = np.array([[-w, -h], [w, -h], [w, h], [-w, h]]) / 2
    centre = rng.uniform([0.1 * width, 0.1 * height], [0.9 * width, 0.9 * height])
    return box @ rotation.T + centre


def _beside(quad: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The quad moved within the card's plane to other print: rows below, field B to the right,
    the header above (hard negatives: card texture and text, no number)."""
    along, across = quad[1] - quad[0], quad[3] - quad[0]
    choice = rng.integers(3)
    if choice == 0:
        offset = across * rng.uniform(3.2, 6.0)  # the rows below, outside the crop's margin
    elif choice == 1:
        offset = along * rng.uniform(1.5, 2.2)  # field B and beyond
    else:
        offset = -across * rng.uniform(3.0, 3.6)  # the header
    return quad + offset


def _guess(rng: np.random.Generator, config: CropConfig, quad: np.ndarray, px: float,
           size: tuple[int, int], fine: bool) -> np.ndarray | None:
    """A perturbed guess that serving could meet and the refiner could answer, else None.
    Serving never refines an implausible quad (refine.is_plausible), and a nearly singular
    one maps the truth thousands of pixels outside the crop: such targets teach nothing and
    swamp the loss."""
    for _ in range(10):
        guess = config.errors.perturb(rng, quad, px, fine=fine)
        if not fine and rng.random() < config.rectangles:
            guess = refine.first_guess(guess)
        if not refine.is_plausible(guess, size):
            continue
        in_crop = refine.targets(refine.reading_order(guess), quad)[:8].reshape(4, 2)
        if np.abs(in_crop * refine.CROP_SCALE - refine.CROP_BOX).max() < refine.CROP_WIDTH:
            return guess
    return None


def _crops_of(args: tuple[Example, CropConfig, int]) -> tuple[np.ndarray, np.ndarray]:
    example, config, index = args
    rng = np.random.default_rng([config.seed, index])
    decoded = decode(example.path.read_bytes())
    width, height = example.width, example.height
    px = max(width, height) / 400.0
    guesses, truths = [], []
    if example.corners is not None:
        for copy in range(config.copies):
            guess = _guess(rng, config, example.corners, px, (width, height), fine=copy == 0)
            if guess is not None:
                guesses.append(guess)
                truths.append(example.corners)
        guesses.append(_beside(example.corners, rng))
        truths.append(None)
    else:
        covered = example.meta.get("covered_number")
        for n in range(config.negatives_per_photo):
            if covered is not None and n == 0:
                guesses.append(config.errors.perturb(rng, np.asarray(covered, float), px))
            else:
                guesses.append(_random_quad(rng, width, height))
            truths.append(None)
        if config.hard_negatives:
            mined = hard_negative_quads(miner(config.hard_negatives_from)[0], decoded,
                                        config.hard_negatives)
            guesses += mined
            truths += [None] * len(mined)
    crops, targets = [], []
    for guess, truth in zip(guesses, truths, strict=True):
        guess = refine.reading_order(guess)
        crop, _ = refine.cut(decoded, guess)
        crops.append(crop)
        targets.append(refine.targets(guess, truth))
    return np.stack(crops), np.stack(targets)


def load_crops(folder: str | Path, config: CropConfig, workers: int | None = None
               ) -> tuple[np.ndarray, np.ndarray]:
    """(crops uint8 [N, 72, 192, 1], targets float32 [N, 10]) for a dataset folder, cached
    there and rebuilt when the labels or the crop settings change."""
    folder = Path(folder)
    examples = read_examples(folder)
    digest = hashlib.sha256(json.dumps({**asdict(config), "version": CROPS_VERSION},
                                       sort_keys=True).encode())
    digest.update((folder / "labels.jsonl").read_bytes() if (folder / "labels.jsonl").exists()
                  else b"")
    if config.hard_negatives:  # the package's bytes, not only its path, make the crops
        digest.update(sha256_file(config.hard_negatives_from).encode())
    tasks = [(e, config, i) for i, e in enumerate(examples)]
    return cached_arrays(folder / CROPS_FILE, digest.hexdigest(), _crops_of, tasks,
                         ("crops", "targets"), workers)
