"""What a model package holds, shared by the exporter (training) and the model store (serving)."""

from __future__ import annotations

import hashlib
from pathlib import Path

PACKAGE_FILE = "model.tar.gz"
CARD_FILE = "model_card.json"
# Each stage's network, named by its stage: the card names each under <stage>_model.
LOCATOR_FILE = "locator.tflite"
LOCATOR_INT8_FILE = "locator-int8.tflite"
REFINER_FILE = "refiner.tflite"
CARD_FINDER_FILE = "card_finder.tflite"
READER_FILE = "reader.tflite"
# Packages made before 2026-12-06 name the locator `serving_model`, model.tflite by default.
LEGACY_LOCATOR_KEY, LEGACY_LOCATOR_FILE = "serving_model", "model.tflite"
LEGACY_LOCATOR_INT8_FILE = "model-int8.tflite"
# The locator's Keras model: a training file beside its package, not served (older
# packages: model.keras, inside or beside).
LOCATOR_KERAS_FILE = "locator.keras"
LEGACY_LOCATOR_KERAS_FILE = "model.keras"
LOCATOR_KERAS_FILES = (LOCATOR_KERAS_FILE, LEGACY_LOCATOR_KERAS_FILE)  # looked for in order
SHA256_METADATA_KEY = "sha256"  # S3 user metadata: x-amz-meta-sha256 of model.tar.gz


def sha256_file(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def locator_file(card: dict) -> str:
    """The locator's file in a package, by the card's `locator_model` or an older card's key."""
    return card.get("locator_model") or card.get(LEGACY_LOCATOR_KEY, LEGACY_LOCATOR_FILE)
