"""The card finder's geometry: its outputs in photo pixels, and the view cut around a card
mapping back onto the photo in every EXIF orientation."""

from __future__ import annotations

import numpy as np
import pytest
from certcorners.card_finder import box_target, cut_around, read, tiles
from certcorners.policy import CascadePolicy
from certcorners.preprocessing import INPUT_SIZE, Letterbox, decode
from PIL import Image, ImageDraw

from tests.conftest import jpeg_bytes

# EXIF orientation -> the transpose that stores a displayed photo so a viewer undoes it.
_STORED = {1: None, 3: Image.Transpose.ROTATE_180, 6: Image.Transpose.ROTATE_90,
           8: Image.Transpose.ROTATE_270}


def _photo_with_a_dot(size, dot, orientation: int) -> bytes:
    """A dark photo, displayed `size`, with one bright 16 x 16 px square centred on `dot`,
    stored turned with that EXIF orientation."""
    image = Image.new("RGB", size, (20, 20, 20))
    x, y = dot
    ImageDraw.Draw(image).rectangle((x - 8, y - 8, x + 7, y + 7), fill=(255, 255, 255))
    if _STORED[orientation] is None:
        return jpeg_bytes(image, 95)
    exif = Image.Exif()
    exif[0x0112] = orientation
    return jpeg_bytes(image.transpose(_STORED[orientation]), 95, exif=exif.tobytes())


@pytest.mark.parametrize("orientation", [1, 3, 6, 8])
def test_a_cut_view_s_pixels_map_back_onto_the_photo(orientation):
    size, dot = (4000, 3000), (3100.0, 700.0)
    decoded = decode(_photo_with_a_dot(size, dot, orientation))
    assert (decoded.letterbox.width, decoded.letterbox.height) == size
    view = cut_around(np.array([2800.0, 400.0, 3400.0, 900.0]), 1.5, *size)
    canvas = view.canvas(decoded)[..., 0]
    assert canvas.shape == (INPUT_SIZE, INPUT_SIZE)
    ys, xs = np.nonzero(canvas > canvas.max() / 2)
    found = view.to_photo(np.array([xs.mean() + 0.5, ys.mean() + 0.5]))
    # One view pixel here is 900 / 400 photo px.
    assert np.abs(found - dot).max() < 2.25
    # On the whole photo's canvas the same dot is ~4x smaller: the cut magnifies.
    assert view.letterbox.scaled_width > 4 * decoded.letterbox.scaled_width * 600 / 4000


def test_a_cut_is_square_around_the_box_inside_the_photo_and_never_tiny():
    view = cut_around(np.array([100.0, 100.0, 500.0, 300.0]), 1.5, 2000, 1500)
    x0, y0, x1, y1 = view.region
    assert (x0, y0) == (0.0, 0.0)  # 600 px square around (300, 200), clipped at the edge
    assert (x1, y1) == (pytest.approx(600), pytest.approx(500))
    tiny = cut_around(np.array([2000.0, 1500.0, 2010.0, 1505.0]), 1.5, 4000, 3000)
    assert tiny.region[2] - tiny.region[0] == pytest.approx(800)  # a fifth of 4000


@pytest.mark.parametrize("size", [(4000, 3000), (1200, 1600)])
def test_the_tiles_are_nine_squares_of_their_side_that_cover_the_photo(size):
    width, height = size
    views = tiles(0.5, width, height)
    assert len(views) == 9
    regions = np.array([view.region for view in views])
    assert (regions[:, :2] >= 0).all() and (regions[:, 2:] <= [width, height]).all()
    side = max(size) / 2
    assert np.allclose(np.maximum(regions[:, 2] - regions[:, 0],
                                  regions[:, 3] - regions[:, 1]), side)
    # Every point of the photo lies in some tile.
    points = np.stack(np.meshgrid(np.linspace(0, width, 41), np.linspace(0, height, 41)),
                      axis=-1).reshape(-1, 2)
    inside = ((points[:, None, :] >= regions[None, :, :2])
              & (points[:, None, :] <= regions[None, :, 2:])).all(axis=-1)
    assert inside.any(axis=1).all()
    # Stage 1 sees each tile at twice the whole photo's scale.
    whole = Letterbox.for_size(width, height)
    for view in views:
        letterbox = view.letterbox
        assert letterbox.scaled_width / letterbox.width == pytest.approx(
            2 * whole.scaled_width / whole.width, rel=0.01)


def test_the_finder_s_outputs_read_as_a_box_in_photo_pixels_and_a_probability():
    letterbox = Letterbox.for_size(1600, 1200)
    card = np.array([[200.0, 300.0], [900.0, 250.0], [950.0, 700.0], [180.0, 760.0]])
    target = box_target(card, letterbox)
    assert target[4] == 1.0
    found = read(np.array([*target[:4], 0.0]), letterbox)
    np.testing.assert_allclose(found.box, [180, 250, 950, 760], atol=1e-6)
    assert found.presence == pytest.approx(0.5)
    assert read(np.array([*target[:4], -8.0]), letterbox).presence < 1e-3
    np.testing.assert_array_equal(box_target(None, letterbox), np.zeros(5))


def test_the_card_rules_are_checked_where_the_card_is_read():
    with pytest.raises(ValueError, match="card_margin"):
        CascadePolicy(card_margin=0.5)
    with pytest.raises(ValueError, match="card_presence"):
        CascadePolicy(card_presence=1.5)
    with pytest.raises(ValueError, match="tile_sides"):
        CascadePolicy(tile_sides=(0.5, 1.5))
    policy = CascadePolicy.from_card({"cascade_policy": {"card_presence": 0.2}})
    assert policy.card_presence == 0.2 and policy.card_margin == 1.5
    assert policy.tile_sides == CascadePolicy().tile_sides  # older cards take the default
    stored = CascadePolicy.from_card({"cascade_policy": {"tile_sides": [0.6]}})
    assert stored.tile_sides == (0.6,) and stored.to_card()["tile_sides"] == [0.6]
    assert CascadePolicy.from_card({"cascade_policy": {"tile_sides": []}}).tile_sides == ()


# The card (mm, its own plane) and where the spec prints the number on it: x from 8.0, baseline
# 15.5, cap 3.0 (a generous 21 mm wide), before misregistration and the cap's +-10 %.
_CARD_MM = np.array([[0, 0], [85.6, 0], [85.6, 53.98], [0, 53.98]])


def _number_mm(dx: float, dy: float, cap: float) -> np.ndarray:
    top, bottom, left, right = 15.5 + dy - 3.0 * cap, 15.5 + dy, 8.0 + dx, 8.0 + dx + 21 * cap
    return np.array([[left, top], [right, top], [right, bottom], [left, bottom]])


def _phone_pose(rng, share: float, frame: tuple[int, int]):
    """mm on the card -> photo pixels: any in-plane turn, the camera tilted up to 40 degrees
    about any axis (a pinhole 250 mm away), scaled so the card's bounding box covers `share`
    of the frame, somewhere in it; None where the card would leave the frame."""
    turn, tilt, axis = rng.uniform(0, 2 * np.pi), np.radians(rng.uniform(0, 40)), \
        rng.uniform(0, 2 * np.pi)
    spin = np.array([[np.cos(turn), -np.sin(turn), 0], [np.sin(turn), np.cos(turn), 0],
                     [0, 0, 1]])
    k = np.array([[0, 0, np.sin(axis)], [0, 0, -np.cos(axis)],
                  [-np.sin(axis), np.cos(axis), 0]])  # the cross product with the tilt's axis
    rotation = (np.eye(3) + np.sin(tilt) * k + (1 - np.cos(tilt)) * k @ k) @ spin

    def project(mm):
        points = np.c_[mm - _CARD_MM.mean(0), np.zeros(len(mm))] @ rotation.T + [0, 0, 250]
        return points[:, :2] / points[:, 2:]

    low, high = project(_CARD_MM).min(0), project(_CARD_MM).max(0)
    scale = np.sqrt(share * frame[0] * frame[1] / np.prod(high - low))
    room = np.array(frame) - (high - low) * scale
    if (room < 0).any():
        return None
    offset = rng.uniform(0, 1, 2) * room
    return lambda mm: (project(mm) - low) * scale + offset


def test_the_view_cut_around_a_card_box_holds_its_number_larger_than_the_whole_photo():
    """Design (a) of issue 27 rests on this: from a phone photo's true card corners (box 12-90 %
    of a 12 MP frame, tilt up to 40 degrees), even with the box moved by 10 % of its side, the
    view cut around it holds the whole number wherever misregistration puts it, and shows it
    larger than the whole photo's canvas does: on the smallest cards (3-5 px there) at least
    1.3 times, and 5 px tall."""
    rng, frame, margin = np.random.default_rng(7), (4032, 3024), CascadePolicy().card_margin
    whole_scale, checked = INPUT_SIZE / max(frame), 0
    while checked < 300:
        share = rng.uniform(0.12, 0.9) if checked % 2 else rng.uniform(0.12, 0.2)
        to_photo = _phone_pose(rng, share, frame)
        if to_photo is None:
            continue
        card = to_photo(_CARD_MM)
        box = np.r_[card.min(0), card.max(0)]
        box += np.tile(rng.uniform(-0.1, 0.1, 2) * (box[2:] - box[:2]).max(), 2)
        view = cut_around(box, margin, *frame)
        x0, y0, x1, y1 = view.region
        view_scale = view.letterbox.scaled_width / (x1 - x0)
        for dx, dy, cap in np.array(np.meshgrid([-1.0, 1.0], [-0.7, 0.7], [0.9, 1.1])).T.reshape(
                -1, 3):
            number = to_photo(_number_mm(dx, dy, cap))
            assert (number >= [x0, y0]).all() and (number <= [x1, y1]).all(), (share, box)
            height = (np.linalg.norm(number[3] - number[0])
                      + np.linalg.norm(number[2] - number[1])) / 2
            assert height * view_scale >= height * whole_scale
            if share < 0.2:
                assert height * view_scale >= 5.0, (share, height * view_scale)
                assert view_scale >= 1.3 * whole_scale
        checked += 1
