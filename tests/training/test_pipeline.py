"""Train each stage one epoch on a handful of photos, export, check parity, the card and the
package."""

from __future__ import annotations

import io
import json
import shutil
import tarfile
from pathlib import Path

import keras
import numpy as np
import pytest
from certcorners.model_card import (
    CARD_FILE,
    LOCATOR_FILE,
    LOCATOR_KERAS_FILE,
    locator_file,
    sha256_file,
)
from certcorners.predictor import Predictor

from training.dataset import load_arrays
from training.evaluate import evaluate
from training.export import PARITY_TOLERANCE_PX, export
from training.locator import LocatorConfig, LocatorTrainConfig, build_locator, train_locator


@pytest.fixture(scope="module")
def trained_run(synthetic_set, tmp_path_factory):
    run = tmp_path_factory.mktemp("run")
    config = LocatorTrainConfig(train_dirs=(str(synthetic_set),), val_dir=str(synthetic_set),
                         out_dir=str(run), epochs=1, batch_size=4)
    return run, train_locator(config)


@pytest.fixture(scope="module")
def refiner_run(synthetic_set, tmp_path_factory):
    from training.refiner import CropConfig, RefinerTrainConfig, train_refiner

    run = tmp_path_factory.mktemp("refiner")
    config = RefinerTrainConfig(train_dirs=(str(synthetic_set),), val_dir=str(synthetic_set),
                                out_dir=str(run), epochs=1, batch_size=8,
                                crops=CropConfig(copies=2))
    return run, train_refiner(config)


def test_one_epoch_smoke_training_writes_its_artifacts(trained_run):
    run, metrics = trained_run
    assert metrics["epochs_run"] == 1 and metrics["train_examples"] == 6
    assert np.isfinite(metrics["val_corner_error_px"])
    for name in ("model.keras", "best.keras", "history.csv", "loss.png", "train_config.json"):
        assert (run / name).stat().st_size > 0
    header = (run / "history.csv").read_text().splitlines()[0]
    assert "val_loss" in header and "val_corner_error_px" in header


def test_export_package_parity_and_model_card(trained_run, synthetic_set):
    run, _ = trained_run
    package = export(run, synthetic_set, version="test-1", parity_photos=6)
    card = json.loads((run / "package" / CARD_FILE).read_text())
    assert card["version"] == "test-1"
    assert card["corner_order"] == ["top_left", "top_right", "bottom_right", "bottom_left"]
    assert card["input"]["shape"] == [1, 400, 400, 1]
    assert 50_000 < card["parameters"] < 150_000
    assert card["parity"]["float32_max_px"] <= PARITY_TOLERANCE_PX
    assert card["held_out_metrics"]["positives"] == 6
    for key in ("mean_corner_error_px", "p95_corner_error_px", "share_worst_corner_within_4px",
                "orientation_share"):
        assert key in card["held_out_metrics"]["stage1"]
    assert card["held_out_metrics"]["cascade"] is None  # no refiner in this package
    assert card["training"]["epochs"] == 1 and card["datasets"]["held_out"]
    assert len(card["git_commit"]) in (40, 7) or card["git_commit"] == "unknown"
    # Every file in the tarball is listed in the card with its sha256, and plain files only.
    with tarfile.open(package) as tar:
        members = {m.name: m for m in tar.getmembers()}
        assert all(m.isfile() for m in members.values())
        assert set(members) == set(card["files"]) | {CARD_FILE}
    for name, entry in card["files"].items():
        assert sha256_file(run / "package" / name) == entry["sha256"]
    assert (run / "evaluation" / "evaluation.json").exists()
    assert list((run / "evaluation").glob("worst-*.png"))


def test_evaluating_again_into_a_folder_leaves_only_this_run_s_overlays(trained_run,
                                                                       synthetic_set):
    run, _ = trained_run
    package = run / "package" / LOCATOR_FILE
    if not package.exists():
        export(run, synthetic_set, version="test-1", parity_photos=6)
    out = run / "evaluate-twice"
    out.mkdir()
    (out / "worst-00-from-an-earlier-run.png").write_bytes(b"stale")
    (out / "notes.txt").write_text("not ours to delete")
    metrics = evaluate(package, synthetic_set, out, worst=3)
    overlays = sorted(p.name for p in out.glob("worst-*.png"))
    assert overlays == sorted(w["overlay"] for w in metrics["worst"]) and len(overlays) == 3
    assert (out / "notes.txt").exists()


def test_served_flatbuffer_agrees_with_keras(trained_run, synthetic_set):
    import keras

    run, _ = trained_run
    if not (run / "package" / LOCATOR_FILE).exists():
        export(run, synthetic_set, version="test-2", parity_photos=6)
    model = keras.saving.load_model(run / "model.keras", compile=False)
    inputs, _ = load_arrays(synthetic_set)
    batch = inputs.astype(np.float32) / 255.0
    expected = model.predict(batch, verbose=0)
    predictor = Predictor(run / "package" / LOCATOR_FILE, num_threads=1)
    served = np.stack([predictor.locator.run(x) for x in batch])
    assert np.abs(served - expected).max() * 400 < PARITY_TOLERANCE_PX


def test_training_can_start_from_a_trained_model(trained_run, synthetic_set, tmp_path):
    import keras

    run, _ = trained_run
    config = LocatorTrainConfig(train_dirs=(str(synthetic_set),), val_dir=str(synthetic_set),
                         out_dir=str(tmp_path), epochs=1, batch_size=4, learning_rate=1e-9,
                         init_from=str(run / "model.keras"))
    train_locator(config)
    before = keras.saving.load_model(run / "model.keras", compile=False).get_weights()
    after = keras.saving.load_model(tmp_path / "model.keras", compile=False).get_weights()
    # A learning rate of 1e-9 leaves the conv kernels where the trained model had them.
    np.testing.assert_allclose(before[0], after[0], atol=1e-5)


def test_model_is_about_a_tenth_of_a_million_parameters():
    assert 80_000 < build_locator().count_params() < 120_000


@pytest.mark.parametrize("kwargs", [{"epochs": 0}, {"batch_size": 0}, {"learning_rate": 0},
                                    {"patience": 0}, {"init_from": "/no/such/model.keras"}])
def test_bad_training_config_is_a_value_error(kwargs):
    with pytest.raises(ValueError):
        LocatorTrainConfig(**kwargs)


def test_bad_model_config_is_a_value_error():
    with pytest.raises(ValueError):
        LocatorConfig(input_size=256)
    with pytest.raises(ValueError):
        LocatorConfig(filters=(8, 0))
    for strided_blocks in (-1, 7):
        with pytest.raises(ValueError, match="strided_blocks"):
            LocatorConfig(strided_blocks=strided_blocks)


def test_a_strided_locator_is_not_fine_tuned_as_a_pooled_one(tmp_path):
    strided = build_locator(LocatorConfig(strided_blocks=2))
    strided.save(tmp_path / "strided.keras")
    images = np.zeros((4, 400, 400, 1), np.uint8)
    targets = np.full((4, 8), 0.5, np.float32)
    config = LocatorTrainConfig(out_dir=str(tmp_path / "run"), epochs=1, batch_size=4,
                         init_from=str(tmp_path / "strided.keras"))
    with pytest.raises(ValueError, match="--strided-blocks 2"):
        train_locator(config, datasets=((images, targets), (images, targets)))


def test_a_locator_of_other_widths_is_not_started_from(tmp_path):
    narrow = LocatorConfig(filters=(8, 12, 16, 24, 48, 96), strided_blocks=3)
    build_locator(narrow).save(tmp_path / "narrow.keras")
    images = np.zeros((4, 400, 400, 1), np.uint8)
    targets = np.full((4, 8), 0.5, np.float32)
    config = LocatorTrainConfig(out_dir=str(tmp_path / "run"), epochs=1, batch_size=4,
                                init_from=str(tmp_path / "narrow.keras"),
                                model=LocatorConfig(strided_blocks=3))
    with pytest.raises(ValueError, match=r"\[8, 12, 16, 24, 48, 96\] wide.*--filters"):
        train_locator(config, datasets=((images, targets), (images, targets)))
    assert not (tmp_path / "run" / "model.keras").exists()


def test_filters_on_the_command_line_shape_the_network():
    from training.__main__ import parser

    args = parser().parse_args(["train-locator", "--train", "a", "--val", "b", "--out", "c",
                                "--filters", "8,12,16,24,48,96"])
    assert args.filters == (8, 12, 16, 24, 48, 96)
    for bad in ("8,0,16", "8,x"):
        with pytest.raises(SystemExit):
            parser().parse_args(["train-refiner", "--train", "a", "--val", "b", "--out", "c",
                                 "--filters", bad])


def test_strided_locator_takes_a_pooled_locators_weights_at_a_fraction_of_the_cost():
    from training.fit import multiply_accumulates
    from training.locator import strided_blocks

    pooled, strided = build_locator(), build_locator(LocatorConfig(strided_blocks=2))
    assert (strided_blocks(pooled), strided_blocks(strided)) == (0, 2)
    strided.set_weights(pooled.get_weights())  # what --init-from does
    assert strided.count_params() == pooled.count_params()
    image = np.random.default_rng(0).random((1, 400, 400, 1), dtype=np.float32)
    assert strided.predict(image, verbose=0).shape == (1, 8)
    # The first two blocks held ~46 % of the pooled model's multiply-accumulates.
    assert multiply_accumulates(strided) < 0.7 * multiply_accumulates(pooled)


def test_refiner_guesses_stray_as_far_as_configured():
    from training.refiner import GuessErrors

    truth = np.array([[100.0, 100.0], [220.0, 100.0], [220.0, 118.0], [100.0, 118.0]])
    rng = np.random.default_rng(0)

    def mean_shift(errors):
        return np.mean([np.abs(errors.perturb(rng, truth, 1.0).mean(0) - truth.mean(0)).mean()
                        for _ in range(2000)])

    narrow = mean_shift(GuessErrors(upside_down=0))
    wide = mean_shift(GuessErrors(shift=8.0, wide_shift=18.0, upside_down=0))
    assert 1.8 < wide / narrow < 2.2  # both sigmas doubled
    with pytest.raises(ValueError):
        GuessErrors(shift=-1)
    with pytest.raises(ValueError):
        GuessErrors(upside_down=1.5)


def test_refiner_crops_come_only_from_guesses_serving_would_refine(synthetic_set):
    """Far-off guesses fold or collapse now and then; such a crop (serving never cuts one)
    would carry targets thousands of pixels outside it."""
    from certcorners import refine

    from training.dataset import read_examples
    from training.refiner import CropConfig, GuessErrors
    from training.refiner.crops import _crops_of

    config = CropConfig(copies=40, errors=GuessErrors(shift=10.0, wide_shift=30.0, corner=8.0))
    examples = [e for e in read_examples(synthetic_set) if e.corners is not None]
    for index, example in enumerate(examples):
        crops, targets = _crops_of((example, config, index))
        with_number = targets[:, 9] == 1
        assert with_number.sum() >= 0.9 * config.copies
        assert crops.shape[1:] == (refine.CROP_HEIGHT, refine.CROP_WIDTH, 1)
        corners = targets[with_number, :8].reshape(-1, 4, 2) * refine.CROP_SCALE
        # Such shifts reach outside the crop, but never beyond a crop's width.
        assert np.abs(corners - refine.CROP_BOX).max() < refine.CROP_WIDTH
    with pytest.raises(ValueError, match="rectangles"):
        CropConfig(rectangles=1.5)


def test_wide_refiner_guesses_are_cut_around_serving_s_first_rectangle():
    from certcorners import refine

    from training.refiner import CropConfig
    from training.refiner.crops import _guess

    truth = np.array([[100.0, 100.0], [220.0, 100.0], [220.0, 120.0], [100.0, 120.0]])
    rng = np.random.default_rng(0)
    for rectangles, fine in ((1.0, False), (0.0, False), (1.0, True)):
        guess = _guess(rng, CropConfig(rectangles=rectangles), truth, 1.0, (800, 600), fine)
        is_rectangle = np.allclose(guess, refine.first_guess(guess))
        assert is_rectangle == (rectangles == 1.0 and not fine)


def test_train_without_data_is_a_value_error(tmp_path):
    with pytest.raises(ValueError, match="train_dirs"):
        train_locator(LocatorTrainConfig(out_dir=str(tmp_path)))


def test_export_without_a_trained_model_is_a_value_error(tmp_path, synthetic_set):
    with pytest.raises(ValueError, match="train first"):
        export(tmp_path, synthetic_set)


def test_refiner_smoke_training_writes_its_artifacts(refiner_run):
    run, metrics = refiner_run
    # 6 photos x (2 guesses + 1 crop of other print): 12 crops hold the number.
    assert metrics["train_crops"] == 18 and metrics["train_crops_with_number"] == 12
    assert np.isfinite(metrics["val_crop_corner_error_px"])
    for name in ("model.keras", "best.keras", "history.csv", "loss.png"):
        assert (run / name).stat().st_size > 0


def test_two_stage_package_lists_both_networks_with_parity_and_a_threshold(
        trained_run, refiner_run, synthetic_set, tmp_path):

    from certcorners.model_card import REFINER_FILE
    from certcorners.model_store import open_package, predictor_for

    run = tmp_path / "run"
    shutil.copytree(trained_run[0], run, ignore=shutil.ignore_patterns("package", "backup"))
    package = export(run, synthetic_set, version="test-cascade", parity_photos=6,
                     refiner_run=refiner_run[0], val_dir=synthetic_set)
    card = json.loads((run / "package" / CARD_FILE).read_text())
    assert {LOCATOR_FILE, REFINER_FILE} <= set(card["files"])
    for name in (LOCATOR_FILE, REFINER_FILE):
        assert card["files"][name]["sha256"] == sha256_file(run / "package" / name)
    assert card["refiner_model"] == REFINER_FILE
    assert card["refiner_input"]["shape"] == [1, 72, 192, 1]
    assert card["parity"]["refiner"]["float32_max_crop_px"] <= PARITY_TOLERANCE_PX
    assert 0 <= card["confidence_threshold"] <= 1
    assert card["confidence_threshold_choice"]["dataset"] == str(synthetic_set)
    assert card["held_out_metrics"]["cascade"]["photos"] == 6
    assert card["parameters"] + card["refiner_parameters"] < 500_000
    # The package serves through the function's own loader, with a confidence per answer.
    folder = tmp_path / "served"
    served_card = open_package(package, folder)
    predictor = predictor_for(folder, served_card, num_threads=1)
    photo = next(synthetic_set.glob("*.jpg")).read_bytes()
    prediction = predictor.predict(photo)
    assert prediction.corners.shape == (4, 2) and 0 <= prediction.confidence <= 1
    # The refiner's Keras model is a training file beside the package (serving never loads
    # it), and is what a run started from the package loads; a new locator reusing this
    # package's refiner carries it on.
    from training.refiner import REFINER_KERAS_FILE, RefinerConfig, initial_refiner

    assert REFINER_KERAS_FILE not in card["files"]
    assert card["training_files"][REFINER_KERAS_FILE]["sha256"] == sha256_file(
        run / "package" / REFINER_KERAS_FILE)
    trained = keras.saving.load_model(refiner_run[0] / "model.keras", compile=False)
    started = initial_refiner(package, RefinerConfig(), np.zeros((1, 72, 192, 1), np.uint8))
    for a, b in zip(trained.get_weights(), started.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    reused_folder = tmp_path / "reused"
    reused_folder.mkdir()
    reused = reused_folder / "model.tar.gz"
    reused.write_bytes(package.read_bytes())
    shutil.copy2(run / "package" / REFINER_KERAS_FILE, reused_folder)
    again = tmp_path / "again"
    shutil.copytree(trained_run[0], again, ignore=shutil.ignore_patterns("package", "backup"))
    export(again, synthetic_set, version="test-reused", parity_photos=6,
           refiner_package=reused, val_dir=synthetic_set)
    for name in (REFINER_FILE, REFINER_KERAS_FILE):
        assert sha256_file(again / "package" / name) == sha256_file(run / "package" / name)


def test_export_with_a_refiner_needs_validation_data(trained_run, refiner_run, synthetic_set):
    with pytest.raises(ValueError, match="val_dir"):
        export(trained_run[0], synthetic_set, refiner_run=refiner_run[0])


def test_a_resumed_run_keeps_its_best_score_and_the_patience_spent(tmp_path):
    import keras

    from training.fit import ResumableEarlyStopping, fit_callbacks

    (tmp_path / "backup").mkdir()  # what BackupAndRestore leaves when a run is interrupted
    (tmp_path / "history.csv").write_text(
        "epoch,loss,val_loss\n0,1.0,0.50\n1,0.9,0.40\n2,0.8,0.45\n3,0.7,0.47\n")
    callbacks = fit_callbacks(tmp_path, patience=3)
    checkpoint = next(c for c in callbacks if isinstance(c, keras.callbacks.ModelCheckpoint))
    assert checkpoint.best == pytest.approx(0.40)  # a worse epoch cannot overwrite best.keras
    stopper = next(c for c in callbacks if isinstance(c, ResumableEarlyStopping))
    stopper.set_model(build_locator())
    stopper.on_train_begin()
    assert stopper.best == pytest.approx(0.40) and stopper.wait == 2
    stopper.on_epoch_end(4, {"val_loss": 0.46})  # the third epoch without improvement
    assert stopper.model.stop_training


def test_a_fresh_run_starts_a_fresh_history(tmp_path):
    import keras

    from training.fit import fit_callbacks

    (tmp_path / "history.csv").write_text("epoch,loss,val_loss\n0,1.0,0.10\n")
    callbacks = fit_callbacks(tmp_path, patience=3)
    assert not (tmp_path / "history.csv").exists()
    checkpoint = next(c for c in callbacks if isinstance(c, keras.callbacks.ModelCheckpoint))
    assert checkpoint.best is None  # no threshold: the first epoch is the best so far


def _card_in(package) -> dict:
    with tarfile.open(package) as tar:
        return json.loads(tar.extractfile(CARD_FILE).read())


def test_a_new_locator_ships_with_an_earlier_package_s_refiner_byte_for_byte(
        trained_run, synthetic_set, reference_package, tmp_path):

    run = tmp_path / "run"
    shutil.copytree(trained_run[0], run, ignore=shutil.ignore_patterns("package"))
    package = export(run, synthetic_set, version="test-reuse", parity_photos=6,
                     refiner_package=reference_package, val_dir=synthetic_set)
    card, earlier = _card_in(package), _card_in(reference_package)
    name = earlier["refiner_model"]
    assert card["files"][name]["sha256"] == earlier["files"][name]["sha256"]
    assert card["refiner_from_package"] == {"version": earlier["version"],
                                            "sha256": earlier["files"][name]["sha256"]}
    assert card["refiner_parameters"] == earlier["refiner_parameters"]
    assert card["name"].endswith("locator and refiner")
    assert card["parity"]["refiner"] == earlier["parity"]["refiner"]
    # The threshold is chosen anew, on this export's validation folder, for this locator.
    assert card["confidence_threshold_choice"]["dataset"] == str(synthetic_set)
    assert 0 < card["confidence_threshold"] <= 1
    assert card["held_out_metrics"]["cascade"] is not None


def test_a_threshold_fixed_beforehand_is_the_one_the_package_carries(
        trained_run, synthetic_set, reference_package, tmp_path):

    run = tmp_path / "run"
    shutil.copytree(trained_run[0], run, ignore=shutil.ignore_patterns("package"))
    package = export(run, synthetic_set, version="test-fixed", parity_photos=6,
                     refiner_package=reference_package, val_dir=synthetic_set,
                     threshold=0.9998)
    card = _card_in(package)
    choice = card["confidence_threshold_choice"]
    assert card["confidence_threshold"] == 0.9998 == choice["threshold"]
    assert choice["rule"] == "fixed by the export's --threshold"
    assert choice["dataset"] == str(synthetic_set)
    # The validation figures at it are recorded, as for a chosen threshold (this folder
    # has no photo without a certificate, so no share of those).
    assert 0 <= choice["positives_refused_share"] <= 1
    assert "negatives_refused_share" not in choice
    assert card["held_out_metrics"]["threshold"] == 0.9998


@pytest.mark.parametrize("threshold", [0.0, 1.0, 1.5, -0.1, float("nan")])
def test_a_threshold_outside_0_to_1_is_refused_before_anything_is_written(
        trained_run, synthetic_set, reference_package, threshold):
    before = sorted(p.name for p in trained_run[0].iterdir())
    with pytest.raises(ValueError, match="threshold must be in"):
        export(trained_run[0], synthetic_set, refiner_package=reference_package,
               val_dir=synthetic_set, threshold=threshold)
    assert sorted(p.name for p in trained_run[0].iterdir()) == before


def test_a_threshold_without_a_refiner_is_a_value_error(trained_run, synthetic_set):
    with pytest.raises(ValueError, match="needs a refiner"):
        export(trained_run[0], synthetic_set, threshold=0.9)


def test_a_refiner_to_reuse_must_be_a_package_with_one(trained_run, synthetic_set, tmp_path):
    run, _ = trained_run
    stage1_only = run / "package" / "model.tar.gz"
    if not stage1_only.exists():
        export(run, synthetic_set, version="test-3", parity_photos=6)
    copy = tmp_path / "stage1-only.tar.gz"
    copy.write_bytes(stage1_only.read_bytes())
    corrupt = tmp_path / "corrupt.tar.gz"
    corrupt.write_bytes(b"not a tarball")
    for package, message in ((copy, "has no refiner"), (corrupt, "corrupt"),
                             (tmp_path / "missing.tar.gz", "not a model.tar.gz")):
        with pytest.raises(ValueError, match=message):
            export(run, synthetic_set, refiner_package=package, val_dir=synthetic_set)
        # Refused before anything was written: the last export is still there.
        assert stage1_only.read_bytes() == copy.read_bytes()
    with pytest.raises(ValueError, match="not both"):
        export(run, synthetic_set, refiner_package=copy, refiner_run=run,
               val_dir=synthetic_set)


def test_a_recarded_package_keeps_its_networks_and_a_card_that_says_what_serving_answers(
        reference_package, synthetic_set, tmp_path):
    from certcorners.model_store import open_package

    from training.export import recard

    out = tmp_path / "recard"
    package = recard(reference_package, out, synthetic_set, "test-recard",
                     val_dir=synthetic_set, report=(synthetic_set,), why="a serving change")
    card, earlier = _card_in(package), _card_in(reference_package)
    # The same bytes, each file named by its stage (an older package's locator was
    # model.tflite under `serving_model`, its Keras model model.keras).
    named = {locator_file(earlier): LOCATOR_FILE, "model-int8.tflite": "locator-int8.tflite",
             "model.keras": LOCATOR_KERAS_FILE}
    assert card["locator_model"] == LOCATOR_FILE and "serving_model" not in card
    assert card["files"] == {named.get(n, n): entry for n, entry in earlier["files"].items()}
    # Its training files (the Keras locator) are carried on beside it, not inside.
    assert card["training_files"] == {named.get(n, n): entry
                                      for n, entry in earlier["training_files"].items()}
    assert LOCATOR_KERAS_FILE in card["training_files"]
    assert sha256_file(out / "package" / LOCATOR_KERAS_FILE) == card["training_files"][
        LOCATOR_KERAS_FILE]["sha256"]
    with tarfile.open(package) as new, tarfile.open(reference_package) as old:
        assert sorted(new.getnames()) == sorted([*card["files"], "model_card.json"])
        for name in earlier["files"]:
            assert new.extractfile(named.get(name, name)).read() == old.extractfile(
                name).read()
    assert card["version"] == "test-recard"
    assert card["recarded_from"]["version"] == earlier["version"]
    assert card["recarded_from"]["sha256"] == sha256_file(reference_package)
    assert card["recarded_from"]["why"] == "a serving change"
    assert card["confidence_threshold"] == earlier["confidence_threshold"]
    served = card["confidence_threshold_choice"]["as_served_with_second_look"]
    assert served["dataset"] == str(synthetic_set)
    # The card's figures are what evaluating the new package through serving's loader gives.
    again = evaluate(package, synthetic_set, tmp_path / "again")
    assert card["held_out_metrics"]["cascade"] == again["cascade"]
    assert card["held_out_metrics"]["cascade"]["photos"] == 6
    assert card["evaluation_only_metrics"][str(synthetic_set)]["cascade"] == again["cascade"]
    evaluation = json.loads((out / "evaluation" / "evaluation.json").read_text())
    assert evaluation["model_version"] == "test-recard"
    assert open_package(package, tmp_path / "served")["version"] == "test-recard"


def _as_older_package(package: Path, folder: Path) -> Path:
    """`package` as packages before 2026-12-06 named its locator: model.tflite under
    `serving_model`, model.keras beside it; the same bytes."""
    folder.mkdir(parents=True)
    card = _card_in(package)
    old_names = {locator_file(card): "model.tflite"}
    card["files"] = {old_names.get(n, n): e for n, e in card["files"].items()}
    card["training_files"] = {"model.keras" if n == LOCATOR_KERAS_FILE else n: e
                              for n, e in card["training_files"].items()}
    del card["locator_model"]
    card["serving_model"] = "model.tflite"
    with tarfile.open(package) as new, tarfile.open(folder / "model.tar.gz", "w:gz") as old:
        for member in new.getmembers():
            data = (json.dumps(card).encode() if member.name == CARD_FILE
                    else new.extractfile(member).read())
            info = tarfile.TarInfo(old_names.get(member.name, member.name))
            info.size = len(data)
            old.addfile(info, io.BytesIO(data))
    shutil.copy2(package.parent / LOCATOR_KERAS_FILE, folder / "model.keras")
    for name in card["training_files"]:  # the other training files, as they are
        if name != "model.keras":
            shutil.copy2(package.parent / name, folder / name)
    return folder / "model.tar.gz"


def test_recarding_an_older_package_names_its_locator_files_by_the_stage(
        reference_package, synthetic_set, tmp_path):
    from training.export import recard

    older = _as_older_package(reference_package, tmp_path / "older")
    assert _card_in(older)["serving_model"] == "model.tflite"
    package = recard(older, tmp_path / "recard", synthetic_set, "test-renamed",
                     val_dir=synthetic_set)
    card, today = _card_in(package), _card_in(reference_package)
    assert card["locator_model"] == LOCATOR_FILE and "serving_model" not in card
    assert card["files"][LOCATOR_FILE] == today["files"][LOCATOR_FILE]
    assert "model.tflite" not in card["files"]
    assert card["training_files"] == today["training_files"]
    assert sha256_file(package.parent / LOCATOR_KERAS_FILE) == card["training_files"][
        LOCATOR_KERAS_FILE]["sha256"]
    with tarfile.open(package) as new:
        assert LOCATOR_FILE in new.getnames() and "model.tflite" not in new.getnames()


def test_recarding_refuses_a_missing_package_its_own_version_and_no_validation_data(
        reference_package, synthetic_set, tmp_path):
    from training.export import recard

    version = _card_in(reference_package)["version"]
    for kwargs, message in (
            ({"package": tmp_path / "missing.tar.gz"}, "not a model.tar.gz"),
            ({"version": version}, "already"),
            ({"val_dir": None}, "val_dir")):
        arguments = {"package": reference_package, "out_dir": tmp_path / "out",
                     "test_dir": synthetic_set, "version": "test-2", "val_dir": synthetic_set,
                     **kwargs}
        with pytest.raises(ValueError, match=message):
            recard(**arguments)


def test_a_new_refiner_ships_with_an_earlier_package_s_locator_byte_for_byte(
        trained_run, refiner_run, synthetic_set, reference_package, tmp_path):
    out = tmp_path / "new-folder"
    package = export(out, synthetic_set, version="test-locator-reuse", parity_photos=6,
                     locator_package=reference_package, refiner_run=refiner_run[0],
                     val_dir=synthetic_set)
    card, earlier = _card_in(package), _card_in(reference_package)
    earlier_locator = earlier["files"][locator_file(earlier)]["sha256"]
    assert card["locator_model"] == LOCATOR_FILE
    assert card["files"][LOCATOR_FILE]["sha256"] == earlier_locator
    # The Keras locator is a training file beside the package (older packages held it, as
    # model.keras).
    earlier_files = {**earlier["files"], **earlier.get("training_files", {})}
    earlier_keras = earlier_files.get(LOCATOR_KERAS_FILE) or earlier_files["model.keras"]
    assert LOCATOR_KERAS_FILE not in card["files"]
    assert card["training_files"][LOCATOR_KERAS_FILE]["sha256"] == earlier_keras["sha256"]
    assert sha256_file(package.parent / LOCATOR_KERAS_FILE) == earlier_keras["sha256"]
    assert card["locator_from_package"] == {"version": earlier["version"],
                                            "sha256": earlier_locator}
    assert card["training"] == earlier["training"]
    assert card["datasets"]["train"] == earlier["datasets"]["train"]
    assert card["datasets"]["held_out"][0]["folder"] == str(synthetic_set)
    assert card["parity"]["float32_max_px"] <= PARITY_TOLERANCE_PX
    assert card["refiner_training"]["out_dir"] == str(refiner_run[0])
    # A run's own locator is never overwritten, and the package must be one.
    with pytest.raises(ValueError, match="holds a trained locator"):
        export(trained_run[0], synthetic_set, locator_package=reference_package)
    with pytest.raises(ValueError, match="not a model.tar.gz"):
        export(tmp_path / "other", synthetic_set, locator_package=tmp_path / "missing.tar.gz")
