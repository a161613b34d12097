"""The synthetic generator: labels on the number's ink, names in the reading frame,
determinism."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from certcorners.geometry import apply_homography
from PIL import Image, ImageOps

from tests.conftest import ink_contrast
from training.card import family, font_pairs, render_card
from training.dataset import generate, read_examples
from training.photo import synthetic_photo


def _dark_pixels(card_rgba: Image.Image, box, margin: float) -> np.ndarray:
    """(x, y) centres of print pixels (dark, not tint or guilloche) in an enlarged box."""
    gray = np.asarray(card_rgba.convert("L"), dtype=np.float64)
    x0, y0, x1, y1 = (int(box[0] - margin), int(box[1] - margin), int(box[2] + margin),
                      int(box[3] + margin))
    ys, xs = np.nonzero(gray[y0:y1, x0:x1] < 110)
    return np.stack([xs + x0 + 0.5, ys + y0 + 0.5], axis=1)


@pytest.mark.parametrize("index", range(4))
def test_label_is_tight_box_around_the_numbers_ink_and_nothing_else(index):
    photo = synthetic_photo(seed=11, index=index)
    card = photo.card
    # The labelled quad before any bend, mapped back from the photo into the card's plane.
    quad = apply_homography(np.linalg.inv(photo.homography), photo.flat_corners)
    x0, y0 = quad[0]
    x1, y1 = quad[2]
    np.testing.assert_allclose(quad[1], [x1, y0], atol=1e-6)  # a rectangle in the card plane
    np.testing.assert_allclose(quad[3], [x0, y1], atol=1e-6)

    # Every print pixel within 1.5 mm of the number lies inside the box (1 px tolerance)...
    margin = 1.5 * card.px_per_mm
    ink = _dark_pixels(card.image, (x0, y0, x1, y1), margin)
    assert len(ink) > 200
    assert ink[:, 0].min() >= x0 - 1 and ink[:, 0].max() <= x1 + 1
    assert ink[:, 1].min() >= y0 - 1 and ink[:, 1].max() <= y1 + 1
    # ...and the box is tight: ink reaches within 1.5 px of each of its four sides.
    assert ink[:, 0].min() - x0 < 1.5 and x1 - ink[:, 0].max() < 1.5
    assert ink[:, 1].min() - y0 < 1.5 and y1 - ink[:, 1].max() < 1.5

    # Nothing of the label "A" or of field B is inside.
    for other in (card.label_a_box, card.field_b_box):
        other_ink = _dark_pixels(card.image, other, 0)
        inside = ((other_ink[:, 0] > x0) & (other_ink[:, 0] < x1) &
                  (other_ink[:, 1] > y0) & (other_ink[:, 1] < y1))
        assert len(other_ink) > 0 and not inside.any()

    # In the photo itself the quad sits on dark print.
    image = ImageOps.exif_transpose(Image.open(io.BytesIO(photo.jpeg)))
    assert image.size == (photo.width, photo.height)
    assert ink_contrast(image, photo.corners) > 15


@pytest.mark.parametrize("pair", font_pairs(), ids=lambda pair: family(pair[1]))
def test_the_label_is_tight_in_every_face_the_generator_may_pick(pair):
    """Whatever fonts a machine has, the number's box is its ink's (the same tolerance as
    above), for every face the generator may pick here and at sub-pixel positions."""
    for seed in range(3):
        card = render_card(np.random.default_rng(seed), fonts=pair)
        x0, y0, x1, y1 = card.number_box
        ink = _dark_pixels(card.image.convert("RGB"), (x0, y0, x1, y1),
                           1.5 * card.px_per_mm)
        assert ink[:, 0].min() >= x0 - 1 and ink[:, 0].max() <= x1 + 1
        assert ink[:, 1].min() >= y0 - 1 and ink[:, 1].max() <= y1 + 1
        assert ink[:, 0].min() - x0 < 1.5 and x1 - ink[:, 0].max() < 1.5
        assert ink[:, 1].min() - y0 < 1.5 and y1 - ink[:, 1].max() < 1.5


def test_corner_names_follow_the_numbers_reading_frame_when_rotated():
    flipped = 0
    for index in range(40):
        photo = synthetic_photo(seed=5, index=index)
        tl, tr, br, bl = photo.corners
        card_tl, card_tr, _, card_bl = photo.card_corners
        # top_left -> top_right runs along the card's reading direction, whatever the spin.
        assert np.dot(tr - tl, card_tr - card_tl) > 0
        assert np.dot(bl - tl, card_bl - card_tl) > 0
        reading = card_tr - card_tl
        if abs(np.degrees(np.arctan2(reading[1], reading[0]))) > 150:  # upside down
            flipped += 1
            # top_left is then at the bottom-right of the number's box in the image.
            assert tl[0] > tr[0] and tl[1] > bl[1]
    assert flipped > 0, "no upside-down photo among 40: the rotation range is wrong"


def test_photos_follow_the_spec_sizes_and_coverage():
    for index in range(12):
        photo = synthetic_photo(seed=9, index=index)
        long_side, short_side = max(photo.width, photo.height), min(photo.width, photo.height)
        assert 800 <= long_side <= 2000
        assert min(abs(long_side / short_side - a) for a in (4 / 3, 3 / 2, 16 / 9, 1.417)) < 0.01
        outline = photo.card_corners
        assert (outline >= 0).all() and (outline[:, 0] <= photo.width).all()
        assert (outline[:, 1] <= photo.height).all()
        box = np.ptp(outline, axis=0)
        assert 0.33 <= box[0] * box[1] / (photo.width * photo.height) <= 0.9


def test_same_seed_same_dataset_whatever_the_worker_count(tmp_path):
    one = generate(tmp_path / "one", 4, seed=3, workers=1)
    two = generate(tmp_path / "two", 4, seed=3, workers=2)
    other = generate(tmp_path / "other", 4, seed=4, workers=2)
    assert (one / "labels.jsonl").read_text() == (two / "labels.jsonl").read_text()
    for name in ("000000.jpg", "000003.jpg"):
        assert (one / name).read_bytes() == (two / name).read_bytes()
        assert (one / name).read_bytes() != (other / name).read_bytes()


def test_dataset_labels_match_the_photos(synthetic_set):
    examples = read_examples(synthetic_set)
    assert len(examples) == 6
    for example in examples:
        image = ImageOps.exif_transpose(Image.open(example.path))
        assert image.size == (example.width, example.height)
        assert ink_contrast(image, example.corners) > 15
    record = json.loads((synthetic_set / "labels.jsonl").read_text().splitlines()[0])
    assert set(record) == {"file", "width", "height", "corners", "font", "card_corners", "text"}
    assert list(record["corners"]) == ["top_left", "top_right", "bottom_right", "bottom_left"]


def test_generate_refuses_a_folder_that_holds_a_dataset(synthetic_set):
    with pytest.raises(ValueError, match="already holds a dataset"):
        generate(synthetic_set, 1, seed=1)


def test_card_renders_every_district_format():
    texts = {render_card(np.random.default_rng(i), px_per_mm=6).number_text for i in range(30)}
    assert any("-" in t for t in texts) and any(" " in t for t in texts)
    assert any("-" not in t and " " not in t for t in texts)


def test_phone_photos_follow_the_specs_phone_section():
    """Full resolution, 4:3 or 16:9, the card as small as 12 % of the frame, half of them
    sideways; the label still on the number's ink."""
    from training.photo import PHONE, SPEC, _photo_size, _place, profile_of, synthetic_photo

    rng = np.random.default_rng(0)
    sizes = [_photo_size(rng, PHONE) for _ in range(200)]
    assert all(3000 <= max(s) <= 4032 for s in sizes)
    assert {round(max(s) / min(s), 2) for s in sizes} <= {1.33, 1.78}
    outline = np.array([[0.0, 0], [100, 0], [100, 63], [0, 63]])
    shares = [np.ptp(q[:, 0]) * np.ptp(q[:, 1]) / (4032 * 3024)
              for q in (_place(rng, outline, (4032, 3024), PHONE) for _ in range(300))]
    assert min(shares) >= 0.12 * 0.99 and max(shares) <= 0.90 * 1.01
    assert np.mean(np.array(shares) < 0.35) > 0.4  # small cards are common
    assert profile_of(4, 0, 0.0) is SPEC and profile_of(4, 0, 1.0) is PHONE
    photo = synthetic_photo(4, 0, profile=PHONE)
    assert max(photo.width, photo.height) >= 3000
    image = ImageOps.exif_transpose(Image.open(io.BytesIO(photo.jpeg)))
    assert image.size == (photo.width, photo.height)
    assert ink_contrast(image, photo.corners) > 15


def test_a_dataset_with_phone_photos_labels_each_photos_profile(tmp_path):
    folder = generate(tmp_path / "mixed", 2, seed=9, workers=1, phone_share=0.5)
    lines = [json.loads(line) for line in (folder / "labels.jsonl").read_text().splitlines()]
    from training.photo import profile_of

    # Seed 9 draws one of each (one phone photo: ~6 s to make).
    assert [line["profile"] for line in lines] == [profile_of(9, i, 0.5).name for i in range(2)]
    assert sorted(line["profile"] for line in lines) == ["phone", "spec"]
    assert json.loads((folder / "dataset.json").read_text())["phone_share"] == 0.5
    with pytest.raises(ValueError, match="phone_share"):
        generate(tmp_path / "bad", 1, seed=9, phone_share=1.5)


def test_spec_view_photos_are_the_specs_compositions_at_the_locators_size(tmp_path):
    """The same seed draws the same photo at ~540 px: the number where it is in the spec's
    photo, relative to the frame, and still on the number's ink."""
    from training.photo import SPEC_VIEW

    for index in range(3):
        full = synthetic_photo(seed=12, index=index)
        small = synthetic_photo(seed=12, index=index, profile=SPEC_VIEW)
        assert 480 <= max(small.width, small.height) <= 600
        assert small.width / small.height == pytest.approx(full.width / full.height, rel=0.01)
        where = small.corners / [small.width, small.height]
        assert np.abs(where - full.corners / [full.width, full.height]).max() < 0.01
        image = ImageOps.exif_transpose(Image.open(io.BytesIO(small.jpeg)))
        assert ink_contrast(image, small.corners) > 15
    folder = generate(tmp_path / "view", 2, seed=12, workers=1, negatives=1,
                      spec_profile="spec-view")
    assert {e.meta["profile"] for e in read_examples(folder)} == {"spec-view"}
    assert json.loads((folder / "dataset.json").read_text())["spec_profile"] == "spec-view"
    with pytest.raises(ValueError, match="spec_profile"):
        generate(tmp_path / "bad", 1, seed=12, spec_profile="phone")
    with pytest.raises(ValueError, match="phone_profile"):
        generate(tmp_path / "bad", 1, seed=12, phone_share=1.0, phone_profile="spec-view")
