"""How fast the generator feeds the networks: training examples a second, one core, as each
network consumes them, the old way and the new side by side. The old ways draw text as the
generator did when issue 27 was filed, with the faces' hinting programs (training.fonts):

- the locator's canvas (render, JPEG, decode, letterbox) from a spec photo (800-2000 px)
  and from a `spec-view` one (the same composition at ~540 px);
- the card finder's canvas from a `phone` photo (12 MP) and from a `phone-view` one;
- the reader's view, cut from a whole spec photo as decoded, and drawn alone
  (training.reader_data: only the number's neighbourhood).

    python -m training bench-data --count 20
"""

from __future__ import annotations

import statistics
import time
from contextlib import contextmanager, nullcontext

from certcorners.preprocessing import decode, decode_scaled, letterbox_array
from certcorners.reader import view

from training import card, fonts
from training.photo import PHONE, PHONE_VIEW, SPEC, SPEC_VIEW, synthetic_photo
from training.reader_data import synthetic_views

SEED = 515


def _canvas(profile, index: int) -> int:
    photo = synthetic_photo(SEED, index, profile=profile)
    letterbox_array(*decode_scaled(photo.jpeg))
    return 1


def _view_from_photo(index: int) -> int:
    photo = synthetic_photo(SEED, index)
    view(decode(photo.jpeg), photo.corners)
    return 1


def _views_alone(index: int) -> int:
    return len(synthetic_views(1, SEED + index, workers=1)[0])


@contextmanager
def _hinted_faces():
    """Text drawn from the font files as installed, hinting programs and all."""
    unhinted_file = fonts.face_file
    fonts.face_file = lambda path: path
    fonts.face.cache_clear()
    card.cap_ratio.cache_clear()
    try:
        yield
    finally:
        fonts.face_file = unhinted_file
        fonts.face.cache_clear()
        card.cap_ratio.cache_clear()


# name -> one example's making (returns how many examples it made); pairs: (old, new).
MAKERS = {
    "locator canvas, spec photo, hinted faces": lambda i: _canvas(SPEC, i),
    "locator canvas, spec photo": lambda i: _canvas(SPEC, i),
    "locator canvas, spec-view photo": lambda i: _canvas(SPEC_VIEW, i),
    "finder canvas, phone photo, hinted faces": lambda i: _canvas(PHONE, i),
    "finder canvas, phone-view photo": lambda i: _canvas(PHONE_VIEW, i),
    "reader view, from a spec photo, hinted faces": _view_from_photo,
    "reader view, drawn alone": _views_alone,
}
PAIRS = {"locator": ("locator canvas, spec photo, hinted faces",
                     "locator canvas, spec-view photo"),
         "card finder": ("finder canvas, phone photo, hinted faces",
                         "finder canvas, phone-view photo"),
         "reader": ("reader view, from a spec photo, hinted faces", "reader view, drawn alone")}


def bench_data(count: int, rounds: int = 3) -> dict:
    """Examples a second of each way in MAKERS, `count` makings each a round, the ways
    alternating round by round; medians over rounds, and each pair's speed-up."""
    if count < 1 or rounds < 1:
        raise ValueError("count and rounds must be at least 1")
    per_round = {name: [] for name in MAKERS}
    for round_index in range(rounds):
        for name, make in MAKERS.items():
            with _hinted_faces() if "hinted faces" in name else nullcontext():
                started, made = time.perf_counter(), 0
                for i in range(count):
                    made += make(round_index * count + i)
                per_round[name].append((time.perf_counter() - started) / made)
    seconds = {name: statistics.median(values) for name, values in per_round.items()}
    return {"count": count, "rounds": rounds,
            "examples_per_second": {name: round(1 / s, 2) for name, s in seconds.items()},
            "speed-up": {network: round(seconds[old] / seconds[new], 1)
                         for network, (old, new) in PAIRS.items()}}
