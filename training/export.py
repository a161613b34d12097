"""Export trained runs: stage 1 (and the refiner, when given) .keras -> LiteRT flatbuffers,
parity checks, the refusal threshold chosen on the project's own validation set, held-out
evaluation, one model card, and one model.tar.gz (what publish uploads and the function
serves)."""

from __future__ import annotations

import datetime as dt
import io
import json
import shutil
import subprocess
import tarfile
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf
from certcorners import refine
from certcorners.model_card import (
    CARD_FILE,
    CARD_FINDER_FILE,
    LEGACY_LOCATOR_INT8_FILE,
    LEGACY_LOCATOR_KERAS_FILE,
    LEGACY_LOCATOR_KEY,
    LOCATOR_FILE,
    LOCATOR_INT8_FILE,
    LOCATOR_KERAS_FILE,
    PACKAGE_FILE,
    READER_FILE,
    REFINER_FILE,
    locator_file,
    sha256_file,
)
from certcorners.model_store import predictor_for
from certcorners.policy import CascadePolicy
from certcorners.predictor import Predictor, _Network
from certcorners.preprocessing import CORNER_NAMES, INPUT_SIZE, unit_range

from training import RUN_MODEL_FILE
from training.dataset import load_arrays
from training.evaluate import evaluate, run_folder, summarize
from training.fit import multiply_accumulates
from training.packages import locator_keras_file, open_verified, training_file, verified_package
from training.refiner import REFINER_KERAS_FILE, CropConfig, load_crops

# A reading less likely than not is never given, however validation went.
READER_THRESHOLD_FLOOR = 0.5
# float32 LiteRT and Keras run the same arithmetic in a different order (fused batch norm,
# other kernels): they differ by float rounding, ~1e-5 of the output. 0.05 px at the 400-px
# scale is 40x the 1.2e-3 px that rounding can explain yet 40x below the 2-px target, so
# it catches a wrong export (transposed layout, missing normalisation) and nothing else.
PARITY_TOLERANCE_PX = 0.05
# The int8 variant ships only when quantisation moves corners this little on average.
INT8_TOLERANCE_PX = 0.2


def to_tflite(model: keras.Model, int8_weights: bool = False) -> bytes:
    """A LiteRT flatbuffer; int8_weights = dynamic-range quantisation (int8 weights)."""
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    if int8_weights:
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    return converter.convert()


def corner_deviation_px(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per-corner distance between two sets of model outputs, in pixels of the 400 input."""
    return np.linalg.norm((a - b).reshape(-1, 4, 2) * INPUT_SIZE, axis=-1)


def _run_tflite(path: Path, inputs: np.ndarray) -> np.ndarray:
    predictor = Predictor(path, num_threads=1)
    return np.stack([predictor.locator.run(unit_range(x)) for x in inputs])


def git_commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def choose_threshold(positive_confidence: np.ndarray, negative_confidence: np.ndarray) -> dict:
    """The refusal threshold that best separates, on validation photos, those with a
    certificate (accepted) from those without (refused): the highest balanced accuracy, the
    lower threshold on a tie. A certificate refused is often one whose number stage 1 missed,
    where a refusal is the right answer; the figures at the chosen value are recorded."""
    positive = np.asarray(positive_confidence, float)
    negative = np.asarray(negative_confidence, float)
    if not len(positive) or not len(negative):
        return {"threshold": 0.5, "rule": "no validation photos of both kinds: 0.5"}
    candidates = np.unique(np.concatenate([[0.0], positive, negative, [1.0]]))
    accepted = (positive[None, :] >= candidates[:, None]).mean(axis=1)
    refused = (negative[None, :] < candidates[:, None]).mean(axis=1)
    best = int(np.argmax((accepted + refused) / 2))
    threshold = float(np.floor(candidates[best] * 1e4) / 1e4)  # a round number at or below
    return {"threshold": threshold, "rule": "highest balanced accuracy on validation",
            "positives_refused_share": round(float((positive < threshold).mean()), 4),
            "negatives_refused_share": round(float((negative < threshold).mean()), 4)}


def fixed_threshold(threshold: float, positive_confidence: np.ndarray,
                    negative_confidence: np.ndarray) -> dict:
    """A threshold given beforehand, with the validation figures at it (as choose_threshold
    records them)."""
    choice = {"threshold": float(threshold), "rule": "fixed by the export's --threshold"}
    for kind, confidence in (("positives", positive_confidence),
                             ("negatives", negative_confidence)):
        confidence = np.asarray(confidence, float)
        if len(confidence):  # a folder without one kind has no share of it
            choice[f"{kind}_refused_share"] = round(float((confidence < threshold).mean()), 4)
    return choice


def _refiner_parity(model: keras.Model, path: Path, crops: np.ndarray) -> dict:
    network = _Network(path, [1, refine.CROP_HEIGHT, refine.CROP_WIDTH, 1], 1)
    x = unit_range(crops)
    keras_out = model.predict(x, batch_size=64, verbose=0)
    lite_out = np.stack([network.run(c) for c in x])
    corner_dev = np.linalg.norm(((lite_out - keras_out)[:, :8].reshape(-1, 4, 2))
                                * refine.CROP_SCALE, axis=-1)
    logit_dev = np.abs(lite_out - keras_out)[:, 8:]
    if not (corner_dev.max() <= PARITY_TOLERANCE_PX and logit_dev.max() <= 1e-3):
        raise RuntimeError(f"LiteRT and Keras refiners disagree by {corner_dev.max():.4f} crop "
                           f"px / {logit_dev.max():.5f} logits: the export is wrong")
    return {"crops": int(len(crops)), "float32_max_crop_px": round(float(corner_dev.max()), 5),
            "float32_max_logit": round(float(logit_dev.max()), 6)}


def export(run_dir: str | Path, test_dir: str | Path, version: str | None = None,
           parity_photos: int = 200, notes: str = "", refiner_run: str | Path | None = None,
           val_dir: str | Path | None = None, report: tuple = (),
           refiner_package: str | Path | None = None,
           locator_package: str | Path | None = None,
           threshold: float | None = None) -> Path:
    """Build run_dir/package/model.tar.gz from run_dir/model.keras (stage 1), or the locator
    of an earlier package `locator_package` byte for byte (run_dir is then a new folder for
    the package), and, when given, refiner_run/model.keras or the refiner of an earlier
    package `refiner_package` (stage 2, with its refusal threshold chosen on `val_dir`);
    returns its path. `report`: labelled folders measured for the card only (evaluation sets
    such as a foreign renderer's photos): nothing is chosen on them. `threshold`: a refusal
    threshold fixed beforehand (on validation: an earlier package's, say) instead of the one
    chosen on `val_dir`; the validation figures at it are recorded all the same."""
    run_dir, test_dir = Path(run_dir), Path(test_dir)
    if threshold is not None and not 0.0 < threshold < 1.0:  # written so that NaN fails too
        raise ValueError(f"threshold must be in (0, 1), got {threshold}")
    if threshold is not None and refiner_run is None and refiner_package is None:
        raise ValueError("a threshold needs a refiner: only the refiner's confidence is judged")
    if locator_package is None and not (run_dir / RUN_MODEL_FILE).exists():
        raise ValueError(f"{run_dir} has no {RUN_MODEL_FILE}: train first")
    if locator_package is not None and (run_dir / RUN_MODEL_FILE).exists():
        raise ValueError(f"{run_dir} holds a trained locator: give the package's locator a "
                         f"new folder")
    if refiner_run is not None and refiner_package is not None:
        raise ValueError("give a refiner run or a package to take the refiner from, not both")
    if refiner_run is not None and not (Path(refiner_run) / RUN_MODEL_FILE).exists():
        raise ValueError(f"{refiner_run} has no {RUN_MODEL_FILE}: train the refiner first")
    if (refiner_run is not None or refiner_package is not None) and val_dir is None:
        raise ValueError("a refiner needs val_dir: its threshold is chosen on validation data")
    # Read before anything is written: a wrong package must not cost the last export.
    reused = None if refiner_package is None else _refiner_from_package(Path(refiner_package))
    locator = None if locator_package is None else _locator_from_package(Path(locator_package))
    package_dir = run_dir / "package"
    if package_dir.exists():
        shutil.rmtree(package_dir)  # nothing of an earlier export may slip into this one
    package_dir.mkdir(parents=True)
    if locator is None:
        # compile=False: the training metric is not needed (nor importable) to export.
        model = keras.saving.load_model(run_dir / RUN_MODEL_FILE, compile=False)
        model.save(package_dir / LOCATOR_KERAS_FILE)
        (package_dir / LOCATOR_FILE).write_bytes(to_tflite(model))
    else:
        (package_dir / LOCATOR_KERAS_FILE).write_bytes(locator["keras"])
        (package_dir / LOCATOR_FILE).write_bytes(locator["tflite"])
        model = keras.saving.load_model(package_dir / LOCATOR_KERAS_FILE, compile=False)

    # Parity: the served flatbuffer against the Keras model on held-out photos.
    inputs, _ = load_arrays(test_dir)
    inputs = inputs[:parity_photos]
    keras_out = model.predict(unit_range(inputs), batch_size=32, verbose=0)
    float_dev = corner_deviation_px(_run_tflite(package_dir / LOCATOR_FILE, inputs),
                                    keras_out)
    if not float_dev.max() <= PARITY_TOLERANCE_PX:  # written so that NaN fails too
        raise RuntimeError(f"LiteRT and Keras disagree by {float_dev.max():.4f} px (limit "
                           f"{PARITY_TOLERANCE_PX}): the export is wrong")
    parity = {"photos": int(len(inputs)), "tolerance_px": PARITY_TOLERANCE_PX,
              "float32_max_px": round(float(float_dev.max()), 5)}

    int8_path = package_dir / LOCATOR_INT8_FILE
    int8_path.write_bytes(to_tflite(model, int8_weights=True))
    int8_dev = corner_deviation_px(_run_tflite(int8_path, inputs), keras_out)
    parity.update(int8_mean_px=round(float(int8_dev.mean()), 4),
                  int8_max_px=round(float(int8_dev.max()), 4),
                  int8_tolerance_px=INT8_TOLERANCE_PX,
                  int8_included=bool(int8_dev.mean() <= INT8_TOLERANCE_PX))  # NaN -> False
    if not parity["int8_included"]:
        int8_path.unlink()

    refiner_card = {}
    if refiner_run is not None or refiner_package is not None:
        refiner_path = package_dir / REFINER_FILE
        if refiner_run is not None:
            refiner_card, parity["refiner"] = _refiner_from_run(
                Path(refiner_run), refiner_path, test_dir, parity_photos)
        else:
            refiner_bytes, keras_bytes, refiner_card, parity["refiner"] = reused
            refiner_path.write_bytes(refiner_bytes)
            if keras_bytes is not None:
                (package_dir / REFINER_KERAS_FILE).write_bytes(keras_bytes)
        cascade = predictor_for(package_dir, {"locator_model": LOCATOR_FILE,
                                              "refiner_model": REFINER_FILE}, 1)
        records = run_folder(cascade, val_dir)
        confidence = np.array([r["confidence"] for r in records])
        has_number = np.array([r["example"].corners is not None for r in records])
        choice = (choose_threshold(confidence[has_number], confidence[~has_number])
                  if threshold is None else
                  fixed_threshold(threshold, confidence[has_number], confidence[~has_number]))
        refiner_card["confidence_threshold_choice"] = {"dataset": str(val_dir), **choice}
        refiner_card["confidence_threshold"] = refiner_card[
            "confidence_threshold_choice"]["threshold"]
        # Chosen on the first look's confidences; served, a refused answer gets the second
        # look (certcorners.predictor), so the validation figures as served are recorded too.
        refiner_card["confidence_threshold_choice"]["as_served_with_second_look"] = _as_served(
            run_folder(cascade, val_dir, refiner_card["confidence_threshold"]),
            refiner_card["confidence_threshold"])
    commit = git_commit()
    card = {
        "name": "certcorners registration-number corners: locator"
                + (" and refiner" if "refiner_model" in refiner_card else ""),
        "version": version or dt.datetime.now(dt.UTC).strftime("%Y%m%d-%H%M%S")
        + f"-{commit[:7]}",
        "notes": notes,
        "training": _json_or_empty(run_dir / "train_config.json"),
        "training_metrics": _json_or_empty(run_dir / "train_metrics.json"),
        "datasets": {**_dataset_summary(run_dir, test_dir),
                     **({} if locator is None else locator["datasets"])},
        **({} if locator is None else locator["card"]),
        "parameters": int(model.count_params()),
        "multiply_accumulates": multiply_accumulates(model),
        "input": {"shape": [1, INPUT_SIZE, INPUT_SIZE, 1], "dtype": "float32",
                  "preprocessing": "EXIF transpose, grayscale, letterbox to 400 x 400 "
                                   "(aspect kept, centred, black margins), scale to [0, 1]"},
        "output": {"shape": [1, 8], "meaning": "x, y of each corner as fractions of the "
                                               "400-px input, in corner_order"},
        "corner_order": list(CORNER_NAMES),
        "locator_model": LOCATOR_FILE,
        **refiner_card,
        "parity": parity,
    }
    return finish_package(package_dir, card, test_dir, report, run_dir)


def finish_package(package_dir: Path, card: dict, test_dir: str | Path, report: tuple,
                   out_dir: Path) -> Path:
    """The second half of every export: the assembled package measured as the function will
    serve it (the held-out folder and the `report` folders, at the card's threshold), then
    the card with its figures, date, commit and file hashes, and model.tar.gz. The package
    holds only what serving loads; the Keras models (*.keras) stay beside it, its training
    files, hashed in the card's `training_files` (fine-tuning and recipes start from them)."""
    # A provisional card, so evaluation loads the package exactly as the function will.
    (package_dir / CARD_FILE).write_text(json.dumps(card))
    metrics, reported = _evaluations(package_dir, Path(test_dir), report, out_dir,
                                     card.get("confidence_threshold"))
    others = [p for p in package_dir.iterdir() if p.name not in (CARD_FILE, PACKAGE_FILE)]
    files = sorted(p for p in others if p.suffix != ".keras")
    training_files = sorted(p for p in others if p.suffix == ".keras")

    def hashed(paths: list[Path]) -> dict:
        return {p.name: {"sha256": sha256_file(p), "bytes": p.stat().st_size} for p in paths}

    card = {**card, "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "git_commit": git_commit(), "held_out_metrics": metrics,
            "evaluation_only_metrics": reported, "files": hashed(files),
            "training_files": hashed(training_files)}
    (package_dir / CARD_FILE).write_text(json.dumps(card, indent=2) + "\n")
    return write_package(package_dir, [*files, package_dir / CARD_FILE])


def recard(package: str | Path, out_dir: str | Path, test_dir: str | Path, version: str,
           val_dir: str | Path | None = None, report: tuple = (), why: str = "",
           card_finder_run: str | Path | None = None, policy: dict | None = None,
           reader_run: str | Path | None = None, reader_val: tuple = ()) -> Path:
    """The networks of an exported `package`, byte for byte, in a new package whose card is
    measured again as this code serves them: for a change in serving alone (a check, the
    search), after which the export-time figures no longer tell what the function answers.
    The refusal threshold stays the card's (chosen at export, on validation); its validation
    figures as served, the held-out metrics and those of the `report` folders are measured
    again. `card_finder_run`: a card finder's run folder, added to the package (its parity
    checked on `val_dir`); `policy`: cascade rules that replace the card's (CascadePolicy);
    `reader_run`: a reader's run folder, added to the package (its parity checked on
    `val_dir`, its threshold chosen on `val_dir` and the `reader_val` folders as served).
    Returns out_dir/package/model.tar.gz."""
    package, out_dir, test_dir = Path(package), Path(out_dir), Path(test_dir)
    if not package.is_file():
        raise ValueError(f"{package} is not a model.tar.gz")
    if not version:
        raise ValueError("a re-measured package needs a version of its own")
    for run, what in ((card_finder_run, "the card finder"), (reader_run, "the reader")):
        if run is not None and not (Path(run) / RUN_MODEL_FILE).exists():
            raise ValueError(f"{run} has no {RUN_MODEL_FILE}: train {what} first")
    if reader_run is not None and val_dir is None:
        raise ValueError("a reader needs val_dir: its threshold is chosen there")
    if reader_val and reader_run is None:
        raise ValueError("reader_val chooses a new reader's threshold: give reader_run too")
    for folder in map(Path, reader_val):
        if not (folder / "labels.jsonl").is_file():
            raise ValueError(f"{folder} is not a labelled folder (no labels.jsonl)")
    if policy:  # its names and values checked before anything is written
        CascadePolicy.from_card({"cascade_policy": policy})
    package_dir = out_dir / "package"
    if package_dir.exists():
        shutil.rmtree(package_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    card = open_verified(package, package_dir)  # the hashes checked, as serving checks them
    if card.get("version") == version:
        raise ValueError(f"{package} is version {version} already: give the new card its own")
    for name in card.get("training_files", {}):  # beside it: carried on beside the new one
        shutil.copy2(training_file(package, card, package_dir, name), package_dir / name)
    card = _named_by_stage(card, package_dir)
    earlier, threshold = card, card.get("confidence_threshold")
    card = {**card, "version": version}
    if card_finder_run is not None:
        if val_dir is None:
            raise ValueError("a card finder needs val_dir: its parity is checked there")
        card.update(_card_finder_entries(Path(card_finder_run), package_dir, Path(val_dir)))
        if "card finder" not in card.get("name", ""):  # a package's new finder: named once
            card["name"] = card.get("name", "") + ", with a card finder"
    if reader_run is not None:
        card.update(_reader_entries(Path(reader_run), package_dir, Path(val_dir)))
        if "reader" not in card.get("name", ""):
            card["name"] = card.get("name", "") + ", with a reader"
    if policy:
        card["cascade_policy"] = CascadePolicy.from_card({"cascade_policy": {
            **CascadePolicy.from_card(card).to_card(), **policy}}).to_card()
    if threshold is not None:
        if val_dir is None:
            raise ValueError("a package with a refusal threshold needs val_dir: its "
                             "validation figures as served are measured again")
        served = predictor_for(package_dir, card, 1)
        records = run_folder(served, val_dir, threshold)
        card["confidence_threshold_choice"] = {
            **card.get("confidence_threshold_choice", {}),
            "as_served_with_second_look": {"dataset": str(val_dir),
                                           **_as_served(records, threshold)}}
        if reader_run is not None:
            for folder in reader_val:
                records = records + run_folder(served, folder, threshold)
            card["reader_threshold_choice"] = {
                "datasets": [str(val_dir), *map(str, reader_val)],
                **choose_reader_threshold(records)}
            card["reader_threshold"] = card["reader_threshold_choice"]["threshold"]
    card["recarded_from"] = {"version": earlier.get("version"), "sha256": sha256_file(package),
                             "created": earlier.get("created"),
                             "git_commit": earlier.get("git_commit"), "why": why}
    return finish_package(package_dir, card, test_dir, report, out_dir)


def _named_by_stage(card: dict, package_dir: Path) -> dict:
    """An older package's locator files and card key (model.tflite, `serving_model`) renamed
    as this code names them, the bytes unchanged; a newer card as it is."""
    if "locator_model" in card:
        return card
    for old, new in ((locator_file(card), LOCATOR_FILE),
                     (LEGACY_LOCATOR_INT8_FILE, LOCATOR_INT8_FILE),
                     (LEGACY_LOCATOR_KERAS_FILE, LOCATOR_KERAS_FILE)):
        if (package_dir / old).exists():
            (package_dir / old).rename(package_dir / new)
    card = {key: value for key, value in card.items() if key != LEGACY_LOCATOR_KEY}
    return {**card, "locator_model": LOCATOR_FILE}


def _card_finder_entries(run: Path, package_dir: Path, val_dir: Path,
                         parity_photos: int = 200) -> dict:
    """card_finder.tflite from a finder run's model.keras, checked against it on validation
    canvases, and what the card says of it."""
    from certcorners.card_finder import OUTPUT_SIZE

    from training.finder import load_finder_arrays

    model = keras.saving.load_model(run / RUN_MODEL_FILE, compile=False)  # recard checked it
    path = package_dir / CARD_FINDER_FILE
    path.write_bytes(to_tflite(model))
    inputs = unit_range(load_finder_arrays(val_dir)[0][:parity_photos])
    keras_out = model.predict(inputs, batch_size=32, verbose=0)
    network = _Network(path, [1, INPUT_SIZE, INPUT_SIZE, 1], 1)
    lite_out = np.stack([network.run(x) for x in inputs])
    box_dev = float(np.abs(lite_out - keras_out)[:, :4].max() * INPUT_SIZE)
    logit_dev = float(np.abs(lite_out - keras_out)[:, 4].max())
    if not (box_dev <= PARITY_TOLERANCE_PX and logit_dev <= 1e-3):
        raise RuntimeError(f"LiteRT and Keras card finders disagree by {box_dev:.4f} px / "
                           f"{logit_dev:.5f} logits: the export is wrong")
    return {"card_finder_model": CARD_FINDER_FILE,
            "card_finder_parameters": int(model.count_params()),
            "card_finder_multiply_accumulates": multiply_accumulates(model),
            "card_finder_output": {"shape": [1, OUTPUT_SIZE], "meaning":
                                   "x0, y0, x1, y1 of the card's box as fractions of the "
                                   "400-px input, then the logit that a card is there"},
            "card_finder_training": _json_or_empty(run / "train_config.json"),
            "card_finder_training_metrics": _json_or_empty(run / "train_metrics.json"),
            "card_finder_parity": {"photos": int(len(inputs)),
                                   "float32_max_px": round(box_dev, 5),
                                   "float32_max_logit": round(logit_dev, 6)}}


def _reader_entries(run: Path, package_dir: Path, val_dir: Path,
                    parity_views: int = 200) -> dict:
    """reader.tflite from a reader run's model.keras, checked against it on the validation
    folder's views (the same logits within float rounding, the same readings), and what the
    card says of it."""
    from certcorners import reader

    from training.reader_data import photo_views

    model = keras.saving.load_model(run / RUN_MODEL_FILE, compile=False)
    path = package_dir / READER_FILE
    path.write_bytes(to_tflite(model))
    inputs = reader.model_input(photo_views(val_dir)[0][:parity_views])
    keras_out = model.predict(inputs, batch_size=64, verbose=0)
    network = _Network(path, [1, reader.VIEW_HEIGHT, reader.VIEW_WIDTH, 1], 1)
    lite_out = np.stack([network.run(x) for x in inputs])
    logit_dev = float(np.abs(lite_out - keras_out).max())
    def text(logits):
        reading = reader.read(logits)
        return None if reading is None else reading.text_as_printed

    differ = sum(text(a) != text(b) for a, b in zip(lite_out, keras_out, strict=True))
    if not (logit_dev <= 1e-3 and differ == 0):
        raise RuntimeError(f"LiteRT and Keras readers disagree by {logit_dev:.5f} logits and "
                           f"on {differ} readings: the export is wrong")
    return {"reader_model": READER_FILE,
            "reader_parameters": int(model.count_params()),
            "reader_multiply_accumulates": multiply_accumulates(model),
            "reader_output": {"shape": [1, reader.TIME_STEPS, reader.NUM_CLASSES],
                              "meaning": "per column of the number's view, the logits of "
                                         "CTC's blank, then of each character of "
                                         "reader_alphabet"},
            "reader_alphabet": reader.ALPHABET,
            "reader_training": _json_or_empty(run / "train_config.json"),
            "reader_training_metrics": _json_or_empty(run / "train_metrics.json"),
            "reader_parity": {"views": int(len(inputs)), "float32_max_logit": round(
                logit_dev, 6), "readings_that_differ": int(differ)}}


def choose_reader_threshold(records: list[dict]) -> dict:
    """The reader's threshold from validation as served: just above the surest wrong
    reading, and never below READER_THRESHOLD_FLOOR; with the shares it gives there."""
    from training.evaluate import reading_metrics, reading_outcomes

    wrong = [reading.confidence for outcome, _, reading in reading_outcomes(records, 0.0)
             if outcome == "read_wrong"]
    threshold = max(READER_THRESHOLD_FLOOR, float(np.nextafter(max(wrong), 1.0)) if wrong
                    else 0.0)
    chosen = reading_metrics(records, threshold)
    return {"threshold": threshold, "rule": "just above the surest wrong reading on "
            f"validation as served, at least {READER_THRESHOLD_FLOOR}",
            "certificates": chosen.get("certificates", 0),
            **{k: chosen.get(k) for k in ("read_right_share", "read_wrong_share",
                                          "not_read_share")},
            "wrong_readings_without_threshold": len(wrong)}


def _as_served(records: list[dict], threshold: float) -> dict:
    """The card's record of the validation folder's `records` as served at `threshold`: the
    refusals and where the answers came from."""
    served = summarize(records, threshold)
    return {key: served.get(key) for key in (
        "positives_refused_share", "negatives_refused_share", "answers_from_second_look",
        "answers_from_search", "answers_from_scan", "answers_from_card_view",
        "answers_from_tiles")}


def _evaluations(package_dir: Path, test_dir: Path, report: tuple, out_dir: Path,
                 threshold: float | None) -> tuple[dict, dict]:
    """The package as served on the held-out folder (out_dir/evaluation) and on each `report`
    folder (out_dir/evaluation-<its last two path parts>): the card's two metric entries."""
    metrics = evaluate(package_dir, test_dir, out_dir / "evaluation", threshold=threshold)
    reported = {}
    for folder in map(Path, report):
        name = "-".join(folder.parts[-2:])
        result = evaluate(package_dir, folder, out_dir / f"evaluation-{name}",
                          threshold=threshold)
        reported[str(folder)] = {k: v for k, v in result.items() if k != "worst"}
    return {k: v for k, v in metrics.items() if k != "worst"}, reported


_REFINER_INPUT = {
    "shape": [1, refine.CROP_HEIGHT, refine.CROP_WIDTH, 1], "dtype": "float32",
    "preprocessing": "the photo decoded once in grayscale (long side >= 600 px where it has "
                     "them), the guessed quad (first pass: a number-shaped rectangle with stage "
                     "1's centre, direction and width; later passes: the previous answer) "
                     "warped onto x 36-156, y 27-45 of a 192 x 72 crop, scaled to [0, 1]"}
_REFINER_OUTPUT = {
    "shape": [1, refine.OUTPUT_SIZE],
    "meaning": "x / 192, y / 72 of the four corners in the crop's own frame, then the logits "
               "of 'upside down' and of 'a registration number is here'"}
# What a package's card says of its refiner, carried over when another package reuses it.
_REFINER_KEYS = ("refiner_parameters", "refiner_multiply_accumulates", "refiner_training",
                 "refiner_training_metrics")


def _refiner_entries(**about_this_refiner) -> dict:
    """The card's refiner entries: what every refiner of this code shares, then its own."""
    return {"refiner_model": REFINER_FILE,
            "cascade_policy": CascadePolicy().to_card(),
            "refiner_input": _REFINER_INPUT, "refiner_output": _REFINER_OUTPUT,
            **about_this_refiner}


def _refiner_from_run(refiner_run: Path, refiner_path: Path, test_dir: Path,
                      parity_photos: int) -> tuple[dict, dict]:
    """The refiner trained in `refiner_run`, exported to `refiner_path`: its card entries and
    its parity check."""
    refiner_model = keras.saving.load_model(refiner_run / RUN_MODEL_FILE, compile=False)
    refiner_path.write_bytes(to_tflite(refiner_model))
    refiner_model.save(refiner_path.parent / REFINER_KERAS_FILE)
    crops, _ = load_crops(test_dir, CropConfig(seed=99))
    entries = _refiner_entries(
        refiner_parameters=int(refiner_model.count_params()),
        refiner_multiply_accumulates=multiply_accumulates(refiner_model),
        refiner_training=_json_or_empty(refiner_run / "train_config.json"),
        refiner_training_metrics=_json_or_empty(refiner_run / "train_metrics.json"))
    return entries, _refiner_parity(refiner_model, refiner_path, crops[:parity_photos])


def _refiner_from_package(package: Path) -> tuple[bytes, bytes | None, dict, dict]:
    """The refiner of an earlier package, verified against its card as the function verifies
    a package: its bytes, its Keras model's bytes (None where the package has none), the card
    entries it brings, and the parity check that card records (made when it was exported;
    the same bytes need no new one)."""
    with verified_package(package) as (card, folder):
        name = card.get("refiner_model")
        if name is None:
            raise ValueError(f"{package} has no refiner")
        refiner_bytes = (folder / name).read_bytes()
        keras_path = training_file(package, card, folder, REFINER_KERAS_FILE)
        keras_bytes = None if keras_path is None else keras_path.read_bytes()
    return refiner_bytes, keras_bytes, _refiner_entries(
        **{key: card[key] for key in _REFINER_KEYS if key in card},
        refiner_from_package={"version": card.get("version"),
                              "sha256": card["files"][name]["sha256"]},
    ), card.get("parity", {}).get("refiner", {})


def _locator_from_package(package: Path) -> dict:
    """The locator of an earlier package, verified as the function verifies a package: its
    Keras model's and flatbuffer's bytes, and the card entries that say how it was made."""
    with verified_package(package) as (card, folder):
        serving = locator_file(card)
        keras_path = locator_keras_file(package, card, folder)
        if keras_path is None:
            raise ValueError(f"{package} has no {LOCATOR_KERAS_FILE}, in it or beside it")
        keras_bytes, tflite_bytes = keras_path.read_bytes(), (folder / serving).read_bytes()
    return {"keras": keras_bytes, "tflite": tflite_bytes,
            "datasets": {role: card.get("datasets", {}).get(role, [])
                         for role in ("train", "validation")},
            "card": {"training": card.get("training", {}),
                     "training_metrics": card.get("training_metrics", {}),
                     "locator_from_package": {"version": card.get("version"),
                                              "sha256": card["files"][serving]["sha256"]}}}


def write_package(package_dir: Path, files: list[Path]) -> Path:
    """A gzip tarball of plain files, reproducible apart from the card's content."""
    out = package_dir / PACKAGE_FILE
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for path in files:
            info = tar.gettarinfo(path, arcname=path.name)
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            info.mtime = 0
            info.mode = 0o644
            with open(path, "rb") as handle:
                tar.addfile(info, handle)
    out.write_bytes(buffer.getvalue())
    print(f"package: {out} ({out.stat().st_size} bytes, sha256 {sha256_file(out)})")
    return out


def _json_or_empty(path: Path) -> dict:
    return json.loads(path.read_text()) if path.exists() else {}


def _dataset_summary(run_dir: Path, test_dir: Path) -> dict:
    config = _json_or_empty(run_dir / "train_config.json")
    summary = {}
    for role, folders in (("train", config.get("train_dirs", [])),
                          ("validation", [config.get("val_dir")] if config.get("val_dir") else []),
                          ("held_out", [str(test_dir)])):
        summary[role] = [{"folder": f, **_compact(_json_or_empty(Path(f) / "dataset.json"))}
                         for f in folders]
    return summary


def _compact(description: dict) -> dict:
    """A dataset.json for the card: the number's font families by name, the clutter fonts and
    textures by count (their files and hashes stay in the dataset's own dataset.json)."""
    out = dict(description)
    if "number_fonts" in out:
        out["number_fonts"] = sorted(out["number_fonts"])
    for key in ("clutter_fonts", "textures"):
        if key in out:
            out[key] = len(out[key])
    return out
