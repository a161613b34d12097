"""Projective geometry shared by the generator (training) and the crop (serving)."""

from __future__ import annotations

import numpy as np
from PIL import Image


def homography(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """3x3 H with dst ~ H @ src for point pairs: for four, through the unit square in closed
    form (each quad's map from it); by the direct linear transform (least squares) for more,
    or where a quad is degenerate. The closed form is ~3x faster, and serving takes several."""
    if np.shape(src) != (4, 2) or np.shape(dst) != (4, 2):
        return _direct_linear_transform(src, dst)
    from_square, to_square = _from_unit_square(src), _from_unit_square(dst)
    if from_square is not None and to_square is not None:
        to_square_from_src = _inverse(from_square)
        if to_square_from_src is not None:
            h = to_square @ to_square_from_src
            scale = float(h[2, 2])
            if scale != 0.0:
                return h / scale
    return _direct_linear_transform(src, dst)


def _inverse(m: np.ndarray) -> np.ndarray | None:
    """A 3x3 matrix's inverse by its adjugate (plain floats: numpy's is slower at this size);
    None where it is singular."""
    (a, b, c), (d, e, f), (g, h, i) = m.tolist()
    co = [e * i - f * h, f * g - d * i, d * h - e * g]
    det = a * co[0] + b * co[1] + c * co[2]
    if det == 0.0:
        return None
    return np.array([[co[0], c * h - b * i, b * f - c * e],
                     [co[1], a * i - c * g, c * d - a * f],
                     [co[2], b * g - a * h, a * e - b * d]]) / det


def _from_unit_square(quad: np.ndarray) -> np.ndarray | None:
    """3x3 H taking (0, 0), (1, 0), (1, 1), (0, 1) onto the quad's four points in order
    (Heckbert's closed form); None where the quad is degenerate."""
    (x0, y0), (x1, y1), (x2, y2), (x3, y3) = np.asarray(quad, dtype=np.float64).tolist()
    dx1, dx2, dx3 = x1 - x2, x3 - x2, x0 - x1 + x2 - x3
    dy1, dy2, dy3 = y1 - y2, y3 - y2, y0 - y1 + y2 - y3
    det = dx1 * dy2 - dx2 * dy1
    spread = max(abs(dx1), abs(dx2), abs(dy1), abs(dy2))
    if not abs(det) > 1e-9 * spread * spread:
        return None
    g = (dx3 * dy2 - dx2 * dy3) / det
    h = (dx1 * dy3 - dx3 * dy1) / det
    return np.array([[x1 - x0 + g * x1, x3 - x0 + h * x3, x0],
                     [y1 - y0 + g * y1, y3 - y0 + h * y3, y0],
                     [g, h, 1.0]])


def _direct_linear_transform(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    rows = []
    for (x, y), (u, v) in zip(np.asarray(src, float), np.asarray(dst, float), strict=True):
        rows.append([x, y, 1, 0, 0, 0, -u * x, -u * y, -u])
        rows.append([0, 0, 0, x, y, 1, -v * x, -v * y, -v])
    _, _, vt = np.linalg.svd(np.asarray(rows, dtype=np.float64))
    h = vt[-1].reshape(3, 3)
    return h / h[2, 2]


def apply_homography(h: np.ndarray, points: np.ndarray) -> np.ndarray:
    points = np.asarray(points, dtype=np.float64)
    ones = np.ones((*points.shape[:-1], 1))
    mapped = np.concatenate([points, ones], axis=-1) @ np.asarray(h).T
    return mapped[..., :2] / mapped[..., 2:3]


def warp(image: Image.Image, to_source: np.ndarray, size: tuple[int, int],
         resample: Image.Resampling, fill=None) -> Image.Image:
    """`image` seen through the homography `to_source` (each pixel of the `size` result ->
    the point of `image` it shows), resampled with `resample`; `fill` (a colour) where it
    shows nothing, transparent or black by default."""
    to_source = np.asarray(to_source, dtype=np.float64)
    return image.transform(size, Image.Transform.PERSPECTIVE,
                           tuple((to_source / to_source[2, 2]).flatten()[:8]), resample,
                           fillcolor=fill)
