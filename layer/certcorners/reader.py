"""Stage 3, the reader: the number's text from its corners.

The refined quad's reading box (a rectangle along its centre line: reading_box) is mapped
onto VIEW_BOX inside a VIEW_WIDTH x VIEW_HEIGHT grayscale view cut from the photo as decoded
(no second decode). The reader network answers, for each of its VIEW_WIDTH / 4 columns, the
logits of a blank and of each character in ALPHABET (a CTC head). The reading is the
likeliest alignment path whose text matches the spec's grammar (GRAMMAR); its confidence is
the probability of its canonical text (any separator, all alignments summed) among the texts
the grammar allows.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from certcorners.geometry import homography
from certcorners.preprocessing import Decoded
from certcorners.refine import number_rectangle, reading_frame

# The spec's district codes (field A): a number is one of these, three digits, two letters,
# with '-', ' ' or nothing after the district.
DISTRICTS = (
    "BA", "BB", "BJ", "BL", "BN", "BR", "BS", "BT", "CA", "DK", "DS", "DT", "GA", "GL", "HC",
    "HE", "IL", "KA", "KE", "KK", "KM", "KN", "KS", "LC", "LE", "LM", "LV", "MA", "MI", "ML",
    "MT", "MY", "NR", "NM", "NO", "NZ", "PB", "PD", "PE", "PK", "PN", "PO", "PP", "PT", "PU",
    "RA", "RK", "RS", "RV", "SA", "SB", "SC", "SE", "SI", "SK", "SL", "SN", "SO", "SP", "SV",
    "TN", "TO", "TR", "TS", "TT", "TV", "VK", "VT", "ZA", "ZC", "ZH", "ZM", "ZV",
)
GRAMMAR = re.compile(rf"^({'|'.join(DISTRICTS)})[ -]?[0-9]{{3}}[A-Z]{{2}}$")
SEPARATORS = "- "
DIGITS = "0123456789"
LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
# Class 0 is CTC's blank (Keras' mask_index default); class i is ALPHABET[i - 1].
ALPHABET = DIGITS + LETTERS + SEPARATORS
NUM_CLASSES = len(ALPHABET) + 1
MAX_TEXT = 8  # "BA-123XY"

VIEW_WIDTH, VIEW_HEIGHT = 160, 32
# The quad lands here: 6 px above and below (~a third of the number's height), 8 px left and
# right, so a corner a pixel or two off still leaves every glyph whole.
VIEW_BOX = np.array([[8.0, 6.0], [152.0, 6.0], [152.0, 26.0], [8.0, 26.0]])
TIME_STEPS = VIEW_WIDTH // 4  # the network's columns


@dataclass(frozen=True)
class Reading:
    text_as_printed: str  # "BA-123XY": the separator as read
    confidence: float  # P(its canonical text | a text the grammar allows)
    read_again: bool = False  # read from a nudged box (Predictor.read)

    @property
    def text(self) -> str:
        """The canonical form: letters and digits only ("BA123XY")."""
        return canonical(self.text_as_printed)


def canonical(text: str) -> str:
    return "".join(c for c in text if c not in SEPARATORS)


def encode(text: str) -> list[int]:
    """Text -> class indices (1-based: 0 is the blank). Raises ValueError on a character
    outside ALPHABET."""
    unknown = set(text) - set(ALPHABET)
    if unknown:
        raise ValueError(f"{text!r} has characters the reader does not know: {sorted(unknown)}")
    return [ALPHABET.index(c) + 1 for c in text]


def view(decoded: Decoded, quad: np.ndarray,
         nudge: tuple[float, float, float, float] | None = None) -> np.ndarray:
    """uint8 [VIEW_HEIGHT, VIEW_WIDTH, 1]: the quad's reading box (photo pixels, spec order)
    upright, `nudged` when a nudge is given."""
    box = reading_box(quad)
    if nudge is not None:
        box = nudged(box, *nudge)
    to_photo = homography(VIEW_BOX, box)
    return decoded.cut(to_photo, (VIEW_WIDTH, VIEW_HEIGHT), fill=255)


def nudged(box: np.ndarray, along: float, across: float, height_scale: float,
           width_scale: float) -> np.ndarray:
    """A reading box (a rectangle, spec order) moved `along` its width and `across` its
    height (shares of them; across is towards its bottom), then scaled about its centre. A
    box with no width (a degenerate quad's) stays as it is."""
    frame = reading_frame(box)
    if frame is None:
        return box
    centre, x_axis, width = frame
    y_axis = np.array([-x_axis[1], x_axis[0]])
    height = float(np.dot(box[3] - box[0], y_axis))  # signed, as number_rectangle takes it
    centre = centre + along * width * x_axis + across * height * y_axis
    return number_rectangle(centre, x_axis, width * width_scale, height * height_scale)


def only_sure(readings: list[Reading | None], sure: float) -> Reading | None:
    """The surest of `readings` at `sure` or more, where they all read one canonical text;
    None where none is that sure or they disagree."""
    sure_ones = [r for r in readings if r is not None and r.confidence >= sure]
    if len({r.text for r in sure_ones}) != 1:
        return None
    return max(sure_ones, key=lambda r: r.confidence)


def reading_box(quad: np.ndarray) -> np.ndarray:
    """The rectangle the reader sees for a quad (spec order): in the quad's reading frame
    (through the midpoints of its two short sides, between them), as tall as the quad is
    across it. A corner that is off shears or tapers the quad, which slants or squeezes the
    glyphs; here it moves the box by half as much and never slants it. A number's own taper
    within the spec's perspective is a few per cent, which the view's margins hold."""
    quad = np.asarray(quad, dtype=np.float64)
    frame = reading_frame(quad)
    if frame is None:  # a degenerate quad: nothing to straighten
        return quad
    centre, x_axis, width = frame
    # The short sides' mean extent across the frame (a shear lengthens them, not this),
    # signed so that the box keeps the quad's top where it was.
    height = float(np.dot(quad[3] - quad[0] + quad[2] - quad[1],
                          [-x_axis[1], x_axis[0]])) / 2
    return number_rectangle(centre, x_axis, width, height)


def model_input(views: np.ndarray) -> np.ndarray:
    """uint8 views [..., VIEW_HEIGHT, VIEW_WIDTH, 1] -> float32, each standardised (zero
    mean, unit spread, the spread at least 8 grey levels): the light and the card's tint
    change the grey levels, not the text."""
    views = np.asarray(views, dtype=np.float32)
    mean = views.mean(axis=(-3, -2, -1), keepdims=True)
    spread = np.maximum(views.std(axis=(-3, -2, -1), keepdims=True), 8.0)
    return (views - mean) / spread


def log_softmax(logits: np.ndarray) -> np.ndarray:
    logits = np.asarray(logits, dtype=np.float64)
    shifted = logits - logits.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def softmax(logits: np.ndarray) -> np.ndarray:
    """float32 class probabilities of each column."""
    logits = np.asarray(logits, dtype=np.float32)
    exps = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return exps / exps.sum(axis=-1, keepdims=True)


def greedy(scores: np.ndarray) -> str:
    """The best single alignment path's text: each column's likeliest class (by logits or
    log-probabilities alike), repeats merged, blanks dropped."""
    best = np.argmax(scores, axis=-1)
    kept = best[np.r_[True, best[1:] != best[:-1]]]
    return "".join(ALPHABET[k - 1] for k in kept if k != 0)


# The grammar as slots in reading order: the characters each may hold and the slots that may
# come before it. The district's second letter depends on its first (DISTRICTS).
_SLOTS = (
    (sorted({d[0] for d in DISTRICTS}), ()),
    (LETTERS, (0,)),
    (SEPARATORS, (1,)),
    (DIGITS, (1, 2)),
    (DIGITS, (3,)),
    (DIGITS, (4,)),
    (LETTERS, (5,)),
    (LETTERS, (6,)),
)
_OFFSETS = np.cumsum([0] + [len(chars) for chars, _ in _SLOTS])
_EMITS = int(_OFFSETS[-1])  # the states that emit a character come first
_START = _EMITS + len(_SLOTS[0][0]) + len(_SLOTS) - 1  # after the blanks: the last state


def _emit_state(slot: int, char: str) -> int:
    return int(_OFFSETS[slot]) + list(_SLOTS[slot][0]).index(char)


def _blank_after(slot: int, index: int) -> int:
    """The blank state after the `index`th character of `slot`: one per character of the
    first slot, one per later slot."""
    return _EMITS + index if slot == 0 else _EMITS + len(_SLOTS[0][0]) + slot - 1


def _grammar_graph():
    """CTC's states over the grammar and the edges between columns.

    States: one per slot and character it may hold (it emits that character); a blank after
    each of the first slot's characters (which second letters may follow depends on it); one
    blank after each later slot (any next character may follow it, even a repeat); and the
    start (leading blanks). Each state stays; a character is entered from a different
    character of a slot before it or from a blank after one. Returns (each state's class,
    the edges' sources sorted by destination, their destinations, where each destination's
    edges start, the states a text may end in)."""
    classes = np.zeros(_START + 1, dtype=np.int64)
    edges = [(state, state) for state in range(_START + 1)]  # (destination, source)
    for s, (chars, before) in enumerate(_SLOTS):
        for j, char in enumerate(chars):
            state = int(_OFFSETS[s]) + j
            classes[state] = ALPHABET.index(char) + 1
            edges.append((_blank_after(s, j), state))
            if not before:
                edges.append((state, _START))
            for p in before:
                for i, previous in enumerate(_SLOTS[p][0]):
                    if s == 1 and f"{previous}{char}" not in DISTRICTS:
                        continue
                    if previous != char:
                        edges.append((state, int(_OFFSETS[p]) + i))
                    if p == 0 or i == 0:  # one blank state per later slot: one edge
                        edges.append((state, _blank_after(p, i)))
    edges = sorted(set(edges))
    destinations = np.array([d for d, _ in edges])
    groups = np.searchsorted(destinations, np.arange(_START + 1))
    ends = np.r_[np.arange(_OFFSETS[-2], _OFFSETS[-1]), _blank_after(len(_SLOTS) - 1, 0)]
    return classes, np.array([src for _, src in edges]), destinations, groups, ends


_CLASSES, _SOURCES, _DESTINATIONS, _GROUPS, _ENDS = _grammar_graph()
_STEPS = np.zeros((len(_CLASSES), len(_CLASSES)), dtype=np.float32)  # destination x source
_STEPS[_DESTINATIONS, _SOURCES] = 1.0


_TEXT_SLOTS = (0, 1, 3, 4, 5, 6, 7)  # the slots of a canonical text's seven characters
# The states every canonical text shares: the separators, the blanks after each later slot,
# the start.
_TEXT_TAIL = [_emit_state(2, c) for c in SEPARATORS] + [
    _blank_after(s, 0) for s in range(1, len(_SLOTS))] + [_START]
# Where a text ends, in _text_states' order: its last character, or the blank after it.
_TEXT_ENDS = np.array([len(_TEXT_SLOTS) - 1,
                       len(_TEXT_SLOTS) + 1 + _TEXT_TAIL.index(_blank_after(len(_SLOTS) - 1, 0))])


def _text_states(text: str) -> np.ndarray:
    """The grammar's states that spell canonical(text), with any separator or none: its seven
    characters', the blank after its first, then _TEXT_TAIL."""
    chars = canonical(text)
    if not GRAMMAR.match(chars):
        raise ValueError(f"{text!r} does not match the grammar")
    emits = [_emit_state(s, c) for s, c in zip(_TEXT_SLOTS, chars, strict=True)]
    first_blank = _blank_after(0, emits[0] - int(_OFFSETS[0]))
    return np.array([*emits, first_blank, *_TEXT_TAIL])


_BESIDE: dict[bytes, np.ndarray] = {}


def _steps_beside(kept: np.ndarray) -> np.ndarray:
    """The grammar's steps, and beside them (block-diagonal) the steps among `kept`. Which of
    a text's states may follow which depends only on where it repeats a character, so a few
    matrices serve every text: they are kept."""
    block = _STEPS[np.ix_(kept, kept)]
    key = block.tobytes()
    steps = _BESIDE.get(key)
    if steps is None:
        size = len(_CLASSES)
        steps = np.zeros((size + len(kept),) * 2, dtype=np.float32)
        steps[:size, :size] = _STEPS
        steps[size:, size:] = block
        steps.flags.writeable = False
        _BESIDE[key] = steps
    return steps


def text_confidence(probs: np.ndarray, text: str) -> float:
    """P(canonical(text), with any separator | a text the grammar allows) under CTC, from
    the columns' class probabilities [columns, NUM_CLASSES]: one forward pass over the
    grammar's states and, beside them, the states that spell the text (a subset of the
    grammar's paths, so both are rescaled by the grammar's mass every 8 columns and the ratio
    is exact). 0 where the grammar's mass underflows float32 all the same: 8 columns then
    kept under 2e-5 of their mass each for any valid text."""
    kept = _text_states(text)
    steps = _steps_beside(kept)
    size = len(_CLASSES)
    columns = np.asarray(probs, dtype=np.float32)[:, np.r_[_CLASSES, _CLASSES[kept]]]
    alpha = np.zeros(len(steps), dtype=np.float32)
    alpha[[_START, len(steps) - 1]] = 1.0  # before the first column: the starts
    for t in range(len(columns)):
        alpha = (steps @ alpha) * columns[t]
        if t % 8 == 7:
            mass = alpha[:size].sum()
            if not mass > 0:
                return 0.0
            alpha = alpha / mass
    valid = float(alpha[_ENDS].sum())
    this = float(alpha[size + _TEXT_ENDS].sum())
    return min(1.0, this / valid) if valid > 0 else 0.0


def constrained_best_path(log_probs: np.ndarray) -> str | None:
    """The text of the likeliest alignment path whose text matches GRAMMAR (Viterbi over the
    grammar's states); None when no path fits (too few columns)."""
    edges = np.arange(len(_SOURCES))
    score = np.full(len(_CLASSES), -np.inf)
    score[_START] = 0.0
    came_from = np.empty((len(log_probs), len(_CLASSES)), dtype=np.int64)
    for t in range(len(log_probs)):
        candidates = score[_SOURCES]
        best = np.maximum.reduceat(candidates, _GROUPS)
        chosen = np.where(candidates == best[_DESTINATIONS], edges, len(edges))
        came_from[t] = _SOURCES[np.minimum.reduceat(chosen, _GROUPS)]
        score = best + log_probs[t, _CLASSES]
    state = int(_ENDS[np.argmax(score[_ENDS])])
    if not np.isfinite(score[state]):
        return None
    text = []
    for t in range(len(log_probs) - 1, -1, -1):
        previous = int(came_from[t, state])
        if previous != state and _CLASSES[state]:  # a character entered here
            text.append(ALPHABET[_CLASSES[state] - 1])
        state = previous
    return "".join(reversed(text))


def read(logits: np.ndarray) -> Reading | None:
    """The reader's output [TIME_STEPS, NUM_CLASSES] -> the best reading that matches the
    grammar, or None when none fits. The best path unconstrained is the answer whenever it
    fits the grammar (most crops); otherwise the Viterbi over the grammar decides."""
    text = greedy(logits)
    if not GRAMMAR.match(text):
        text = constrained_best_path(log_softmax(logits))
        if text is None:
            return None
    # Its probability among the texts the grammar allows: the network's mass on texts that
    # cannot be numbers (a 0 where a letter must be) is no doubt about this one; nor is the
    # separator, which the canonical text leaves out (a space is a gap the eye barely sees).
    return Reading(text, text_confidence(softmax(logits), text))
