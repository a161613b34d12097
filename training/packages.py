"""Opening an exported model package for a training command: verified as the function verifies
it (certcorners.model_store.open_package), a missing or broken package a ValueError that the
CLI prints in one line."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from certcorners.errors import ModelUnavailable
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
