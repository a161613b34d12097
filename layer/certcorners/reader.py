"""Stage 3, the reader: the number's text from its corners.

The refined quad is mapped onto VIEW_BOX inside a VIEW_WIDTH x VIEW_HEIGHT grayscale view cut
from the photo as decoded (no second decode). The reader network answers, for each of its
VIEW_WIDTH / 4 columns, the logits of a blank and of each character in ALPHABET (a CTC
head). The reading is the likeliest alignment path whose text matches the spec's grammar
(GRAMMAR); its confidence is the probability of that text, summed over all its alignments,
among the texts the grammar allows.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from certcorners.geometry import homography
from certcorners.preprocessing import Decoded

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
    confidence: float  # P(this text | a text the grammar allows), all alignments summed

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


def view(decoded: Decoded, quad: np.ndarray) -> np.ndarray:
    """uint8 [VIEW_HEIGHT, VIEW_WIDTH, 1]: the quad (photo pixels, spec order) upright."""
    to_photo = homography(VIEW_BOX, np.asarray(quad, dtype=np.float64))
    return decoded.cut(to_photo, (VIEW_WIDTH, VIEW_HEIGHT), fill=255)


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


def greedy(log_probs: np.ndarray) -> str:
    """The best single alignment path's text: each column's likeliest class, repeats merged,
    blanks dropped."""
    best = np.argmax(log_probs, axis=-1)
    kept = best[np.r_[True, best[1:] != best[:-1]]]
    return "".join(ALPHABET[k - 1] for k in kept if k != 0)


def text_log_probability(log_probs: np.ndarray, text: str) -> float:
    """log P(text) under CTC: the sum over every alignment of it (the forward algorithm, in
    probabilities, rescaled every few columns; -inf where it underflows)."""
    labels = encode(text)
    extended = np.zeros(2 * len(labels) + 1, dtype=np.int64)
    extended[1::2] = labels
    states = len(extended)
    # Each state is reached from itself and the one before, and from two before where that
    # skips a blank between two different labels.
    steps = np.eye(states) + np.eye(states, k=-1)
    for k in range(3, states, 2):
        steps[k, k - 2] = float(extended[k] != extended[k - 2])
    probs = np.exp(log_probs[:, extended])
    alpha = np.zeros(states)
    alpha[:2] = probs[0, :2]
    done = _forward(steps, probs[1:], alpha, every=4)
    if done is None:
        return -np.inf
    alpha, total = done
    end = alpha[-1] + (alpha[-2] if states > 1 else 0.0)
    return float(total + np.log(end)) if end > 0 else -np.inf


def _forward(steps: np.ndarray, probs: np.ndarray, alpha: np.ndarray, every: int
             ) -> tuple[np.ndarray, float] | None:
    """The forward algorithm's states after each column of `probs` (the `steps` between
    columns, then the column's probabilities), rescaled every `every` columns: (the states,
    the log of the scales taken out), or None when they underflow to nothing."""
    total = 0.0
    for t in range(len(probs)):
        alpha = (steps @ alpha) * probs[t]
        if t % every == every - 1 or t == len(probs) - 1:
            scale = alpha.sum()
            if not scale > 0:
                return None
            alpha = alpha / scale
            total += float(np.log(scale))
    return alpha, total


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


def _grammar_graph():
    """The grammar's states (one per slot and character it may hold: its class) and the
    edges into them, sorted by the state they enter. A source is an index into
    [emit states, blank states, start]: a character is entered from the character before it,
    from the blank after it (then even a repeat is a new character), or, in the first slot,
    from the start."""
    offsets = np.cumsum([0] + [len(chars) for chars, _ in _SLOTS])
    count = int(offsets[-1])
    classes = np.array([ALPHABET.index(c) + 1 for chars, _ in _SLOTS for c in chars])
    edges = []  # (destination, source)
    for s, (chars, before) in enumerate(_SLOTS):
        for j, char in enumerate(chars):
            destination = offsets[s] + j
            if not before:
                edges.append((destination, 2 * count))
            for p in before:
                for i, previous in enumerate(_SLOTS[p][0]):
                    if s == 1 and f"{previous}{char}" not in DISTRICTS:
                        continue
                    if previous != char:
                        edges.append((destination, offsets[p] + i))
                    edges.append((destination, count + offsets[p] + i))
    edges.sort()
    destinations = np.array([d for d, _ in edges])
    starts = np.flatnonzero(np.r_[True, destinations[1:] != destinations[:-1]])
    return (count, classes, np.array([src for _, src in edges]), destinations[starts], starts,
            np.arange(offsets[-2], offsets[-1]))


_STATES, _CLASSES, _SOURCES, _ENTERED, _GROUPS, _LAST_SLOT = _grammar_graph()


def _grammar_steps() -> np.ndarray:
    """The grammar's transitions between columns as one matrix over [emit states, blank
    states, start] (destination x source): a character stays or is entered along its edges,
    a blank follows a character or itself, the start stays."""
    size = 2 * _STATES + 1
    steps = np.zeros((size, size))
    destinations = np.repeat(_ENTERED, np.diff(np.r_[_GROUPS, len(_SOURCES)]))
    steps[destinations, _SOURCES] = 1.0
    every = np.arange(_STATES)
    steps[every, every] = 1.0
    steps[_STATES + every, every] = 1.0
    steps[_STATES + every, _STATES + every] = 1.0
    steps[2 * _STATES, 2 * _STATES] = 1.0
    return steps


_GRAMMAR_STEPS = _grammar_steps().astype(np.float32)  # float32: a third faster
_STATE_CLASSES = np.r_[_CLASSES, np.zeros(_STATES + 1, dtype=np.int64)]


def grammar_log_probability(log_probs: np.ndarray) -> float:
    """log P(the text is any the grammar allows) under CTC: the forward algorithm over the
    grammar's states, in float32 probabilities rescaled every other column (-inf where it
    underflows all the same)."""
    probs = np.exp(log_probs[:, _STATE_CLASSES]).astype(np.float32)
    alpha = np.zeros(2 * _STATES + 1, dtype=np.float32)
    alpha[-1] = 1.0  # before the first column: the start
    done = _forward(_GRAMMAR_STEPS, probs, alpha, every=2)
    if done is None:
        return -np.inf
    alpha, total = done
    end = float(alpha[_LAST_SLOT].sum() + alpha[_STATES + _LAST_SLOT].sum())
    return float(total + np.log(end)) if end > 0 else -np.inf


def constrained_best_path(log_probs: np.ndarray) -> str | None:
    """The text of the likeliest alignment path whose text matches GRAMMAR (Viterbi over the
    grammar's states); None when no path fits (too few columns)."""
    frames = len(log_probs)
    emit = np.full(_STATES, -np.inf)  # last column: this state's character
    blank = np.full(_STATES, -np.inf)  # last column: a blank after it
    start = 0.0  # only blanks so far
    candidates = np.empty((frames, len(_SOURCES)))  # for the walk back
    stayed = np.empty((frames, _STATES), dtype=bool)
    blank_from_emit = np.empty((frames, _STATES), dtype=bool)
    for t in range(frames):
        candidates[t] = np.r_[emit, blank, start][_SOURCES]
        entry = np.full(_STATES, -np.inf)
        entry[_ENTERED] = np.maximum.reduceat(candidates[t], _GROUPS)
        stayed[t] = emit >= entry
        blank_from_emit[t] = emit >= blank
        emit, blank = (np.maximum(emit, entry) + log_probs[t, _CLASSES],
                       np.maximum(emit, blank) + log_probs[t, 0])
        start += log_probs[t, 0]
    ends = np.maximum(emit[_LAST_SLOT], blank[_LAST_SLOT])
    if not np.isfinite(ends).any():
        return None
    state = int(_LAST_SLOT[np.argmax(ends)])
    in_blank = bool(blank[state] > emit[state])
    text = []
    for t in range(frames - 1, -1, -1):
        if in_blank:
            in_blank = not blank_from_emit[t, state]
            continue
        if stayed[t, state]:
            continue
        text.append(ALPHABET[_CLASSES[state] - 1])  # its character was entered here
        group = int(np.searchsorted(_ENTERED, state))
        first = _GROUPS[group]
        last = _GROUPS[group + 1] if group + 1 < len(_GROUPS) else len(_SOURCES)
        source = int(_SOURCES[first + np.argmax(candidates[t, first:last])])
        if source == 2 * _STATES:
            break
        state, in_blank = source % _STATES, source >= _STATES
    return "".join(reversed(text))


def read(logits: np.ndarray) -> Reading | None:
    """The reader's output [TIME_STEPS, NUM_CLASSES] -> the best reading that matches the
    grammar, or None when none fits. The best path unconstrained is the answer whenever it
    fits the grammar (most crops); otherwise the Viterbi over the grammar decides."""
    log_probs = log_softmax(logits)
    text = greedy(log_probs)
    if not GRAMMAR.match(text):
        text = constrained_best_path(log_probs)
        if text is None:
            return None
    # Its probability among the texts the grammar allows: the network's mass on texts that
    # cannot be numbers (a 0 where a letter must be) is no doubt about this one.
    valid = grammar_log_probability(log_probs)
    confidence = np.exp(text_log_probability(log_probs, text) - valid) if valid > -np.inf \
        else 0.0
    return Reading(text, float(min(1.0, confidence)))
