"""Opening an exported model package for a training command: verified as the function verifies
it (certcorners.model_store.open_package), a missing or broken package a ValueError that the
CLI prints in one line."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from certcorners.errors import ModelUnavailable
from certcorners.model_card import LOCATOR_KERAS_FILES, sha256_file
from certcorners.model_store import open_package


def open_verified(package: Path, folder: Path) -> dict:
    """Extract `package` into the new `folder`, every file checked against the card; the
    card."""
    if not package.is_file():
        raise ValueError(f"{package} is not a model.tar.gz")
    try:
        return open_package(package, folder)
    except ModelUnavailable as exc:
        raise ValueError(f"{package}: {exc}") from exc


@contextmanager
def verified_package(package: str | Path) -> Iterator[tuple[dict, Path]]:
    """(card, folder) of `package` extracted and verified in a scratch folder, removed after."""
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch) / "package"
        yield open_verified(Path(package), folder), folder


def training_file(package: Path, card: dict, folder: Path, name: str) -> Path | None:
    """A package's training file `name` (a Keras model a run starts from): beside the package
    since serving packages hold only what serving loads, checked against the card's
    `training_files` hash; inside it (extracted in `folder`) in packages made before; None
    where it has none."""
    if name in card.get("files", {}):
        return folder / name
    entry = card.get("training_files", {}).get(name)
    if entry is None:
        return None
    path = Path(package).parent / name
    if not path.is_file() or sha256_file(path) != entry["sha256"]:
        raise ValueError(f"{package}'s training file {name} is not beside it as its card "
                         f"records it (sha256 {entry['sha256'][:12]}...)")
    return path


def locator_keras_file(package: Path, card: dict, folder: Path) -> Path | None:
    """The package's locator as a Keras model (a training file, by today's name or the one
    packages before 2026-12-06 used), or None where it has none."""
    return next(filter(None, (training_file(package, card, folder, name)
                              for name in LOCATOR_KERAS_FILES)), None)
