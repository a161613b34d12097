"""Hard negatives for the refiner's presence head: on photos without a certificate, the print a
package's cascade is surest is a number, cut as crops that say "no number"."""

from __future__ import annotations

import numpy as np
import pytest
from certcorners import refine
from certcorners.preprocessing import decode

from tests.conftest import HELD_OUT
from training.dataset import read_examples
from training.refiner import CropConfig, RefinerTrainConfig, hard_negative_quads, train_refiner
from training.refiner.crops import _crops_of, _random_quad


@pytest.fixture(scope="module")
def examples():
    """The committed held-out photos: one certificate and the desk without one."""
    by_name = {e.path.name: e for e in read_examples(HELD_OUT)}
    return by_name["000000.jpg"], by_name["desk-without-certificate.jpg"]


def test_hard_negatives_are_print_the_refiner_takes_for_a_number(reference_predictor,
                                                                 examples):
    _, desk = examples
    decoded = decode(desk.path.read_bytes())
    size = (desk.width, desk.height)
    mined = hard_negative_quads(reference_predictor, decoded, 3)
    assert len(mined) == 3 and all(refine.is_plausible(q, size) for q in mined)
    rng = np.random.default_rng(0)
    at_random = [_random_quad(rng, *size) for _ in range(20)]

    def sureness(quads):
        return [reference_predictor.refine(decoded, q).confidence for q in quads]

    # The mined quads are the desk's print likeliest to pass for a number: the surest of them
    # beats every random crop, and on average they are far surer. (How sure depends on the
    # refiner: one taught such print reads them low, docs/model-history.md.)
    mined_sureness, random_sureness = sureness(mined), sureness(at_random)
    assert max(mined_sureness) > max(random_sureness)
    assert np.mean(mined_sureness) > 2 * np.mean(random_sureness)


def test_photos_without_a_certificate_get_the_hard_negatives_as_crops_without_a_number(
        reference_package, examples):
    certificate, desk = examples
    plain = CropConfig(copies=3, negatives_per_photo=2, seed=5)
    hard = CropConfig(copies=3, negatives_per_photo=2, seed=5, hard_negatives=3,
                      hard_negatives_from=str(reference_package))
    _, desk_plain = _crops_of((desk, plain, 1))
    crops, desk_hard = _crops_of((desk, hard, 1))
    assert len(desk_plain) == 2 and len(desk_hard) == 5 and len(crops) == 5
    assert not desk_hard[:, 9].any()  # none says a number is there
    np.testing.assert_array_equal(desk_hard[:2], desk_plain)  # the random ones are unchanged
    # A photo with a certificate gets the same crops with or without hard negatives.
    np.testing.assert_array_equal(_crops_of((certificate, plain, 0))[1],
                                  _crops_of((certificate, hard, 0))[1])


def test_hard_negatives_need_a_package_that_exists(tmp_path):
    with pytest.raises(ValueError, match="hard_negatives must be >= 0"):
        CropConfig(hard_negatives=-1)
    with pytest.raises(ValueError, match="needs hard_negatives_from"):
        CropConfig(hard_negatives=2)
    missing = tmp_path / "no-such" / "model.tar.gz"
    config = RefinerTrainConfig(train_dirs=(str(HELD_OUT),), val_dir=str(HELD_OUT),
                                out_dir=str(tmp_path / "run"), crops=CropConfig(
                                    hard_negatives=2, hard_negatives_from=str(missing)))
    with pytest.raises(ValueError, match="no such package file"):
        train_refiner(config)
    assert not (tmp_path / "run").exists()  # refused before anything was written
