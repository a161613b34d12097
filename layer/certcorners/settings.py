"""The function's settings, read from its environment once, at cold start.

The template constrains its parameters, but `sam local --env-vars`, `make serve` and a console
edit set the variables directly: a wrong value must stop the init with a message that names the
variable, not fail every request (a 500 from float("abc")) or quietly mean something else
("99.98" refusing every photo, "False" scanning).
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping


def whole_number(name: str, default: int, minimum: int = 1,
                 environ: Mapping[str, str] = os.environ) -> int:
    """An integer of at least `minimum`; `default` when the variable is unset or empty."""
    text = environ.get(name, "").strip()
    if not text:
        return default
    try:
        value = int(text)
    except ValueError:
        raise ValueError(f"{name} must be a whole number, got {text!r}") from None
    if value < minimum:
        raise ValueError(f"{name} must be at least {minimum}, got {value}")
    return value


def confidence_or_none(name: str, environ: Mapping[str, str] = os.environ) -> float | None:
    """A confidence from 0 to 1, or None when the variable is unset or empty."""
    text = environ.get(name, "").strip()
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 0.0 <= value <= 1.0:  # written so that NaN fails too
        raise ValueError(f"{name} must be empty or a confidence from 0 to 1 (0.9998, not "
                         f"99.98), got {text!r}")
    return value


def flag(name: str, default: bool, environ: Mapping[str, str] = os.environ) -> bool:
    """"true" or "false" (any case); `default` when the variable is unset or empty."""
    text = environ.get(name, "").strip().lower()
    if not text:
        return default
    if text not in ("true", "false"):
        raise ValueError(f"{name} must be true or false, got {environ[name]!r}")
    return text == "true"
