"""The exported models as served: LiteRT interpreters, loaded once, reused for every photo.

Stage 1 (the locator) finds the number on the whole photo letterboxed to 400 x 400. Stage 2
(the refiner, when the package has one) looks again at the number cut out of the decoded photo
at up to 3-5x the resolution, corrects the corners and their naming, and says how sure it is
that a registration number is there (certcorners.refine). An answer it refuses gets the
second look (or the view cut around the card), the search, and the tiles or the scan
(below) before the photo is refused. Stage 3 (the reader, when the package has one) reads
the text of an accepted answer (certcorners.reader).
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from certcorners import card_finder, reader, refine
from certcorners.policy import CascadePolicy
from certcorners.preprocessing import (
    DEFAULT_MAX_PIXELS,
    INPUT_SIZE,
    Decoded,
    Letterbox,
    decode,
    letterbox_array,
    output_to_corners,
    scaled_upright,
    unit_range,
)

# The rules the cascade follows (how many passes, when an answer has settled, when answers
# agree, the second look, the search and the scan) are one CascadePolicy, carried by the
# model card (certcorners.policy). Without a threshold only the first look runs.


@dataclass(frozen=True)
class Prediction:
    corners: np.ndarray  # (4, 2) photo pixels, spec order
    letterbox: Letterbox
    confidence: float | None  # None: the package has no refiner to judge it
    located: np.ndarray  # stage 1's corners, before refinement
    turns: int = 0  # quarter turns of the locator's view the answer came from (0: as is)
    searched: bool = False  # found by the search around the looks' quads
    scanned: bool = False  # found by the scan over the whole photo
    card: card_finder.CardFound | None = None  # the card finder's answer, where it ran
    cut: bool = False  # found in the view cut around the card
    tiled: bool = False  # found in a tile of the photo (the card finder's box missed)


class _Network:
    """One LiteRT interpreter with one input and one output of fixed shapes."""

    def __init__(self, path: str | Path, input_shape: list[int], num_threads: int):
        from ai_edge_litert.interpreter import Interpreter

        self.interpreter = Interpreter(model_path=str(path), num_threads=num_threads)
        self.interpreter.allocate_tensors()
        detail = self.interpreter.get_input_details()[0]
        if list(detail["shape"]) != input_shape:
            raise ValueError(f"{Path(path).name} takes {list(detail['shape'])}, "
                             f"not {input_shape}")
        self._input = detail["index"]
        self._output = self.interpreter.get_output_details()[0]["index"]
        # One interpreter holds one set of tensors: callers on threads take turns.
        self._lock = threading.Lock()

    def run(self, array: np.ndarray) -> np.ndarray:
        with self._lock:
            self.interpreter.set_tensor(self._input,
                                       np.asarray(array, np.float32)[np.newaxis])
            self.interpreter.invoke()
            return self.interpreter.get_tensor(self._output)[0].copy()


class Predictor:
    def __init__(self, locator_path: str | Path, num_threads: int | None = None,
                 refiner_path: str | Path | None = None,
                 policy: CascadePolicy | None = None,
                 card_finder_path: str | Path | None = None,
                 reader_path: str | Path | None = None):
        threads = num_threads or os.cpu_count() or 1
        self.locator = _Network(locator_path, [1, INPUT_SIZE, INPUT_SIZE, 1], threads)
        self.refiner = None if refiner_path is None else _Network(
            refiner_path, [1, refine.CROP_HEIGHT, refine.CROP_WIDTH, 1], threads)
        self.card_finder = None if card_finder_path is None else _Network(
            card_finder_path, [1, INPUT_SIZE, INPUT_SIZE, 1], threads)
        self.reader = None if reader_path is None else _Network(
            reader_path, [1, reader.VIEW_HEIGHT, reader.VIEW_WIDTH, 1], threads)
        self.policy = policy or CascadePolicy()
        if self.policy.fallback_reads and self.reader is None:
            raise ValueError("the cascade policy's fallback_reads needs a package with a reader")

    @property
    def refine_passes(self) -> int:
        return self.policy.refine_passes

    def locate(self, decoded: Decoded, turns: int = 0, canvas: np.ndarray | None = None,
               view: card_finder.CutView | None = None) -> np.ndarray:
        """Stage 1's corners (4, 2) in photo pixels, from its view of the letterboxed photo
        (or of the cut `view` of it) turned `turns` quarter turns anticlockwise (`canvas`:
        that view, if made already)."""
        if canvas is None:
            canvas = self.canvas(decoded) if view is None else view.canvas(decoded)
        output = _unturned(self.locator.run(np.ascontiguousarray(np.rot90(canvas, turns))),
                           turns)
        if view is None:
            return output_to_corners(output, decoded.letterbox)
        return view.to_photo(output.reshape(4, 2) * INPUT_SIZE)

    @staticmethod
    def canvas(decoded: Decoded) -> np.ndarray:
        """Stage 1's input: the photo letterboxed to [400, 400, 1] float32 in [0, 1]."""
        return unit_range(letterbox_array(scaled_upright(decoded), decoded.letterbox))

    def refine(self, decoded: Decoded, quad: np.ndarray) -> refine.Refined:
        """One refiner pass from a guessed quad."""
        crop, crop_to_photo = refine.cut(decoded, refine.reading_order(quad))
        return refine.to_photo(self.refiner.run(unit_range(crop)), crop_to_photo)

    def cascade(self, decoded: Decoded, located: np.ndarray, threshold: float | None = None,
                first_pass_floor: float = 0.0) -> tuple[np.ndarray, float]:
        """The refiner's passes from stage 1's corners: the corners and their confidence.
        With a refusal `threshold`, the passes stop once an accepted answer has settled;
        a first pass less sure than `first_pass_floor` is the last."""
        corners, confidence, _ = self._passes(decoded, located, threshold, first_pass_floor)
        return corners, confidence

    def _passes(self, decoded: Decoded, located: np.ndarray, threshold: float | None,
                first_pass_floor: float = 0.0) -> tuple[np.ndarray, float, bool]:
        """cascade's answer, and whether it has settled (stood already): accepted by a pass
        from the second on that came back within the policy's settled_px of the pass before,
        i.e. one more pass from that answer already agreed with it."""
        size = (decoded.letterbox.width, decoded.letterbox.height)
        corners, confidence, settled = refine.first_guess(located), 0.0, False
        for done in range(1, self.refine_passes + 1):
            if not refine.is_plausible(corners, size):
                return corners, 0.0, False
            refined = self.refine(decoded, corners)
            moved = _apart_400(decoded, refined.corners, corners)
            corners, confidence = refined.corners, refined.confidence
            if done == 1 and confidence < first_pass_floor:
                break
            if (threshold is not None and done >= 2 and confidence >= threshold
                    and moved < self.policy.settled_px):
                settled = True
                break
        if not refine.is_number_shaped(corners, self.policy):  # a wedge on other print
            return corners, 0.0, False
        return corners, confidence, settled

    def predict_decoded(self, decoded: Decoded, threshold: float | None = None,
                        scan: bool = True) -> Prediction:
        """The cascade's answer. With a refusal `threshold`, an answer below it gets the
        second look (with a card finder: the view cut around the card), the search and,
        unless `scan` is False, the scan (with a card finder: the tiles, before the search
        where the policy says so), by the policy's rules; without one, the answer is the
        first look's."""
        canvas = self.canvas(decoded)
        located = self.locate(decoded, canvas=canvas)
        if self.refiner is None:
            return Prediction(located, decoded.letterbox, None, located)
        corners, confidence = self._final(decoded, located, threshold)
        if threshold is None or confidence >= threshold:
            return Prediction(corners, decoded.letterbox, confidence, located)
        card = None if self.card_finder is None else self.find_card(decoded, canvas)
        if card is not None and card.presence < self.policy.card_presence:  # refused at once
            return Prediction(corners, decoded.letterbox, confidence, located, card=card)
        for found_by, look in self._looks_again(decoded, canvas, card, located, threshold,
                                                scan):
            answer = look()
            if answer is not None:
                corners, confidence, turns = answer
                return Prediction(corners, decoded.letterbox, confidence, located, turns,
                                  card=card, **({found_by: True} if found_by else {}))
        return Prediction(corners, decoded.letterbox, confidence, located, card=card)

    def _looks_again(self, decoded: Decoded, canvas: np.ndarray,
                     card: card_finder.CardFound | None, located: np.ndarray,
                     threshold: float, scan: bool):
        """The policy's ways to look again at a refused photo, in order: (the Prediction flag
        an answer from it sets, or None; a call that returns the answer or None). Each look's
        (quarter turns, stage 1's quad) goes into one list that the search starts from."""
        looks = [(0, located)]
        search = ("searched", lambda: self._search(decoded, looks, threshold))
        if card is None:  # no card finder: the photo turned, the search, the scan
            ways = [(None, lambda: self._second_look(decoded, canvas, threshold, looks)),
                    search]
            return ways + ([("scanned", lambda: self._scan(decoded, looks, threshold))]
                           if scan else [])
        card_look = ("cut", lambda: self._card_look(decoded, card, threshold, looks))
        tiles = [("tiled", lambda: self._tile_look(decoded, threshold))] if scan else []
        if self.policy.tiles_before_search:
            return [card_look, *tiles, search]
        return [card_look, search, *tiles]

    def _final(self, decoded: Decoded, located: np.ndarray, threshold: float | None
               ) -> tuple[np.ndarray, float]:
        """The refiner's passes from `located`; with a `threshold`, an accepted answer stays
        accepted only if it settled or one more pass stands by it (else confidence 0)."""
        corners, confidence, settled = self._passes(decoded, located, threshold)
        if (threshold is not None and confidence >= threshold and not settled
                and not self._stands_by(decoded, corners, threshold)):
            confidence = 0.0
        return corners, confidence

    def find_card(self, decoded: Decoded, canvas: np.ndarray) -> card_finder.CardFound:
        """The card finder's box (photo pixels) and how sure it is that a card is there."""
        return card_finder.read(self.card_finder.run(canvas), decoded.letterbox)

    def _card_look(self, decoded: Decoded, card: card_finder.CardFound, threshold: float,
                   looks: list[tuple[int, np.ndarray]]) -> tuple[np.ndarray, float, int] | None:
        """Stage 1 looks at the view cut around the `card`, then at that view turned (the
        policy's second look); the answer must stand or agree as on the whole photo. Each
        look's (quarter turns, quad) is added to `looks`."""
        letterbox = decoded.letterbox
        view = card_finder.cut_around(card.box, self.policy.card_margin, letterbox.width,
                                      letterbox.height)
        view_canvas = view.canvas(decoded)
        located = self.locate(decoded, canvas=view_canvas, view=view)
        looks.append((0, located))
        corners, confidence = self._final(decoded, located, threshold)
        if confidence >= threshold:
            return corners, confidence, 0
        return self._second_look(decoded, view_canvas, threshold, looks, view)

    def _tile_look(self, decoded: Decoded, threshold: float
                   ) -> tuple[np.ndarray, float, int] | None:
        """Stage 1 looks at each tile of the photo (the policy's tile_sides): the first
        accepted answer that stands."""
        letterbox = decoded.letterbox
        for side in self.policy.tile_sides:
            for view in card_finder.tiles(side, letterbox.width, letterbox.height):
                located = self.locate(decoded, view=view)
                corners, confidence = self._final(decoded, located, threshold)
                if confidence >= threshold and self._reads(decoded, corners):
                    return corners, confidence, 0
        return None

    def _reads(self, decoded: Decoded, corners: np.ndarray) -> bool:
        """Whether an answer from many places may stand: under the policy's fallback_reads,
        only where the reader reads a number in its box at reread_sure or more."""
        if not self.policy.fallback_reads:
            return True
        reading = self._read_view(decoded, corners)
        return reading is not None and reading.confidence >= self.policy.reread_sure

    def _stands_by(self, decoded: Decoded, corners: np.ndarray, threshold: float) -> bool:
        """Whether one more pass from an accepted answer accepts it again within the policy's
        agreement_px: on other print the refiner's answers wander."""
        again = self.refine(decoded, corners)
        return bool(again.confidence >= threshold and _apart_400(
            decoded, again.corners, corners) <= self.policy.agreement_px)

    def _second_look(self, decoded: Decoded, canvas: np.ndarray, threshold: float,
                     looks: list[tuple[int, np.ndarray]],
                     view: card_finder.CutView | None = None
                     ) -> tuple[np.ndarray, float, int] | None:
        """Two turned views (of the photo, or of the cut `view`) that the refiner accepts
        and that agree: the surer one's answer. Each view's (quarter turns, stage 1's
        corners) is added to `looks`."""
        agreed = _Agreement(decoded, 2, self.policy.agreement_px)
        for turns in self.policy.second_look_turns:
            located = self.locate(decoded, turns, canvas, view)
            looks.append((turns, located))
            answer = agreed.add(*self.cascade(decoded, located, threshold), turns,
                                threshold)
            if answer is not None:
                return answer
        return None

    def _search(self, decoded: Decoded, looks: list[tuple[int, np.ndarray]],
                threshold: float) -> tuple[np.ndarray, float, int] | None:
        """The policy's search_agreement accepted answers that agree, from guesses around the
        looks' quads (refine.neighbours; only the unturned looks' without the policy's
        search_turned_looks): the surest one's answer."""
        scale = px_per_400(decoded)
        turned = self.policy.search_turned_looks
        guesses = ((guess, turns) for turns, located in looks if turned or turns == 0
                   for guess in refine.neighbours(located, scale, self.policy))
        return self._agreeing(decoded, guesses, threshold)

    def _scan(self, decoded: Decoded, looks: list[tuple[int, np.ndarray]],
              threshold: float) -> tuple[np.ndarray, float, int] | None:
        """The policy's search_agreement accepted answers that agree, from a grid over the
        whole photo
        (refine.scan): the surest one's answer, named as found (turns 0)."""
        letterbox = decoded.letterbox
        guesses = refine.scan([located for _, located in looks],
                              (letterbox.width, letterbox.height),
                              px_per_400(decoded), self.policy)
        return self._agreeing(decoded, ((guess, 0) for guess in guesses), threshold)

    def _agreeing(self, decoded: Decoded, guesses, threshold: float
                  ) -> tuple[np.ndarray, float, int] | None:
        """The cascade from each (guess, turns) in turn, a first pass below the policy's floor
        the last, until search_agreement accepted answers (that read, under fallback_reads)
        agree."""
        policy = self.policy
        agreed = _Agreement(decoded, policy.search_agreement, policy.agreement_px)
        for guess, turns in guesses:
            corners, confidence = self.cascade(decoded, guess, threshold,
                                               policy.search_first_pass_floor)
            if confidence >= threshold and not self._reads(decoded, corners):
                confidence = 0.0
            answer = agreed.add(corners, confidence, turns, threshold)
            if answer is not None:
                return answer
        return None

    def read(self, decoded: Decoded, corners: np.ndarray) -> reader.Reading | None:
        """Stage 3: the text in the quad `corners` (photo pixels, spec order) that fits the
        grammar best, or None when none fits. Needs a package with a reader. A reading less
        sure than the policy's reread_below is read again from its nudged boxes."""
        reading = self._read_view(decoded, corners)
        policy = self.policy
        if not policy.reader_nudges or (reading is not None
                                        and reading.confidence >= policy.reread_below):
            return reading
        again = reader.only_sure([self._read_view(decoded, corners, nudge)
                                  for nudge in policy.reader_nudges], policy.reread_sure)
        return reading if again is None else replace(again, read_again=True)

    def _read_view(self, decoded: Decoded, corners: np.ndarray,
                   nudge: tuple[float, float, float, float] | None = None
                   ) -> reader.Reading | None:
        view = reader.model_input(reader.view(decoded, corners, nudge))
        return reader.read(self.reader.run(view))

    def predict(self, image, max_pixels: int = DEFAULT_MAX_PIXELS,
                threshold: float | None = None) -> Prediction:
        """Photo bytes or a PIL image -> the number's four corners in photo pixels."""
        return self.predict_decoded(decode(image, max_pixels), threshold)


class _Agreement:
    """Accepted answers collected until `needed` of them agree within `agreement_px` at the
    400-px scale."""

    def __init__(self, decoded: Decoded, needed: int, agreement_px: float):
        self.decoded = decoded
        self.needed = needed
        self.agreement_px = agreement_px
        self.accepted: list[tuple[np.ndarray, float, int]] = []

    def add(self, corners: np.ndarray, confidence: float, turns: int,
            threshold: float) -> tuple[np.ndarray, float, int] | None:
        """The surest of `needed` agreeing answers once this one completes them, else None."""
        if confidence < threshold:
            return None
        answer = (corners, confidence, turns)
        self.accepted.append(answer)
        agreeing = [a for a in self.accepted if _apart_400(self.decoded, corners, a[0])
                    <= self.agreement_px]
        return max(agreeing, key=lambda a: a[1]) if len(agreeing) >= self.needed else None


def px_per_400(decoded: Decoded) -> float:
    """Photo pixels per pixel at the 400-px scale (the long side letterboxed to INPUT_SIZE)."""
    return max(decoded.letterbox.width, decoded.letterbox.height) / INPUT_SIZE


def _apart_400(decoded: Decoded, quad: np.ndarray, other: np.ndarray) -> float:
    """How far apart two quads' corners of the same name are, at worst, at the 400-px scale."""
    long_side = max(decoded.letterbox.width, decoded.letterbox.height)
    return float(np.linalg.norm(quad - other, axis=1).max() * (INPUT_SIZE / long_side))


def _unturned(output: np.ndarray, turns: int) -> np.ndarray:
    """The locator's 8 outputs on np.rot90(canvas, turns) -> the same points on the canvas
    itself, as 8 outputs (x, y in [0, 1])."""
    x, y = np.asarray(output, dtype=np.float64).reshape(4, 2).T
    points = [(x, y), (1 - y, x), (1 - x, 1 - y), (y, 1 - x)][turns % 4]
    return np.stack(points, axis=1).reshape(8)
