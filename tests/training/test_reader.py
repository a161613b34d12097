"""Stage 3, the reader: its synthetic views, a CTC training run on a handful of them, its
LiteRT parity in a package, evaluate's reading figures, and a recipe's reader steps."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np
import pytest
from certcorners import reader
from certcorners.model_store import open_package, predictor_for
from certcorners.preprocessing import decode

from training.dataset import Example, read_examples
from training.evaluate import run_folder


@pytest.fixture(scope="module")
def views():
    from training.reader_data import synthetic_views

    return synthetic_views(2, seed=3, workers=1)


def texts_of(targets: np.ndarray) -> list[str]:
    return ["".join(reader.ALPHABET[k - 1] for k in row[1 : 1 + row[0]]) for row in targets]


def test_synthetic_views_carry_their_cards_text_and_repeat_with_the_seed(views):
    from training.reader_data import VIEWS_PER_CARD, synthetic_views

    inputs, targets, fonts = views
    assert inputs.shape == (2 * VIEWS_PER_CARD, reader.VIEW_HEIGHT, reader.VIEW_WIDTH, 1)
    assert inputs.dtype == np.uint8 and len(fonts) == len(inputs)
    assert all(reader.GRAMMAR.match(text) for text in texts_of(targets))
    # The number is dark print in the view's box: darker there than in the margins above.
    box = inputs[:, 8:24, 12:148].mean(axis=(1, 2, 3))
    above = inputs[:, :3].mean(axis=(1, 2, 3))
    assert (box < above).all()
    again = synthetic_views(1, seed=3, workers=1)
    assert np.array_equal(again[0], inputs[:VIEWS_PER_CARD])


@pytest.fixture(scope="module")
def reader_run(views, tmp_path_factory):
    from training.reader import ReaderConfig, train_reader

    inputs, targets, _ = views
    run = tmp_path_factory.mktemp("reader")
    config = ReaderConfig(out_dir=str(run), epochs=4, batch_size=4, learning_rate=3e-3,
                          view_jitter_px=1.5)
    return run, train_reader(config, ((inputs, targets), (inputs[:4], targets[:4])))


def test_ctc_smoke_training_learns_and_writes_its_artifacts(reader_run):
    run, metrics = reader_run
    assert (run / "model.keras").exists() and (run / "history.csv").exists()
    assert metrics["epochs_run"] == 4 and metrics["train_examples"] == 8
    assert metrics["parameters"] <= 200_000
    with open(run / "history.csv") as handle:
        losses = [float(row["loss"]) for row in csv.DictReader(handle)]
    assert losses[-1] < losses[0]
    assert 0.0 <= metrics["val_read_error"] <= 1.0


def test_bad_reader_configs_are_refused():
    from training.reader import ReaderConfig

    with pytest.raises(ValueError, match="filters"):
        ReaderConfig(filters=(16, 32))
    with pytest.raises(ValueError, match="sequence_units"):
        ReaderConfig(sequence_units=0)
    with pytest.raises(ValueError, match="view_jitter_px"):
        ReaderConfig(view_jitter_px=-1.0)
    with pytest.raises(ValueError, match="edge_jitter_px"):
        ReaderConfig(edge_jitter_px=9.0)


def test_a_strided_reader_starts_from_a_pooled_ones_weights(reader_run, views):
    """The same weights, the same 40 columns of logits, fewer multiply-accumulates."""
    import keras

    from training.fit import multiply_accumulates
    from training.reader import ReaderConfig, build_reader

    run, _ = reader_run
    pooled = keras.saving.load_model(run / "model.keras", compile=False)
    strided = build_reader(ReaderConfig(strided_stem=True))
    strided.set_weights(pooled.get_weights())
    inputs = reader.model_input(views[0][:2])
    assert strided.predict(inputs, verbose=0).shape == (2, reader.TIME_STEPS,
                                                         reader.NUM_CLASSES)
    assert multiply_accumulates(strided) < multiply_accumulates(pooled)


def test_a_labelled_folder_gives_the_views_serving_cuts_and_refuses_a_wrong_size(
        synthetic_set, tmp_path):
    import json
    import shutil

    from training.reader_data import photo_views

    folder = tmp_path / "labelled"
    shutil.copytree(synthetic_set, folder)
    examples = [e for e in read_examples(folder) if e.corners is not None]
    views, targets, _ = photo_views(folder, workers=1)
    assert len(views) == len(examples)
    first = examples[0]
    assert np.array_equal(views[0], reader.view(decode(first.path.read_bytes()), first.corners))
    assert texts_of(targets)[0] == first.meta["text"]
    labels = [json.loads(line) for line in (folder / "labels.jsonl").read_text().splitlines()]
    labels[0]["width"] += 1
    (folder / "labels.jsonl").write_text("".join(json.dumps(x) + "\n" for x in labels))
    with pytest.raises(ValueError, match=f"{labels[0]['file']}: labelled as"):
        photo_views(folder, workers=1)


@pytest.mark.parametrize("corner_px, edge_px", [(2.0, 0.0), (0.0, 2.0), (1.5, 1.5)])
def test_a_jittered_view_keeps_its_number_in_place(views, corner_px, edge_px):
    """Corners or edges off by a pixel or two move the print a pixel or two, not out of the
    view."""
    from training.reader import jittered

    view = views[0][0]
    moved = jittered(view, np.random.default_rng(0), corner_px, edge_px)
    assert moved.shape == view.shape and moved.dtype == np.uint8
    assert not np.array_equal(moved, view)

    def ink_centre(image):
        rows, columns = np.nonzero(image[..., 0] < image.mean() - 20)
        return np.array([columns.mean(), rows.mean()])

    assert np.abs(ink_centre(moved) - ink_centre(view)).max() < 3.0


def test_a_reader_joins_a_package_with_parity_and_the_cascade_reads(
        reader_run, synthetic_set, reference_package, tmp_path):
    from training.export import recard

    run, _ = reader_run
    with pytest.raises(ValueError, match="not a labelled folder"):
        recard(reference_package, tmp_path / "out", synthetic_set, "test-reader",
               val_dir=synthetic_set, reader_run=run, reader_val=(tmp_path,))
    with pytest.raises(ValueError, match="give reader_run"):
        recard(reference_package, tmp_path / "out", synthetic_set, "test-reader",
               val_dir=synthetic_set, reader_val=(synthetic_set,))
    # The threshold is chosen over every validation folder given (here one, twice).
    package = recard(reference_package, tmp_path / "out", synthetic_set, "test-reader",
                     val_dir=synthetic_set, reader_run=run, reader_val=(synthetic_set,))
    card = open_package(package, tmp_path / "served")
    choice = card["reader_threshold_choice"]
    assert choice["datasets"] == [str(synthetic_set)] * 2
    served = run_folder(predictor_for(tmp_path / "served", card, 1), synthetic_set,
                        card["confidence_threshold"])
    answered = sum(r["answered"] and r["example"].corners is not None
                   and bool(r["example"].meta.get("text")) for r in served)
    assert choice["certificates"] == 2 * answered
    assert card["reader_model"] == "reader.tflite" and "reader.tflite" in card["files"]
    assert card["reader_parity"]["float32_max_logit"] <= 1e-3
    assert card["reader_parity"]["readings_that_differ"] == 0
    assert card["reader_parity"]["views"] == 6
    assert card["reader_alphabet"] == reader.ALPHABET
    assert card["reader_threshold"] >= 0.5
    assert card["reader_parameters"] <= 200_000
    predictor = predictor_for(tmp_path / "served", card, 1)
    example = read_examples(synthetic_set)[0]
    reading = predictor.read(decode(example.path.read_bytes()), example.corners)
    assert reading is None or reader.GRAMMAR.match(reading.text_as_printed)


def test_reading_figures_match_a_hand_computed_case():
    from training.evaluate import reading_metrics

    def record(text, read, confidence, font="Lato", answered=True, height=20.0, again=False):
        corners = np.array([[100, 100], [100 + 6 * height, 100], [100 + 6 * height,
                                                                  100 + height],
                            [100, 100 + height]], float)
        example = Example(Path(f"{text or 'none'}.jpg"), 1000, 800,
                          corners if text else None, {"text": text, "font": font})
        reading = None if read is None else reader.Reading(read, confidence, again)
        return {"example": example, "reading": reading, "answered": answered}

    records = [
        record("BA-123XY", "BA123XY", 0.99, again=True),  # right, from a nudged box; the
        # separator does not count
        record("BA 123XY", "BA 128XY", 0.95, font="Roboto"),  # wrong
        record("KE555AA", "KE555AA", 0.40),  # not read: below the threshold
        record("KE556AA", None, 0.0, height=5.0),  # not read: nothing fits the grammar
        record("ZV-001AB", "ZV-001AB", 0.99, answered=False),  # refused: not counted
        record(None, "BA123XY", 0.99),  # no certificate: not counted
    ]
    figures = reading_metrics(records, 0.9)
    assert figures["certificates"] == 4
    assert figures["read_right_share"] == 0.25
    assert figures["read_wrong_share"] == 0.25
    assert figures["not_read_share"] == 0.5
    assert figures["read_again"] == 1
    assert figures["by_font"]["Roboto"] == {"certificates": 1, "read_right_share": 0.0,
                                            "read_wrong_share": 1.0, "not_read_share": 0.0}
    assert figures["by_font"]["Lato"]["read_right_share"] == pytest.approx(1 / 3, abs=1e-4)
    # Heights at the 400-px scale: 20 px -> 8 px, 5 px -> 2 px.
    assert figures["by_number_height_400"]["<4 px"]["not_read_share"] == 1.0
    assert figures["by_number_height_400"]["8-12 px"]["certificates"] == 3
    assert figures["read_wrong"] == [{"file": "BA 123XY.jpg", "label": "BA 123XY",
                                      "read": "BA 128XY", "text_confidence": 0.95}]


def test_the_reader_threshold_sits_above_the_surest_wrong_reading():
    from training.export import READER_THRESHOLD_FLOOR, choose_reader_threshold

    def record(text, read, confidence):
        corners = np.array([[0, 0], [60, 0], [60, 10], [0, 10]], float)
        return {"example": Example(Path(f"{text}.jpg"), 400, 300, corners, {"text": text}),
                "reading": reader.Reading(read, confidence), "answered": True}

    choice = choose_reader_threshold([record("BA123XY", "BA123XY", 0.99),
                                      record("BA123XZ", "BA123XY", 0.930004),
                                      record("KE555AA", "KE555AA", 0.95)])
    assert 0.930004 < choice["threshold"] < 0.9300041  # above it, unrounded
    assert choice["read_wrong_share"] == 0.0 and choice["wrong_readings_without_threshold"] == 1
    assert choice["read_right_share"] == pytest.approx(2 / 3, abs=1e-4)
    assert choose_reader_threshold([record("BA123XY", "BA123XY", 0.2)])["threshold"] == \
        READER_THRESHOLD_FLOOR


def test_a_recipe_makes_reader_views_and_trains_the_reader(tmp_path):
    from training.recipe import load, run

    recipe = tmp_path / "reader.toml"
    recipe.write_text(f"""
data = "{tmp_path}/data"
runs = "{tmp_path}/runs"

[[datasets]]
name = "views"
kind = "reader-views"
cards = 2
seed = 5

[[phases]]
name = "reader"
command = "train-reader"
train = ["{{data}}/views"]
val = "{{data}}/views"
epochs = 1
batch-size = 4
""")
    assert run(load(recipe), out=io.StringIO()) == ["views", "reader"]
    assert (tmp_path / "runs" / "reader" / "model.keras").exists()
    assert run(load(recipe), out=io.StringIO()) == []  # done: nothing runs again
    recipe.write_text(recipe.read_text().replace("cards = 2", "cards = 2\ncount = 3"))
    with pytest.raises(ValueError, match="reader views views take"):
        load(recipe)
