"""The card finder's answer, and the view cut around the card it finds.

The card finder (a package's card_finder.tflite, when it has one) sees stage 1's canvas and
answers the card's axis-aligned box there (x0, y0, x1, y1 as fractions of the canvas) and
the logit that a card is there at all. Where the card is small in the frame, the number is a
few pixels tall on the canvas; a view cut around the card's box and letterboxed to the canvas
size shows it again at the sizes stage 1 learnt on (the card 35-90 % of the view).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from certcorners.preprocessing import (
    INPUT_SIZE,
    Decoded,
    Letterbox,
    letterbox_array,
    scaled_upright,
    unit_range,
)

# x0, y0, x1, y1 of the card's box on the canvas (fractions of it), then the logit of "a card
# is here".
OUTPUT_SIZE = 5


@dataclass(frozen=True)
class CardFound:
    box: np.ndarray  # (4,) x0, y0, x1, y1 in photo pixels
    presence: float  # probability that a card is in the photo


@dataclass(frozen=True)
class CutView:
    """A region of the photo (x0, y0, x1, y1 in photo pixels, inside it) letterboxed to the
    canvas size: stage 1 sees it as it sees a whole photo."""

    region: tuple[float, float, float, float]
    letterbox: Letterbox

    def canvas(self, decoded: Decoded) -> np.ndarray:
        """The view as stage 1 takes it: [400, 400, 1] float32 in [0, 1]."""
        scaled = scaled_upright(decoded, self.region, self.letterbox)
        return unit_range(letterbox_array(scaled, self.letterbox))

    def to_photo(self, points: np.ndarray) -> np.ndarray:
        """Canvas pixels of the view (..., 2) -> photo pixels."""
        return self.letterbox.to_photo(points) + np.array(self.region[:2])


def box_target(card_corners: np.ndarray | None, letterbox: Letterbox) -> np.ndarray:
    """The finder's training target for a photo: the card's box on the canvas and 1, or
    zeros and 0 where the photo has no card."""
    if card_corners is None:
        return np.zeros(OUTPUT_SIZE, np.float32)
    points = letterbox.to_input(card_corners) / INPUT_SIZE
    return np.array([*points.min(axis=0), *points.max(axis=0), 1.0], np.float32)


def read(output: np.ndarray, letterbox: Letterbox) -> CardFound:
    """The finder's 5 outputs -> the card's box in photo pixels and how sure it is."""
    output = np.asarray(output, dtype=np.float64)
    low = letterbox.to_photo(output[:2] * INPUT_SIZE)
    high = letterbox.to_photo(output[2:4] * INPUT_SIZE)
    presence = float(1.0 / (1.0 + np.exp(-np.clip(output[4], -60, 60))))
    return CardFound(np.concatenate([np.minimum(low, high), np.maximum(low, high)]), presence)


def cut_around(box: np.ndarray, margin: float, width: int, height: int) -> CutView:
    """A square `margin` times the box's longer side, centred on it, clipped to the photo.
    Never smaller than a fifth of the photo's long side: the photo is decoded at ~1000 px, so
    a smaller view would be enlarged, not sharper."""
    centre = (box[:2] + box[2:]) / 2
    side = max(float(np.max(box[2:] - box[:2])) * margin, max(width, height) / 5)
    return _square(centre, side, width, height)


def tiles(side: float, width: int, height: int) -> list[CutView]:
    """Nine overlapping squares, `side` times the photo's long side, centred on a 3 x 3 grid
    (a quarter, half and three quarters across and down), clipped to the photo: views for
    when the card finder's box missed the card."""
    side *= max(width, height)
    return [_square(np.array([fx * width, fy * height]), side, width, height)
            for fy in (0.25, 0.5, 0.75) for fx in (0.25, 0.5, 0.75)]


def _square(centre: np.ndarray, side: float, width: int, height: int) -> CutView:
    """The square of `side` centred on `centre`, clipped to the photo."""
    low = np.clip(centre - side / 2, 0, [width, height])
    high = np.clip(centre + side / 2, 0, [width, height])
    size = np.maximum(high - low, 1.0)
    return CutView((float(low[0]), float(low[1]), float(low[0] + size[0]),
                    float(low[1] + size[1])), Letterbox.for_size(size[0], size[1]))
