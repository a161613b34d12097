"""How long a network design takes as served (LiteRT, 1 thread), before any training: the
weights' values do not change the time, so a design is timed before hours go into it.

    python -m training bench-networks --locator 8,16,24,32,48,96:3 \
        --locator 8,12,16,24,48,96:4 --refiner 16,24,32,48,64:0 --refiner 12,16,24,32,48:2

Each design is WIDTHS:STRIDED (the blocks' widths, how many strided blocks). The designs run
in turns, round by round, in one process; the figures are medians over rounds, with each
design's ratio to the first of its kind.
"""

from __future__ import annotations

import statistics
import time

import numpy as np

from training.locator import LocatorConfig, build_locator
from training.refiner.network import RefinerConfig, build_refiner


def parse_design(text: str) -> tuple[tuple[int, ...], int]:
    """"8,12,16:3" -> ((8, 12, 16), 3); ValueError where it is not that."""
    widths, _, strided = text.partition(":")
    try:
        return tuple(int(w) for w in widths.split(",")), int(strided or 0)
    except ValueError:
        raise ValueError(f"a design is WIDTHS:STRIDED, e.g. 8,12,16,24,48,96:4; got {text!r}"
                         ) from None


def _interpreter(model):
    from ai_edge_litert.interpreter import Interpreter

    from training.export import to_tflite

    interpreter = Interpreter(model_content=to_tflite(model), num_threads=1)
    interpreter.allocate_tensors()
    return interpreter


def bench_networks(locators: list[str], refiners: list[str], rounds: int = 30,
                   calls: int = 10) -> dict:
    """Median ms a call of each design (`calls` calls a round, `rounds` rounds in turns)."""
    designs = {}
    for kind, texts in (("locator", locators), ("refiner", refiners)):
        for text in texts:
            widths, strided = parse_design(text)
            model = (build_locator(LocatorConfig(filters=widths, strided_blocks=strided))
                     if kind == "locator" else
                     build_refiner(RefinerConfig(filters=widths, strided_blocks=strided)))
            designs[f"{kind} {text}"] = (kind, model)
    times: dict[str, list[float]] = {name: [] for name in designs}
    interpreters = {name: _interpreter(model) for name, (_, model) in designs.items()}
    rng = np.random.default_rng(0)
    for _ in range(rounds):
        for name, interpreter in interpreters.items():
            detail = interpreter.get_input_details()[0]
            interpreter.set_tensor(detail["index"], rng.random(detail["shape"], dtype=np.float32))
            interpreter.invoke()  # warm the caches for this design
            started = time.perf_counter()
            for _ in range(calls):
                interpreter.invoke()
            times[name].append((time.perf_counter() - started) * 1000 / calls)
    report, first = {}, {}
    for name, (kind, model) in designs.items():
        median = statistics.median(times[name])
        first.setdefault(kind, median)
        report[name] = {"parameters": int(model.count_params()), "ms": round(median, 3),
                        "x_first": round(median / first[kind], 3)}
    return report
