"""The card finder: one epoch on a handful of phone-view photos from the reference locator's
trunk, added to the reference package with its parity, and consulted by the served cascade
on a refusal."""

from __future__ import annotations

import json

import numpy as np
import pytest
from certcorners.model_store import open_package, predictor_for
from certcorners.preprocessing import decode

from training.dataset import generate, read_examples
from training.packages import locator_keras_file, verified_package


@pytest.fixture(scope="module")
def phone_views(tmp_path_factory):
    """Four phone-composition photos at ~640 px and two without a findable number."""
    return generate(tmp_path_factory.mktemp("views") / "set", 4, seed=21, workers=2,
                    negatives=2, phone_share=1.0, phone_profile="phone-view")


@pytest.fixture(scope="module")
def finder_run(phone_views, reference_package, tmp_path_factory):
    from training.finder import FinderConfig, train_finder
    from training.locator import LocatorConfig

    run = tmp_path_factory.mktemp("finder")
    # The reference's Keras locator, its training file beside the package, in its design.
    with verified_package(reference_package) as (card, folder):
        locator = locator_keras_file(reference_package, card, folder)
        design = card["training"]["model"]
        config = FinderConfig(train_dirs=(str(phone_views),), val_dir=str(phone_views),
                              out_dir=str(run), epochs=1, batch_size=3, init_from=str(locator),
                              model=LocatorConfig(filters=tuple(design["filters"]),
                                                  strided_blocks=design["strided_blocks"]))
        return run, train_finder(config), card["parameters"]


def test_phone_view_photos_are_small_and_labelled_with_their_card(phone_views):
    examples = read_examples(phone_views)
    assert len(examples) == 6
    for example in examples:
        assert 560 <= max(example.width, example.height) <= 720
        assert example.meta["profile"] == "phone-view"
    assert sum(e.meta.get("card_corners") is not None for e in examples) >= 4


def test_finder_smoke_training_writes_its_artifacts(finder_run):
    run, metrics, locator_parameters = finder_run
    assert (run / "model.keras").exists() and (run / "history.csv").exists()
    assert metrics["train_examples"] == 6 and metrics["epochs_run"] == 1
    assert np.isfinite(metrics["val_card_box_error_px"])
    # The locator's trunk with a smaller head of its own.
    assert 0.8 * locator_parameters < metrics["parameters"] < locator_parameters


def test_a_card_finder_joins_a_package_with_parity_and_the_cascade_consults_it(
        finder_run, phone_views, reference_package, tmp_path):
    from training.export import recard

    run = finder_run[0]
    package = recard(reference_package, tmp_path / "out", phone_views, "test-finder",
                     val_dir=phone_views, card_finder_run=run,
                     policy={"card_presence": 0.25, "card_margin": 1.6})
    card = open_package(package, tmp_path / "served")
    assert card["card_finder_model"] == "card_finder.tflite"
    assert "card_finder.tflite" in card["files"]
    assert card["card_finder_parity"]["float32_max_px"] <= 0.05
    assert card["cascade_policy"]["card_presence"] == 0.25
    assert card["cascade_policy"]["card_margin"] == 1.6
    predictor = predictor_for(tmp_path / "served", card, 1)
    assert predictor.card_finder is not None
    negative = next(e for e in read_examples(phone_views) if e.corners is None)
    prediction = predictor.predict_decoded(decode(negative.path.read_bytes()),
                                           card["confidence_threshold"])
    assert prediction.confidence < card["confidence_threshold"]
    # A refusal went to the card finder, not to the search or the scan.
    assert prediction.card is not None and 0.0 <= prediction.card.presence <= 1.0
    assert not prediction.searched and not prediction.scanned


def test_a_finder_sure_there_is_no_card_refuses_without_another_look(
        finder_run, phone_views, reference_package, tmp_path):
    from training.export import recard

    run = finder_run[0]
    package = recard(reference_package, tmp_path / "out", phone_views, "test-no-card",
                     val_dir=phone_views, card_finder_run=run, policy={"card_presence": 1.0})
    card = open_package(package, tmp_path / "served")
    predictor = predictor_for(tmp_path / "served", card, 1)
    negative = next(e for e in read_examples(phone_views) if e.corners is None)
    prediction = predictor.predict_decoded(decode(negative.path.read_bytes()),
                                           card["confidence_threshold"])
    assert prediction.card.presence < 1.0
    assert not prediction.cut and prediction.turns == 0


def test_a_card_finder_or_a_rule_that_cannot_be_used_is_refused(reference_package,
                                                               phone_views, tmp_path):
    from training.__main__ import _policy_rules
    from training.export import recard

    arguments = {"package": reference_package, "out_dir": tmp_path / "out",
                 "test_dir": phone_views, "version": "test-bad", "val_dir": phone_views}
    with pytest.raises(ValueError, match="train the card finder first"):
        recard(**arguments, card_finder_run=tmp_path)
    with pytest.raises(ValueError, match="unknown rules"):
        recard(**arguments, policy={"card_presense": 0.5})
    with pytest.raises(ValueError, match="card_margin"):
        recard(**arguments, policy={"card_margin": 0.5})
    assert _policy_rules(["card_presence=0.3", "second_look_turns=1,3"]) == {
        "card_presence": 0.3, "second_look_turns": [1, 3]}
    from certcorners.policy import CascadePolicy

    one_turn = {"cascade_policy": _policy_rules(["second_look_turns=2"])}
    assert CascadePolicy.from_card(one_turn).second_look_turns == (2,)
    with pytest.raises(ValueError, match="RULE=VALUE"):
        _policy_rules(["card_presence"])
    assert json.loads(json.dumps(_policy_rules(["second_look_turns="]))) == {
        "second_look_turns": []}
    steps = {"cascade_policy": _policy_rules(["search_steps=[[1, 0, 0], [0, 0, 45]]"])}
    assert CascadePolicy.from_card(steps).search_steps == ((1.0, 0.0, 0.0), (0.0, 0.0, 45.0))
    with pytest.raises(ValueError, match="a number, a comma list or JSON"):
        _policy_rules(["card_presence=high"])
