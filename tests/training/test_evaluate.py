"""evaluate's figures against a case computed by hand, and the foreign label format."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.conftest import HELD_OUT, jpeg_bytes
from training.dataset import Example, read_examples
from training.evaluate import confidence_curve, corner_metrics, evaluate, summarize

TRUE = np.array([[100.0, 100.0], [300.0, 100.0], [300.0, 140.0], [100.0, 140.0]])


def _example(corners, width=800, height=600, name=None, **meta):
    return Example(Path(name) if name else None, width, height, corners, meta)


def test_corner_metrics_match_a_hand_computed_case():
    # Three 800 x 600 photos: the 400-px scale halves every distance.
    exact = TRUE.copy()
    shifted = TRUE + [6.0, 8.0]  # 10 px in the photo, 5 px at 400 for every corner
    turned = np.roll(TRUE, 2, axis=0)  # named 180 degrees wrong, geometry perfect
    predicted = np.stack([exact, shifted, turned])
    true = np.stack([TRUE, TRUE, TRUE])
    metrics = corner_metrics(predicted, true, np.array([[800, 600]] * 3))
    # The turned quad: top_left sits on bottom_right, 200 x 40 apart -> sqrt(200^2+40^2)/2.
    diagonal = np.hypot(200, 40) / 2
    errors = np.array([0, 0, 0, 0, 5, 5, 5, 5] + [diagonal] * 4)
    assert metrics["photos"] == 3
    assert metrics["mean_corner_error_px"] == pytest.approx(errors.mean(), abs=1e-3)
    assert metrics["median_corner_error_px"] == pytest.approx(5.0)
    assert metrics["p95_corner_error_px"] == pytest.approx(np.percentile(errors, 95), abs=1e-3)
    assert metrics["share_worst_corner_within_4px"] == pytest.approx(1 / 3, abs=1e-4)
    assert metrics["share_worst_corner_within_12px"] == pytest.approx(2 / 3, abs=1e-4)
    assert metrics["orientation_share"] == pytest.approx(2 / 3, abs=1e-4)


def test_summary_counts_refusals_and_splits_stage_one_from_the_cascade():
    records = [
        {"example": _example(TRUE, exif_orientation=1), "located": TRUE + 20,
         "corners": TRUE, "confidence": 0.9, "tiled": True},
        {"example": _example(TRUE, exif_orientation=6), "located": TRUE + 20,
         "corners": TRUE + [6.0, 8.0], "confidence": 0.2, "tiled": True},  # refused at 0.5
        {"example": _example(None), "located": TRUE, "corners": TRUE, "confidence": 0.1},
        {"example": _example(None, name="desk.jpg"), "located": TRUE, "corners": TRUE,
         "confidence": 0.7},
    ]
    metrics = summarize(records, threshold=0.5)
    assert (metrics["positives"], metrics["negatives"]) == (2, 2)
    # Stage 1 is 20 px off in x and y: hypot(20, 20) / 2 at the 400-px scale.
    assert metrics["stage1"]["mean_corner_error_px"] == pytest.approx(np.hypot(20, 20) / 2,
                                                                       abs=1e-3)
    assert metrics["cascade"]["mean_corner_error_px"] == pytest.approx(2.5)
    assert metrics["positives_refused_share"] == 0.5
    assert metrics["negatives_refused_share"] == 0.5
    # The refused certificate (5 px off) and the answered photo without one, by name.
    assert metrics["positives_refused"] == [{"file": None, "confidence": 0.2,
                                             "worst_corner_px": 5.0}]
    assert metrics["negatives_answered"] == [{"file": "desk.jpg", "confidence": 0.7}]
    # Where answers came from counts accepted answers only.
    assert metrics["answers_from_tiles"] == 1 and metrics["answers_from_search"] == 0
    assert metrics["cascade_accepted"]["photos"] == 1
    assert metrics["cascade_accepted"]["mean_corner_error_px"] == 0
    by_orientation = metrics["cascade_by_condition"]["exif_orientation"]
    assert by_orientation["1"]["mean_corner_error_px"] == 0
    assert by_orientation["6"]["mean_corner_error_px"] == pytest.approx(5.0)


def test_confidence_curve_gives_the_least_confident_their_share_of_the_error():
    confidence = np.array([0.1, 0.5, 0.9, 0.95])
    worst = np.array([9.0, 1.0, 0.0, 0.0])
    first = confidence_curve(confidence, worst)[0]  # 1% of 4 photos: the least confident one
    assert first["error_share"] == pytest.approx(0.9)
    assert first["mean_worst_corner_px"] == pytest.approx(9.0)
    assert first["error_share_if_ranked_perfectly"] == pytest.approx(0.9)


def test_confidence_curve_says_what_a_perfect_ranking_would_give():
    confidence = np.array([0.2, 0.4, 0.6, 0.8, 0.9, 0.99, 0.999, 0.9999, 0.99999, 1.0])
    worst = np.array([1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 11.0])  # ranked backwards
    tenth = next(p for p in confidence_curve(confidence, worst)
                 if p["least_confident_share"] == 0.1)
    assert tenth["error_share"] == pytest.approx(0.05)
    assert tenth["error_share_if_ranked_perfectly"] == pytest.approx(0.55)


def test_the_foreign_label_format_reads_with_negatives(tmp_path):
    image = Image.new("RGB", (640, 480), (200, 200, 200))
    (tmp_path / "a.jpg").write_bytes(jpeg_bytes(image))
    (tmp_path / "b.jpg").write_bytes(jpeg_bytes(image))
    corners = {name: {"x": x, "y": y} for name, (x, y) in zip(
        ("top_left", "top_right", "bottom_right", "bottom_left"), TRUE, strict=True)}
    lines = [{"file": "a.jpg", "width": 640, "height": 480, "corners": corners,
              "exif_orientation": 1, "jpeg_quality": 63},
             {"file": "b.jpg", "width": 640, "height": 480, "corners": None,
              "exif_orientation": 1, "jpeg_quality": 45}]
    (tmp_path / "labels.jsonl").write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    positive, negative = read_examples(tmp_path)
    np.testing.assert_allclose(positive.corners, TRUE)
    assert positive.meta == {"exif_orientation": 1, "jpeg_quality": 63}
    assert negative.corners is None and negative.meta["jpeg_quality"] == 45


def _folder_of(tmp_path, names):
    """A labelled folder holding some of the committed held-out photos."""
    folder = tmp_path / "photos"
    folder.mkdir()
    labels = [json.loads(line) for line in (HELD_OUT / "labels.jsonl").read_text().splitlines()]
    kept = [label for label in labels if label["file"] in names]
    for label in kept:
        shutil.copy(HELD_OUT / label["file"], folder / label["file"])
    (folder / "labels.jsonl").write_text("".join(json.dumps(x) + "\n" for x in kept))
    return folder


def test_wrong_answers_and_refusals_are_named_and_drawn(reference_package, tmp_path):
    folder = _folder_of(tmp_path, {"000000.jpg", "desk-without-certificate.jpg"})
    out = tmp_path / "evaluation"
    # At threshold 0 every answer is accepted: the desk without a card is answered, and named.
    answered = evaluate(reference_package, folder, out, threshold=0.0)
    assert answered["positives_refused"] == []
    [desk] = answered["negatives_answered"]
    assert desk["file"] == "desk-without-certificate.jpg" and 0.0 <= desk["confidence"] <= 1.0
    with Image.open(out / desk["overlay"]) as overlay:
        assert overlay.format == "PNG"
    # At 1 nothing this package says is accepted (its surest answer here reads 0.99996): the
    # certificate is named as refused with how far off its answer was, and the earlier run's
    # overlay of an answered photo is gone.
    refused = evaluate(reference_package, folder, out, threshold=1.0)
    assert refused["negatives_answered"] == []
    [certificate] = refused["positives_refused"]
    assert certificate["file"] == "000000.jpg" and certificate["worst_corner_px"] >= 0
    assert certificate["confidence"] < 1.0
    assert not list(out.glob("answered-*.png"))
    saved = json.loads((out / "evaluation.json").read_text())
    assert saved["positives_refused"] == refused["positives_refused"]


@pytest.mark.parametrize("threshold", [99.98, -0.1, float("nan")])
def test_a_threshold_outside_0_to_1_is_refused_before_anything_is_written(
        reference_package, tmp_path, threshold):
    with pytest.raises(ValueError, match="threshold must be a confidence from 0 to 1"):
        evaluate(reference_package, HELD_OUT, tmp_path / "evaluation", threshold=threshold)
    assert not (tmp_path / "evaluation").exists()


def test_the_envelope_breakdown_by_number_height_and_card_share_by_hand():
    """TRUE is 40 px tall in an 800 x 600 photo: 20 px at the 400-px scale. A number a fifth
    as tall (8 px in the photo) is 4 px at 400. The cards: 400 x 300 of 800 x 600 is 25 %,
    120 x 90 is 2.25 %."""
    small = np.array([[100.0, 100.0], [140.0, 100.0], [140.0, 108.0], [100.0, 108.0]])
    big_card = [[0, 0], [400, 0], [400, 300], [0, 300]]
    small_card = [[0, 0], [120, 0], [120, 90], [0, 90]]
    records = [
        {"example": _example(TRUE, card_corners=big_card, profile="spec"), "located": TRUE,
         "corners": TRUE, "confidence": 0.9},
        {"example": _example(small, card_corners=small_card, profile="phone"),
         "located": small, "corners": small + [6.0, 8.0],
         "confidence": 0.9},  # answered, 5 px off at 400
        {"example": _example(small, card_corners=small_card, profile="phone"),
         "located": small, "corners": small, "confidence": 0.1},  # refused at 0.5
    ]
    by = summarize(records, threshold=0.5)["cascade_by_condition"]
    assert by["profile"]["phone"]["refused_share"] == 0.5
    assert by["profile"]["spec"]["photos"] == 1
    assert set(by["number_height_400"]) == {">=12 px", "4-6 px"}
    tall, short = by["number_height_400"][">=12 px"], by["number_height_400"]["4-6 px"]
    assert (tall["photos"], tall["refused_share"]) == (1, 0.0)
    assert (short["photos"], short["refused_share"]) == (2, 0.5)
    assert short["mean_corner_error_px"] == pytest.approx(2.5)  # (5 + 0) / 2
    assert set(by["card_share"]) == {"20-35%", "<20%"}
    assert by["card_share"]["<20%"]["refused_share"] == 0.5
    assert by["card_share"]["20-35%"]["photos"] == 1


def test_without_card_corners_there_is_no_card_share_breakdown():
    records = [{"example": _example(TRUE), "located": TRUE, "corners": TRUE,
                "confidence": 0.9}]
    by = summarize(records, threshold=0.5)["cascade_by_condition"]
    assert "card_share" not in by and list(by["number_height_400"]) == [">=12 px"]
