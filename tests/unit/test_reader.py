"""Stage 3's decoding: the best reading that fits the spec's grammar, never one that breaks
it, with its probability summed over every alignment; and the view it reads."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from certcorners import reader
from certcorners.preprocessing import decode
from PIL import Image, ImageDraw

from tests.conftest import jpeg_bytes


def aligned_logits(text: str, steps: int = reader.TIME_STEPS, sure: float = 8.0,
                   seed: int = 0) -> np.ndarray:
    """Logits whose likeliest path spells `text`: blanks, each character on two columns."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(0, 1, (steps, reader.NUM_CLASSES))
    logits[:, 0] += sure
    for column, label in zip(np.linspace(2, steps - 3, len(text)).round().astype(int),
                             reader.encode(text), strict=True):
        logits[column : column + 2, label] += 2 * sure
    return logits


@pytest.mark.parametrize("text", ["BA-123XY", "BA 123XY", "BA123XY", "BB001XX", "ZV 990AA"])
def test_a_clear_number_is_read_with_its_separator(text):
    reading = reader.read(aligned_logits(text))
    assert reading.text_as_printed == text
    assert reading.text == text.replace("-", "").replace(" ", "")
    assert 0.0 < reading.confidence <= 1.0


@pytest.mark.parametrize("seen, kept", [
    ("BX-123XY", ("B", "-123XY")),  # no district BX: only its second letter changes
    ("BA-123X7", ("BA-123X", "")),  # a digit where a letter must be
    ("8A-123XY", ("", "A-123XY")),  # a digit where the district is
    ("BA-12XY", ("BA-", "")),  # a digit short
])
def test_a_reading_that_breaks_the_grammar_is_never_returned(seen, kept):
    logits = aligned_logits(seen)
    assert reader.greedy(reader.log_softmax(logits)) == seen  # the network "saw" this
    reading = reader.read(logits)
    assert reader.GRAMMAR.match(reading.text_as_printed)
    assert reading.text_as_printed.startswith(kept[0])
    assert reading.text_as_printed.endswith(kept[1])
    # Among the texts the grammar allows, the columns leave this one no clear favourite.
    assert reading.confidence < 0.5


def test_a_doubtful_separator_is_no_doubt_about_the_number():
    """A gap the columns call a space or nothing, half and half: the canonical text is
    certain, and so is the reading."""
    logits = aligned_logits("BA 123XY")
    space = np.argmax(logits[:, reader.ALPHABET.index(" ") + 1])
    logits[space : space + 2, 0] = logits[space, reader.ALPHABET.index(" ") + 1]
    reading = reader.read(logits)
    assert reading.text == "BA123XY"
    assert reading.confidence > 0.999


def test_the_constrained_path_is_the_likeliest_valid_one_on_random_logits():
    """On noise, the Viterbi's reading fits the grammar and no valid text one character away,
    nor any of 100 random valid texts, has a likelier alignment."""
    rng = np.random.default_rng(5)
    for _ in range(4):
        log_probs = reader.log_softmax(rng.normal(0, 3, (reader.TIME_STEPS,
                                                          reader.NUM_CLASSES)))
        text = reader.constrained_best_path(log_probs)
        assert reader.GRAMMAR.match(text)
        best = _forced_alignment(log_probs, text)
        others = {text[:i] + c + text[i + 1:] for i in range(len(text))
                  for c in reader.ALPHABET}
        others |= {f"{reader.DISTRICTS[rng.integers(73)]}{'- '[rng.integers(2)]}"
                   f"{rng.integers(1000):03d}{''.join(rng.choice(list(reader.LETTERS), 2))}"
                   for _ in range(100)}
        for other in others:
            if reader.GRAMMAR.match(other):
                assert _forced_alignment(log_probs, other) <= best + 1e-9, other


def _forced_alignment(log_probs: np.ndarray, text: str) -> float:
    """The likeliest alignment's log-probability (Viterbi over CTC's states)."""
    labels = reader.encode(text)
    states = np.zeros(2 * len(labels) + 1, dtype=int)
    states[1::2] = labels
    skip = np.zeros(len(states), bool)
    skip[3::2] = states[3::2] != states[1:-2:2]
    alpha = np.full(len(states), -np.inf)
    alpha[:2] = log_probs[0, states[:2]]
    for t in range(1, len(log_probs)):
        alpha = np.maximum(np.maximum(alpha, np.r_[-np.inf, alpha[:-1]]),
                           np.where(skip, np.r_[-np.inf, -np.inf, alpha[:-2]], -np.inf)
                           ) + log_probs[t, states]
    return float(max(alpha[-1], alpha[-2]))


def test_too_few_columns_for_any_number_give_no_reading():
    assert reader.read(np.zeros((5, reader.NUM_CLASSES))) is None


def test_encode_refuses_characters_outside_the_alphabet():
    with pytest.raises(ValueError, match="does not know"):
        reader.encode("BA-12ÄXY")


def test_the_view_puts_the_quad_upright_in_its_box():
    """A dark bar drawn along a tilted quad on a rotated, EXIF-tagged photo fills the view's
    box, and the margins around it stay pale."""
    photo = Image.new("L", (600, 400), 230)
    quad = np.array([[200.0, 150.0], [380.0, 190.0], [374.0, 217.0], [194.0, 177.0]])
    ImageDraw.Draw(photo).polygon([tuple(p) for p in quad], fill=20)
    stored = photo.transpose(Image.Transpose.ROTATE_90)  # shown upright with orientation 6
    exif = Image.Exif()
    exif[0x0112] = 6
    view = reader.view(decode(jpeg_bytes(stored.convert("RGB"), 95, exif=exif.tobytes())),
                       quad)[..., 0].astype(float)
    assert view.shape == (reader.VIEW_HEIGHT, reader.VIEW_WIDTH)
    (x0, y0), (x1, y1) = reader.VIEW_BOX[0].astype(int), reader.VIEW_BOX[2].astype(int)
    assert view[y0 + 2 : y1 - 2, x0 + 2 : x1 - 2].mean() < 40
    assert view[: y0 - 2].mean() > 200 and view[y1 + 2 :].mean() > 200
    assert view[:, : x0 - 2].mean() > 200 and view[:, x1 + 2 :].mean() > 200


def test_a_sheared_or_tapered_quad_is_read_as_the_rectangle_along_its_centre_line():
    """Corners off by a shear (top moved one way, bottom the other) or a taper: the reader's
    box is the bar's own rectangle, so the bar fills the view's box upright and the margins
    stay pale; the quad itself would slant it into them."""
    photo = Image.new("L", (600, 400), 230)
    bar = np.array([[200.0, 150.0], [380.0, 190.0], [374.0, 217.0], [194.0, 177.0]])
    ImageDraw.Draw(photo).polygon([tuple(p) for p in bar], fill=20)
    decoded = decode(jpeg_bytes(photo.convert("RGB"), 95))
    along = (bar[1] - bar[0]) / np.linalg.norm(bar[1] - bar[0])
    sheared = bar + np.array([1, 1, -1, -1])[:, None] * 9.0 * along
    tapered = bar + np.array([[0, -4], [0, 0], [0, 0], [0, 4]])  # the left end 8 px taller
    np.testing.assert_allclose(reader.reading_box(sheared), bar, atol=1e-9)
    box = reader.reading_box(tapered)
    np.testing.assert_allclose(box.mean(axis=0), bar.mean(axis=0), atol=1e-9)
    assert np.linalg.norm(box[3] - box[0]) == pytest.approx(np.linalg.norm(bar[3] - bar[0]) + 4,
                                                             abs=0.1)
    (x0, y0), (x1, y1) = reader.VIEW_BOX[0].astype(int), reader.VIEW_BOX[2].astype(int)
    view = reader.view(decoded, sheared)[..., 0].astype(float)
    assert view[y0 + 2 : y1 - 2, x0 + 2 : x1 - 2].mean() < 40
    assert view[:, : x0 - 2].mean() > 200 and view[:, x1 + 2 :].mean() > 200
    assert view[: y0 - 2].mean() > 200 and view[y1 + 2 :].mean() > 200


def test_model_input_standardises_each_view():
    views = np.stack([np.full((reader.VIEW_HEIGHT, reader.VIEW_WIDTH, 1), v, np.uint8)
                      for v in (40, 200)])
    views[:, 10:20, 20:140] = 0
    prepared = reader.model_input(views)
    assert prepared.dtype == np.float32
    assert np.allclose(prepared.mean(axis=(1, 2, 3)), 0.0, atol=1e-5)


def test_the_confidence_sums_every_alignment_of_the_text_among_every_valid_one():
    """Columns that each allow one or two characters (or a blank): the confidence against
    sums over every path, those spelling the reading's canonical text (any separator) over
    those whose text the grammar allows."""
    columns = [("_",), ("B",), ("_",), ("A", "0"), ("_",), ("-", "_"), ("1", "7", "I"), ("_",),
               ("2",), ("_", "2"), ("3",), ("_",), ("X", "8"), ("_",), ("Y",), ("_",)]
    logits = np.full((len(columns), reader.NUM_CLASSES), -40.0)
    rng = np.random.default_rng(2)
    for t, allowed in enumerate(columns):
        for char in allowed:
            logits[t, 0 if char == "_" else reader.ALPHABET.index(char) + 1] = rng.normal()
    log_probs = reader.log_softmax(logits)
    reading = reader.read(logits)
    valid = this = invalid = 0.0
    for path in itertools.product(*columns):
        text = "".join(c for i, c in enumerate(path)
                       if c != "_" and (i == 0 or path[i - 1] != c))
        p = np.exp(sum(log_probs[t, 0 if c == "_" else reader.ALPHABET.index(c) + 1]
                       for t, c in enumerate(path)))
        if not reader.GRAMMAR.match(text):
            invalid += p
            continue
        valid += p
        this += p if reader.canonical(text) == reading.text else 0.0
    assert invalid > 1e-4 and 0.05 < this / valid < 0.95  # neither part is trivial
    assert reading.confidence == pytest.approx(this / valid, rel=1e-4)


def test_a_nudged_box_moves_by_shares_of_the_box_and_scales_about_its_centre():
    box = reader.number_rectangle(np.array([300.0, 200.0]), np.array([0.6, 0.8]), 100.0, 20.0)
    across = np.array([-0.8, 0.6])  # towards the box's bottom
    np.testing.assert_allclose(reader.nudged(box, 0.0, 0.5, 1.0, 1.0), box + 10.0 * across)
    np.testing.assert_allclose(reader.nudged(box, 0.1, 0.0, 1.0, 1.0),
                               box + 10.0 * np.array([0.6, 0.8]))
    scaled = reader.nudged(box, 0.0, 0.0, 1.5, 0.5)
    np.testing.assert_allclose(scaled.mean(axis=0), box.mean(axis=0))
    assert np.linalg.norm(scaled[1] - scaled[0]) == pytest.approx(50.0)
    assert np.linalg.norm(scaled[3] - scaled[0]) == pytest.approx(30.0)
    point = np.full((4, 2), 7.0)  # a degenerate quad's box: nothing to move along
    np.testing.assert_array_equal(reader.nudged(point, 0.1, 0.3, 1.2, 1.0), point)


def test_only_a_text_every_sure_view_agrees_on_is_taken():
    def reading(text, confidence):
        return reader.Reading(text, confidence)

    assert reader.only_sure([reading("BA123XY", 0.4), None, reading("BA-123XY", 0.995),
                             reading("BA123XY", 0.999)], 0.99) == reading("BA123XY", 0.999)
    assert reader.only_sure([reading("BA123XY", 0.999), reading("BA123XV", 0.995)], 0.99) \
        is None
    assert reader.only_sure([reading("BA123XY", 0.98), None], 0.99) is None
