"""Where a request's time went: the `timing_ms` of an answer and the `Server-Timing` header
of every response, refusals and errors included, from one record."""

from __future__ import annotations

import time


class RequestTiming:
    """Milliseconds per step of the request in flight. One per execution environment: Lambda
    runs one invocation at a time in it."""

    def __init__(self) -> None:
        self.start()

    def start(self) -> None:
        self._started = self._last = time.perf_counter()
        self.steps: dict[str, float] = {}

    def lap(self, step: str) -> float:
        """Records the time since the last lap (or the start) as `step`; returns it in ms."""
        now = time.perf_counter()
        self.steps[step] = (now - self._last) * 1000
        self._last = now
        return self.steps[step]

    def skip(self) -> None:
        """Starts the next lap now: what came before it is not a step of its own."""
        self._last = time.perf_counter()

    def total(self) -> float:
        return (time.perf_counter() - self._started) * 1000

    def header(self) -> str:
        """`decode;dur=1.8, inference;dur=4.3, total;dur=6.4` (W3C Server Timing)."""
        parts = [*self.steps.items(), ("total", self.total())]
        return ", ".join(f"{step};dur={ms:.1f}" for step, ms in parts)
