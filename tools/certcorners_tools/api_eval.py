r"""The served API's figures on a labelled folder: every photo sent as a client sends it
(over 4 MB by the upload path), counted as `python -m training evaluate` counts them, at the
spec's 400-px scale. What a user of the API gets, not what the cascade gives in-process.

    python -m certcorners_tools.api_eval --url http://127.0.0.1:3000 \
        --data ../shared/foreign-eval/positives [--data ...] [--api-key KEY]
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from certcorners_tools.client import predict


@dataclass(frozen=True)
class ServedReading:
    """The API's text fields, as `training.evaluate.reading_metrics` counts a reading."""

    text: str
    text_as_printed: str
    confidence: float
    read_again: bool = False


def served_records(url: str, folder: Path, api_key: str | None = None) -> list[dict]:
    """Each labelled photo's answer from the API: its corners and reading where it answered
    200, none where it answered 422 certificate_not_found. Any other answer is an error."""
    from training.dataset import read_examples

    records = []
    for example in read_examples(folder):
        status, answer = predict(url, example.path, api_key)
        if status == 200:
            reading = (ServedReading(answer["text"], answer["text_as_printed"],
                                     answer["text_confidence"])
                       if answer.get("text") is not None else None)
            records.append({"example": example, "answered": True, "reading": reading,
                            "corners": np.asarray(answer["polygon"], float)})
        elif status == 422 and answer["error"]["code"] == "certificate_not_found":
            records.append({"example": example, "answered": False, "reading": None,
                            "corners": None})
        else:
            raise RuntimeError(f"{example.path.name}: HTTP {status} {json.dumps(answer)}")
    return records


def summarize(records: list[dict]) -> dict:
    """Certificates answered and refused, the answers' corner figures, photos without a
    certificate refused, and the reading figures over the certificates answered."""
    from training.evaluate import corner_metrics, reading_metrics

    positives = [r for r in records if r["example"].corners is not None]
    negatives = [r for r in records if r["example"].corners is None]
    answered = [r for r in positives if r["answered"]]
    metrics = {"photos": len(records), "positives": len(positives),
               "negatives": len(negatives)}
    if positives:
        metrics["positives_refused"] = [r["example"].path.name for r in positives
                                        if not r["answered"]]
        metrics["answered"] = corner_metrics(
            np.stack([r["corners"] for r in answered]) if answered else np.empty((0, 4, 2)),
            np.stack([r["example"].corners for r in answered]) if answered else [],
            np.array([[r["example"].width, r["example"].height] for r in answered]))
        # The API gives no text under its reader threshold: every text given counts.
        metrics["reading"] = reading_metrics(answered, reader_threshold=0.0)
        metrics["reading"]["reader_threshold"] = "the served model's"
    if negatives:
        metrics["negatives_answered"] = [r["example"].path.name for r in negatives
                                         if r["answered"]]
        metrics["negatives_refused_share"] = round(
            1 - len(metrics["negatives_answered"]) / len(negatives), 4)
    return metrics


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m certcorners_tools.api_eval",
                                     description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", required=True, help="the API's base URL")
    parser.add_argument("--data", type=Path, action="append", required=True,
                        help="a labelled folder (labels.jsonl or LabelMe files); repeatable")
    parser.add_argument("--api-key", default=None)
    args = parser.parse_args(argv)
    try:
        for folder in args.data:
            metrics = summarize(served_records(args.url, folder, args.api_key))
            print(json.dumps({"data": str(folder), **metrics}, indent=1))
    except (ValueError, RuntimeError, OSError) as error:
        print(f"api_eval: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
