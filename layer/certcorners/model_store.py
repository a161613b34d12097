"""The model as the function serves it: fetched from S3 once per execution environment.

MODEL_S3_URI names a model.tar.gz from the training module. On first use it is downloaded
to /tmp with its sha256 computed on the way, checked against the object's metadata, extracted
defensively (regular files only, no paths out of the folder) into a fresh folder, checked file
by file against the model card, renamed into place, and loaded into one LiteRT interpreter.
Any failure raises ModelUnavailable (503) and leaves nothing half-made; the next call retries.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tarfile
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from certcorners import s3_fetch
from certcorners.errors import ModelUnavailable
from certcorners.model_card import CARD_FILE, SHA256_METADATA_KEY, locator_file, sha256_file
from certcorners.policy import CascadePolicy
from certcorners.predictor import Predictor
from certcorners.reader import ALPHABET

MAX_PACKAGE_BYTES = 100 * 1024 * 1024
MAX_EXTRACTED_BYTES = 200 * 1024 * 1024
MAX_MEMBERS = 32


@dataclass(frozen=True)
class LoadedModel:
    predictor: Predictor
    card: dict
    sha256: str  # of model.tar.gz
    folder: Path
    load_seconds: float

    @property
    def version(self) -> str:
        return str(self.card.get("version", "unknown"))


def parse_s3_uri(uri: str) -> tuple[str, str]:
    parsed = urlparse(uri or "")
    if parsed.scheme != "s3" or not parsed.netloc or not parsed.path.strip("/"):
        raise ModelUnavailable(
            f"MODEL_S3_URI must look like s3://bucket/key/model.tar.gz, got {uri!r}")
    return parsed.netloc, parsed.path.lstrip("/")


class ModelStore:
    def __init__(self, uri: str, cache_dir: str | Path = "/tmp/model", on_load=None,
                 num_threads: int | None = None):
        self.uri = uri
        self.cache_dir = Path(cache_dir)
        self.num_threads = num_threads  # LiteRT's threads; None: one per core
        self._on_load = on_load  # called once per successful load, e.g. to log it
        self._model: LoadedModel | None = None
        self._lock = threading.Lock()

    @classmethod
    def from_environment(cls, on_load=None) -> ModelStore:
        """MODEL_S3_URI, MODEL_CACHE_DIR and LITERT_NUM_THREADS (checked here, at cold
        start: 0 or unset means one thread per core)."""
        from certcorners import settings

        threads = settings.whole_number("LITERT_NUM_THREADS", 0, minimum=0)
        return cls(os.environ.get("MODEL_S3_URI", ""),
                   os.environ.get("MODEL_CACHE_DIR", "/tmp/model"), on_load=on_load,
                   num_threads=threads or None)

    @property
    def loaded(self) -> LoadedModel | None:
        return self._model

    def get(self) -> LoadedModel:
        """The loaded model, fetching it first if this environment has none yet."""
        model = self._model
        if model is not None:
            return model
        with self._lock:  # concurrent first requests share one download
            if self._model is None:
                self._model = self._load()
                if self._on_load:
                    self._on_load(self._model)
            return self._model

    def reset(self) -> None:
        with self._lock:
            self._model = None

    def _load(self) -> LoadedModel:
        started = time.perf_counter()
        bucket, key = parse_s3_uri(self.uri)
        try:
            self.cache_dir.mkdir(parents=True, exist_ok=True)
            staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=self.cache_dir))
        except OSError as exc:
            raise ModelUnavailable(f"cannot write the model cache: {exc.strerror}") from exc
        try:
            archive = staging / "model.tar.gz"
            digest = self._download(bucket, key, archive)
            extracted = staging / "model"
            card = open_package(archive, extracted)
            archive.unlink()
            final = self.cache_dir / digest
            if final.exists():
                shutil.rmtree(final)
            extracted.rename(final)  # atomic: a folder named by its sha256 is complete
            predictor = predictor_for(final, card, self.num_threads)
        except ModelUnavailable:
            raise
        except OSError as exc:
            raise ModelUnavailable(f"cannot prepare the model: {exc.strerror or exc}") from exc
        except Exception as exc:  # a flatbuffer LiteRT rejects, and anything else
            raise ModelUnavailable(f"the model cannot be loaded: {exc}") from exc
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return LoadedModel(predictor, card, digest, final, time.perf_counter() - started)

    def _download(self, bucket: str, key: str, target: Path) -> str:
        try:
            with s3_fetch.get_object(bucket, key) as response:
                expected = response.metadata.get(SHA256_METADATA_KEY, "")
                if response.length > MAX_PACKAGE_BYTES:
                    raise ModelUnavailable(f"s3://{bucket}/{key} is larger than a model can be")
                digest = hashlib.sha256()
                with open(target, "wb") as out:
                    for chunk in response.chunks(1 << 20):
                        digest.update(chunk)
                        out.write(chunk)
        except s3_fetch.S3Error as exc:  # unreachable, timed out, refused, cut off midway
            raise ModelUnavailable(f"cannot fetch s3://{bucket}/{key}: {exc}") from exc
        if not expected:
            raise ModelUnavailable(
                f"s3://{bucket}/{key} has no sha256 metadata: publish it with the training CLI")
        if digest.hexdigest() != expected.lower():
            raise ModelUnavailable(f"s3://{bucket}/{key} does not match its sha256 metadata")
        return digest.hexdigest()


def open_package(archive: Path, folder: Path) -> dict:
    """Extract a model.tar.gz defensively into a new `folder` and verify every file against
    the model card; returns the card. Raises ModelUnavailable."""
    _safe_extract(archive, folder)
    return _verify_files(folder)


def predictor_for(folder: Path, card: dict, num_threads: int | None = None) -> Predictor:
    """The cascade a verified package describes: stage 1, and the refiner, the card finder
    and the reader where it has them."""
    refiner, finder = card.get("refiner_model"), card.get("card_finder_model")
    reader = card.get("reader_model")
    if reader and card.get("reader_alphabet") != ALPHABET:
        raise ModelUnavailable("the model's reader reads another alphabet than this code "
                               "decodes: serve it with the code that exported it")
    return Predictor(folder / locator_file(card), num_threads,
                     refiner_path=folder / refiner if refiner else None,
                     policy=CascadePolicy.from_card(card),
                     card_finder_path=folder / finder if finder else None,
                     reader_path=folder / reader if reader else None)


def _safe_extract(archive: Path, folder: Path) -> None:
    """Regular files in the top folder only; anything else refuses the whole archive."""
    try:
        with tarfile.open(archive, "r:gz") as tar:
            members = tar.getmembers()
            if len(members) > MAX_MEMBERS:
                raise ModelUnavailable("the model archive holds too many files")
            if sum(m.size for m in members) > MAX_EXTRACTED_BYTES:
                raise ModelUnavailable("the model archive unpacks to too many bytes")
            for member in members:
                name = member.name
                if not member.isfile():
                    raise ModelUnavailable(f"the model archive holds a non-file entry: {name}")
                if name.startswith("/") or "/" in name or name in ("", ".", ".."):
                    raise ModelUnavailable(f"the model archive holds an unsafe path: {name}")
            folder.mkdir()
            # The 'data' filter re-checks paths, links and permissions as a second guard.
            tar.extractall(folder, members=members, filter="data")
    except ModelUnavailable:
        raise
    except (tarfile.TarError, EOFError, OSError, ValueError) as exc:
        raise ModelUnavailable(f"the model archive is corrupt: {exc}") from exc


def _verify_files(folder: Path) -> dict:
    """The model card, after every file it lists matched its sha256."""
    try:
        card = json.loads((folder / CARD_FILE).read_text())
        files = card["files"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ModelUnavailable("the model archive has no valid model card") from exc
    for role in ("locator_model", "refiner_model", "card_finder_model", "reader_model"):
        name = locator_file(card) if role == "locator_model" else card.get(role)
        if name is not None and name not in files:
            raise ModelUnavailable(f"the model card does not list its {role} {name}")
    for name, entry in files.items():
        path = folder / name
        if "/" in name or not path.is_file():
            raise ModelUnavailable(f"the model archive lacks {name}, listed in its card")
        digest = sha256_file(path)
        if digest != entry.get("sha256"):
            raise ModelUnavailable(f"{name} does not match the sha256 in the model card")
    return card
