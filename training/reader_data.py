"""What the reader learns from: the view of the number (certcorners.reader.view) and its text.

Two sources, one cut:
- `synthetic_views` renders a card and photographs only the number's neighbourhood, at the
  size the number has in the photo as serving decodes it (8-40 px tall), under the
  generator's light and camera, and cuts the view from corners a little off, as the refiner
  leaves them. Nothing else of the photo is drawn, so it is ~10x faster than a whole photo.
- `photo_views` cuts the view from any labelled folder with `text` (generated, or your own),
  from the label's corners, out of the photo decoded as serving decodes it.
"""

from __future__ import annotations

import hashlib
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from pathlib import Path

import numpy as np
from certcorners.geometry import apply_homography, homography, warp
from certcorners.preprocessing import decode
from certcorners.reader import MAX_TEXT, VIEW_HEIGHT, VIEW_WIDTH, encode, view
from PIL import Image

from training import photo, scene
from training.card import render_card
from training.dataset import Example, cached_arrays, check_displayed_size, read_examples

CACHE_FILE = "reader-views.npz"
VIEWS_PER_CARD = 4  # one card rendered, four photos of its number
# The number's height in the photo as decoded (DECODE_MIN_SIDE): spec photos 12-40 px,
# phone photos 8-20 px.
NUMBER_HEIGHT_PX = (7.0, 42.0)


def targets(text: str) -> np.ndarray:
    """[1 + MAX_TEXT] int32: the text's length, then its classes, zero-padded."""
    codes = encode(text)
    if not 0 < len(codes) <= MAX_TEXT:
        raise ValueError(f"{text!r} is not 1-{MAX_TEXT} characters")
    return np.array([len(codes), *codes, *[0] * (MAX_TEXT - len(codes))], np.int32)


def _views_of_card(args: tuple[int, int]) -> tuple[np.ndarray, np.ndarray, list[str]]:
    seed, index = args
    rng = np.random.default_rng([seed, index, 7])
    card = render_card(rng, float(rng.uniform(8.0, 14.0)))
    art = scene.wear(rng, card.image, card.number_box)
    views = []
    for _ in range(VIEWS_PER_CARD):
        views.append(_photographed_view(rng, card, art))
    count = len(views)
    return (np.stack(views), np.stack([targets(card.number_text)] * count),
            [Path(card.font).stem] * count)


def _photographed_view(rng: np.random.Generator, card, art: Image.Image) -> np.ndarray:
    """The number of `card` in a small photo under the generator's light and camera, decoded
    as serving decodes it, and its view cut from corners a little off."""
    card_w, card_h = art.size
    outline = photo.tilted_outline(rng, card_w, card_h, 40)
    to_photo = homography(photo.rect(card_w, card_h), outline)
    number = apply_homography(to_photo, card.number_quad)
    # Turned so that the number reads nearly level (now and then on its side or upside
    # down): only its neighbourhood is drawn, and a level number has the smallest one.
    along = number[1] - number[0]
    angle = -np.arctan2(along[1], along[0]) + np.radians(rng.normal(0, 6))
    if rng.random() < 0.15:
        angle += np.pi / 2 * int(rng.integers(1, 4))
    turn = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    outline, number = outline @ turn.T, number @ turn.T
    height = (np.linalg.norm(number[3] - number[0]) + np.linalg.norm(number[2] - number[1])) / 2
    target = float(np.exp(rng.uniform(*np.log(NUMBER_HEIGHT_PX))))
    # Rendered at 1, 2 or 4x and decoded with that draft reduction, as big photos are.
    reduction = int(rng.choice([r for r in (1, 2, 4) if r == 1 or target * r <= 80]))
    scale = target * reduction / height
    outline, number = outline * scale, number * scale
    margin = 0.9 * target * reduction + 4
    low = number.min(axis=0) - margin
    size = tuple(int(v) for v in np.ceil(np.ptp(number, axis=0) + 2 * margin))
    outline, number = outline - low, number - low
    shrink = min(1.0, 1.25 * np.linalg.norm(outline[1] - outline[0]) / card_w)
    if shrink < 1.0:
        art = art.resize((max(8, round(card_w * shrink)), max(8, round(card_h * shrink))),
                         Image.Resampling.LANCZOS)
    to_art = homography(outline, photo.rect(art.width, art.height))
    warped = warp(art, to_art, size, Image.Resampling.BICUBIC)
    background = scene.surface(rng, size)
    background.paste(warped, (0, 0), warped)
    centre = number.mean(axis=0)
    pixels = photo.lighting(rng, np.asarray(background, dtype=np.float32), centre,
                             float(np.linalg.norm(number - centre, axis=1).max()), outline)
    image = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), "RGB")
    conditions = replace(photo.PHONE if rng.random() < 0.5 else photo.SPEC,
                         max_blur_px=min(2.5, 0.8 * reduction), exif_share=0.0)
    jpeg = photo.camera(rng, image, profile=conditions)
    decoded = decode(jpeg, min_side=max(8, max(size) // reduction))
    # The refiner's corners are ~1 px off at this scale; now and then a few.
    spread = height * scale / reduction * rng.choice([0.03, 0.08], p=[0.8, 0.2])
    corners = number + rng.normal(0, spread * reduction, number.shape)
    return view(decoded, corners)


def synthetic_views(count: int, seed: int, workers: int | None = None
                    ) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(views uint8 [N, VIEW_HEIGHT, VIEW_WIDTH, 1], targets int32 [N, 1 + MAX_TEXT], fonts)
    of `count` cards, VIEWS_PER_CARD views each: the same seed gives the same views."""
    if count < 1:
        raise ValueError(f"count must be at least 1, got {count}")
    tasks = [(seed, i) for i in range(count)]
    if workers == 1:
        parts = [_views_of_card(task) for task in tasks]
    else:
        with ProcessPoolExecutor(workers) as pool:
            parts = list(pool.map(_views_of_card, tasks, chunksize=16))
    return (np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]),
            [font for p in parts for font in p[2]])


def write_views(out_dir: str | Path, count: int, seed: int, workers: int | None = None) -> Path:
    """synthetic_views saved as out_dir/reader-views.npz (made again only when missing)."""
    out = Path(out_dir) / CACHE_FILE
    if out.exists():
        return out
    views, labels, fonts = synthetic_views(count, seed, workers)
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_suffix(".partial.npz")
    np.savez_compressed(partial, inputs=views, targets=labels, fonts=np.array(fonts),
                        seed=seed, count=count)
    partial.rename(out)
    return out


def _photo_view(example: Example) -> tuple[np.ndarray, np.ndarray]:
    decoded = decode(example.path.read_bytes())
    check_displayed_size(example, decoded.letterbox.width, decoded.letterbox.height)
    return view(decoded, example.corners)[np.newaxis], targets(example.meta["text"])[np.newaxis]


def photo_views(folder: str | Path, workers: int | None = None
                ) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(views, targets, fonts) of every certificate labelled with `text` in the folder, cut
    at the label's corners, cached in it as reader-views.npz."""
    folder = Path(folder)
    examples = [e for e in read_examples(folder)
                if e.corners is not None and e.meta.get("text")]
    if not examples:
        raise ValueError(f"{folder} has no certificate labelled with text")
    digest = hashlib.sha256(b"reader-view-1" + str((VIEW_HEIGHT, VIEW_WIDTH)).encode())
    for e in examples:
        digest.update(f"{e.path.name}{e.width}x{e.height}{e.corners.tolist()}"
                      f"{e.meta['text']}".encode())
    views, labels = cached_arrays(folder / CACHE_FILE, digest.hexdigest(), _photo_view, examples,
                                  ("inputs", "targets"), workers)
    return views, labels, [str(e.meta.get("font", "")) for e in examples]
