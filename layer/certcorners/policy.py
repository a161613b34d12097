"""How the cascade decides: one policy, carried by the model card (`cascade_policy`).

Each rule is chosen on validation; the figures behind each are in docs/model-history.md and
the card. A card without `cascade_policy` (packages before 2026-12-05) takes these defaults,
with its `refine_passes` if it names one; a rule a card's policy does not name (the search's
and the scan's geometry before 2026-12-06, the tiles before reference-20261206g, their
place before reference-20261207b, the reading of fallback answers, the search's looks)
takes its default.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields


@dataclass(frozen=True)
class CascadePolicy:
    # The refiner runs at most this many passes from the locator's guess, each from a crop
    # centred on the last answer.
    refine_passes: int = 3
    # From the second pass on, an accepted answer that moved less than this (400-px scale)
    # from the pass before is final.
    settled_px: float = 1.0
    # Two answers agree when no corner is further apart than this (400-px scale). An
    # accepted answer must be accepted again, within it, by one more pass, unless it has
    # settled: one more pass from the answer before it came back within settled_px.
    agreement_px: float = 2.0
    # A refused first answer: the locator looks again at the photo turned by these quarter
    # turns; two accepted views that agree answer.
    second_look_turns: tuple[int, ...] = (1, 3, 2)
    # Still refused: the refiner searches around each look's quad, then (the scan) over a
    # grid on the whole photo. This many accepted answers that agree answer; a guess whose
    # first pass is less sure than the floor is dropped there.
    search_agreement: int = 3
    search_first_pass_floor: float = 0.5
    # With a card finder in the package, a refused first look goes to it instead of the
    # second look on the whole photo and the scan: below this presence there is no card and
    # the photo is refused at once; otherwise stage 1 looks again at a square of card_margin
    # times the card box's longer side, cut around it, then at that view turned (the second
    # look's turns), and last the search runs around every look's quad.
    card_presence: float = 0.5
    card_margin: float = 1.5
    # Still refused after the search (or before it: below), with a card there: stage 1 looks
    # at nine overlapping tiles of each of these sides (fractions of the photo's long side),
    # in this order; the first accepted answer that stands answers. Where the finder's box
    # misses a small card, a tile still shows its number at 1.5-2 times the whole photo's
    # scale.
    tile_sides: tuple[float, ...] = (0.65, 0.5)
    # With tiles_before_search the tiles run before the search, and the search (some hundred
    # refiner passes) only where no tile answers.
    tiles_before_search: bool = False
    # The tiles, the search and the scan look at many places, so one wrong place passes a low
    # threshold more easily. With fallback_reads their answers count only where the package's
    # reader reads a registration number in the answer's box at reread_sure or more: a box
    # that cuts a glyph off the number, or lies on other print, reads unsure or nothing.
    fallback_reads: bool = False
    # An answer is a number's box only if its two ends (its short sides) differ by at most
    # this ratio; other answers go on as refused.
    short_sides_ratio: float = 1.3
    # The search: number-shaped guesses around a look's quad, each (along, across) its
    # direction in number widths, turned by degrees; as wide as the quad, within
    # search_width_400 (400-px scale). A grid with no gap within the refiner's reach, then
    # the quad turned every 15 degrees of a half turn: stage 1 misjudges a small number's
    # direction more often than its place, and the refiner corrects a direction only a
    # little (docs/model-history.md).
    search_steps: tuple[tuple[float, float, float], ...] = tuple(
        (along, across, 0.0) for along in (-1.0, 0.0, 1.0) for across in (-0.6, 0.0, 0.6)
        if (along, across) != (0.0, 0.0)) + tuple(
        (0.0, 0.0, sign * degrees) for degrees in (30.0, 15.0, 45.0, 60.0, 75.0)
        for sign in (1.0, -1.0)) + ((0.0, 0.0, 90.0),)
    search_width_400: tuple[float, float] = (50.0, 80.0)
    # Without search_turned_looks the search starts only from the unturned looks' quads (the
    # whole photo's, the card view's): each look adds ~19 refiner passes to every refusal
    # that reaches the search.
    search_turned_looks: bool = True
    # The scan: guesses on a grid over the whole photo, scan_step number widths apart, in
    # each look's direction (directions closer than scan_same_direction_degrees are one).
    scan_step: float = 0.6
    scan_same_direction_degrees: float = 20.0
    # A reading less sure than reread_below is read again from its reading box nudged each
    # of these ways: (along, across) its width and height as shares of them, then its height
    # and width scaled. Where exactly one text is read at reread_sure or more, that reading
    # answers: a view that cuts a glyph reads it unsure, one that holds every glyph is sure.
    reread_below: float = 0.5
    reread_sure: float = 0.99
    reader_nudges: tuple[tuple[float, float, float, float], ...] = ()

    def __post_init__(self):
        if self.refine_passes < 1 or self.search_agreement < 1:
            raise ValueError(f"a cascade policy needs at least one pass and one answer: {self}")
        if not set(self.second_look_turns) <= {1, 2, 3}:
            raise ValueError(f"second_look_turns are quarter turns 1-3: {self}")
        if not 0.0 <= self.card_presence <= 1.0 or not self.card_margin >= 1.0:
            raise ValueError(f"card_presence is a probability and card_margin at least 1: "
                             f"{self}")
        if not all(0.0 < side <= 1.0 for side in self.tile_sides):
            raise ValueError(f"tile_sides are fractions of the photo's long side, in (0, 1]: "
                             f"{self}")
        for name in ("tiles_before_search", "fallback_reads", "search_turned_looks"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name} is true or false: {self}")
        if not self.short_sides_ratio >= 1.0 or not self.scan_step > 0.0:
            raise ValueError(f"short_sides_ratio is at least 1 and scan_step positive: {self}")
        if not (0.0 <= self.reread_below <= 1.0 and 0.0 <= self.reread_sure <= 1.0) or any(
                len(nudge) != 4 or not (nudge[2] > 0 and nudge[3] > 0)
                for nudge in self.reader_nudges):
            raise ValueError(f"reread_below and reread_sure are probabilities and each reader "
                             f"nudge (along, across, height scale > 0, width scale > 0): {self}")
        low, high = self.search_width_400
        if not 0.0 < low <= high or any(len(step) != 3 for step in self.search_steps):
            raise ValueError(f"search_width_400 is (low, high) > 0 and each search step "
                             f"(along, across, degrees): {self}")

    @classmethod
    def from_card(cls, card: dict) -> CascadePolicy:
        """The card's policy; an older card's `refine_passes` alone, or the defaults."""
        stored = dict(card.get("cascade_policy") or {})
        if "refine_passes" not in stored and "refine_passes" in card:
            stored["refine_passes"] = card["refine_passes"]
        known = {f.name for f in fields(cls)}
        unknown = set(stored) - known
        if unknown:
            raise ValueError(f"the model card's cascade_policy has unknown rules: "
                             f"{sorted(unknown)}")
        if "second_look_turns" in stored:  # a list in JSON; one turn may come as a number
            turns = stored["second_look_turns"]
            stored["second_look_turns"] = tuple(turns) if isinstance(turns, list | tuple) \
                else (turns,)
        for name in ("search_steps", "reader_nudges"):  # lists of lists in JSON
            if name in stored:
                stored[name] = tuple(tuple(map(float, step)) for step in stored[name])
        for name in ("search_width_400", "tile_sides"):  # lists of numbers in JSON
            if name in stored:
                stored[name] = tuple(map(float, stored[name]))
        return cls(**stored)

    def to_card(self) -> dict:
        return {**asdict(self), "second_look_turns": list(self.second_look_turns),
                "search_steps": [list(step) for step in self.search_steps],
                "reader_nudges": [list(nudge) for nudge in self.reader_nudges],
                "search_width_400": list(self.search_width_400),
                "tile_sides": list(self.tile_sides)}
