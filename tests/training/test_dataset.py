"""Users' own photos: JSON Lines and LabelMe labels, augmentation that keeps corner names."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image, ImageOps

from tests.conftest import ink_contrast
from training.dataset import augment, card_twin, load_arrays, read_examples, twin_targets


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


def test_the_twin_of_a_number_on_an_upright_card_by_hand():
    card = np.array([[0, 0], [856, 0], [856, 540], [0, 540]], dtype=np.float64)
    box = np.array([[80, 125], [260, 125], [260, 155], [80, 155]], dtype=np.float64)
    # Turned about the card's centre (428, 270), named in the turned card's reading frame.
    np.testing.assert_allclose(card_twin(box, card),
                               [[776, 415], [596, 415], [596, 385], [776, 385]], atol=1e-6)


def test_a_twin_s_twin_is_the_number_under_perspective():
    card = np.array([[120, 80], [900, 140], [860, 650], [90, 560]], dtype=np.float64)
    box = np.array([[200, 200], [380, 210], [378, 240], [198, 231]], dtype=np.float64)
    twin = card_twin(box, card)
    assert np.linalg.norm(twin - box, axis=1).min() > 100
    np.testing.assert_allclose(card_twin(twin, card), box, atol=1e-6)


def test_generated_labels_place_the_twin_where_the_generator_s_card_has_it(synthetic_set):
    from certcorners.geometry import apply_homography
    from certcorners.preprocessing import Letterbox, corners_to_target

    from training.photo import synthetic_photo

    seed = json.loads((synthetic_set / "dataset.json").read_text())["seed"]
    targets = twin_targets(synthetic_set)
    examples = [e for e in read_examples(synthetic_set) if e.corners is not None]
    assert targets.shape == (len(examples), 8)
    for example, target in zip(examples, targets, strict=True):
        photo = synthetic_photo(seed, int(example.path.stem))
        w, h = photo.card.image.size
        # The generator's own geometry: the number's quad on the card art, turned about the
        # art's centre, through the card's homography into the photo.
        turned = np.array([w, h]) - np.asarray(photo.card.number_quad, dtype=np.float64)
        expected = apply_homography(photo.homography, turned)
        # Labels are rounded to 0.001 px; a curled card's label moved with its ink, so its
        # twin, taken through the flat card, moves up to a few pixels (400-px scale).
        bent = not np.allclose(photo.corners, photo.flat_corners)
        np.testing.assert_allclose(
            target, corners_to_target(expected, Letterbox.for_size(photo.width, photo.height)),
            atol=0.01 if bent else 1e-5)


def test_twins_need_the_card_s_outline_in_the_labels(synthetic_set, tmp_path):
    folder = tmp_path / "no-outline"
    folder.mkdir()
    lines = []
    for line in (synthetic_set / "labels.jsonl").read_text().splitlines():
        record = json.loads(line)
        record.pop("card_corners", None)
        (folder / record["file"]).write_bytes((synthetic_set / record["file"]).read_bytes())
        lines.append(json.dumps(record))
    (folder / "labels.jsonl").write_text("\n".join(lines) + "\n")
    with pytest.raises(ValueError, match="card_corners"):
        twin_targets(folder)
