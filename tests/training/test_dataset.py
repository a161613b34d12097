"""Users' own photos: JSON Lines and LabelMe labels, augmentation that keeps corner names."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image, ImageOps

from tests.conftest import ink_contrast
from training.dataset import augment, load_arrays, read_examples


def _as_labelme(synthetic_set, out):
    out.mkdir()
    for example in read_examples(synthetic_set)[:3]:
        image = ImageOps.exif_transpose(Image.open(example.path))
        image.save(out / example.path.name)
        (out / f"{example.path.stem}.json").write_text(json.dumps({
            "version": "5.4.1", "imagePath": example.path.name,
            "imageWidth": example.width, "imageHeight": example.height,
            "shapes": [{"label": "number", "shape_type": "polygon",
                        "points": example.corners.tolist()}],
        }))
    return out


def test_labelme_folder_reads_like_json_lines(synthetic_set, tmp_path):
    folder = _as_labelme(synthetic_set, tmp_path / "labelme")
    examples = read_examples(folder)
    expected = read_examples(synthetic_set)[:3]
    assert [e.path.name for e in examples] == [e.path.name for e in expected]
    for got, want in zip(examples, expected, strict=True):
        np.testing.assert_allclose(got.corners, want.corners)


def test_augmented_copies_keep_corner_names_on_the_number(synthetic_set, tmp_path):
    out = augment(synthetic_set, tmp_path / "augmented", copies=4, seed=1)
    examples = read_examples(out)
    assert len(examples) == 6 * 5
    turned = 0
    for example in examples:
        image = Image.open(example.path)
        assert image.size == (example.width, example.height)
        assert ink_contrast(image, example.corners) > 10
        turned += image.size != (read_examples(synthetic_set)[0].width,
                                 read_examples(synthetic_set)[0].height)
    assert turned > 0  # some copies were turned by 90 degrees
    inputs, targets = load_arrays(out)
    assert inputs.shape == (30, 400, 400, 1) and targets.shape == (30, 8)


def test_augment_is_deterministic(synthetic_set, tmp_path):
    one = augment(synthetic_set, tmp_path / "one", copies=1, seed=5)
    two = augment(synthetic_set, tmp_path / "two", copies=1, seed=5)
    assert (one / "labels.jsonl").read_text() == (two / "labels.jsonl").read_text()


@pytest.mark.parametrize("line, message", [
    ("not json", "expected file"),
    ('{"file": "a.jpg", "width": 10, "height": 10}', "expected file"),
    ('{"file": "a.jpg", "width": 10, "height": 10, "corners": {"top_left": [1, 2]}}',
     "lack top_right"),
    ('{"file": "a.jpg", "width": 10, "height": 10, "corners": {"top_left": ["x", 2], '
     '"top_right": [1, 2], "bottom_right": [1, 2], "bottom_left": [1, 2]}}', "numbers"),
    ('{"file": "../a.jpg", "width": 10, "height": 10, "corners": {"top_left": [1, 2], '
     '"top_right": [1, 2], "bottom_right": [1, 2], "bottom_left": [1, 2]}}', "outside"),
    ('{"file": "missing.jpg", "width": 10, "height": 10, "corners": {"top_left": [1, 2], '
     '"top_right": [1, 2], "bottom_right": [1, 2], "bottom_left": [1, 2]}}', "does not exist"),
])
def test_bad_labels_are_reported_with_file_and_line(tmp_path, line, message):
    (tmp_path / "labels.jsonl").write_text(line + "\n")
    with pytest.raises(ValueError, match=message) as error:
        read_examples(tmp_path)
    assert "labels.jsonl" in str(error.value) or message == "does not exist"


def test_label_size_mismatch_is_reported(synthetic_set, tmp_path):
    lines = (synthetic_set / "labels.jsonl").read_text().splitlines()
    record = json.loads(lines[0])
    record["width"] += 10
    folder = tmp_path / "bad"
    folder.mkdir()
    (folder / record["file"]).write_bytes((synthetic_set / record["file"]).read_bytes())
    (folder / "labels.jsonl").write_text(json.dumps(record) + "\n")
    with pytest.raises(ValueError, match="as displayed"):
        load_arrays(folder, workers=1)


def test_empty_folder_is_reported(tmp_path):
    with pytest.raises(ValueError, match="no labels.jsonl"):
        read_examples(tmp_path)


def test_generated_labels_carry_the_number_as_printed_and_null_without_one(tmp_path):
    import re

    from training.card import DISTRICTS
    from training.dataset import generate
    from training.photo import synthetic_photo

    folder = generate(tmp_path / "set", 3, seed=8, workers=1, negatives=3)
    grammar = re.compile(rf"^({'|'.join(DISTRICTS)})[ -]?[0-9]{{3}}[A-Z]{{2}}$")
    examples = read_examples(folder)
    for example in examples:
        if example.corners is None:
            assert example.meta["text"] is None
            continue
        assert grammar.match(example.meta["text"]), example.meta["text"]
        assert example.meta["text"] == synthetic_photo(8, int(example.path.stem)).card.number_text
    assert sum(e.corners is None for e in examples) == 3


def test_generated_labels_record_the_card_s_outline_around_its_number(synthetic_set):
    from certcorners.geometry import apply_homography, homography

    from training.card import CARD_H_MM, CARD_W_MM
    from training.photo import synthetic_photo

    seed = json.loads((synthetic_set / "dataset.json").read_text())["seed"]
    for example in read_examples(synthetic_set):
        if example.corners is None:
            continue
        outline = np.asarray(example.meta["card_corners"], dtype=np.float64)
        photo = synthetic_photo(seed, int(example.path.stem))
        np.testing.assert_allclose(outline, photo.flat_card_corners, atol=1e-3)
        # In the card's own frame (0-1 across, 0-1 down) the number sits where the spec
        # prints it: x from 8.0 mm of 85.6, between 12.5 and 15.5 mm of 53.98 down, give or
        # take the printer's shift, the cap-height jitter and a curled card's label.
        unit = np.array([[0, 0], [1, 0], [1, 1], [0, 1]], dtype=np.float64)
        on_card = apply_homography(np.linalg.inv(homography(unit, outline)), example.corners)
        x_mm, y_mm = on_card[:, 0] * CARD_W_MM, on_card[:, 1] * CARD_H_MM
        assert 6.0 < x_mm[0] < 10.0 and 10.5 < y_mm[0] < 14.5, (x_mm, y_mm)
        assert 14.0 < y_mm[3] < 17.5 and x_mm[1] > x_mm[0] + 10, (x_mm, y_mm)
