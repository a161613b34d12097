"""Stage 2's view of the photo: the number cut out of the decoded photo in its reading frame.

A guessed quad (spec corner order) is mapped onto CROP_BOX inside a CROP_WIDTH x CROP_HEIGHT
grayscale crop, so the margins around CROP_BOX hold what stage 1's error may have left out.
The refiner answers, in crop pixels, the four corners in the crop's own frame (top-left of
the crop first), whether the text is upside down there (stage 1 named the corners 180 degrees
wrong), and whether a registration number is there at all. Everything maps back to the photo
through the one homography that made the crop.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from certcorners.geometry import apply_homography, homography
from certcorners.policy import CascadePolicy
from certcorners.preprocessing import Decoded

CROP_WIDTH, CROP_HEIGHT = 192, 72
# The guessed quad lands here: 36 px of margin left and right (about a third of the number's
# width), 27 px above and below (1.5 times its height).
CROP_BOX = np.array([[36.0, 27.0], [156.0, 27.0], [156.0, 45.0], [36.0, 45.0]])
CROP_SCALE = np.array([CROP_WIDTH, CROP_HEIGHT], dtype=np.float64)
# The refiner's output vector: 8 corner coordinates (x / CROP_WIDTH, y / CROP_HEIGHT, crop's
# own corner order), then the logits of "upside down" and of "a number is here".
OUTPUT_SIZE = 10
# A registration number's box is about six times as wide as tall (training labels: median
# 6.1, 90 % within 5.0-7.0).
NUMBER_ASPECT = 6.0
@dataclass(frozen=True)
class Refined:
    corners: np.ndarray  # (4, 2) photo pixels, spec order (named in the reading frame)
    upside_down: float  # probability that the guess was named 180 degrees wrong
    confidence: float  # probability that a registration number is there


def reading_order(quad: np.ndarray) -> np.ndarray:
    """The quad renamed, if needed, so that top_left -> top_right runs along its long sides
    (a number is several times wider than tall); a 90-degree naming slip becomes at most a
    180-degree one, which the refiner detects."""
    quad = np.asarray(quad, dtype=np.float64)
    along = np.linalg.norm(quad[1] - quad[0]) + np.linalg.norm(quad[2] - quad[3])
    across = np.linalg.norm(quad[3] - quad[0]) + np.linalg.norm(quad[2] - quad[1])
    return quad if along >= across else np.roll(quad, -1, axis=0)


def first_guess(quad: np.ndarray) -> np.ndarray:
    """Stage 1's quad as the first crop is cut around it: a rectangle with the quad's centre,
    direction and width, and a number's height. Stage 1 places the number better than it
    shapes it: its quads are often thin, folded or skewed, and a crop cut around such a shape
    is stretched beyond what the refiner can read (measured: docs/model-history.md)."""
    quad = reading_order(quad)
    frame = reading_frame(quad)
    return quad if frame is None else number_rectangle(*frame)


def reading_frame(quad: np.ndarray) -> tuple[np.ndarray, np.ndarray, float] | None:
    """(centre, unit vector along the reading, width) of a quad in reading order; None when
    it has no direction."""
    top, bottom = quad[1] - quad[0], quad[2] - quad[3]
    # A folded quad's bottom edge runs backwards: turned round, it still gives the direction.
    along = (top + (bottom if np.dot(top, bottom) >= 0 else -bottom)) / 2
    width = float(np.linalg.norm(along))
    if not np.isfinite(width) or width == 0:
        return None
    return quad.mean(axis=0), along / width, width


def number_rectangle(centre: np.ndarray, x_axis: np.ndarray, width: float,
                     height: float | None = None) -> np.ndarray:
    """The quad of a number `width` long centred on `centre`, reading along the unit vector
    `x_axis`, `height` tall (its top on the negative side when negative), by default
    NUMBER_ASPECT times as wide as tall."""
    y_axis = np.array([-x_axis[1], x_axis[0]])  # image y points down: +90 degrees is "below"
    height = width / NUMBER_ASPECT if height is None else height
    half_x, half_y = x_axis * width / 2, y_axis * height / 2
    return np.array([centre - half_x - half_y, centre + half_x - half_y,
                     centre + half_x + half_y, centre - half_x + half_y])


def neighbours(quad: np.ndarray, px_per_400: float, policy: CascadePolicy) -> list[np.ndarray]:
    """Number-shaped rectangles at the policy's search_steps around a quad, its
    search_width_400 wide (photo pixels; `px_per_400`: photo pixels per pixel at the 400-px
    scale)."""
    frame = reading_frame(reading_order(quad))
    if frame is None:
        return []
    centre, x_axis, width = frame
    low, high = (w * px_per_400 for w in policy.search_width_400)
    width = min(max(width, low), high)
    y_axis = np.array([-x_axis[1], x_axis[0]])
    return [number_rectangle(centre + width * (along * x_axis + across * y_axis),
                             x_axis * np.cos(np.radians(degrees))
                             + y_axis * np.sin(np.radians(degrees)), width)
            for along, across, degrees in policy.search_steps]


def scan(looks: list[np.ndarray], size: tuple[int, int], px_per_400: float,
         policy: CascadePolicy) -> list[np.ndarray]:
    """Number-shaped rectangles on a grid over a photo of `size` (width, height), the
    policy's scan_step widths apart, in each distinct direction of the `looks` quads (photo
    pixels), as wide as their median width within search_width_400; the cells nearest the
    looks' centre first."""
    frames = [f for f in (reading_frame(reading_order(q)) for q in looks) if f is not None]
    if not frames:
        return []
    low, high = (w * px_per_400 for w in policy.search_width_400)
    width = min(max(float(np.median([f[2] for f in frames])), low), high)
    axes: list[np.ndarray] = []
    for _, x_axis, _ in frames:
        # Directions a half turn apart read the same line: the refiner names the ends.
        if all(np.degrees(np.arccos(min(1.0, abs(float(np.dot(x_axis, a))))))
               > policy.scan_same_direction_degrees for a in axes):
            axes.append(x_axis)
    step = policy.scan_step * width

    def centred(side: float) -> np.ndarray:
        # As many cells as cover the side, centred: no edge lies more than half a step away.
        count = max(1, int(np.ceil(side / step)))
        return np.arange(count) * step + (side - (count - 1) * step) / 2

    cells = np.stack(np.meshgrid(centred(size[0]), centred(size[1])), axis=-1).reshape(-1, 2)
    centre = np.mean([f[0] for f in frames], axis=0)
    cells = cells[np.argsort(np.linalg.norm(cells - centre, axis=1), kind="stable")]
    return [number_rectangle(cell, x_axis, width) for x_axis in axes for cell in cells]


def crop_homography(quad: np.ndarray) -> np.ndarray:
    """3x3 H: crop pixels -> photo pixels, taking CROP_BOX onto the quad."""
    return homography(CROP_BOX, np.asarray(quad, dtype=np.float64))


def cut(decoded: Decoded, quad: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(uint8 [CROP_HEIGHT, CROP_WIDTH, 1] crop, H crop -> photo) for a guessed quad."""
    to_photo = crop_homography(quad)
    return decoded.cut(to_photo, (CROP_WIDTH, CROP_HEIGHT), fill=0), to_photo


def is_plausible(quad: np.ndarray, letterbox_size: tuple[int, int]) -> bool:
    """A convex quad of a sane size inside the photo: anything else cannot be a number."""
    quad = np.asarray(quad, dtype=np.float64)
    if not np.isfinite(quad).all():
        return False
    edges = np.roll(quad, -1, axis=0) - quad
    cross = edges[:, 0] * np.roll(edges, -1, axis=0)[:, 1] - edges[:, 1] * np.roll(
        edges, -1, axis=0)[:, 0]
    if not ((cross > 0).all() or (cross < 0).all()):
        return False
    long_side = max(letterbox_size)
    size = np.linalg.norm(edges, axis=1)
    return bool(size.min() > 0.004 * long_side and size.max() < long_side)


def is_number_shaped(quad: np.ndarray, policy: CascadePolicy) -> bool:
    """Whether an answer's ends are alike, as a number's box's are: its left and right sides
    (the short ones) differ by at most the policy's short_sides_ratio."""
    quad = np.asarray(quad, dtype=np.float64)
    left, right = np.linalg.norm(quad[3] - quad[0]), np.linalg.norm(quad[2] - quad[1])
    return bool(max(left, right) <= policy.short_sides_ratio * min(left, right))


def targets(guess: np.ndarray, true: np.ndarray | None) -> np.ndarray:
    """What the refiner should answer for a crop made from `guess` (OUTPUT_SIZE values; the
    flip and presence entries are 0/1, not logits). `true` None: no number in the crop."""
    out = np.zeros(OUTPUT_SIZE, dtype=np.float32)
    if true is None:
        return out
    in_crop = apply_homography(np.linalg.inv(crop_homography(guess)), true)
    # The crop's own corner order: whichever naming (as given, or turned 180 degrees) puts
    # the true corners nearest the box they should fill.
    turned = np.roll(in_crop, 2, axis=0)
    upside_down = np.abs(turned - CROP_BOX).sum() < np.abs(in_crop - CROP_BOX).sum()
    geometric = turned if upside_down else in_crop
    out[:8] = (geometric / CROP_SCALE).reshape(8)
    out[8], out[9] = float(upside_down), 1.0
    return out


def to_photo(output: np.ndarray, crop_to_photo: np.ndarray) -> Refined:
    """The refiner's output for one crop -> corners in photo pixels, named in the number's
    reading frame, with the two probabilities."""
    output = np.asarray(output, dtype=np.float64).reshape(OUTPUT_SIZE)
    corners = apply_homography(crop_to_photo, output[:8].reshape(4, 2) * CROP_SCALE)
    upside_down, confidence = 1 / (1 + np.exp(-np.clip(output[8:10], -60, 60)))
    if upside_down > 0.5:
        corners = np.roll(corners, 2, axis=0)
    return Refined(corners, float(upside_down), float(confidence))
