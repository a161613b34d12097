"""The spec's error metric on a labelled folder, for stage 1 alone and the cascade; refusals on
photos without a certificate; a breakdown by photo condition; overlays of the worst photos.

A folder is labels.jsonl (or LabelMe files) beside the photos; corners may be [x, y] or
{"x", "y"}, and "corners": null marks a photo without a certificate. Any folder in that form
works, the foreign evaluation set (positives/ and negatives/) included.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import numpy as np
from certcorners.labels import corner_errors_400, draw_quads
from certcorners.model_store import open_package, predictor_for
from certcorners.predictor import Predictor
from certcorners.preprocessing import decode
from certcorners.reader import canonical
from tqdm import tqdm

from training.dataset import check_displayed_size, read_examples

WORST_CORNER_LIMIT_PX = 4.0
# Wrongly refused and wrongly answered photos named in the printed report (all of them are in
# evaluation.json).
LISTED_PHOTOS = 5
# Refusal threshold when neither the caller nor the model card names one.
DEFAULT_THRESHOLD = 0.5


def corner_metrics(predicted: np.ndarray, true: np.ndarray, sizes: np.ndarray) -> dict:
    """predicted, true: (N, 4, 2) photo pixels; sizes: (N, 2) width, height.

    Errors are scaled to a 400-px long side: error * 400 / max(width, height).
    """
    predicted, true = np.asarray(predicted, float), np.asarray(true, float)
    if len(true) == 0:
        return {"photos": 0}
    errors = corner_errors_400(predicted, true, sizes)  # (N, 4)
    # Orientation: the predicted top_left is nearer the true top_left than any other corner.
    to_true = np.linalg.norm(predicted[:, :1, :] - true, axis=-1)  # (N, 4)
    oriented = np.argmin(to_true, axis=1) == 0
    worst = errors.max(axis=1)
    return {
        "photos": int(len(true)),
        "mean_corner_error_px": round(float(errors.mean()), 3),
        "median_corner_error_px": round(float(np.median(errors)), 3),
        "p95_corner_error_px": round(float(np.percentile(errors, 95)), 3),
        "share_worst_corner_within_4px": round(
            float((worst <= WORST_CORNER_LIMIT_PX).mean()), 4),
        "share_worst_corner_within_12px": round(float((worst <= 12.0).mean()), 4),
        "orientation_share": round(float(oriented.mean()), 4),
        "scale": "pixels at a 400-px long side",
    }


def load_predictor(package: str | Path, folder: str | Path,
                   num_threads: int | None = 1) -> tuple[Predictor, dict]:
    """The cascade in a model.tar.gz (verified as the function verifies it), or in an
    extracted package folder, or a lone stage-1 .tflite."""
    package = Path(package)
    if package.suffix == ".tflite":
        return Predictor(package, num_threads), {}
    if package.is_dir():
        card = json.loads((package / "model_card.json").read_text())
        return predictor_for(package, card, num_threads), card
    card = open_package(package, Path(folder) / "package")
    return predictor_for(Path(folder) / "package", card, num_threads), card


def run_folder(predictor: Predictor, folder: str | Path,
               threshold: float | None = None) -> list[dict]:
    """Stage 1's and the cascade's answer for every photo of a labelled folder; with the
    refusal `threshold`, as served (answers below it get the second look)."""
    records = []
    for example in tqdm(read_examples(folder), desc="evaluate", unit="photo"):
        decoded = decode(example.path.read_bytes())
        check_displayed_size(example, decoded.letterbox.width, decoded.letterbox.height)
        prediction = predictor.predict_decoded(decoded, threshold)
        answered = threshold is None or prediction.confidence is None or (
            prediction.confidence >= threshold)
        reading = predictor.read(decoded, prediction.corners) if (
            answered and predictor.reader is not None) else None
        records.append({"example": example, "located": prediction.located,
                        "corners": prediction.corners, "confidence": prediction.confidence,
                        "turns": prediction.turns, "searched": prediction.searched,
                        "scanned": prediction.scanned, "cut": prediction.cut,
                        "tiled": prediction.tiled, "answered": answered, "reading": reading})
    return records


def _long_side_bucket(example) -> str:
    side = max(example.width, example.height)
    return "<1000" if side < 1000 else "1000-1499" if side < 1500 else ">=1500"


def _quality_bucket(example) -> str | None:
    quality = example.meta.get("jpeg_quality")
    if quality is None:
        return None
    return "40-59" if quality < 60 else "60-79" if quality < 80 else "80-95"


def number_height_400(example) -> float:
    """The number's height at the spec's 400-px scale: the mean of its two short sides."""
    tl, tr, br, bl = np.asarray(example.corners, float)
    height = (np.linalg.norm(bl - tl) + np.linalg.norm(br - tr)) / 2
    return float(height * 400 / max(example.width, example.height))


def _number_height_bucket(example) -> str:
    height = number_height_400(example)
    return ("<4 px" if height < 4 else "4-6 px" if height < 6 else "6-8 px" if height < 8
            else "8-12 px" if height < 12 else ">=12 px")


def card_share(example) -> float | None:
    """The card's bounding box as a share of the photo's area (the spec's envelope), where
    the label carries the card's corners."""
    corners = example.meta.get("card_corners")
    if corners is None:
        return None
    corners = np.asarray(corners, float)
    box = np.ptp(corners[:, 0]) * np.ptp(corners[:, 1])
    return float(box / (example.width * example.height))


def _card_share_bucket(example) -> str | None:
    share = card_share(example)
    if share is None:
        return None
    return ("<20%" if share < 0.20 else "20-35%" if share < 0.35 else "35-60%" if share < 0.60
            else ">=60%")


CONDITIONS = {
    "exif_orientation": lambda e: e.meta.get("exif_orientation"),
    "long_side": _long_side_bucket,
    "jpeg_quality": _quality_bucket,
    "font": lambda e: e.meta.get("font"),
    # The envelope: the spec's photos or phone photos; how small the number and the card are.
    "profile": lambda e: e.meta.get("profile"),
    "number_height_400": _number_height_bucket,
    "card_share": _card_share_bucket,
}


def confidence_curve(confidence: np.ndarray, worst_error: np.ndarray) -> list[dict]:
    """Share of the total worst-corner error held by the least confident answers, and the
    most any confidence could give them (the same number of the largest errors): when the
    errors are all alike, even a perfect ranking cannot give a few answers most of it."""
    order = np.argsort(confidence)
    largest_first = np.sort(worst_error)[::-1]
    total = worst_error.sum() or 1.0
    curve = []
    for share in (0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5):
        n = max(1, int(round(share * len(order))))
        curve.append({"least_confident_share": share,
                      "error_share": round(float(worst_error[order[:n]].sum() / total), 4),
                      "error_share_if_ranked_perfectly": round(
                          float(largest_first[:n].sum() / total), 4),
                      "mean_worst_corner_px": round(float(worst_error[order[:n]].mean()), 3)})
    return curve


def _arrays(positives: list[dict]) -> tuple[np.ndarray, ...]:
    """(true corners, sizes, stage 1's corners, the cascade's) of records with a certificate."""
    return (np.stack([r["example"].corners for r in positives]),
            np.array([[r["example"].width, r["example"].height] for r in positives]),
            np.stack([r["located"] for r in positives]),
            np.stack([r["corners"] for r in positives]))


def _file_name(record: dict) -> str | None:
    path = record["example"].path
    return path.name if path is not None else None


def reading_outcomes(records: list[dict], reader_threshold: float) -> list[tuple]:
    """(outcome, example, reading) of each certificate answered with corners whose label
    has `text`: "read_right" (the canonical text equals the label's), "read_wrong" (a text
    was given and differs) or "not_read" (none fits the grammar, or the reader was less sure
    than `reader_threshold`)."""
    rows = []
    for r in records:
        label = r["example"].meta.get("text")
        if r["example"].corners is None or not label or not r.get("answered", True):
            continue
        reading = r.get("reading")
        given = reading is not None and reading.confidence >= reader_threshold
        outcome = ("not_read" if not given else
                   "read_right" if reading.text == canonical(label) else "read_wrong")
        rows.append((outcome, r["example"], reading))
    return rows


def reading_metrics(records: list[dict], reader_threshold: float) -> dict:
    """The spec's reading figures over the certificates answered with corners whose label
    has `text`: the shares read right (the canonical text equals the label's), read wrong
    (a text was given and differs) and not read (no text given: none fits the grammar, or
    the reader was less sure than `reader_threshold`); by font and by the number's height
    at the 400-px scale too."""
    rows = reading_outcomes(records, reader_threshold)

    def figures(chosen: list) -> dict:
        count = len(chosen)
        shares = {f"{name}_share": round(sum(o == name for o, _, _ in chosen) / count, 4)
                  for name in ("read_right", "read_wrong", "not_read")} if count else {}
        return {"certificates": count, **shares}

    metrics = {"reader_threshold": reader_threshold, **figures(rows),
               "read_again": sum(o != "not_read" and reading.read_again
                                 for o, _, reading in rows)}
    for name, key in (("font", lambda e: e.meta.get("font")),
                      ("number_height_400", _number_height_bucket)):
        groups = sorted({str(key(e)) for _, e, _ in rows}, key=str)
        metrics[f"by_{name}"] = {g: figures([row for row in rows if str(key(row[1])) == g])
                                 for g in groups}
    metrics["read_wrong"] = [{"file": _file_name({"example": e}),
                              "label": e.meta["text"], "read": reading.text_as_printed,
                              "text_confidence": round(reading.confidence, 4)}
                             for outcome, e, reading in rows if outcome == "read_wrong"]
    metrics["not_read"] = [{"file": _file_name({"example": e}), "label": e.meta["text"],
                            "read": reading.text_as_printed if reading else None,
                            "text_confidence": round(reading.confidence, 4) if reading
                            else None}
                           for outcome, e, reading in rows if outcome == "not_read"]
    return metrics


def summarize(records: list[dict], threshold: float | None,
              reader_threshold: float | None = None) -> dict:
    """The metrics of run_folder's records (see the module's docstring)."""
    positives = [r for r in records if r["example"].corners is not None]
    negatives = [r for r in records if r["example"].corners is None]
    cascade = all(r["confidence"] is not None for r in records)
    metrics = {"photos": len(records), "positives": len(positives),
               "negatives": len(negatives)}
    if positives:
        true, sizes, located, final = _arrays(positives)
        metrics["stage1"] = corner_metrics(located, true, sizes)
        metrics["cascade"] = corner_metrics(final, true, sizes) if cascade else None
        by_condition = {}
        for name, key in CONDITIONS.items():
            values = [key(r["example"]) for r in positives]
            groups = sorted({v for v in values if v is not None}, key=str)
            if len(groups) > 1 or (groups and name != "font"):
                by_condition[name] = {}
                for group in groups:
                    chosen = np.array([v == group for v in values])
                    figures = corner_metrics(final[chosen], true[chosen], sizes[chosen])
                    if cascade and threshold is not None:
                        confidence = np.array([r["confidence"] for r in positives])[chosen]
                        figures["refused_share"] = round(float((confidence < threshold)
                                                               .mean()), 4)
                    by_condition[name][str(group)] = figures
        metrics["cascade_by_condition"] = by_condition
    if cascade and threshold is not None:
        metrics["threshold"] = threshold
        if positives:
            confidence = np.array([r["confidence"] for r in positives])
            accepted = confidence >= threshold
            metrics["positives_refused_share"] = round(float((~accepted).mean()), 4)
            metrics["cascade_accepted"] = corner_metrics(final[accepted], true[accepted],
                                                         sizes[accepted])
            worst = corner_errors_400(final, true, sizes).max(axis=1)
            metrics["confidence_curve_accepted"] = confidence_curve(confidence[accepted],
                                                                    worst[accepted])
            # Which photos, so that a wrong refusal can be looked at, not only counted.
            metrics["positives_refused"] = sorted(
                ({"file": _file_name(r), "confidence": r["confidence"],
                  "worst_corner_px": round(float(error), 2)}
                 for r, error in zip(positives, worst, strict=True)
                 if r["confidence"] < threshold), key=lambda r: r["confidence"])
        if negatives:
            refused = [r["confidence"] < threshold for r in negatives]
            metrics["negatives_refused_share"] = round(float(np.mean(refused)), 4)
            metrics["negatives_answered"] = [
                {"file": _file_name(r), "confidence": r["confidence"]}
                for r in sorted(negatives, key=lambda r: -r["confidence"])
                if r["confidence"] >= threshold]
        metrics["answers_from_second_look"] = sum(
            r.get("turns", 0) != 0 and not r.get("searched") and not r.get("cut")
            and r["confidence"] >= threshold for r in records)
        for key, found_by in (("answers_from_search", "searched"),
                              ("answers_from_scan", "scanned"),
                              ("answers_from_card_view", "cut"),
                              ("answers_from_tiles", "tiled")):
            metrics[key] = sum(bool(r.get(found_by)) and r["confidence"] >= threshold
                               for r in records)
    if reader_threshold is not None:
        metrics["reading"] = reading_metrics(records, reader_threshold)
    return metrics


def evaluate(package: str | Path, folder: str | Path, out_dir: str | Path, worst: int = 12,
             threshold: float | None = None, num_threads: int | None = 1) -> dict:
    """Print and write the metrics of a model package on a labelled folder; save overlays of
    the `worst` photos (true quad green, cascade red, stage 1 blue; a dot on each top_left) and
    of the photos without a certificate that were answered all the same (answered-*.png); the
    wrongly refused and wrongly answered photos are named in evaluation.json.
    `threshold`: the confidence below which the API refuses (default: the model card's)."""
    if threshold is not None and not 0.0 <= threshold <= 1.0:  # written so that NaN fails too
        raise ValueError(f"threshold must be a confidence from 0 to 1 (0.9998, not 99.98), "
                         f"got {threshold}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as scratch:
        predictor, card = load_predictor(package, scratch, num_threads)
        if threshold is None and predictor.refiner is not None:
            threshold = card.get("confidence_threshold", DEFAULT_THRESHOLD)
        records = run_folder(predictor, folder, threshold)
    reader_threshold = float(card.get("reader_threshold", 0.0)) if predictor.reader else None
    metrics = {"model": str(package), "model_version": card.get("version"),
               "dataset": str(folder), **summarize(records, threshold, reader_threshold)}
    positives = [r for r in records if r["example"].corners is not None]
    metrics["worst"] = []
    for pattern in ("worst-*.png", "answered-*.png"):  # an earlier run's are not this run's
        for stale in out_dir.glob(pattern):
            stale.unlink()
    if positives:
        true, sizes, _, final = _arrays(positives)
        worst_corner = corner_errors_400(final, true, sizes).max(axis=1)
        for rank, i in enumerate(np.argsort(-worst_corner)[:worst]):
            example = positives[i]["example"]
            name = f"worst-{rank:02d}-{example.path.stem}.png"
            draw_quads(example.path, [(true[i], (0, 200, 0)),
                                      (positives[i]["located"], (40, 90, 255)),
                                      (final[i], (230, 0, 0))], out_dir / name, max_side=900)
            metrics["worst"].append({"file": example.path.name,
                                     "worst_corner_px": round(float(worst_corner[i]), 2),
                                     "confidence": positives[i]["confidence"],
                                     "overlay": name})
    by_name = {r["example"].path.name: r for r in records}
    for rank, answered in enumerate(metrics.get("negatives_answered", [])[:worst]):
        record = by_name[answered["file"]]
        answered["overlay"] = f"answered-{rank:02d}-{record['example'].path.stem}.png"
        draw_quads(record["example"].path, [(record["located"], (40, 90, 255)),
                                            (record["corners"], (230, 0, 0))],
                   out_dir / answered["overlay"], max_side=900)
    (out_dir / "evaluation.json").write_text(json.dumps(metrics, indent=2, default=str))
    print(report(metrics))
    return metrics


def report(metrics: dict) -> str:
    """A few readable lines of the headline figures."""
    lines = [f"{metrics['dataset']}: {metrics['positives']} with a certificate, "
             f"{metrics['negatives']} without"]
    for stage in ("stage1", "cascade", "cascade_accepted"):
        m = metrics.get(stage)
        if m and m.get("photos"):
            lines.append(f"  {stage:>16}: mean {m['mean_corner_error_px']} px, p95 "
                         f"{m['p95_corner_error_px']} px, worst<=4px "
                         f"{m['share_worst_corner_within_4px']:.1%}, worst<=12px "
                         f"{m['share_worst_corner_within_12px']:.1%}, orientation "
                         f"{m['orientation_share']:.1%}")
    if "positives_refused_share" in metrics:
        lines.append(f"  positives refused at {metrics['threshold']}: "
                     f"{metrics['positives_refused_share']:.1%}")
        lines += [f"    refused: {r['file']} (confidence {r['confidence']:.6f}, its answer "
                  f"{r['worst_corner_px']} px off)"
                  for r in metrics["positives_refused"][:LISTED_PHOTOS]]
    if "negatives_refused_share" in metrics:
        lines.append(f"  negatives refused at {metrics['threshold']}: "
                     f"{metrics['negatives_refused_share']:.1%}")
        lines += [f"    answered: {r['file']} (confidence {r['confidence']:.6f})"
                  for r in metrics["negatives_answered"][:LISTED_PHOTOS]]
    for name in ("number_height_400", "card_share"):
        groups = metrics.get("cascade_by_condition", {}).get(name)
        if groups:
            lines.append(f"  by {name}: " + ", ".join(
                f"{group} {m['photos']} photos, mean {m['mean_corner_error_px']} px"
                + (f", refused {m['refused_share']:.1%}" if "refused_share" in m else "")
                for group, m in groups.items()))
    reading = metrics.get("reading")
    if reading and reading.get("certificates"):
        lines.append(f"  read ({reading['certificates']} answered certificates with text, "
                     f"reader threshold {reading['reader_threshold']}): right "
                     f"{reading['read_right_share']:.2%}, wrong "
                     f"{reading['read_wrong_share']:.2%}, not read "
                     f"{reading['not_read_share']:.2%}; read again from nudged boxes: "
                     f"{reading.get('read_again', 0)}")
        lines += [f"    read wrong: {r['file']} ({r['label']!r} read {r['read']!r}, "
                  f"confidence {r['text_confidence']})"
                  for r in reading["read_wrong"][:LISTED_PHOTOS]]
    if "answers_from_second_look" in metrics:
        lines.append(f"  answers accepted from the second look (turned views): "
                     f"{metrics['answers_from_second_look']}, from the view cut around the "
                     f"card: {metrics.get('answers_from_card_view', 0)}, from the search "
                     f"around the looks: {metrics.get('answers_from_search', 0)}, from the "
                     f"tiles: {metrics.get('answers_from_tiles', 0)}, from the scan of the "
                     f"whole photo: {metrics.get('answers_from_scan', 0)}")
    return "\n".join(lines)
