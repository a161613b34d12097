"""The spec's error metric on a labelled set, and overlays of the worst photos."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from certcorners.predictor import Predictor
from certcorners_tools.client import draw_quads
from tqdm import tqdm

from training.dataset import read_examples

WORST_CORNER_LIMIT_PX = 4.0


def corner_metrics(predicted: np.ndarray, true: np.ndarray, sizes: np.ndarray) -> dict:
    """predicted, true: (N, 4, 2) photo pixels; sizes: (N, 2) width, height.

    Errors are scaled to a 400-px long side: error * 400 / max(width, height).
    """
    predicted, true = np.asarray(predicted, float), np.asarray(true, float)
    if predicted.shape != true.shape or predicted.ndim != 3 or predicted.shape[1:] != (4, 2):
        raise ValueError(f"expected two (N, 4, 2) arrays, got {predicted.shape}, {true.shape}")
    scale = 400.0 / np.max(np.asarray(sizes, float), axis=1)
    errors = np.linalg.norm(predicted - true, axis=-1) * scale[:, None]  # (N, 4)
    # Orientation: the predicted top_left is nearer the true top_left than any other corner.
    to_true = np.linalg.norm(predicted[:, :1, :] - true, axis=-1)  # (N, 4)
    oriented = np.argmin(to_true, axis=1) == 0
    return {
        "photos": int(len(true)),
        "mean_corner_error_px": round(float(errors.mean()), 3),
        "p95_corner_error_px": round(float(np.percentile(errors, 95)), 3),
        "share_worst_corner_within_4px": round(
            float((errors.max(axis=1) <= WORST_CORNER_LIMIT_PX).mean()), 4),
        "orientation_share": round(float(oriented.mean()), 4),
        "scale": "pixels at a 400-px long side",
    }


def predict_folder(model_path: str | Path, folder: str | Path, num_threads: int | None = None):
    """Run the served model (LiteRT) over a labelled folder: predictions, truths, sizes."""
    predictor = Predictor(model_path, num_threads)
    examples = read_examples(folder)
    predicted = np.stack([predictor.predict(e.path.read_bytes()).corners
                          for e in tqdm(examples, desc="evaluate", unit="photo")])
    true = np.stack([e.corners for e in examples])
    sizes = np.array([[e.width, e.height] for e in examples])
    return examples, predicted, true, sizes


def evaluate(model_path: str | Path, folder: str | Path, out_dir: str | Path,
             worst: int = 12, num_threads: int | None = None) -> dict:
    """Print and write the spec's metrics; save overlays of the `worst` photos."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    examples, predicted, true, sizes = predict_folder(model_path, folder, num_threads)
    metrics = corner_metrics(predicted, true, sizes)
    metrics["model"] = Path(model_path).name
    metrics["dataset"] = str(folder)
    scale = 400.0 / sizes.max(axis=1)
    worst_corner = (np.linalg.norm(predicted - true, axis=-1) * scale[:, None]).max(axis=1)
    ranked = np.argsort(-worst_corner)[:worst]
    metrics["worst"] = []
    for rank, i in enumerate(ranked):
        name = f"worst-{rank:02d}-{examples[i].path.stem}.png"
        # True quad green, predicted red; a dot marks each top_left.
        draw_quads(examples[i].path, [(true[i], (0, 200, 0)), (predicted[i], (230, 0, 0))],
                   out_dir / name, max_side=900)
        metrics["worst"].append({"file": examples[i].path.name,
                                 "worst_corner_px": round(float(worst_corner[i]), 2),
                                 "overlay": name})
    (out_dir / "evaluation.json").write_text(json.dumps(metrics, indent=2))
    for key in ("photos", "mean_corner_error_px", "p95_corner_error_px",
                "share_worst_corner_within_4px", "orientation_share"):
        print(f"{key:>32}: {metrics[key]}")
    return metrics
