"""Photo -> model input, and model output -> photo pixels.

The one implementation shared by training and serving (numpy + Pillow only, so the Lambda
layer ships it without TensorFlow). Coordinates follow the spec: pixels of the photo as
displayed (EXIF orientation applied), (0, 0) the top-left corner of the top-left pixel.
"""

from __future__ import annotations

import functools
import io
import math
from dataclasses import dataclass

import numpy as np
from PIL import Image

from certcorners.geometry import warp

INPUT_SIZE = 400
# Bumped whenever the pixels this module produces change: training caches key on it.
PREPROCESSING_VERSION = 4
# A photo is decoded once, with its long side at least this (JPEG: the smallest DCT scaling
# that keeps it), or at its own size when smaller: the refiner cuts the number from it, and
# the 400-px stage-1 input is resized from it.
DECODE_MIN_SIDE = 600
CORNER_NAMES = ("top_left", "top_right", "bottom_right", "bottom_left")
# Decompression-bomb guard: no photo of the spec exceeds 2000 x 1500, phones reach ~50 MP.
DEFAULT_MAX_PIXELS = 60_000_000
# The only decoders reachable from a request: Pillow's others (PPM, TGA, PCX, SGI, ICO, DDS,
# QOI, ...) never see the bytes, whatever Content-Type claimed.
DECODABLE_FORMATS = ("JPEG", "PNG", "WEBP")

# EXIF orientations 5-8 swap width and height when applied.
_SWAPPING_ORIENTATIONS = {5, 6, 7, 8}
_EXIF_ORIENTATION_TAG = 0x0112


class ImageDecodeError(ValueError):
    """The bytes are not an image this module can decode."""


class ImageTooLargeError(ValueError):
    """The image declares more pixels than allowed (checked before decoding)."""


@dataclass(frozen=True)
class Letterbox:
    """How a displayed photo of `width` x `height` sits in the square model input."""

    width: int
    height: int
    scaled_width: int
    scaled_height: int
    pad_x: int
    pad_y: int

    @classmethod
    def for_size(cls, width: int, height: int, size: int = INPUT_SIZE) -> Letterbox:
        if width <= 0 or height <= 0:
            raise ValueError(f"image size must be positive, got {width} x {height}")
        scale = size / max(width, height)
        scaled_width = max(1, min(size, round(width * scale)))
        scaled_height = max(1, min(size, round(height * scale)))
        return cls(
            width,
            height,
            scaled_width,
            scaled_height,
            (size - scaled_width) // 2,
            (size - scaled_height) // 2,
        )

    def to_input(self, points: np.ndarray) -> np.ndarray:
        """Photo pixels (..., 2) -> model-input pixels."""
        points = np.asarray(points, dtype=np.float64)
        scale = np.array([self.scaled_width / self.width, self.scaled_height / self.height])
        return points * scale + np.array([self.pad_x, self.pad_y])

    def to_photo(self, points: np.ndarray) -> np.ndarray:
        """Model-input pixels (..., 2) -> photo pixels."""
        points = np.asarray(points, dtype=np.float64)
        scale = np.array([self.width / self.scaled_width, self.height / self.scaled_height])
        return (points - np.array([self.pad_x, self.pad_y])) * scale


def displayed_size(image: Image.Image) -> tuple[int, int]:
    """Width and height once the EXIF orientation is applied, without decoding pixels."""
    width, height = image.size
    if _exif_orientation(image) in _SWAPPING_ORIENTATIONS:
        return height, width
    return width, height


def _exif_orientation(image: Image.Image) -> int:
    try:
        return int(image.getexif().get(_EXIF_ORIENTATION_TAG, 1))
    except Exception:  # a broken EXIF block is treated as "no rotation", as browsers do
        return 1


def open_image(data: bytes, max_pixels: int = DEFAULT_MAX_PIXELS) -> Image.Image:
    """Open image bytes lazily, refusing oversized images before any pixel is decoded."""
    if not data:
        raise ImageDecodeError("the image is empty")
    try:
        image = Image.open(io.BytesIO(data), formats=DECODABLE_FORMATS)
    except Image.DecompressionBombError as exc:
        raise ImageTooLargeError(str(exc)) from exc
    except Exception as exc:
        raise ImageDecodeError("the bytes are not a decodable image") from exc
    width, height = image.size
    if width * height > max_pixels:
        raise ImageTooLargeError(
            f"the image has {width} x {height} pixels, more than the {max_pixels} allowed"
        )
    return image


# EXIF orientation -> the transpose that shows the stored pixels upright (as ImageOps does).
_UPRIGHT = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


@dataclass(frozen=True)
class Decoded:
    """A photo decoded once: grayscale pixels in the stored orientation at 1/`reduction` of
    the stored size (a JPEG's DCT scaling), its EXIF orientation, and its letterbox."""

    stored: Image.Image
    reduction: int
    orientation: int
    stored_width: int
    stored_height: int
    letterbox: Letterbox

    def to_pixels(self, points: np.ndarray) -> np.ndarray:
        """Displayed photo coordinates (..., 2) -> coordinates in `stored`."""
        x, y = np.moveaxis(np.asarray(points, dtype=np.float64), -1, 0)
        w, h = self.stored_width, self.stored_height
        o = self.orientation
        # Each EXIF orientation is a flip or quarter turn; invert the one that shows it upright.
        xs, ys = {1: (x, y), 2: (w - x, y), 3: (w - x, h - y), 4: (x, h - y),
                  5: (y, x), 6: (y, h - x), 7: (w - y, h - x), 8: (w - y, x)}.get(o, (x, y))
        return np.stack([xs, ys], axis=-1) / self.reduction

    @functools.cached_property
    def photo_to_pixels(self) -> np.ndarray:
        """to_pixels as a 3x3 matrix (it is affine), to compose with homographies; made once
        a photo (every cut takes it)."""
        origin, unit_x, unit_y = self.to_pixels(np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]]))
        matrix = np.eye(3)
        matrix[:2, 0], matrix[:2, 1], matrix[:2, 2] = unit_x - origin, unit_y - origin, origin
        return matrix

    def cut(self, to_photo: np.ndarray, size: tuple[int, int], fill: int) -> np.ndarray:
        """uint8 [height, width, 1] of `size` (width, height): each pixel sampled (bilinear)
        where the 3x3 homography `to_photo` (its pixels -> displayed photo pixels) maps it;
        `fill` beyond the photo."""
        cut = warp(self.stored, self.photo_to_pixels @ to_photo, size,
                   Image.Resampling.BILINEAR, fill)
        return np.asarray(cut, dtype=np.uint8)[..., np.newaxis]


def decode(image: Image.Image | bytes, max_pixels: int = DEFAULT_MAX_PIXELS,
           min_side: int = DECODE_MIN_SIDE, draft: bool = True) -> Decoded:
    """Decode once to grayscale, as small as `min_side` allows (see DECODE_MIN_SIDE).

    JPEGs use Pillow's draft mode (DCT-domain downscaling by 1/2, 1/4 or 1/8), which is what
    makes phone-size photos cheap. Pixels stay in the stored orientation, where a draft's
    rounded-up last row and column are always at the bottom and right, so coordinates are
    exactly photo / reduction there. `draft=False` decodes at full size.
    """
    if isinstance(image, (bytes, bytearray, memoryview)):
        image = open_image(bytes(image), max_pixels)
    orientation = _exif_orientation(image)
    width, height = displayed_size(image)
    letterbox = Letterbox.for_size(width, height)
    stored_width, stored_height = image.size
    try:
        if draft and image.format == "JPEG":
            image.draft("L", _draft_request(stored_width, stored_height, min_side))
        if getattr(image, "n_frames", 1) > 1:
            image.seek(0)  # animations: the first frame
        # Draft sizes are ceil(size / 2**k); recover the exact power of two.
        reduction = stored_width / image.size[0]
        reduction = 2 ** round(math.log2(reduction)) if reduction > 1 else 1
        gray = _to_gray(image)
        gray.load()
    except Exception as exc:
        raise ImageDecodeError("the image data is truncated or corrupt") from exc
    return Decoded(gray, reduction, orientation if orientation in _UPRIGHT else 1,
                   stored_width, stored_height, letterbox)


def _draft_request(width: int, height: int, min_side: int) -> tuple[int, int]:
    """The size to ask a JPEG's draft for, so that it scales by the largest 1/s (s = 1, 2, 4
    or 8) that keeps the long side >= min_side.

    Pillow picks s from width // request and height // request, so the request is the
    floor of size / s: rounding up made a photo with an odd side pick a smaller s (a
    1200 x 847 photo decoded at full size, twice the pixels stage 1 and the refiner need).
    """
    reduction = next((s for s in (8, 4, 2) if max(width, height) // s >= min_side), 1)
    return max(1, width // reduction), max(1, height // reduction)


def scaled_upright(decoded: Decoded, region: tuple[float, float, float, float] | None = None,
                   letterbox: Letterbox | None = None) -> Image.Image:
    """The decoded photo upright at its letterboxed size (scaled_width x scaled_height); or
    the `region` of it (x0, y0, x1, y1 in displayed photo pixels, inside the photo) at the
    size of its own `letterbox`."""
    letterbox = letterbox or decoded.letterbox
    target = (letterbox.scaled_width, letterbox.scaled_height)
    if decoded.orientation in _SWAPPING_ORIENTATIONS:
        target = target[::-1]
    r = decoded.reduction
    if region is None:
        box = (0.0, 0.0, decoded.stored_width / r, decoded.stored_height / r)
    else:  # flips and quarter turns keep an axis-aligned box axis-aligned
        x0, y0, x1, y1 = region
        ends = decoded.to_pixels(np.array([[x0, y0], [x1, y1]]))
        low, high = ends.min(axis=0), ends.max(axis=0)
        size = np.array(decoded.stored.size, dtype=np.float64)
        low, high = np.clip(low, 0, size), np.clip(high, 0, size)
        box = (float(low[0]), float(low[1]), float(high[0]), float(high[1]))
    scaled = decoded.stored.resize(target, Image.Resampling.BILINEAR, box=box)
    if decoded.orientation in _UPRIGHT:
        scaled = scaled.transpose(_UPRIGHT[decoded.orientation])
    return scaled


def decode_scaled(image: Image.Image | bytes, max_pixels: int = DEFAULT_MAX_PIXELS,
                  draft: bool = True):
    """(the upright grayscale photo at its letterboxed size, Letterbox): stage 1's pixels."""
    decoded = decode(image, max_pixels, draft=draft)
    return scaled_upright(decoded), decoded.letterbox


def _to_gray(image: Image.Image) -> Image.Image:
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        # Transparent pixels become white, like a document on a page, not black.
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, rgba)
    if image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        array = np.asarray(image, dtype=np.float64)
        peak = 65535.0 if image.mode.startswith("I;16") or array.max() > 255 else 255.0
        return Image.fromarray(np.clip(array * 255.0 / peak, 0, 255).astype(np.uint8), "L")
    return image.convert("L")


def to_model_input(image: Image.Image | bytes, max_pixels: int = DEFAULT_MAX_PIXELS,
                   draft: bool = True):
    """Any photo -> (float32 array [400, 400, 1] in [0, 1], Letterbox).

    The photo keeps its aspect ratio, is centred, and the margins are black (0).
    """
    scaled, letterbox = decode_scaled(image, max_pixels, draft)
    return unit_range(letterbox_array(scaled, letterbox)), letterbox


def unit_range(pixels: np.ndarray) -> np.ndarray:
    """uint8 pixels -> float32 in [0, 1], as both networks take them: the same values as
    pixels.astype(np.float32) / 255.0, in one pass instead of two (~15x faster on a canvas:
    0.04 ms instead of 0.65 here, on every request's canvas and every refiner crop)."""
    return np.divide(pixels, np.float32(255), dtype=np.float32)


def letterbox_array(scaled: Image.Image, letterbox: Letterbox) -> np.ndarray:
    """The scaled upright photo -> uint8 [400, 400, 1] (the form training caches)."""
    canvas = np.zeros((INPUT_SIZE, INPUT_SIZE, 1), dtype=np.uint8)
    canvas[
        letterbox.pad_y : letterbox.pad_y + letterbox.scaled_height,
        letterbox.pad_x : letterbox.pad_x + letterbox.scaled_width,
        0,
    ] = np.asarray(scaled, dtype=np.uint8)
    return canvas


def corners_to_target(corners: np.ndarray, letterbox: Letterbox) -> np.ndarray:
    """Photo corners (4, 2) in spec order -> the model's 8 outputs (x, y in [0, 1])."""
    return (letterbox.to_input(corners) / INPUT_SIZE).reshape(8).astype(np.float32)


def output_to_corners(output: np.ndarray, letterbox: Letterbox) -> np.ndarray:
    """The model's 8 outputs -> photo corners (4, 2) in spec order."""
    points = np.asarray(output, dtype=np.float64).reshape(4, 2) * INPUT_SIZE
    return letterbox.to_photo(points)


def corners_dict(corners: np.ndarray) -> dict[str, dict[str, float]]:
    """(4, 2) array -> {"top_left": {"x", "y"}, ...} rounded to 0.01 px."""
    return {
        name: {"x": round(float(x), 2), "y": round(float(y), 2)}
        for name, (x, y) in zip(CORNER_NAMES, np.asarray(corners), strict=True)
    }
