"""Datasets: a folder of JPEGs plus labels.jsonl, made synthetically or from users' photos.

labels.jsonl, one photo a line (coordinates in displayed photo pixels, spec corner order):
  {"file": "000001.jpg", "width": 1600, "height": 1200,
   "corners": {"top_left": [x, y], "top_right": [x, y], "bottom_right": [x, y],
               "bottom_left": [x, y]}, "text": "BA-123XY"}
A corner may also be written {"x": x, "y": y}; "corners": null marks a photo without a
certificate (a negative). Other fields (font, exif_orientation, jpeg_quality, ...) are kept
as the example's `meta` and used for breakdowns. LabelMe JSON files (one polygon of four
points, in spec order, per photo) are read too.
"""

from __future__ import annotations

import hashlib
import io
import json
import multiprocessing
import os
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from certcorners.geometry import apply_homography, homography, warp
from certcorners.labels import label_line
from certcorners.preprocessing import (
    CORNER_NAMES,
    PREPROCESSING_VERSION,
    Letterbox,
    corners_to_target,
    decode_scaled,
    letterbox_array,
)
from PIL import Image, ImageOps
from tqdm import tqdm

from training import textures

LABELS_FILE = "labels.jsonl"
CACHE_FILE = "inputs-400.npz"
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp"}


SHARD_SIZE = 500


@dataclass(frozen=True)
class Example:
    path: Path
    width: int
    height: int
    corners: np.ndarray | None  # (4, 2); None: no certificate in the photo
    meta: dict = field(default_factory=dict)


def _pool(workers: int | None) -> ProcessPoolExecutor:
    # forkserver, not fork: the trainer calls this after TensorFlow has started threads, and
    # forking a multi-threaded process can deadlock the children.
    return ProcessPoolExecutor(workers or os.cpu_count() or 1,
                               mp_context=multiprocessing.get_context("forkserver"))


def _synthesise(args: tuple[Path, int, int, bool, float, str, str]) -> str:
    from training.card import family
    from training.photo import PROFILES, profile_of, synthetic_negative, synthetic_photo

    out_dir, seed, index, negative, phone_share, phone_profile, spec_profile = args
    profile = profile_of(seed, index + (1 << 30 if negative else 0), phone_share,
                         PROFILES[phone_profile], PROFILES[spec_profile])
    photo = (synthetic_negative(seed, index, profile) if negative
             else synthetic_photo(seed, index, profile=profile))
    name = f"{'n' if negative else ''}{index:06d}.jpg"
    (out_dir / name).write_bytes(photo.jpeg)
    extra = {"font": family(photo.card.font)} if photo.card is not None else {}
    if phone_share > 0 or spec_profile != "spec":  # evaluate breaks its figures down by it
        extra["profile"] = profile.name
    if photo.card is not None:  # the card's outline, unbent: ground truth beside the label
        extra["card_corners"] = np.round(photo.flat_card_corners, 3).tolist()
    if photo.corners is None and photo.flat_corners is not None:  # a card, its number covered
        extra["covered_number"] = np.round(photo.flat_corners, 3).tolist()
    # The number as printed (the spec's "Reading the number"); null where none can be read.
    extra["text"] = photo.card.number_text if photo.corners is not None else None
    return label_line(name, photo.width, photo.height, photo.corners, **extra)


def _new_dataset_folder(out_dir: str | Path) -> Path:
    """An empty folder, or one holding an unfinished generate's shards (resumed)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if (out_dir / LABELS_FILE).exists():
        raise ValueError(f"{out_dir} already holds a dataset; choose an empty folder")
    return out_dir


def _write_labels(out_dir: Path, lines: list[str], description: dict) -> None:
    """labels.jsonl appears complete or not at all; dataset.json says how it was made."""
    partial = out_dir / (LABELS_FILE + ".tmp")
    partial.write_text("\n".join(lines) + "\n")
    partial.rename(out_dir / LABELS_FILE)
    (out_dir / "dataset.json").write_text(json.dumps(description, indent=2))


def generate(out_dir: str | Path, count: int, seed: int, workers: int | None = None,
             negatives: int = 0, phone_share: float = 0.0,
             phone_profile: str = "phone", spec_profile: str = "spec") -> Path:
    """Write `count` synthetic photos of the certificate and `negatives` photos without a
    findable number, and labels.jsonl; the same seed gives the same bytes on a machine with
    the same fonts and textures. `phone_share` of them are phone photos (the spec's "Phone
    photos": 12 MP, the card small, steeper, darker), or of `phone_profile` "phone-view" (that
    composition at ~640 px, for the card finder); the rest are what they would be without,
    or, with `spec_profile` "spec-view", the spec's compositions at ~540 px (the locator's).
    Written in shards of SHARD_SIZE: an interrupted run resumes at the first unfinished
    shard."""
    if count < 1:
        raise ValueError(f"count must be at least 1, got {count}")
    if negatives < 0:
        raise ValueError(f"negatives must be 0 or more, got {negatives}")
    if not 0.0 <= phone_share <= 1.0:  # written so that NaN fails too
        raise ValueError(f"phone_share must be a share from 0 to 1, got {phone_share}")
    from training.photo import PHONE_PROFILES, SPEC_PROFILES

    if phone_profile not in PHONE_PROFILES:
        raise ValueError(f"phone_profile must be one of {list(PHONE_PROFILES)}, "
                         f"got {phone_profile!r}")
    if spec_profile not in SPEC_PROFILES:
        raise ValueError(f"spec_profile must be one of {list(SPEC_PROFILES)}, "
                         f"got {spec_profile!r}")
    out_dir = _new_dataset_folder(out_dir)
    tasks = [(out_dir, seed, i, negative, phone_share, phone_profile, spec_profile)
             for negative, total in ((False, count), (True, negatives)) for i in range(total)]
    lines = []
    with _pool(workers) as pool, tqdm(total=len(tasks), desc=f"generate {out_dir.name}",
                                      unit="photo") as progress:
        for start in range(0, len(tasks), SHARD_SIZE):
            shard = out_dir / f".labels-{start // SHARD_SIZE:05d}.jsonl"
            if not shard.exists():
                part = list(pool.map(_synthesise, tasks[start : start + SHARD_SIZE],
                                     chunksize=4))
                tmp = shard.with_suffix(".tmp")
                tmp.write_text("\n".join(part) + "\n")
                tmp.rename(shard)
            lines += shard.read_text().splitlines()
            progress.update(min(SHARD_SIZE, len(tasks) - start))
    _write_labels(out_dir, lines, {"kind": "synthetic", "seed": seed, "count": count,
                                   "negatives": negatives, "phone_share": phone_share,
                                   "phone_profile": phone_profile,
                                   "spec_profile": spec_profile,
                                   **generator_sources()})
    for shard in out_dir.glob(".labels-*.jsonl"):
        shard.unlink()
    return out_dir


def generator_sources() -> dict:
    """The fonts and textures the generator drew from (what 'same bytes' depends on)."""
    from training.card import family, font_pairs
    from training.scene import clutter_fonts, texture_files

    def digest(path: str) -> str:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]

    return {
        "number_fonts": {family(bold): {"regular": regular, "bold": bold,
                                        "sha256_16": [digest(regular), digest(bold)]}
                         for regular, bold in font_pairs()},
        "clutter_fonts": {path: digest(path) for path in clutter_fonts()},
        "textures": {path: digest(path) for path in texture_files()},
        # Datasets made before 2026-12-06 drew text with the faces' hinting (no such key).
        "glyph_hinting": False,
    }


def _corners_from_names(mapping: dict, where: str) -> np.ndarray:
    missing = [n for n in CORNER_NAMES if n not in mapping]
    if missing:
        raise ValueError(f"{where}: corners lack {', '.join(missing)}")
    try:
        corners = np.array([[float(v) for v in _xy(mapping[n])] for n in CORNER_NAMES])
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{where}: each corner must be [x, y] numbers") from exc
    if corners.shape != (4, 2) or not np.isfinite(corners).all():
        raise ValueError(f"{where}: each corner must be [x, y] numbers")
    return corners


def _xy(point) -> list:
    """[x, y] or {"x": x, "y": y}."""
    return [point["x"], point["y"]] if isinstance(point, dict) else point


def _read_jsonl(folder: Path) -> Iterator[Example]:
    for number, line in enumerate((folder / LABELS_FILE).read_text().splitlines(), 1):
        if not line.strip():
            continue
        where = f"{folder / LABELS_FILE}:{number}"
        try:
            record = json.loads(line)
            file, width, height = record["file"], int(record["width"]), int(record["height"])
            corners = record["corners"]
        except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"{where}: expected file, width, height and corners") from exc
        path = (folder / file).resolve()
        if folder.resolve() not in path.parents:
            raise ValueError(f"{where}: {file!r} is outside the dataset folder")
        if corners is not None and not isinstance(corners, dict):
            raise ValueError(f"{where}: corners must be an object of four named corners or null")
        meta = {k: v for k, v in record.items()
                if k not in ("file", "width", "height", "corners")}
        yield Example(path, width, height,
                      None if corners is None else _corners_from_names(corners, where), meta)


def _read_labelme(json_path: Path) -> Example:
    """One LabelMe file: the first polygon with four points, in spec order."""
    where = str(json_path)
    try:
        record = json.loads(json_path.read_text())
        shapes = [s for s in record["shapes"] if len(s.get("points", [])) == 4]
        image_path = (json_path.parent / record["imagePath"]).resolve()
        width, height = int(record["imageWidth"]), int(record["imageHeight"])
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"{where}: not a LabelMe file with imagePath and size") from exc
    if not shapes:
        raise ValueError(f"{where}: no polygon with exactly four points")
    corners = dict(zip(CORNER_NAMES, shapes[0]["points"], strict=True))
    return Example(image_path, width, height, _corners_from_names(corners, where))


def read_examples(folder: str | Path) -> list[Example]:
    """All labelled photos in a folder: labels.jsonl if present, else LabelMe JSON files."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ValueError(f"{folder} is not a folder")
    if (folder / LABELS_FILE).exists():
        examples = list(_read_jsonl(folder))
    else:
        examples = [_read_labelme(p) for p in sorted(folder.glob("*.json"))
                    if p.name != "dataset.json"]
    if not examples:
        raise ValueError(f"{folder} has no {LABELS_FILE} and no LabelMe JSON files")
    for example in examples:
        if not example.path.exists():
            raise ValueError(f"{folder}: labelled photo {example.path.name} does not exist")
    return examples


def check_displayed_size(example: Example, width: int, height: int) -> None:
    """ValueError unless the label's size is the photo's as displayed (EXIF applied): corners
    labelled on another size would be taken at the wrong place."""
    if (width, height) != (example.width, example.height):
        raise ValueError(f"{example.path.name}: labelled as {example.width} x {example.height},"
                         f" but the photo is {width} x {height} as displayed")


def canvas_of(example: Example) -> tuple[np.ndarray, Letterbox]:
    """The example's photo as stage 1 sees it (uint8 [400, 400, 1], serving's preprocessing)
    and its letterbox, after checking the label's size is the photo's as displayed."""
    scaled, letterbox = decode_scaled(example.path.read_bytes())
    check_displayed_size(example, letterbox.width, letterbox.height)
    return letterbox_array(scaled, letterbox), letterbox


def _prepare(example: Example) -> tuple[np.ndarray, np.ndarray]:
    canvas, letterbox = canvas_of(example)
    return canvas[np.newaxis], corners_to_target(example.corners, letterbox)[np.newaxis]


def cached_arrays(cache: Path, key: str, work, tasks: list, names: tuple[str, str],
                  workers: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Two arrays made from `tasks` on every core (`work` returns one pair of arrays per
    task, each with a leading axis, concatenated in task order), cached in `cache` and
    made again when `key` changes."""
    if cache.exists():
        with np.load(cache) as data:
            if str(data["key"]) == key:
                return data[names[0]], data[names[1]]
    with _pool(workers) as pool:
        parts = list(tqdm(pool.map(work, tasks, chunksize=16), total=len(tasks),
                          desc=f"{names[0]} {cache.parent.name}", unit="photo"))
    first = np.concatenate([p[0] for p in parts])
    second = np.concatenate([p[1] for p in parts])
    tmp = cache.with_name(cache.name + ".tmp.npz")
    np.savez(tmp, key=key, **{names[0]: first, names[1]: second})
    tmp.rename(cache)
    return first, second


def load_arrays(folder: str | Path, workers: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(inputs uint8 [N, 400, 400, 1], targets float32 [N, 8]) of the folder's photos with a
    certificate, through the serving preprocessing, cached in the folder and rebuilt when the
    labels change."""
    folder = Path(folder)
    examples = [e for e in read_examples(folder) if e.corners is not None]
    if not examples:
        raise ValueError(f"{folder} has no labelled photo with a certificate")
    digest = hashlib.sha256(f"preprocessing-{PREPROCESSING_VERSION}".encode())
    for e in examples:
        digest.update(f"{e.path.name}{e.width}{e.height}{e.corners.tobytes().hex()}".encode())
    return cached_arrays(folder / CACHE_FILE, digest.hexdigest(), _prepare, examples,
                         ("inputs", "targets"), workers)


# --- Augmenting users' own photos, keeping the corner names -----------------------------


def _augment_one(image: Image.Image, corners: np.ndarray, rng: np.random.Generator):
    # A 90-degree turn: points move with the pixels, names stay with the points.
    turns = int(rng.integers(4))
    for _ in range(turns):
        w, _ = image.size
        image = image.transpose(Image.Transpose.ROTATE_90)  # counter-clockwise
        corners = np.stack([corners[:, 1], w - corners[:, 0]], axis=1)
    # Perspective jitter: move the photo's corners by up to 6% of its size.
    w, h = image.size
    frame = np.array([[0, 0], [w, 0], [w, h], [0, h]], dtype=np.float64)
    moved = frame + rng.uniform(-0.06, 0.06, (4, 2)) * np.array([w, h])
    to_source = homography(frame, moved)  # output pixel -> source pixel
    image = warp(image, to_source, (w, h), Image.Resampling.BICUBIC)
    corners = apply_homography(np.linalg.inv(to_source), corners)
    # Light and camera.
    pixels = np.asarray(image.convert("RGB"), dtype=np.float32) * rng.uniform(0.7, 1.3)
    image = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))
    image = textures.blurred(image, rng.uniform(0, 1.5))
    noisy = np.asarray(image, dtype=np.float32) + rng.normal(0, rng.uniform(0, 6),
                                                             (h, w, 1)).astype(np.float32)
    image = Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8))
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=int(rng.integers(40, 96)))
    return buffer.getvalue(), image.size, corners


def augment(source: str | Path, out_dir: str | Path, copies: int, seed: int) -> Path:
    """Write `copies` augmented variants of each labelled photo in `source` (plus the
    original) as a JSON Lines dataset in `out_dir`."""
    if copies < 0:
        raise ValueError(f"copies must be 0 or more, got {copies}")
    out_dir = _new_dataset_folder(out_dir)
    lines = []
    examples = read_examples(source)
    for number, example in enumerate(tqdm(examples, desc="augment", unit="photo")):
        original = ImageOps.exif_transpose(Image.open(example.path)).convert("RGB")
        check_displayed_size(example, *original.size)
        name = f"{number:05d}-0.jpg"
        original.save(out_dir / name, "JPEG", quality=95)
        lines.append(label_line(name, *original.size, example.corners))
        for copy in range(1, copies + 1):
            rng = np.random.default_rng([seed, number, copy])
            jpeg, size, corners = _augment_one(original, example.corners, rng)
            name = f"{number:05d}-{copy}.jpg"
            (out_dir / name).write_bytes(jpeg)
            lines.append(label_line(name, *size, corners))
    _write_labels(out_dir, lines, {"kind": "augmented", "source": str(source),
                                   "copies": copies, "seed": seed, "count": len(lines)})
    return out_dir
