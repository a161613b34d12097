"""The number's text through the real handler: the reference package's reader on the sample
and held-out photos, a reading below the card's threshold, an unsure reading read again from
nudged boxes, and a package without a reader."""

from __future__ import annotations

import base64
import io
import json
import tarfile
from dataclasses import replace

import numpy as np
import pytest
from certcorners.model_store import ModelStore
from certcorners.preprocessing import decode
from certcorners.reader import canonical

from tests.conftest import HELD_OUT, invoke, load_event, photo_bytes, photo_labels, put_package

SAMPLES = {"corners-jpeg.json": "certificate-1200x847.jpg",
           "corners-png.json": "certificate-600x800.png"}


def served_with_card(app_module, s3, tmp_path, monkeypatch, reference_package, edit):
    """The handler serving the reference package with its model card changed by `edit`."""
    members = []
    with tarfile.open(reference_package) as tar:
        for member in tar.getmembers():
            data = tar.extractfile(member).read()
            if member.name == "model_card.json":
                card = json.loads(data)
                edit(card)
                data = json.dumps(card).encode()
            members.append((member.name, data))
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    uri = put_package(s3, buffer.getvalue())
    monkeypatch.setattr(app_module, "store", ModelStore(uri, tmp_path / "edited-cache"))
    return app_module.lambda_handler


@pytest.mark.parametrize("event_name", sorted(SAMPLES))
def test_the_sample_photos_numbers_are_read(handler, event_name):
    status, body = invoke(handler, load_event(event_name))
    assert status == 200, body
    printed = photo_labels()[SAMPLES[event_name]]["text"]
    assert body["text_as_printed"] == printed
    assert body["text"] == canonical(printed)
    assert 0.5 <= body["text_confidence"] <= 1.0 and body["text_reason"] is None
    assert body["timing_ms"]["read"] > 0


def test_the_held_out_photos_numbers_are_read(handler):
    """12 photos no network trained on: every answer's text is the printed one, or none."""
    labels = [json.loads(line) for line in (HELD_OUT / "labels.jsonl").read_text().splitlines()]
    read = 0
    for label in labels:
        if label["corners"] is None:
            continue
        event = load_event("corners-jpeg.json")
        event["body"] = base64.b64encode(
            (HELD_OUT / label["file"]).read_bytes()).decode()
        status, body = invoke(handler, event)
        if status != 200:
            continue
        assert body["text"] in (None, canonical(label["text"])), (label["file"], body["text"])
        read += body["text"] is not None
    assert read >= 10


def test_a_reading_below_the_cards_threshold_keeps_its_corners_and_says_why(
        app_module, s3, tmp_path, monkeypatch, reference_package):
    handler = served_with_card(app_module, s3, tmp_path, monkeypatch, reference_package,
                               lambda card: card.update(reader_threshold=1.01))
    status, body = invoke(handler, load_event("corners-jpeg.json"))
    assert status == 200 and len(body["polygon"]) == 4
    assert body["text"] is None and body["text_as_printed"] is None
    assert 0.5 <= body["text_confidence"] <= 1.0
    assert "below the reader's threshold 1.01" in body["text_reason"]


def _reader_gone(card: dict) -> None:
    del card["reader_model"]
    del card["files"]["reader.tflite"]


def test_a_package_without_a_reader_answers_corners_and_no_text(
        app_module, s3, tmp_path, monkeypatch, reference_package):
    def without_reader(card):  # and without the rule that reads fallback answers
        _reader_gone(card)
        card["cascade_policy"]["fallback_reads"] = False

    handler = served_with_card(app_module, s3, tmp_path, monkeypatch, reference_package,
                               without_reader)
    status, body = invoke(handler, load_event("corners-jpeg.json"))
    assert status == 200 and len(body["polygon"]) == 4
    assert body["text"] is None and body["text_confidence"] is None
    assert body["text_reason"] == "the served model has no reader"


def test_a_policy_that_reads_fallback_answers_needs_the_reader(
        app_module, s3, tmp_path, monkeypatch, reference_package):
    handler = served_with_card(app_module, s3, tmp_path, monkeypatch, reference_package,
                               _reader_gone)
    status, body = invoke(handler, load_event("corners-jpeg.json"))
    assert status == 503 and body["error"]["code"] == "model_unavailable"


def test_a_reader_of_another_alphabet_is_not_served(
        app_module, s3, tmp_path, monkeypatch, reference_package):
    handler = served_with_card(app_module, s3, tmp_path, monkeypatch, reference_package,
                               lambda card: card.update(reader_alphabet="0123456789"))
    status, body = invoke(handler, load_event("corners-jpeg.json"))
    assert status == 503 and body["error"]["code"] == "model_unavailable"


def test_the_model_route_names_the_reader(handler):
    status, card = invoke(handler, load_event("model.json"))
    assert status == 200
    assert card["reader_model"] == "reader.tflite" and "reader.tflite" in card["files"]
    assert card["reader_threshold"] >= 0.5 and card["reader_parameters"] <= 200_000


def test_an_unsure_reading_is_read_again_from_its_nudged_boxes(reference_predictor,
                                                                monkeypatch):
    """Corners half the number's height too low: the view cuts the glyphs and its reading is
    unsure; the card's nudged boxes hold them whole and read the label. Without nudges the
    reading stays unsure (served as text null)."""
    label = photo_labels()["certificate-600x800.png"]
    names = ("top_left", "top_right", "bottom_right", "bottom_left")
    corners = np.array([label["corners"][n] for n in names], dtype=float)
    corners[:, 1] += 0.5 * np.linalg.norm(corners[3] - corners[0])
    decoded = decode(photo_bytes("certificate-600x800.png"))
    policy = reference_predictor.policy
    assert policy.reader_nudges, "the reference card names the reader's nudges"
    again = reference_predictor.read(decoded, corners)
    assert again.text == canonical(label["text"]) and again.confidence >= policy.reread_sure
    monkeypatch.setattr(reference_predictor, "policy", replace(policy, reader_nudges=()))
    once = reference_predictor.read(decoded, corners)
    assert once is None or once.confidence < policy.reread_below
