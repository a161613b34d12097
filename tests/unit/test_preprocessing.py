"""The shared preprocessing: photo -> 400 x 400 input -> photo pixels, EXIF included."""

from __future__ import annotations

import numpy as np
import pytest
from certcorners.preprocessing import (
    INPUT_SIZE,
    ImageDecodeError,
    ImageTooLargeError,
    Letterbox,
    corners_to_target,
    decode,
    output_to_corners,
    to_model_input,
)
from PIL import Image

from tests.conftest import jpeg_bytes, png_bytes

# EXIF orientation -> how the camera stored the displayed picture (viewer undoes it).
STORED = {1: None, 3: Image.Transpose.ROTATE_180, 6: Image.Transpose.ROTATE_90,
          8: Image.Transpose.ROTATE_270}


def _photo_with_dot(width: int, height: int, centre: tuple[float, float]) -> Image.Image:
    """Black photo with a smooth bright blob centred at a sub-pixel position."""
    ys, xs = np.mgrid[0:height, 0:width] + 0.5
    sigma = max(width, height) / 100
    blob = np.exp(-((xs - centre[0]) ** 2 + (ys - centre[1]) ** 2) / (2 * sigma**2))
    return Image.fromarray((blob * 255).astype(np.uint8), "L").convert("RGB")


def _encode(image: Image.Image, kind: str, orientation: int) -> bytes:
    stored = image.transpose(STORED[orientation]) if STORED[orientation] else image
    exif = Image.Exif()
    if orientation != 1:
        exif[0x0112] = orientation
    if kind == "png":
        return png_bytes(stored, exif=exif.tobytes())
    return jpeg_bytes(stored, quality=95, exif=exif.tobytes())


@pytest.mark.parametrize("kind", ["png", "jpeg"])
@pytest.mark.parametrize("orientation", [1, 3, 6, 8])
@pytest.mark.parametrize("size", [(1600, 1200), (847, 1200), (2000, 1125)],
                         ids=["landscape", "portrait", "wide"])
def test_round_trip_photo_to_input_to_photo_within_half_a_pixel(kind, orientation, size):
    centre = (size[0] * 0.3137 + 0.25, size[1] * 0.6712 + 0.6)
    data = _encode(_photo_with_dot(*size, centre), kind, orientation)
    model_input, letterbox = to_model_input(data)
    assert model_input.shape == (INPUT_SIZE, INPUT_SIZE, 1)
    assert model_input.dtype == np.float32
    assert model_input.min() >= 0.0 and model_input.max() <= 1.0
    assert (letterbox.width, letterbox.height) == size  # the displayed size, EXIF applied
    # Find the blob in the 400-px input (intensity-weighted centroid) and map it back.
    weights = model_input[..., 0].astype(np.float64)
    weights = np.where(weights > 0.05, weights, 0)
    ys, xs = np.mgrid[0:INPUT_SIZE, 0:INPUT_SIZE] + 0.5
    found = np.array([(xs * weights).sum(), (ys * weights).sum()]) / weights.sum()
    back = letterbox.to_photo(found)
    assert np.linalg.norm(back - np.array(centre)) < 0.5


@pytest.mark.parametrize(("size", "reduction"), [
    ((1200, 847), 2), ((847, 1200), 2), ((2400, 1801), 4), ((4032, 3024), 4),
    ((4801, 3601), 8), ((1199, 847), 1), ((600, 3), 1), ((2400, 9), 4),
])
def test_a_jpeg_decodes_at_the_smallest_scale_that_keeps_600_px_on_its_long_side(size,
                                                                                    reduction):
    # Odd sides included: the sample photo (1200 x 847) once decoded at full size.
    decoded = decode(jpeg_bytes(Image.new("RGB", size, (90, 120, 150)), quality=80))
    assert decoded.reduction == reduction
    assert decoded.stored.size == tuple(-(-side // reduction) for side in size)
    assert max(decoded.stored.size) >= min(600, max(size))


def test_letterbox_keeps_aspect_and_centres():
    box = Letterbox.for_size(1200, 847)
    assert (box.scaled_width, box.scaled_height) == (400, 282)
    assert (box.pad_x, box.pad_y) == (0, 59)
    portrait = Letterbox.for_size(900, 1600)
    assert (portrait.scaled_width, portrait.scaled_height, portrait.pad_x) == (225, 400, 87)


def test_letterbox_margins_are_black_and_photo_is_grayscale():
    image = Image.new("RGB", (800, 400), (200, 40, 40))
    model_input, box = to_model_input(png_bytes(image))
    assert model_input[: box.pad_y].max() == 0.0 and model_input[-box.pad_y :].max() == 0.0
    inside = model_input[box.pad_y + 2 : box.pad_y + box.scaled_height - 2]
    expected = round(0.299 * 200 + 0.587 * 40 + 0.114 * 40) / 255
    assert abs(float(inside.mean()) - expected) < 2 / 255


def test_targets_and_outputs_invert_each_other():
    box = Letterbox.for_size(1333, 1000)
    corners = np.array([[100.5, 200.25], [400, 210], [395, 260], [98, 250]])
    target = corners_to_target(corners, box)
    assert target.shape == (8,) and (target >= 0).all() and (target <= 1).all()
    np.testing.assert_allclose(output_to_corners(target, box), corners, atol=1e-3)


def test_transparent_pixels_become_white_not_black():
    image = Image.new("RGBA", (300, 200), (0, 0, 0, 0))
    model_input, _ = to_model_input(png_bytes(image))
    assert model_input[150:250, 10:390].min() == 1.0


@pytest.mark.parametrize("data", [b"", b"not an image at all", b"\x89PNG\r\n\x1a\n" + b"0" * 40])
def test_undecodable_bytes_raise_a_decode_error(data):
    with pytest.raises(ImageDecodeError):
        to_model_input(data)


def test_truncated_jpeg_raises_a_decode_error():
    data = jpeg_bytes(_photo_with_dot(800, 600, (400, 300)))
    with pytest.raises(ImageDecodeError):
        to_model_input(data[: len(data) // 3])


def test_too_many_pixels_refused_before_decoding():
    data = png_bytes(Image.new("L", (3000, 2000)))
    with pytest.raises(ImageTooLargeError, match="3000 x 2000"):
        to_model_input(data, max_pixels=5_000_000)
