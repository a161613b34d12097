"""Procedural photo backgrounds: wood, cloth, paper, stone, a cluttered desk, plain colour.

Generated, not downloaded, so a fresh machine has them. Noise is made at low resolution and
upsampled, which keeps a 2000 x 1500 background to a few tens of milliseconds.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw, ImageFilter


def _noise(rng: np.random.Generator, size: tuple[int, int], octaves: int = 4) -> np.ndarray:
    """Fractal value noise in [0, 1] of shape (height, width)."""
    width, height = size
    total = np.zeros((height, width), dtype=np.float32)
    weight_sum = 0.0
    for octave in range(octaves):
        cells = 4 * 2**octave
        grid = rng.random((cells, max(2, round(cells * height / width)))).astype(np.float32)
        layer = Image.fromarray(grid.T).resize(size, Image.Resampling.BICUBIC)
        weight = 0.5**octave
        total += weight * np.asarray(layer, dtype=np.float32)
        weight_sum += weight
    total /= weight_sum
    return (total - total.min()) / max(float(np.ptp(total)), 1e-6)


def _colour(rng: np.random.Generator, lo: int = 0, hi: int = 256) -> np.ndarray:
    return rng.integers(lo, hi, 3).astype(np.float32)


def _tinted(field: np.ndarray, dark: np.ndarray, light: np.ndarray) -> Image.Image:
    rgb = dark + field[..., None] * (light - dark)
    return Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8), "RGB")


def wood(rng, size):
    width, height = size
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    angle = rng.uniform(0, np.pi)
    u = np.cos(angle) * xx + np.sin(angle) * yy
    warp = _noise(rng, size, 3) * rng.uniform(20, 80)
    rings = 0.5 + 0.5 * np.sin((u + warp) / rng.uniform(6, 25))
    field = 0.7 * rings + 0.3 * _noise(rng, size, 4)
    base = np.array([rng.uniform(90, 190), rng.uniform(50, 120), rng.uniform(20, 70)])
    return _tinted(field, base * 0.55, base)


def cloth(rng, size):
    width, height = size
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    period = rng.uniform(3, 9)
    weave = 0.5 + 0.25 * np.sin(xx * 2 * np.pi / period) + 0.25 * np.sin(yy * 2 * np.pi / period)
    field = 0.6 * weave + 0.4 * _noise(rng, size, 3)
    base = _colour(rng, 30, 230)
    return _tinted(field, base * 0.6, base)


def paper(rng, size):
    width, height = size
    field = 0.85 + 0.15 * _noise(rng, size, 5)
    grain = rng.normal(0, 0.03, (height, width)).astype(np.float32)
    base = np.array([rng.uniform(215, 255)] * 3) - _colour(rng, 0, 25)
    return _tinted(np.clip(field + grain, 0, 1), base * 0.8, base)


def stone(rng, size):
    width, height = size
    field = _noise(rng, size, 6)
    speckle = (rng.random((height, width)) < 0.02).astype(np.float32) * rng.uniform(-0.4, 0.4)
    base = _colour(rng, 80, 210)
    return _tinted(np.clip(field + speckle, 0, 1), base * 0.5, base)


def desk(rng, size):
    """A surface with clutter: papers, pens, a phone, mugs, some with text-like marks."""
    image = (wood if rng.random() < 0.5 else plain)(rng, size)
    draw = ImageDraw.Draw(image)
    width, height = size
    for _ in range(rng.integers(3, 12)):
        x, y = rng.uniform(-0.1, 1.0) * width, rng.uniform(-0.1, 1.0) * height
        w, h = rng.uniform(0.05, 0.4) * width, rng.uniform(0.05, 0.4) * height
        fill = tuple(int(c) for c in _colour(rng))
        shape = rng.integers(4)
        if shape == 0:
            draw.ellipse((x, y, x + w, y + h), fill=fill)
        elif shape == 1:
            draw.rectangle((x, y, x + w, y + h), fill=fill)
        elif shape == 2:  # a pen
            draw.line((x, y, x + w, y + h), fill=fill, width=int(rng.integers(4, 14)))
        else:  # a printed sheet with lines of "text"
            draw.rectangle((x, y, x + w, y + h), fill=(245, 245, 240))
            step = rng.uniform(8, 20)
            for line_y in np.arange(y + step, y + h - step, step):
                draw.line((x + step, line_y, x + w - step, line_y), fill=(60, 60, 60),
                          width=int(rng.integers(1, 4)))
    return blurred(image, rng.uniform(0, 2))


def blurred(image: Image.Image, radius) -> Image.Image:
    """A Gaussian blur of any real radius: Pillow 13 rejects NumPy floats as radii (12, the
    locked one, takes them), and the generator draws most radii from NumPy."""
    return image.filter(ImageFilter.GaussianBlur(float(radius)))


def plain(rng, size):
    base = _colour(rng)
    field = 0.9 + 0.1 * _noise(rng, size, 2)
    return _tinted(field, base * 0.9, base)


BACKGROUNDS = (wood, cloth, paper, stone, desk, plain)


def random_background(rng: np.random.Generator, size: tuple[int, int]) -> Image.Image:
    return BACKGROUNDS[rng.integers(len(BACKGROUNDS))](rng, size)
