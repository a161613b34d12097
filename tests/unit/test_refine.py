"""Stage 2's crop geometry: exact round trips, targets, naming, plausibility."""

from __future__ import annotations

import io

import numpy as np
import pytest
from certcorners import refine
from certcorners.geometry import apply_homography
from certcorners.policy import CascadePolicy
from certcorners.preprocessing import decode
from PIL import Image

POLICY = CascadePolicy()  # the rules every card without its own takes

# Pillow transposes that store a displayed image so that EXIF orientation N shows it upright.
_STORE = {2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180,
          4: Image.Transpose.FLIP_TOP_BOTTOM, 5: Image.Transpose.TRANSPOSE,
          6: Image.Transpose.ROTATE_90, 7: Image.Transpose.TRANSVERSE,
          8: Image.Transpose.ROTATE_270}
BLOB = np.array([412.3, 287.7])  # a smooth spot's centre, displayed photo pixels


def _blob_photo(orientation: int, fmt: str = "PNG", size=(900, 640)) -> bytes:
    width, height = size
    yy, xx = np.mgrid[0:height, 0:width]
    spot = 255 * np.exp(-((xx + 0.5 - BLOB[0]) ** 2 + (yy + 0.5 - BLOB[1]) ** 2) / (2 * 4.0**2))
    displayed = Image.fromarray(np.round(spot).astype(np.uint8))
    stored = displayed.transpose(_STORE[orientation]) if orientation in _STORE else displayed
    exif = Image.Exif()
    exif[0x0112] = orientation
    buffer = io.BytesIO()
    stored.save(buffer, fmt, exif=exif.tobytes(), **({"quality": 98} if fmt == "JPEG" else {}))
    return buffer.getvalue()


def _centroid(crop: np.ndarray) -> np.ndarray:
    weights = crop[..., 0].astype(np.float64)
    ys, xs = np.mgrid[0 : weights.shape[0], 0 : weights.shape[1]]
    return np.array([(weights * (xs + 0.5)).sum(), (weights * (ys + 0.5)).sum()]) / weights.sum()


def _quad_around(centre, angle_degrees, half=(40.0, 6.0)):
    t = np.radians(angle_degrees)
    rotation = np.array([[np.cos(t), -np.sin(t)], [np.sin(t), np.cos(t)]])
    w, h = half
    return np.array([[-w, -h], [w, -h], [w, h], [-w, h]]) @ rotation.T + centre


@pytest.mark.parametrize("orientation", range(1, 9))
@pytest.mark.parametrize("angle", [0, 37, 90, 180, 250])
def test_crop_and_photo_coordinates_round_trip_within_0_05_px(orientation, angle):
    decoded = decode(_blob_photo(orientation))
    assert (decoded.letterbox.width, decoded.letterbox.height) == (900, 640)
    crop, crop_to_photo = refine.cut(decoded, _quad_around(BLOB + [3, -2], angle))
    found = apply_homography(crop_to_photo, _centroid(crop))
    assert np.linalg.norm(found - BLOB) < 0.05


@pytest.mark.parametrize("orientation", [1, 6])
def test_round_trip_holds_through_a_jpeg_draft_decode(orientation):
    # 2000 px wide: decoded at 1/2 by DCT scaling (1/4 would be under DECODE_MIN_SIDE);
    # coordinates are photo / 2 exactly, and only JPEG's own loss moves the spot's centroid.
    data = _blob_photo(orientation, "JPEG", size=(2000, 1400))
    decoded = decode(data)
    assert decoded.reduction == 2
    crop, crop_to_photo = refine.cut(decoded, _quad_around(BLOB, 20, half=(80, 12)))
    assert np.linalg.norm(apply_homography(crop_to_photo, _centroid(crop)) - BLOB) < 0.25


def test_a_correct_guess_targets_the_crop_box_and_a_turned_one_says_upside_down():
    true = _quad_around(np.array([300.0, 200.0]), 15)
    right = refine.targets(true, true)
    np.testing.assert_allclose(right[:8].reshape(4, 2) * refine.CROP_SCALE, refine.CROP_BOX,
                               atol=1e-6)
    assert right[8] == 0 and right[9] == 1
    turned = np.roll(true, 2, axis=0)
    wrong = refine.targets(turned, true)
    np.testing.assert_allclose(wrong[:8].reshape(4, 2) * refine.CROP_SCALE, refine.CROP_BOX,
                               atol=1e-6)
    assert wrong[8] == 1 and wrong[9] == 1
    assert not refine.targets(true, None).any()


def test_the_refiners_answer_maps_back_named_in_the_reading_frame():
    true = _quad_around(np.array([300.0, 200.0]), 200)
    for guess in (true + 3, np.roll(true, 2, axis=0) - 2):
        answer = refine.targets(guess, true)
        logits = np.concatenate([answer[:8], [10.0 if answer[8] else -10.0, 10.0]])
        refined = refine.to_photo(logits, refine.crop_homography(guess))
        np.testing.assert_allclose(refined.corners, true, atol=1e-6)
        assert refined.confidence > 0.99


def test_a_quad_named_a_quarter_turn_off_is_renamed_along_its_long_sides():
    true = _quad_around(np.array([300.0, 200.0]), 10)
    quarter = np.roll(true, 1, axis=0)
    renamed = refine.reading_order(quarter)
    assert np.linalg.norm(renamed[1] - renamed[0]) > 3 * np.linalg.norm(renamed[3] - renamed[0])
    np.testing.assert_allclose(refine.reading_order(true), true)


def test_only_convex_quads_of_a_sane_size_are_plausible():
    good = _quad_around(np.array([300.0, 200.0]), 30)
    assert refine.is_plausible(good, (800, 600))
    assert not refine.is_plausible(good[[0, 2, 1, 3]], (800, 600))  # self-crossing
    assert not refine.is_plausible(_quad_around(np.array([9.0, 9.0]), 0, (1, 0.5)), (800, 600))
    assert not refine.is_plausible(np.full((4, 2), np.nan), (800, 600))


def _photographed_box(tilt_degrees: float, distance: float) -> np.ndarray:
    """A 6:1 number box one unit wide, turned `tilt_degrees` about its vertical axis, seen by
    a pinhole camera `distance` widths away: the most its two ends can differ."""
    x, y = np.array([-0.5, 0.5, 0.5, -0.5]), np.array([-1, -1, 1, 1]) / 12
    tilt = np.radians(tilt_degrees)
    depth = distance + x * np.sin(tilt)
    return np.stack([x * np.cos(tilt) / depth, y / depth], axis=1) * 1000


def test_an_answer_is_number_shaped_only_when_its_two_ends_are_alike():
    assert refine.is_number_shaped(_quad_around(np.array([300.0, 200.0]), 30, (60.0, 10.0)), POLICY)
    # The spec's steepest tilt, nearer than its largest card allows (the number is about a
    # fifth of the card's width, so at least ~4 widths from a phone's lens): ends ~1.16x apart.
    steep = _photographed_box(25, 2.8)
    assert np.linalg.norm(steep[3] - steep[0]) / np.linalg.norm(steep[2] - steep[1]) > 1.15
    assert refine.is_number_shaped(steep, POLICY)
    assert refine.is_number_shaped(np.roll(steep, 2, axis=0), POLICY)
    # What the refiner answered on other print: one end half as tall again as the other.
    wedge = np.array([[100.0, 100.0], [160.0, 100.0], [160.0, 115.0], [100.0, 110.0]])
    assert not refine.is_number_shaped(wedge, POLICY)
    assert not refine.is_number_shaped(np.roll(wedge, 2, axis=0), POLICY)


def test_the_first_crop_is_cut_around_a_number_shaped_rectangle_where_stage_1_put_its_quad():
    centre = np.array([300.0, 200.0])
    number = _quad_around(centre, 30, (60.0, 60.0 / refine.NUMBER_ASPECT))
    np.testing.assert_allclose(refine.first_guess(number), number, atol=1e-9)
    turned = np.roll(number, 2, axis=0)
    np.testing.assert_allclose(refine.first_guess(turned), turned, atol=1e-9)
    # Stage 1's typical slips in the right place: a thin skewed quad, a mirrored one.
    along, down = number[1] - number[0], number[3] - number[0]
    thin = np.array([number[0], number[1], number[1] + 0.2 * down + 0.3 * along,
                     number[0] + 0.2 * down + 0.3 * along])
    mirrored = np.array([number[0], number[1], number[1] - 0.3 * down, number[0] - 0.3 * down])
    for slip in (thin, mirrored):
        guess = refine.first_guess(slip)
        assert refine.is_plausible(guess, (800, 600))
        np.testing.assert_allclose(guess.mean(axis=0), slip.mean(axis=0), atol=1e-9)
        width, height = (np.linalg.norm(guess[1] - guess[0]),
                         np.linalg.norm(guess[3] - guess[0]))
        np.testing.assert_allclose(width / height, refine.NUMBER_ASPECT)
        # Same direction and naming as the number: top_left -> top_right along its reading.
        direction = (guess[1] - guess[0]) / width
        np.testing.assert_allclose(direction, along / np.linalg.norm(along), atol=1e-9)
        assert np.dot(guess[3] - guess[0], down) > 0


def test_the_search_guesses_lie_a_number_s_width_around_a_look_s_quad():
    centre, px_per_400 = np.array([600.0, 400.0]), 3.0
    half = 30.0 * px_per_400  # _quad_around takes half sizes: a number 60 px wide at 400 px
    number = _quad_around(centre, 30, (half, half / refine.NUMBER_ASPECT))
    along = (number[1] - number[0]) / np.linalg.norm(number[1] - number[0])
    across = np.array([-along[1], along[0]])
    guesses = refine.neighbours(number, px_per_400, POLICY)
    assert len(guesses) == len(POLICY.search_steps)
    width = 60.0 * px_per_400
    for guess, (steps_along, steps_across, degrees) in zip(guesses, POLICY.search_steps,
                                                           strict=True):
        assert refine.is_plausible(guess, (1600, 1200))
        offset = guess.mean(axis=0) - centre
        np.testing.assert_allclose([offset @ along, offset @ across],
                                   [steps_along * width, steps_across * width], atol=1e-6)
        top = guess[1] - guess[0]
        np.testing.assert_allclose(np.linalg.norm(top), width, rtol=1e-9)
        np.testing.assert_allclose(np.linalg.norm(top) / np.linalg.norm(guess[3] - guess[0]),
                                   refine.NUMBER_ASPECT)
        turn = np.degrees(np.arctan2(top @ across, top @ along))
        np.testing.assert_allclose(turn, degrees, atol=1e-6)
    # Every place within a width along and 0.6 across is searched, and the quad turned in
    # steps of 15 degrees over a half turn (a half turn reads the same line: the refiner
    # names the ends).
    places = {(a, c) for a, c, _ in POLICY.search_steps}
    assert places == {(a, c) for a in (-1.0, 0.0, 1.0) for c in (-0.6, 0.0, 0.6)}
    turns = sorted(d % 180 for _, _, d in POLICY.search_steps)
    assert np.diff(turns).max() <= 15.0 and 180.0 - turns[-1] + turns[0] <= 15.0


def test_a_shrunk_or_swollen_quad_is_searched_at_a_number_s_width():
    px_per_400 = 2.0
    low, high = POLICY.search_width_400
    for width_400, expected in ((8.0, low), (60.0, 60.0), (300.0, high)):
        half = width_400 * px_per_400 / 2
        quad = _quad_around(np.array([500.0, 300.0]), -70, (half, half / 6))
        for guess in refine.neighbours(quad, px_per_400, POLICY):
            np.testing.assert_allclose(np.linalg.norm(guess[1] - guess[0]),
                                       expected * px_per_400, rtol=1e-9)
    # No direction: no search.
    assert refine.neighbours(np.full((4, 2), 5.0), px_per_400, POLICY) == []


def _centre_and_direction(guess: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    top = guess[1] - guess[0]
    return guess.mean(axis=0), top / np.linalg.norm(top)


def test_the_scan_leaves_no_place_of_the_photo_beyond_the_refiner_s_reach():
    px_per_400, size = 4.0, (1600, 1130)
    look = _quad_around(np.array([1200.0, 300.0]), 25, (30.0 * px_per_400, 5.0 * px_per_400))
    guesses = refine.scan([look], size, px_per_400, POLICY)
    centres = np.array([_centre_and_direction(g)[0] for g in guesses])
    width = np.linalg.norm(guesses[0][1] - guesses[0][0])
    np.testing.assert_allclose(width, 60.0 * px_per_400)
    # Any point lies within half a cell's diagonal of a guess's centre: ~0.42 widths, inside
    # the refiner's reach of ~0.6 along and ~0.5 across whichever way the number reads.
    points = np.random.default_rng(0).uniform([0, 0], size, (500, 2))
    nearest = np.linalg.norm(points[:, None] - centres[None], axis=-1).min(axis=1)
    assert nearest.max() <= POLICY.scan_step * width * np.sqrt(0.5) + 1e-9
    assert ((centres >= 0) & (centres <= size)).all()
    # Cut in the look's direction, the cells nearest the look first.
    for guess in guesses:
        np.testing.assert_allclose(_centre_and_direction(guess)[1],
                                   [np.cos(np.radians(25)), np.sin(np.radians(25))], atol=1e-9)
    distances = np.linalg.norm(centres - look.mean(axis=0), axis=1)
    assert (np.diff(distances) >= -1e-9).all()


def test_the_scan_reads_each_distinct_direction_of_the_looks_once():
    px_per_400, size = 2.0, (800, 600)
    look = _quad_around(np.array([300.0, 200.0]), 10, (60.0, 10.0))
    one = len(refine.scan([look], size, px_per_400, POLICY))
    # Named half a turn round, or turned less than scan_same_direction_degrees: the same line.
    same = [look, np.roll(look, 2, axis=0),
            _quad_around(np.array([500.0, 400.0]), 10 + POLICY.scan_same_direction_degrees / 2,
                         (60.0, 10.0))]
    assert len(refine.scan(same, size, px_per_400, POLICY)) == one
    across = _quad_around(np.array([300.0, 200.0]), 100, (60.0, 10.0))
    directions = {tuple(np.round(_centre_and_direction(g)[1], 6))
                  for g in refine.scan([look, across], size, px_per_400, POLICY)}
    assert len(directions) == 2
    assert refine.scan([np.full((4, 2), 5.0)], size, px_per_400, POLICY) == []  # no direction
