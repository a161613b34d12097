"""The realistic scene: clutter and occluders never hide the number, every installed typeface
draws the spec's text, negatives carry no label, datasets record their fonts."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageOps

from tests.conftest import ink_contrast
from training.card import _FONT_CANDIDATES, SPEC_CHARACTERS, font_pairs, missing_glyphs
from training.dataset import generate, read_examples
from training.photo import photograph, synthetic_negative
from training.scene import clutter_fonts, polygons_overlap, texture_files


def _displayed(jpeg: bytes) -> Image.Image:
    return ImageOps.exif_transpose(Image.open(io.BytesIO(jpeg))).convert("RGB")


@pytest.mark.parametrize("index", range(4))
def test_with_every_distractor_and_occluder_on_the_number_stays_visible(index):
    from training.card import render_card

    rng = np.random.default_rng([404, index])
    photo = photograph(render_card(rng), rng, everything=True)
    image = _displayed(photo.jpeg)
    assert image.size == (photo.width, photo.height)
    # Dark print inside the label's quad against the pale card around it: nothing covers it.
    assert ink_contrast(image, photo.corners) > 15
    for finger in photo.fingers:
        assert not polygons_overlap(finger[:4], photo.corners)
    # The card is wholly in frame, bent or not.
    assert (photo.card_corners >= -1).all()
    assert (photo.card_corners <= [photo.width + 1, photo.height + 1]).all()


def test_fingers_are_drawn_over_cards_when_switched_on():
    from training.card import render_card

    drawn = 0
    for index in range(6):
        rng = np.random.default_rng([405, index])
        drawn += len(photograph(render_card(rng), rng, everything=True).fingers)
    assert drawn >= 3


def test_overlap_check_sees_crossing_and_containment():
    square = np.array([[0, 0], [10, 0], [10, 10], [0, 10]], float)
    assert polygons_overlap(square, square + 5)  # edges cross
    assert polygons_overlap(square, square * 0.2 + 4)  # one inside the other
    assert not polygons_overlap(square, square + 20)


def test_every_installed_sans_family_renders_the_spec_characters():
    present = {Path(p).name for pair in font_pairs() for p in pair}
    for regular, bold in _FONT_CANDIDATES:
        if regular in present:
            assert bold in present
    for pair in font_pairs():
        for path in pair:
            assert missing_glyphs(path) == "", f"{path} draws tofu"
    # The check itself sees a missing glyph (DejaVu has no CJK).
    dejavu = next(p for pair in font_pairs() for p in pair if "DejaVuSans" in p)
    assert missing_glyphs(dejavu, "Č一") == "一"
    assert set("ČŠŤÝ") <= set(SPEC_CHARACTERS)


def test_clutter_fonts_render_slovak_text():
    for path in clutter_fonts():
        assert missing_glyphs(path, "čšžáéíóúôäňľ") == ""


def test_negatives_have_no_label_and_both_kinds_are_made():
    kinds = {"scene": 0, "covered": 0}
    for index in range(6):
        photo = synthetic_negative(seed=8, index=index)
        assert photo.corners is None
        kinds["scene" if photo.flat_corners is None else "covered"] += 1
    assert kinds["scene"] and kinds["covered"]


@pytest.mark.parametrize("index", range(12))
def test_a_covered_number_is_wholly_under_the_cover(index):
    """Whatever the card printed where the number is, the covered card shows the same there:
    an opaque paper or card lies over all of the number's ink. (Judging the photo's brightness
    instead failed where the cover is a dark card.)"""
    from training.card import render_card
    from training.scene import cover

    card = render_card(np.random.default_rng([808, index]))
    x0, y0, x1, y1 = int(np.floor(card.number_box[0])), int(np.floor(card.number_box[1])), \
        int(np.ceil(card.number_box[2])), int(np.ceil(card.number_box[3]))
    other = card.image.copy()
    other.paste((255, 0, 255, 255), (x0, y0, x1, y1))  # another print where the number was
    covered = [np.asarray(cover(np.random.default_rng([809, index]), image, card.number_box))
               for image in (card.image, other)]
    np.testing.assert_array_equal(covered[0][y0:y1, x0:x1], covered[1][y0:y1, x0:x1])
    # and the number itself is gone from there
    assert not np.array_equal(covered[0][y0:y1, x0:x1],
                              np.asarray(card.image)[y0:y1, x0:x1])


def test_same_seed_same_bytes_and_the_dataset_records_its_sources(tmp_path):
    one = generate(tmp_path / "one", 3, seed=12, workers=1, negatives=2)
    two = generate(tmp_path / "two", 3, seed=12, workers=2, negatives=2)
    for name in ("000000.jpg", "000002.jpg", "n000001.jpg"):
        assert (one / name).read_bytes() == (two / name).read_bytes()
    description = json.loads((one / "dataset.json").read_text())
    assert description["count"] == 3 and description["negatives"] == 2
    fonts = description["number_fonts"]
    for example in read_examples(one):
        if example.corners is not None:
            entry = fonts[example.meta["font"]]
            assert Path(entry["bold"]).is_file() and len(entry["sha256_16"]) == 2
    assert set(description["textures"]) == set(texture_files())
    assert description["glyph_hinting"] is False
    labels = [json.loads(line) for line in (one / "labels.jsonl").read_text().splitlines()]
    assert sum(r["corners"] is None for r in labels) == 2


def test_interrupted_generation_resumes_with_the_same_photos(tmp_path, monkeypatch):
    import training.dataset as dataset

    monkeypatch.setattr(dataset, "SHARD_SIZE", 2)
    full = generate(tmp_path / "full", 4, seed=13, workers=1)
    partial = tmp_path / "partial"
    partial.mkdir()
    # A run killed after its first shard leaves that shard's labels and photos behind.
    first_shard = (full / "labels.jsonl").read_text().splitlines()[:2]
    (partial / ".labels-00000.jsonl").write_text("\n".join(first_shard) + "\n")
    for line in first_shard:
        name = json.loads(line)["file"]
        (partial / name).write_bytes((full / name).read_bytes())
    resumed = generate(partial, 4, seed=13, workers=1)
    assert (resumed / "labels.jsonl").read_text() == (full / "labels.jsonl").read_text()
    assert not list(resumed.glob(".labels-*"))


def test_clutter_fonts_order_does_not_depend_on_where_the_environment_lives(monkeypatch):
    """The same seed must make the same photos in any checkout: fonts inside the Python
    environment (matplotlib's DejaVu) sort by their path within it, after the system's."""
    import sys

    from training import scene

    system = "/usr/share/fonts/truetype/dejavu/DejaVuSerif.ttf"
    orders = []
    for prefix in ("/aaa/checkout/.venv", "/zzz/checkout/.venv"):
        monkeypatch.setattr(sys, "prefix", prefix)
        bundled = f"{prefix}/lib/site-packages/matplotlib/mpl-data/fonts/ttf/DejaVuSans.ttf"
        ordered = sorted([bundled, system], key=scene._portable_order)
        orders.append([path.removeprefix(prefix) for path in ordered])
    assert orders[0] == orders[1]
    assert orders[0][0] == system
