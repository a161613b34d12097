"""What a model package holds, shared by the exporter (training) and the model store (serving)."""

from __future__ import annotations

import hashlib
from pathlib import Path

PACKAGE_FILE = "model.tar.gz"
CARD_FILE = "model_card.json"
FLOAT_MODEL_FILE = "model.tflite"
INT8_MODEL_FILE = "model-int8.tflite"
REFINER_MODEL_FILE = "refiner.tflite"
SHA256_METADATA_KEY = "sha256"  # S3 user metadata: x-amz-meta-sha256 of model.tar.gz


def sha256_file(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
