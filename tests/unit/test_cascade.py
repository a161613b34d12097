"""The served cascade (the committed reference package): refinement improves a guess and
fixes its naming, and photos without a certificate are refused through the real handler."""

from __future__ import annotations

import numpy as np
import pytest
from certcorners.labels import corner_errors_400
from certcorners.preprocessing import decode
from PIL import Image

from tests.conftest import invoke, jpeg_bytes, png_bytes
from tests.unit.test_handler import _event_with
from training.photo import scene_photo, synthetic_photo
from training.refiner import GuessErrors

HELD_OUT_SEED = 4242  # never generated for training or validation


@pytest.fixture(scope="module")
def held_out_photos():
    return [synthetic_photo(HELD_OUT_SEED, i) for i in range(12)]


def test_refining_a_perturbed_true_quad_lowers_its_error(reference_predictor, held_out_photos):
    rng = np.random.default_rng(1)
    before, after = [], []
    for photo in held_out_photos:
        decoded = decode(photo.jpeg)
        px = max(photo.width, photo.height) / 400
        guess = GuessErrors(upside_down=0).perturb(rng, photo.corners, px)
        refined = reference_predictor.refine(decoded, guess)
        refined = reference_predictor.refine(decoded, refined.corners)  # the served 2nd pass
        size = [[photo.width, photo.height]]
        before.append(corner_errors_400(guess[None], photo.corners[None], size).mean())
        after.append(corner_errors_400(refined.corners[None], photo.corners[None], size).mean())
    assert np.mean(after) < 0.5 * np.mean(before), (np.mean(before), np.mean(after))
    assert np.median(after) < 2.0


def test_a_quad_named_180_degrees_wrong_comes_back_correctly_named(reference_predictor,
                                                                    held_out_photos):
    right = 0
    for photo in held_out_photos:
        turned = np.roll(photo.corners, 2, axis=0)
        refined = reference_predictor.refine(decode(photo.jpeg), turned)
        assert refined.upside_down > 0.5 or np.argmin(
            np.linalg.norm(refined.corners[0] - photo.corners, axis=1)) == 0
        right += np.argmin(np.linalg.norm(refined.corners[0] - photo.corners, axis=1)) == 0
    assert right == len(held_out_photos)


def _background_only() -> bytes:
    return scene_photo(np.random.default_rng([HELD_OUT_SEED, 1]), (1200, 900)).jpeg


@pytest.mark.parametrize("photo, kind", [
    (png_bytes(Image.new("RGB", (1200, 847), (128, 128, 128))), "image/png"),
    (jpeg_bytes(Image.fromarray(np.random.default_rng(3).integers(
        0, 256, (847, 1200, 3), dtype=np.uint8))), "image/jpeg"),
    (_background_only(), "image/jpeg"),
], ids=["uniform-grey", "noise", "desk-without-certificate"])
def test_photos_without_a_certificate_are_422_certificate_not_found(handler, photo, kind):
    status, body = invoke(handler, _event_with(photo, kind))
    assert status == 422, body
    assert body["error"]["code"] == "certificate_not_found"
    assert "confidence" in body["error"]["message"]


def test_threshold_comes_from_the_environment_when_set(handler, app_module, monkeypatch):
    photo = _event_with(_background_only(), "image/jpeg")
    monkeypatch.setattr(app_module, "MIN_CONFIDENCE", "0")
    status, body = invoke(handler, photo)
    assert status == 200 and 0 <= body["confidence"] <= 1, body
