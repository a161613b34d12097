"""Fixtures shared by the unit, integration and training tests."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
EVENTS = ROOT / "events"
REFERENCE_PACKAGE = ROOT / "training" / "reference" / "model.tar.gz"

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("TQDM_DISABLE", "1")


@pytest.fixture(scope="session")
def synthetic_set(tmp_path_factory) -> Path:
    """Six synthetic photos to the spec, with labels.jsonl."""
    from training.dataset import generate

    return generate(tmp_path_factory.mktemp("synthetic") / "set", 6, seed=7, workers=2)


def ink_contrast(image: Image.Image, quad: np.ndarray) -> float:
    """Mean brightness of a ring around `quad` minus the mean inside it: positive when the
    quad sits on dark print on a pale card."""
    from PIL import ImageDraw

    gray = np.asarray(image.convert("L"), dtype=np.float64)
    centre = quad.mean(axis=0)
    inside = Image.new("L", image.size, 0)
    ImageDraw.Draw(inside).polygon([tuple(p) for p in quad], fill=1)
    ring = Image.new("L", image.size, 0)
    grown = centre + (quad - centre) * 1.6
    ImageDraw.Draw(ring).polygon([tuple(p) for p in grown], fill=1)
    inside_mask = np.asarray(inside, bool)
    ring_mask = np.asarray(ring, bool) & ~inside_mask
    return float(gray[ring_mask].mean() - gray[inside_mask].mean())


def jpeg_bytes(image: Image.Image, quality: int = 90, **kwargs) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=quality, **kwargs)
    return buffer.getvalue()


def png_bytes(image: Image.Image, **kwargs) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "PNG", **kwargs)
    return buffer.getvalue()


def load_event(name: str) -> dict:
    return json.loads((EVENTS / name).read_text())
