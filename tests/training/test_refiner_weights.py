"""Where a refiner run starts: a package's refiner (its Keras model beside it, or rebuilt
from its LiteRT flatbuffer), and a pooled refiner's weights in a strided, cheaper one."""

from __future__ import annotations

import io
import json
import tarfile

import keras
import numpy as np
import pytest
from certcorners import refine
from certcorners.predictor import _Network
from certcorners.preprocessing import unit_range

from training.export import PARITY_TOLERANCE_PX
from training.fit import multiply_accumulates
from training.publish import read_card
from training.refiner import (
    CropConfig,
    RefinerConfig,
    RefinerTrainConfig,
    build_refiner,
    initial_refiner,
    load_crops,
    train_refiner,
)
from training.refiner.conversion import package_design


@pytest.fixture(scope="module")
def crops(synthetic_set):
    crops, _ = load_crops(synthetic_set, CropConfig(copies=4, seed=3))
    return crops


@pytest.fixture(scope="module")
def package_flatbuffer(reference_package, tmp_path_factory):
    folder = tmp_path_factory.mktemp("package")
    with tarfile.open(reference_package) as tar:
        tar.extract("refiner.tflite", folder)
    return _Network(folder / "refiner.tflite", [1, refine.CROP_HEIGHT, refine.CROP_WIDTH, 1], 1)


def _crop_px(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per-corner distance between two sets of refiner outputs, in crop pixels."""
    return np.linalg.norm((a - b)[:, :8].reshape(-1, 4, 2) * refine.CROP_SCALE, axis=-1)


@pytest.fixture(scope="module")
def design(reference_package):
    """The reference refiner's design (widths, strided blocks), as its card records it."""
    return package_design(read_card(reference_package))


@pytest.fixture(scope="module")
def flatbuffer_only_package(reference_package, tmp_path_factory):
    """The reference package as packages without a Keras refiner beside them were
    (reference-20261122e's): its card names no refiner.keras."""
    path = tmp_path_factory.mktemp("flatbuffer-only") / "model.tar.gz"
    with tarfile.open(reference_package) as source, tarfile.open(path, "w:gz") as out:
        for member in source.getmembers():
            data = source.extractfile(member).read()
            if member.name == "model_card.json":
                card = json.loads(data)
                card["training_files"].pop("refiner.keras")
                data = json.dumps(card).encode()
            info = tarfile.TarInfo(member.name)
            info.size = len(data)
            out.addfile(info, io.BytesIO(data))
    return path


def test_a_package_s_refiner_comes_back_as_a_keras_model_that_answers_as_it_does(
        flatbuffer_only_package, package_flatbuffer, crops, design):
    model = initial_refiner(flatbuffer_only_package, design, crops)
    x = unit_range(crops)
    served = np.stack([package_flatbuffer.run(c) for c in x])
    inference = model.predict(x, verbose=0)
    assert _crop_px(inference, served).max() <= PARITY_TOLERANCE_PX
    assert np.abs(inference - served)[:, 8:].max() <= 1e-3
    # In training mode a batch of such crops is normalised as the flatbuffer's was: a
    # fine-tuning run starts where the package is, not from shifted activations.
    training = np.asarray(model(x, training=True))
    assert _crop_px(training, served).mean() <= PARITY_TOLERANCE_PX


def test_a_package_with_its_keras_refiner_beside_it_starts_from_that_file(
        reference_package, package_flatbuffer, crops, design):
    model = initial_refiner(reference_package, design, crops)
    beside = keras.saving.load_model(reference_package.parent / "refiner.keras", compile=False)
    for ours, theirs in zip(model.get_weights(), beside.get_weights(), strict=True):
        np.testing.assert_array_equal(ours, theirs)
    x = unit_range(crops)
    served = np.stack([package_flatbuffer.run(c) for c in x])
    assert _crop_px(model.predict(x, verbose=0), served).max() <= PARITY_TOLERANCE_PX


def test_a_strided_refiner_takes_a_pooled_one_s_weights_at_half_the_cost(crops, tmp_path):
    build_refiner(RefinerConfig()).save(tmp_path / "pooled.keras")
    pooled = initial_refiner(tmp_path / "pooled.keras", RefinerConfig(), crops)
    strided = initial_refiner(tmp_path / "pooled.keras", RefinerConfig(strided_blocks=2), crops)
    for a, b in zip(pooled.get_weights(), strided.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    assert multiply_accumulates(strided) < 0.5 * multiply_accumulates(pooled)
    assert strided.predict(unit_range(crops[:2]), verbose=0).shape == (2, refine.OUTPUT_SIZE)


def test_a_strided_refiner_is_not_fine_tuned_as_a_pooled_one(crops, tmp_path):
    build_refiner(RefinerConfig(strided_blocks=2)).save(tmp_path / "strided.keras")
    with pytest.raises(ValueError, match="--strided-blocks 2"):
        initial_refiner(tmp_path / "strided.keras", RefinerConfig(strided_blocks=1), crops)


def test_a_refiner_of_other_widths_is_not_started_from(crops, tmp_path):
    narrow = RefinerConfig(filters=(12, 16, 24, 32, 48), strided_blocks=2)
    build_refiner(narrow).save(tmp_path / "narrow.keras")
    with pytest.raises(ValueError, match="--filters"):
        initial_refiner(tmp_path / "narrow.keras", RefinerConfig(strided_blocks=2), crops)
    assert initial_refiner(tmp_path / "narrow.keras", narrow, crops).count_params() == (
        build_refiner(narrow).count_params())


@pytest.mark.parametrize("strided_blocks", [-1, 3])
def test_a_refiner_strides_at_most_two_blocks(strided_blocks):
    with pytest.raises(ValueError, match="strided_blocks"):
        RefinerConfig(strided_blocks=strided_blocks)


def test_a_package_to_start_from_must_hold_a_verified_refiner(reference_package, crops,
                                                             tmp_path):
    corrupt = tmp_path / "corrupt.tar.gz"
    corrupt.write_bytes(b"not a tarball")
    locator_only = tmp_path / "locator-only.tar.gz"
    with tarfile.open(reference_package) as source, tarfile.open(locator_only, "w:gz") as out:
        card = json.loads(source.extractfile("model_card.json").read())
        card.pop("refiner_model")
        card["files"].pop("refiner.tflite")
        for member in source.getmembers():
            if member.name == "model_card.json":
                data = json.dumps(card).encode()
                member.size = len(data)
                out.addfile(member, io.BytesIO(data))
            elif member.name != "refiner.tflite":
                out.addfile(member, source.extractfile(member))
    for package, message in ((corrupt, "corrupt"), (locator_only, "has no refiner")):
        with pytest.raises(ValueError, match=message):
            initial_refiner(package, RefinerConfig(), crops)


def test_a_run_from_a_package_starts_where_the_package_is(reference_package,
                                                          package_flatbuffer, synthetic_set,
                                                          design, tmp_path):
    # A learning rate too small to move anything: the run's model answers as the package does.
    config = RefinerTrainConfig(train_dirs=(str(synthetic_set),), val_dir=str(synthetic_set),
                                out_dir=str(tmp_path / "run"), epochs=1, batch_size=8,
                                learning_rate=1e-9, crops=CropConfig(copies=2),
                                init_from=str(reference_package), model=design)
    train_refiner(config)
    trained = keras.saving.load_model(tmp_path / "run" / "model.keras", compile=False)
    val_crops, _ = load_crops(synthetic_set, CropConfig(copies=2, seed=1))
    x = unit_range(val_crops)
    served = np.stack([package_flatbuffer.run(c) for c in x])
    # Only the batch norms' moving statistics move, towards batches of 8 crops: a few
    # hundredths of a crop pixel, where a refiner not started from the package is pixels off.
    assert _crop_px(trained.predict(x, verbose=0), served).mean() <= 0.25
    assert _crop_px(build_refiner().predict(x, verbose=0), served).mean() > 2.0
