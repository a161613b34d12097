"""Homographies: the closed form serving uses, and its fallback."""

from __future__ import annotations

import numpy as np
from certcorners.geometry import apply_homography, homography


def test_four_points_map_onto_four_points():
    rng = np.random.default_rng(7)
    box = np.array([[8.0, 6.0], [152.0, 6.0], [152.0, 26.0], [8.0, 26.0]])
    for _ in range(200):
        # A tilted, foreshortened quad like a number's in a photo.
        centre, size = rng.uniform(100, 3000, 2), rng.uniform(20, 800)
        quad = centre + size * (np.array([[-1, -0.2], [1, -0.2], [1, 0.2], [-1, 0.2]])
                                + rng.normal(0, 0.08, (4, 2)))
        h = homography(box, quad)
        assert np.abs(apply_homography(h, box) - quad).max() < 1e-6 * size
        back = homography(quad, box)
        assert np.abs(apply_homography(back, quad) - box).max() < 1e-6 * 160


def test_more_than_four_points_are_fitted_by_least_squares():
    true = np.array([[1.1, 0.05, 12.0], [-0.02, 0.9, -7.0], [1e-4, 2e-4, 1.0]])
    src = np.array([[0.0, 0.0], [100, 0], [100, 50], [0, 50], [50, 25], [20, 40]])
    h = homography(src, apply_homography(true, src))
    assert np.allclose(h, true, atol=1e-8)


def test_a_degenerate_quad_gives_a_matrix_not_an_error():
    square = np.array([[0.0, 0.0], [1, 0], [1, 1], [0, 1]])
    collapsed = np.array([[5.0, 5.0], [5.0, 5.0], [9.0, 9.0], [9.0, 9.0]])
    h = homography(square, collapsed)
    assert h.shape == (3, 3) and np.isfinite(h).all()
