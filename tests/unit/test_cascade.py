"""The served cascade (the committed reference package): refinement improves a guess and
fixes its naming, and photos without a certificate are refused through the real handler."""

from __future__ import annotations

import json
from dataclasses import dataclass, replace

import numpy as np
import pytest
from certcorners.labels import corner_errors_400
from certcorners.predictor import _unturned
from certcorners.preprocessing import INPUT_SIZE, decode
from PIL import Image

from tests.conftest import HELD_OUT, invoke, jpeg_bytes, load_event, png_bytes
from tests.unit.test_handler import _event_with
from training.dataset import read_examples
from training.refiner import GuessErrors


@dataclass(frozen=True)
class LabelledPhoto:
    jpeg: bytes
    width: int
    height: int
    corners: np.ndarray | None


def _worst_error(corners: np.ndarray, photo) -> float:
    """The worst corner's error of an answer for a generated photo, at the 400-px scale."""
    return float(corner_errors_400(np.asarray(corners)[None], photo.corners[None],
                                   [[photo.width, photo.height]]).max())


def _beside_the_number(photo) -> np.ndarray:
    """The locator's other typical miss: the quad shrunk to a third of the number and 0.9 of
    its width beside it."""
    number = photo.corners
    centre, along = number.mean(axis=0), (number[1] - number[0] + number[2] - number[3]) / 2
    return centre + 0.9 * along + (number - centre) / 3


def _far_from_the_number(photo) -> np.ndarray:
    """The number's quad moved 0.45 of the photo away from it, towards the far side."""
    size = np.array([photo.width, photo.height], dtype=float)
    centre = photo.corners.mean(axis=0)
    return photo.corners + np.where(centre < size / 2, 0.45, -0.45) * size


def _held_out() -> list[LabelledPhoto]:
    return [LabelledPhoto(example.path.read_bytes(), example.width, example.height,
                          example.corners) for example in read_examples(HELD_OUT)]


@pytest.fixture(scope="module")
def held_out_photos():
    photos = [photo for photo in _held_out() if photo.corners is not None]
    assert len(photos) == 12
    return photos


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


def test_an_answer_stands_only_where_one_more_pass_comes_back_to_it(
        reference_predictor, reference_threshold, held_out_photos):
    stands, shifted_stands = 0, 0
    for photo in held_out_photos:
        decoded = decode(photo.jpeg)
        answer = reference_predictor.predict_decoded(decoded, reference_threshold)
        stands += reference_predictor._stands_by(decoded, answer.corners, reference_threshold)
        # Beside the number by a third of its width, as an answer landed on other print is:
        # the next pass goes to the number, away from it.
        along = photo.corners[1] - photo.corners[0]
        shifted_stands += reference_predictor._stands_by(
            decoded, photo.corners + along / 3, reference_threshold)
    assert stands == len(held_out_photos)
    assert shifted_stands == 0


def _background_only() -> bytes:
    """A desk with clutter and no card."""
    return next(photo.jpeg for photo in _held_out() if photo.corners is None)


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


def _emitted_metrics(printed: str) -> set[str]:
    """Metric names in the CloudWatch embedded-metric JSON that Powertools prints."""
    names = set()
    for line in printed.splitlines():
        if line.startswith("{") and '"_aws"' in line:
            for directive in json.loads(line)["_aws"]["CloudWatchMetrics"]:
                names |= {metric["Name"] for metric in directive["Metrics"]}
    return names


def test_refusals_and_answers_are_timed_under_their_own_metrics(handler, capsys):
    grey = png_bytes(Image.new("RGB", (1200, 847), (128, 128, 128)))
    assert invoke(handler, _event_with(grey, "image/png"))[0] == 422
    refused = _emitted_metrics(capsys.readouterr().out)
    assert {"CertificateNotFound", "NotFoundInferenceLatency"} <= refused
    assert "InferenceLatency" not in refused
    assert invoke(handler, load_event("corners-jpeg.json"))[0] == 200
    answered = _emitted_metrics(capsys.readouterr().out)
    assert "InferenceLatency" in answered and "NotFoundInferenceLatency" not in answered


def test_threshold_comes_from_the_environment_when_set(handler, app_module, monkeypatch):
    photo = _event_with(_background_only(), "image/jpeg")
    monkeypatch.setattr(app_module, "MIN_CONFIDENCE", 0.0)
    status, body = invoke(handler, photo)
    assert status == 200 and 0 <= body["confidence"] <= 1, body


@pytest.mark.parametrize("turns", [0, 1, 2, 3])
def test_a_turned_view_s_points_map_back_onto_the_locator_s_canvas(turns):
    canvas = np.zeros((INPUT_SIZE, INPUT_SIZE, 1), np.float32)
    canvas[40:60, 300:340] = 1.0  # a mark centred at x 320, y 50
    view = np.rot90(canvas, turns)
    rows, cols = np.nonzero(view[..., 0])
    # Where the mark lies in the turned view, as the locator's outputs (x, y in [0, 1]) ...
    seen = np.tile([(cols.mean() + 0.5) / INPUT_SIZE, (rows.mean() + 0.5) / INPUT_SIZE], 4)
    # ... is where it lies on the canvas itself.
    back = _unturned(seen, turns).reshape(4, 2) * INPUT_SIZE
    np.testing.assert_allclose(back, [[320, 50]] * 4, atol=1e-9)


def test_a_refused_first_look_is_answered_by_two_agreeing_turned_views(
        predictor_without_card_finder, held_out_photos, monkeypatch, reference_threshold):
    """The locator's typical miss, simulated: its upright view lands away from the number
    (turned views look as they are). Refused as it stands, found by the second look."""
    threshold = reference_threshold
    real_locate = predictor_without_card_finder.locate

    def upright_view_misses(decoded, turns=0, canvas=None, view=None):
        located = real_locate(decoded, turns, canvas, view)
        size = np.array([decoded.letterbox.width, decoded.letterbox.height])
        return located if turns else located + 0.3 * size * np.sign(0.5 * size - located[0])

    monkeypatch.setattr(predictor_without_card_finder, "locate", upright_view_misses)
    # A shifted view sometimes still lands within the refiner's reach of the number, which
    # then answers it: those are no miss, and the rest must be most of the photos.
    missed = [photo for photo in held_out_photos if predictor_without_card_finder.predict_decoded(
        decode(photo.jpeg)).confidence < threshold]
    assert len(missed) >= 0.75 * len(held_out_photos), len(missed)
    found = 0
    for photo in missed:
        second = predictor_without_card_finder.predict_decoded(decode(photo.jpeg), threshold)
        if second.confidence >= threshold and not second.searched:
            assert second.turns in (1, 2, 3)
            assert _worst_error(second.corners, photo) < 4
            found += 1
    assert found >= 0.75 * len(missed), (found, len(missed))


def test_when_every_look_misses_the_search_around_them_finds_the_number(
        predictor_without_card_finder, held_out_photos, monkeypatch, reference_threshold):
    """The locator's miss beside the number, simulated on every view. No look is accepted;
    the search finds the number in at least half the photos, and answers none wrong. (Every
    view gives the same quad here, so the search from the unturned look alone is the honest
    test: the turned looks' identical guesses would agree with themselves.)"""
    threshold = reference_threshold
    shown = {}
    monkeypatch.setattr(predictor_without_card_finder, "locate",
                        lambda decoded, turns=0, canvas=None, view=None:
                        _beside_the_number(shown["photo"]))
    monkeypatch.setattr(predictor_without_card_finder, "policy",
                        replace(predictor_without_card_finder.policy, search_turned_looks=False))
    found = 0
    for photo in held_out_photos:
        shown["photo"] = photo
        decoded = decode(photo.jpeg)
        served = predictor_without_card_finder.predict_decoded(decoded, threshold)
        if served.confidence >= threshold:
            assert _worst_error(served.corners, photo) < 4
        if served.searched:
            first_look = predictor_without_card_finder.cascade(
                decoded, _beside_the_number(photo), threshold)
            assert first_look[1] < threshold
            found += 1
    assert found >= 0.5 * len(held_out_photos), found


def test_the_search_from_the_unturned_looks_alone_runs_fewer_passes(
        predictor_without_card_finder, held_out_photos, monkeypatch, reference_threshold):
    """The policy's search_turned_looks: off, the search starts only from the unturned looks'
    quads, so a photo the search cannot answer costs fewer than half the refiner passes."""
    predictor = predictor_without_card_finder
    shown, passes = {}, []
    real_refine = predictor.refine
    monkeypatch.setattr(predictor, "locate", lambda decoded, turns=0, canvas=None, view=None:
                        _far_from_the_number(shown["photo"]))
    monkeypatch.setattr(predictor, "refine",
                        lambda decoded, quad: passes.append(1) or real_refine(decoded, quad))
    policy = predictor.policy
    spent = {}
    for turned in (True, False):
        monkeypatch.setattr(predictor, "policy", replace(policy, search_turned_looks=turned))
        passes[:] = []
        for photo in held_out_photos:
            shown["photo"] = photo
            served = predictor.predict_decoded(decode(photo.jpeg), reference_threshold,
                                               scan=False)
            assert not served.searched  # half the photo away: beyond the search's reach
        spent[turned] = len(passes)
    assert spent[False] < 0.5 * spent[True], spent
    with pytest.raises(ValueError, match="search_turned_looks is true or false"):
        replace(policy, search_turned_looks=0)


def test_when_every_look_lands_far_from_the_number_the_scan_of_the_photo_finds_it(
        predictor_without_card_finder, held_out_photos, monkeypatch, reference_threshold):
    """The locator's gross miss, simulated on every view: a number-shaped quad half the
    photo away from the number (beyond the search's reach). The scan over the photo finds it;
    the first look, the second and the search do not."""
    threshold = reference_threshold
    shown = {}

    monkeypatch.setattr(predictor_without_card_finder, "locate",
                        lambda decoded, turns=0, canvas=None, view=None:
                        _far_from_the_number(shown["photo"]))
    found = 0
    for photo in held_out_photos:
        shown["photo"] = photo
        decoded = decode(photo.jpeg)
        served = predictor_without_card_finder.predict_decoded(decoded, threshold)
        if served.confidence >= threshold:
            assert served.scanned and not served.searched
            assert _worst_error(served.corners, photo) < 4
            found += 1
            # Without the scan the same photo is refused.
            assert predictor_without_card_finder.predict_decoded(decoded, threshold,
                                                       scan=False).confidence < threshold
    assert found >= 0.75 * len(held_out_photos), found


def test_a_miss_on_the_whole_photo_is_found_in_the_view_cut_around_the_card(
        handler, app_module, held_out_photos, monkeypatch, reference_threshold):
    """The locator's gross miss on the whole photo, every view of it (half the photo away
    from the number): the served package's card finder boxes the card, and the locator's
    look at the view cut around it answers. No scan runs."""
    photo = held_out_photos[0]
    event = _event_with(photo.jpeg, "image/jpeg")
    assert invoke(handler, event)[0] == 200  # loads the model
    predictor = app_module.store.get().predictor
    assert predictor.card_finder is not None
    real_locate, far = predictor.locate, _far_from_the_number(photo)
    monkeypatch.setattr(predictor, "locate", lambda decoded, turns=0, canvas=None, view=None:
                        far if view is None else real_locate(decoded, turns, canvas, view))
    status, body = invoke(handler, event)
    assert status == 200, body
    assert _worst_error([[c["x"], c["y"]] for c in body["corners"].values()], photo) < 4
    prediction = predictor.predict_decoded(decode(photo.jpeg), reference_threshold)
    assert prediction.cut and not prediction.scanned and prediction.card.presence > 0.5


def _card_boxed_in_the_wrong_place(predictor, photo, monkeypatch):
    """`photo` decoded, with the locator's gross miss on the whole photo (half the photo away
    from the number) and the card finder's box on a blank part of it far from the card."""
    from certcorners.card_finder import CardFound

    real_locate, far = predictor.locate, _far_from_the_number(photo)
    monkeypatch.setattr(predictor, "locate", lambda decoded, turns=0, canvas=None, view=None:
                        far if view is None else real_locate(decoded, turns, canvas, view))
    centre, side = far.mean(axis=0), max(photo.width, photo.height) / 20
    wrong_box = np.concatenate([centre - side, centre + side])
    monkeypatch.setattr(predictor, "find_card", lambda decoded, canvas: CardFound(wrong_box, 0.99))
    return decode(photo.jpeg)


def test_a_card_the_finder_boxes_in_the_wrong_place_is_found_in_a_tile(
        reference_predictor, held_out_photos, monkeypatch, reference_threshold):
    """The locator's gross miss on the whole photo, and the card finder's box on a blank part
    of it far from the card: neither look nor the search around them answers; one of the
    tiles does, and without the tiles the photo is refused. (Tiles are for small cards: a
    card larger than a tile, as in half of these photos, may be found by none.)"""
    threshold = reference_threshold
    photo = held_out_photos[4]
    decoded = _card_boxed_in_the_wrong_place(reference_predictor, photo, monkeypatch)
    prediction = reference_predictor.predict_decoded(decoded, threshold)
    assert prediction.confidence >= threshold
    assert prediction.tiled and not (prediction.cut or prediction.searched)
    assert _worst_error(prediction.corners, photo) < 4
    without = reference_predictor.predict_decoded(decoded, threshold, scan=False)
    assert without.confidence < threshold and not without.tiled


def test_with_tiles_before_search_a_tile_answers_before_any_search(
        reference_predictor, held_out_photos, monkeypatch, reference_threshold):
    """The policy's tiles_before_search, by what runs: the photo of the test above (its card
    boxed in the wrong place) is answered by a tile either way; the search runs first only
    where the tiles come last. Without the tiles (scan=False) the search still runs."""
    photo = held_out_photos[4]
    decoded = _card_boxed_in_the_wrong_place(reference_predictor, photo, monkeypatch)
    ran = []

    def recorded(name):
        real = getattr(reference_predictor, name)
        return lambda *args: ran.append(name) or real(*args)

    for name in ("_search", "_tile_look"):
        monkeypatch.setattr(reference_predictor, name, recorded(name))
    policy = reference_predictor.policy
    for first, order in ((False, ["_search", "_tile_look"]), (True, ["_tile_look"])):
        monkeypatch.setattr(reference_predictor, "policy",
                            replace(policy, tiles_before_search=first))
        ran.clear()
        prediction = reference_predictor.predict_decoded(decoded, reference_threshold)
        assert prediction.tiled and not prediction.searched and ran == order
        assert _worst_error(prediction.corners, photo) < 4
    ran.clear()  # without the tiles (scan=False) the search still runs, and finds nothing here
    refused = reference_predictor.predict_decoded(decoded, reference_threshold, scan=False)
    assert ran == ["_search"] and refused.confidence < reference_threshold


def test_answers_from_many_places_must_read_sure_under_fallback_reads(
        reference_predictor, held_out_photos, monkeypatch, reference_threshold):
    """The policy's fallback_reads: an answer from the tiles, the search or the scan counts
    only where the reader reads its box at reread_sure or more. The tile's answer for the card
    boxed in the wrong place reads sure and stands; where the reader reads nothing in a box
    it is refused, while first looks (never read for this) answer as before."""
    policy = reference_predictor.policy
    monkeypatch.setattr(reference_predictor, "policy", replace(policy, fallback_reads=True))
    photo = held_out_photos[4]
    first_look = reference_predictor.predict_decoded(decode(photo.jpeg), reference_threshold)
    assert first_look.confidence >= reference_threshold
    assert not (first_look.cut or first_look.tiled or first_look.searched)
    decoded = _card_boxed_in_the_wrong_place(reference_predictor, photo, monkeypatch)
    tiled = reference_predictor.predict_decoded(decoded, reference_threshold)
    assert tiled.tiled and tiled.confidence >= reference_threshold
    assert _worst_error(tiled.corners, photo) < 4
    assert reference_predictor._read_view(decoded, tiled.corners).confidence >= (
        policy.reread_sure)

    monkeypatch.setattr(reference_predictor, "_read_view", lambda decoded, corners: None)
    unread = reference_predictor.predict_decoded(decoded, reference_threshold)
    assert unread.confidence < reference_threshold and not (unread.tiled or unread.searched)
    monkeypatch.undo()  # the real locator and card finder; the reader still reads nothing
    monkeypatch.setattr(reference_predictor, "policy", replace(policy, fallback_reads=True))
    monkeypatch.setattr(reference_predictor, "_read_view", lambda decoded, corners: None)
    again = reference_predictor.predict_decoded(decode(photo.jpeg), reference_threshold)
    assert again.confidence == first_look.confidence
    np.testing.assert_array_equal(again.corners, first_look.corners)


def test_fallback_reads_needs_a_reader(reference_package, tmp_path):
    """A policy that checks answers by reading them, for a package without a reader, is a
    clear error when the cascade is made, not a refusal of every fallback answer."""
    from certcorners.model_card import locator_file
    from certcorners.model_store import open_package
    from certcorners.policy import CascadePolicy
    from certcorners.predictor import Predictor

    card = open_package(reference_package, tmp_path / "package")
    reading = replace(CascadePolicy.from_card(card), fallback_reads=True)
    with pytest.raises(ValueError, match="fallback_reads needs a package with a reader"):
        Predictor(tmp_path / "package" / locator_file(card), 1,
                  tmp_path / "package" / card["refiner_model"], reading)
    with pytest.raises(ValueError, match="fallback_reads is true or false"):
        replace(reading, fallback_reads="yes")


def _first_look_passes(predictor, photos, threshold, monkeypatch) -> list[int]:
    """Refiner passes served to each photo answered by the first look."""
    real_refine = predictor.refine
    passes = []

    def counted(decoded, quad):
        passes.append(quad)
        return real_refine(decoded, quad)

    monkeypatch.setattr(predictor, "refine", counted)
    spent = []
    for photo in photos:
        passes.clear()
        served = predictor.predict_decoded(decode(photo.jpeg), threshold)
        if not (served.turns or served.searched or served.scanned
                or served.confidence < threshold):
            spent.append(len(passes))
    monkeypatch.setattr(predictor, "refine", real_refine)
    return spent


def test_an_accepted_answer_stops_its_passes_once_it_has_settled(
        reference_predictor, held_out_photos, monkeypatch, reference_threshold):
    """The policy's settled_px, by what it does: when nothing settles every pass runs and a
    confirming pass follows; when any move settles, the passes stop at the first accepted one
    from the second on, with no confirming pass, most of them at the second; as served, most
    stop there too."""
    threshold, policy = reference_threshold, reference_predictor.policy
    monkeypatch.setattr(reference_predictor, "policy", replace(policy, settled_px=0.0))
    never = _first_look_passes(reference_predictor, held_out_photos, threshold, monkeypatch)
    assert never and set(never) == {policy.refine_passes + 1}
    monkeypatch.setattr(reference_predictor, "policy", replace(policy, settled_px=1e9))
    always = _first_look_passes(reference_predictor, held_out_photos, threshold, monkeypatch)
    assert len(always) == len(never) and all(a <= n for a, n in zip(always, never, strict=True))
    assert always.count(2) >= len(always) // 2 and set(always) <= {2, 3}
    monkeypatch.setattr(reference_predictor, "policy", policy)
    served = _first_look_passes(reference_predictor, held_out_photos, threshold, monkeypatch)
    assert len(served) == len(never) and sum(served) < sum(never)
    assert served.count(2) >= len(served) // 2, served


def test_the_cascade_policy_comes_from_the_card_and_older_cards_keep_theirs():
    from certcorners.policy import CascadePolicy

    assert CascadePolicy.from_card({}) == CascadePolicy()
    assert CascadePolicy.from_card({"refine_passes": 2}).refine_passes == 2
    stored = replace(CascadePolicy(), settled_px=0.5, second_look_turns=(2,)).to_card()
    assert CascadePolicy.from_card({"cascade_policy": stored}).second_look_turns == (2,)
    with pytest.raises(ValueError, match="unknown rules"):
        CascadePolicy.from_card({"cascade_policy": {"setled_px": 1}})
    with pytest.raises(ValueError, match="quarter turns"):
        CascadePolicy(second_look_turns=(4,))
    # The search's and the scan's geometry are rules of the card too, through its JSON.
    custom = replace(CascadePolicy(), search_steps=((1.0, 0.0, 0.0),), scan_step=0.5,
                     search_width_400=(40.0, 90.0), short_sides_ratio=1.2)
    card = json.loads(json.dumps({"cascade_policy": custom.to_card()}))
    assert CascadePolicy.from_card(card) == custom
    with pytest.raises(ValueError, match="search_width_400"):
        CascadePolicy(search_width_400=(80.0, 50.0))
    with pytest.raises(ValueError, match="short_sides_ratio"):
        CascadePolicy(short_sides_ratio=0.9)
    # The reader's nudges too; an older card reads once.
    nudged = replace(CascadePolicy(), reader_nudges=((0.0, 0.3, 1.0, 1.0),), reread_sure=0.9)
    card = json.loads(json.dumps({"cascade_policy": nudged.to_card()}))
    assert CascadePolicy.from_card(card) == nudged and CascadePolicy().reader_nudges == ()
    with pytest.raises(ValueError, match="reader nudge"):
        CascadePolicy(reader_nudges=((0.0, 0.3, 1.0),))
    # The tiles' place: a card that does not name it searches first, as before.
    older = {"cascade_policy": {"tile_sides": [0.65, 0.5]}}
    assert CascadePolicy.from_card(older).tiles_before_search is False
    tiles_first = json.loads(json.dumps(replace(CascadePolicy(),
                                                tiles_before_search=True).to_card()))
    assert CascadePolicy.from_card({"cascade_policy": tiles_first}).tiles_before_search
    with pytest.raises(ValueError, match="tiles_before_search"):
        CascadePolicy(tiles_before_search="yes")
    with pytest.raises(ValueError, match="reader nudge"):
        CascadePolicy(reader_nudges=((0.0, 0.3, 0.0, 1.0),))




def test_a_desk_without_a_card_is_refused_after_one_look_and_the_card_finder(
        reference_predictor, monkeypatch, reference_threshold):
    """Counted through the served predictor: the desk photo's refusal runs the locator once,
    the card finder once and the refiner's first passes, no cut view, search or scan."""
    desk = (HELD_OUT / "desk-without-certificate.jpg").read_bytes()
    calls = {"locator": 0, "card_finder": 0, "refiner": 0}
    for name in calls:
        network = getattr(reference_predictor, name)
        real_run = network.run

        def counted(array, name=name, real_run=real_run):
            calls[name] += 1
            return real_run(array)

        monkeypatch.setattr(network, "run", counted)
    prediction = reference_predictor.predict_decoded(decode(desk), reference_threshold)
    assert prediction.confidence < reference_threshold
    assert prediction.card.presence < reference_predictor.policy.card_presence
    assert not (prediction.cut or prediction.searched or prediction.scanned
                or prediction.tiled)
    assert calls["locator"] == 1 and calls["card_finder"] == 1
    assert calls["refiner"] <= reference_predictor.policy.refine_passes + 1
