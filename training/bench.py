"""How fast the generator feeds the networks: training examples a second, one core, from the
seed to the canvas a network trains on (render, JPEG, decode, letterbox), side by side for
the profiles that draw the same composition.

    python -m training bench-data --count 20
"""

from __future__ import annotations

import statistics
import time

from certcorners.preprocessing import decode_scaled, letterbox_array

from training.photo import PHONE, PHONE_VIEW, Profile, synthetic_photo

SEED = 515


def _canvas_seconds(profile: Profile, index: int) -> float:
    started = time.perf_counter()
    photo = synthetic_photo(SEED, index, profile=profile)
    letterbox_array(*decode_scaled(photo.jpeg))
    return time.perf_counter() - started


def bench_data(count: int, rounds: int = 3) -> dict:
    """Seconds an example for `phone` (12 MP) and `phone-view` (~640 px) photos, `count`
    each a round, the profiles alternating round by round; medians over rounds."""
    if count < 1 or rounds < 1:
        raise ValueError("count and rounds must be at least 1")
    per_round = {profile.name: [] for profile in (PHONE, PHONE_VIEW)}
    for round_index in range(rounds):
        for profile in (PHONE, PHONE_VIEW):
            seconds = [_canvas_seconds(profile, round_index * count + i) for i in range(count)]
            per_round[profile.name].append(sum(seconds) / count)
    seconds = {name: statistics.median(values) for name, values in per_round.items()}
    return {"examples": count, "rounds": rounds,
            "examples_per_second": {name: round(1 / s, 2) for name, s in seconds.items()},
            "speed-up": round(seconds["phone"] / seconds["phone-view"], 1)}
