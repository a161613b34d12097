"""What training, evaluation, the local tools and the tests share about labels: the labels.jsonl
line, the spec's corner error, and overlays of quads on a photo."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageOps

from certcorners.preprocessing import CORNER_NAMES

SPEC_SCALE = 400.0  # the spec measures errors with the photo's long side scaled to this


def corner_errors_400(predicted, true, sizes) -> np.ndarray:
    """Per-corner distance (N, 4) between two (N, 4, 2) sets of photo-pixel corners, scaled to
    a 400-px long side: error * 400 / max(width, height); sizes (N, 2) are width, height."""
    predicted, true = np.asarray(predicted, float), np.asarray(true, float)
    if predicted.shape != true.shape or predicted.ndim != 3 or predicted.shape[1:] != (4, 2):
        raise ValueError(f"expected two (N, 4, 2) arrays, got {predicted.shape}, {true.shape}")
    scale = SPEC_SCALE / np.max(np.asarray(sizes, float).reshape(-1, 2), axis=1)
    return np.linalg.norm(predicted - true, axis=-1) * scale[:, None]


def label_line(file: str, width: int, height: int, corners: np.ndarray | None, **extra) -> str:
    """One labels.jsonl line; corners None for a photo without a certificate."""
    named = None if corners is None else {
        n: [round(float(x), 3), round(float(y), 3)]
        for n, (x, y) in zip(CORNER_NAMES, corners, strict=True)}
    return json.dumps({"file": file, "width": width, "height": height, "corners": named,
                       **extra})


def draw_quads(photo: Path, quads: list[tuple[list, tuple[int, int, int]]], out: Path,
               max_side: int = 1200) -> None:
    """The photo as displayed with each quad outlined; a dot marks its top_left corner."""
    image = ImageOps.exif_transpose(Image.open(photo)).convert("RGB")
    scale = min(1.0, max_side / max(image.size))
    image = image.resize((round(image.width * scale), round(image.height * scale)))
    draw = ImageDraw.Draw(image)
    for quad, colour in quads:
        points = [(x * scale, y * scale) for x, y in quad]
        draw.polygon(points, outline=colour, width=3)
        x, y = points[0]
        draw.ellipse((x - 5, y - 5, x + 5, y + 5), outline=colour, width=3)
    out.parent.mkdir(parents=True, exist_ok=True)
    image.save(out)
