"""X-Ray tracing only when it is on.

Powertools' Tracer imports the X-Ray SDK even when tracing is disabled, which costs ~0.4 s
of every cold start (measured: docs/performance.md). With POWERTOOLS_TRACE_DISABLED=true
(the template's default) the function gets a stand-in whose decorators return the decorated
function unchanged, and the SDK is never imported.
"""

from __future__ import annotations

import os


class NoTracer:
    """Tracer's decorators, doing nothing: `@tracer.capture_method` or with options."""

    def capture_method(self, method=None, **options):
        return method if method is not None else (lambda decorated: decorated)

    capture_lambda_handler = capture_method


def tracing_disabled() -> bool:
    return os.environ.get("POWERTOOLS_TRACE_DISABLED", "false").strip().lower() in ("true", "1")


def make_tracer():
    """Powertools' Tracer when tracing is on, else a NoTracer."""
    if tracing_disabled():
        return NoTracer()
    from aws_lambda_powertools import Tracer

    return Tracer()
