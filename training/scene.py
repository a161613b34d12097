"""What surrounds and touches the card in a phone photo: photographic surfaces, clutter with
real text, fingers, wear, shadows.

The sources are files that the project's setup installs (docs/training.md, "Training data"):
- surfaces: GIMP's pattern library (Debian gimp-data: scanned wood, stone, marble, fabric,
  leather, paper, cork) and MyPaint's paper and canvas scans (Debian mypaint-data-extras),
  tiled at a random scale, plus the procedural textures of training.textures;
- text: every installed font (training.card.font_pairs for the sans-serif families, serif
  and monospace faces for clutter), so pages, forms and receipts carry real glyphs.
scikit-image's sample photos are deliberately not used: the foreign evaluation set is built
from them.
"""

from __future__ import annotations

import os
import struct
import sys
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from training import textures
from training.fonts import face

TEXTURE_ROOTS = (Path("/usr/share/gimp/2.0/patterns"), Path("/usr/share/mypaint/backgrounds"))
# GIMP's legacy/synthetic patterns and the sky/water photos are not surfaces a card lies on.
_SKIPPED_TEXTURE_DIRS = {"Legacy", "Sky", "Water"}
CLUTTER_FONT_ROOTS = (Path("/usr/share/fonts"),)

WORDS = (
    "the", "of", "and", "to", "in", "is", "for", "on", "with", "as", "by", "at", "from", "this",
    "that", "invoice", "total", "date", "number", "page", "name", "address", "street", "city",
    "account", "payment", "amount", "due", "reference", "customer", "order", "item", "price",
    "quantity", "tax", "vat", "paid", "balance", "signature", "meeting", "notes", "report",
    "summary", "section", "chapter", "faktúra", "dátum", "suma", "spolu", "platba", "adresa",
    "mesto", "ulica", "číslo", "strana", "poznámky", "zmluva", "podpis", "vozidlo", "poistenie",
    "technická", "kontrola", "servis", "objednávka", "doklad", "pokladnica", "ďakujeme",
    "Rechnung", "Datum", "Betrag", "Kunde", "Seite", "Nummer", "Straße", "facture", "montant",
    "client", "référence",
)


# --- Photographic surfaces ------------------------------------------------------------------


def _read_gimp_pattern(path: Path) -> Image.Image | None:
    """A GIMP .pat file: a big-endian header (size, version, w, h, depth, 'GPAT'), raw pixels."""
    data = path.read_bytes()
    if len(data) < 24 or data[20:24] != b"GPAT":
        return None
    header, _, width, height, depth = struct.unpack(">5I", data[:20])
    mode = {1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}.get(depth)
    pixels = data[header : header + width * height * depth]
    if mode is None or len(pixels) != width * height * depth:
        return None
    return Image.frombytes(mode, (width, height), pixels).convert("RGB")


@lru_cache(maxsize=1)
def texture_files() -> tuple[str, ...]:
    """Installed photographic texture files, sorted (determinism across runs)."""
    found = []
    for root in TEXTURE_ROOTS:
        if root.is_dir():
            for path in root.rglob("*"):
                if path.suffix in (".pat", ".png") and not _SKIPPED_TEXTURE_DIRS & set(
                        path.parts):
                    found.append(str(path))
    return tuple(sorted(found))


@lru_cache(maxsize=64)
def _texture(path: str) -> Image.Image | None:
    p = Path(path)
    if p.suffix == ".pat":
        return _read_gimp_pattern(p)
    image = Image.open(p).convert("RGB")
    # MyPaint's near-uniform swatches (white, grey, checks) are not photographs.
    return image if np.asarray(image.convert("L")).std() > 3 else None


def photographic(rng: np.random.Generator, size: tuple[int, int]) -> Image.Image:
    """A scanned surface tiled over the frame at a random scale, tint and orientation."""
    files = texture_files()
    tile = _texture(files[rng.integers(len(files))]) if files else None
    if tile is None:
        return textures.random_background(rng, size)
    width, height = size
    target = rng.uniform(0.08, 0.45) * max(width, height)
    scale = target / max(tile.size)
    tile = tile.resize((max(8, round(tile.width * scale)), max(8, round(tile.height * scale))),
                       Image.Resampling.BICUBIC)
    if rng.random() < 0.5:
        tile = tile.transpose(Image.Transpose.ROTATE_90)
    canvas = Image.new("RGB", size)
    for y in range(0, height, tile.height):
        for x in range(0, width, tile.width):
            canvas.paste(tile, (x, y))
    pixels = np.asarray(canvas, np.float32) * rng.uniform(0.6, 1.3, 3).astype(np.float32)
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), "RGB")


def surface(rng: np.random.Generator, size: tuple[int, int]) -> Image.Image:
    """A surface the card lies on: mostly photographic, else procedural."""
    if rng.random() < 0.6 and texture_files():
        return photographic(rng, size)
    return textures.random_background(rng, size)


# --- Clutter with real text -------------------------------------------------------------------


@lru_cache(maxsize=1)
def clutter_fonts() -> tuple[str, ...]:
    """Every installed Latin text face (sans, serif, mono) for pages, forms and receipts."""
    from training.card import font_pairs, missing_glyphs

    found = {p for pair in font_pairs() for p in pair}
    for root in CLUTTER_FONT_ROOTS:
        if root.is_dir():
            for path in root.rglob("*"):
                name = path.name
                if path.suffix in (".ttf", ".otf") and any(
                        k in name for k in ("Serif", "Mono", "Tinos", "Cousine", "C059",
                                            "P052", "NimbusRoman", "Caladea")):
                    found.add(str(path))
    return tuple(sorted((f for f in found if not missing_glyphs(f, "čšžáéíóúôäňľ")),
                        key=_portable_order))


def _portable_order(path: str) -> tuple[bool, str]:
    """Fonts inside the Python environment (matplotlib's DejaVu) last, by their path within it:
    sorted by full path, they fell before or after /usr/share depending on where the checkout
    and its .venv live, and the same seed made other photos in another folder."""
    inside = path.startswith(sys.prefix + os.sep)
    return inside, path[len(sys.prefix):] if inside else path


def _phrase(rng: np.random.Generator, words: int) -> str:
    parts = []
    for _ in range(words):
        r = rng.random()
        if r < 0.12:
            parts.append(str(rng.integers(1, 99999)))
        elif r < 0.16:
            day, month, year = rng.integers(1, 29), rng.integers(1, 13), rng.integers(10, 27)
            parts.append(f"{day:02d}.{month:02d}.20{year}")
        else:
            word = WORDS[rng.integers(len(WORDS))]
            parts.append(word.upper() if rng.random() < 0.1 else word)
    return " ".join(parts)


def _page(rng: np.random.Generator, width: int, height: int) -> Image.Image:
    """A printed page, a form with ruled tables, or a receipt, with real glyphs."""
    fonts = clutter_fonts()
    kind = rng.integers(3)
    paper = tuple(int(v) for v in rng.integers(225, 256, 3))
    page = Image.new("RGBA", (width, height), (*paper, 255))
    draw = ImageDraw.Draw(page)
    ink = tuple(int(v) for v in rng.integers(0, 70, 3)) + (255,)
    face_path = fonts[rng.integers(len(fonts))]
    size = max(6, int(rng.uniform(0.02, 0.06) * max(width, height)))
    margin = int(0.06 * width)
    y = margin
    if kind == 1:  # a form: a grid of ruled cells with labels and values
        rows, cols = int(rng.integers(4, 12)), int(rng.integers(2, 5))
        cell_h = (height - 2 * margin) / rows
        cell_w = (width - 2 * margin) / cols
        for r in range(rows + 1):
            draw.line((margin, margin + r * cell_h, width - margin, margin + r * cell_h),
                      fill=ink, width=max(1, size // 10))
        for c in range(cols + 1):
            draw.line((margin + c * cell_w, margin, margin + c * cell_w, height - margin),
                      fill=ink, width=max(1, size // 10))
        small = face(face_path, max(6, int(min(cell_h * 0.4, size))))
        for r in range(rows):
            for c in range(cols):
                draw.text((margin + c * cell_w + 3, margin + r * cell_h + 2),
                          _phrase(rng, int(rng.integers(1, 3))), font=small, fill=ink)
        return page
    font = face(face_path, size)
    line_height = size * rng.uniform(1.15, 1.6)
    while y + line_height < height - margin:
        if kind == 2:  # a receipt: item ... price
            text = _phrase(rng, int(rng.integers(1, 4)))
            draw.text((margin, y), text, font=font, fill=ink)
            price = f"{rng.uniform(0.2, 99):.2f}"
            draw.text((width - margin, y), price, font=font, fill=ink, anchor="ra")
        else:
            draw.text((margin, y), _phrase(rng, int(rng.integers(3, 14))), font=font, fill=ink)
        y += line_height
    if rng.random() < 0.4:
        _handwriting(rng, page, (0.1 * width, 0.5 * height, 0.9 * width, 0.95 * height))
    return page


def _handwriting(rng, image: Image.Image, box) -> None:
    """Pen strokes: a few lines of joined loops, like a signature or notes."""
    draw = ImageDraw.Draw(image)
    x0, y0, x1, y1 = box
    colour = ((20, 30, 120), (20, 20, 20), (30, 60, 160))[rng.integers(3)]
    width = max(1, int(rng.uniform(0.002, 0.006) * image.width))
    for _ in range(int(rng.integers(1, 4))):
        y = rng.uniform(y0, y1)
        xs = np.linspace(rng.uniform(x0, (x0 + x1) / 2), rng.uniform((x0 + x1) / 2, x1), 80)
        amp = rng.uniform(0.01, 0.03) * image.height
        ys = y + amp * np.sin(xs / rng.uniform(4, 12)) + np.cumsum(rng.normal(0, amp / 8, 80))
        draw.line(list(zip(xs.tolist(), ys.tolist(), strict=True)), fill=colour, width=width)


def _other_card(rng, width: int, height: int) -> Image.Image:
    """A bank or loyalty card: colour, a stripe or logo, a few lines of embossed-style text."""
    card = Image.new("RGBA", (width, height), (0, 0, 0, 0))
    draw = ImageDraw.Draw(card)
    base = tuple(int(v) for v in rng.integers(20, 235, 3)) + (255,)
    draw.rounded_rectangle((0, 0, width - 1, height - 1), radius=int(0.04 * width), fill=base)
    accent = tuple(int(v) for v in rng.integers(0, 256, 3)) + (255,)
    draw.ellipse((0.65 * width, 0.1 * height, 0.9 * width, 0.5 * height), fill=accent)
    fonts = clutter_fonts()
    font = face(fonts[rng.integers(len(fonts))], max(6, int(0.08 * height)))
    light = (240, 240, 240, 255) if sum(base[:3]) < 380 else (20, 20, 20, 255)
    digits = " ".join("".join(str(d) for d in rng.integers(0, 10, 4)) for _ in range(4))
    draw.text((0.08 * width, 0.55 * height), digits, font=font, fill=light)
    draw.text((0.08 * width, 0.75 * height), _phrase(rng, 2).upper(), font=font, fill=light)
    return card


def _object(rng, width: int, height: int) -> Image.Image:
    """A pen or a phone, as a shaded shape."""
    image = Image.new("RGBA", (width, height), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    if rng.random() < 0.5:  # a phone: dark body, screen
        body = tuple(int(v) for v in rng.integers(10, 80, 3)) + (255,)
        draw.rounded_rectangle((0, 0, width - 1, height - 1), radius=int(0.1 * min(width, height)),
                               fill=body)
        screen = tuple(int(v) for v in rng.integers(0, 120, 3)) + (255,)
        draw.rounded_rectangle((0.05 * width, 0.05 * height, 0.95 * width, 0.95 * height),
                               radius=int(0.06 * min(width, height)), fill=screen)
    else:  # a pen: a long capsule with a clip
        colour = tuple(int(v) for v in rng.integers(0, 256, 3)) + (255,)
        draw.rounded_rectangle((0, 0.4 * height, width - 1, 0.6 * height),
                               radius=int(0.1 * height), fill=colour)
        draw.rectangle((0.1 * width, 0.35 * height, 0.4 * width, 0.42 * height),
                       fill=(190, 190, 200, 255))
    return image


def _paste_rotated(rng, canvas: Image.Image, item: Image.Image, centre) -> np.ndarray:
    """Paste `item` rotated by a random angle with its centre at `centre`, with a soft drop
    shadow; returns the pasted outline (4, 2) in canvas pixels."""
    angle = rng.uniform(0, 360)
    rotated = item.rotate(angle, resample=Image.Resampling.BILINEAR, expand=True)
    x = int(centre[0] - rotated.width / 2)
    y = int(centre[1] - rotated.height / 2)
    alpha = rotated.getchannel("A")
    # The drop shadow is soft anyway: blur it at a quarter of the resolution.
    small = alpha.resize((max(1, alpha.width // 4), max(1, alpha.height // 4)),
                         Image.Resampling.BILINEAR)
    shadow = textures.blurred(small, max(1, rotated.width // 240)).resize(
        alpha.size, Image.Resampling.BILINEAR)
    offset = int(rng.uniform(2, 10))
    dark = Image.new("RGBA", rotated.size, (0, 0, 0, 90))
    canvas.paste(dark, (x + offset, y + offset), shadow)
    canvas.paste(rotated, (x, y), alpha)
    w, h = item.size
    c, s = np.cos(np.radians(-angle)), np.sin(np.radians(-angle))
    local = np.array([[-w / 2, -h / 2], [w / 2, -h / 2], [w / 2, h / 2], [-w / 2, h / 2]])
    return local @ np.array([[c, s], [-s, c]]) + np.array(centre)


def clutter(rng: np.random.Generator, canvas: Image.Image, count: int | None = None) -> None:
    """Pages, forms, receipts, other cards, pens and phones scattered over the surface."""
    width, height = canvas.size
    long_side = max(width, height)
    for _ in range(int(rng.integers(0, 6) if count is None else count)):
        kind = rng.random()
        if kind < 0.5:
            w = int(rng.uniform(0.3, 0.9) * long_side)
            item = _page(rng, w, int(w * rng.uniform(0.5, 1.45)))
        elif kind < 0.7:
            w = int(rng.uniform(0.25, 0.5) * long_side)
            item = _other_card(rng, w, int(w * 0.63))
        else:
            w = int(rng.uniform(0.2, 0.6) * long_side)
            item = _object(rng, w, int(w * rng.uniform(0.1, 0.5)))
        centre = (rng.uniform(-0.1, 1.1) * width, rng.uniform(-0.1, 1.1) * height)
        _paste_rotated(rng, canvas, item, centre)
    if rng.random() < 0.2:
        _handwriting(rng, canvas, (0, 0, width, height))


# --- On and around the card -------------------------------------------------------------------


def wear(rng: np.random.Generator, card: Image.Image, keep_clear: tuple,
         everything: bool = False) -> Image.Image:
    """Creases, stains and scuffs on the card art (RGBA). `keep_clear` is the number's ink box:
    stains stay off it; a crease may cross it faintly, as on a folded card."""
    if rng.random() > 0.6 and not everything:
        return card
    width, height = card.size
    overlay = Image.new("RGBA", card.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(overlay)
    for _ in range(int(rng.integers(0, 3))):  # creases: a light line beside a dark one
        if rng.random() < 0.5:
            x = rng.uniform(0.1, 0.9) * width
            line = (x, 0, x + rng.uniform(-0.05, 0.05) * width, height)
        else:
            y = rng.uniform(0.1, 0.9) * height
            line = (0, y, width, y + rng.uniform(-0.05, 0.05) * height)
        draw.line(line, fill=(255, 255, 255, int(rng.integers(40, 110))), width=2)
        draw.line((line[0] + 2, line[1] + 2, line[2] + 2, line[3] + 2),
                  fill=(0, 0, 0, int(rng.integers(20, 60))), width=1)
    x0, y0, x1, y1 = keep_clear
    for _ in range(int(rng.integers(0, 3))):  # stains, away from the number
        r = rng.uniform(0.04, 0.15) * width
        for _try in range(10):
            cx, cy = rng.uniform(0, width), rng.uniform(0, height)
            if cx + r < x0 or cx - r > x1 or cy + r < y0 or cy - r > y1:
                colour = (int(rng.integers(90, 160)), int(rng.integers(60, 110)), 30,
                          int(rng.integers(25, 70)))
                draw.ellipse((cx - r, cy - r * rng.uniform(0.5, 1), cx + r, cy + r), fill=colour)
                break
    for _ in range(int(rng.integers(0, 8))):  # scuffs
        cx, cy = rng.uniform(0, width), rng.uniform(0, height)
        length = rng.uniform(0.02, 0.1) * width
        a = rng.uniform(0, np.pi)
        draw.line((cx, cy, cx + length * np.cos(a), cy + length * np.sin(a)),
                  fill=(255, 255, 255, int(rng.integers(30, 90))), width=1)
    overlay = textures.blurred(overlay, 0.7)
    alpha = card.getchannel("A")
    worn = Image.alpha_composite(card, overlay)
    worn.putalpha(alpha)
    return worn


def _segments_cross(p1, p2, q1, q2) -> bool:
    def orient(a, b, c):
        return np.sign((b[0] - a[0]) * (c[1] - a[1]) - (b[1] - a[1]) * (c[0] - a[0]))

    return (orient(p1, p2, q1) != orient(p1, p2, q2)) and (orient(q1, q2, p1) != orient(q1, q2, p2))


def polygons_overlap(a: np.ndarray, b: np.ndarray) -> bool:
    """Whether two convex polygons (N, 2) touch: an edge crossing or one inside the other."""
    from matplotlib.path import Path as MplPath

    for i in range(len(a)):
        for j in range(len(b)):
            if _segments_cross(a[i], a[(i + 1) % len(a)], b[j], b[(j + 1) % len(b)]):
                return True
    return bool(MplPath(a).contains_points(b[:1]).any() or MplPath(b).contains_points(a[:1]).any())


def grown(quad: np.ndarray, factor: float) -> np.ndarray:
    centre = quad.mean(axis=0)
    return centre + (quad - centre) * factor


SKIN = ((224, 172, 138), (198, 134, 96), (141, 85, 54), (240, 200, 170), (170, 110, 80))


def fingers(rng: np.random.Generator, image: Image.Image, card_outline: np.ndarray,
            keep_clear: np.ndarray, everything: bool = False) -> list[np.ndarray]:
    """A thumb or fingers over the card's edges or corners, never over `keep_clear` (the
    number's quad, grown). Returns the finger outlines drawn."""
    drawn = []
    if rng.random() > 0.35 and not everything:
        return drawn
    width = np.linalg.norm(card_outline[1] - card_outline[0])
    skin = np.array(SKIN[rng.integers(len(SKIN))], dtype=float)
    for _ in range(int(rng.integers(1, 4))):
        for _try in range(12):
            edge = int(rng.integers(4))
            a, b = card_outline[edge], card_outline[(edge + 1) % 4]
            t = rng.uniform(0.0, 1.0)
            anchor = a + t * (b - a)
            inward = card_outline.mean(axis=0) - anchor
            inward /= np.linalg.norm(inward) + 1e-9
            length = rng.uniform(0.12, 0.3) * width
            thickness = rng.uniform(0.07, 0.12) * width
            tip = anchor + inward * length * rng.uniform(0.2, 0.6)
            base = tip - inward * length * 1.6
            side = np.array([-inward[1], inward[0]]) * thickness / 2
            outline = np.array([base + side, tip + side, tip - side, base - side])
            if not polygons_overlap(outline, keep_clear):
                break
        else:
            continue
        # Drawn in a local layer around the finger: blurring a whole photo-size layer is slow.
        r = thickness / 2
        points = np.vstack([outline, tip[None] - r, tip[None] + r])
        left, top = np.floor(points.min(axis=0) - 4).astype(int)
        right, bottom = np.ceil(points.max(axis=0) + 4).astype(int)
        layer = Image.new("RGBA", (int(right - left), int(bottom - top)), (0, 0, 0, 0))
        draw = ImageDraw.Draw(layer)
        shift = np.array([left, top], dtype=float)
        outline_local, tip_local = outline - shift, tip - shift
        colour = tuple(int(c) for c in np.clip(skin * rng.uniform(0.85, 1.1), 0, 255))
        draw.polygon([tuple(p) for p in outline_local], fill=(*colour, 255))
        draw.ellipse((tip_local[0] - r, tip_local[1] - r, tip_local[0] + r, tip_local[1] + r),
                     fill=(*colour, 255))
        # A nail near the tip, and a soft edge.
        nail = tip_local - inward * r * 0.6
        draw.ellipse((nail[0] - r * 0.55, nail[1] - r * 0.55, nail[0] + r * 0.55,
                      nail[1] + r * 0.55), fill=tuple(int(min(255, c + 30)) for c in colour)
                     + (255,))
        layer = textures.blurred(layer, max(0.8, r * 0.08))
        image.paste(layer, (int(left), int(top)), layer)
        drawn.append(np.vstack([outline, tip[None]]))
    return drawn


def object_shadow(rng: np.random.Generator, size: tuple[int, int]) -> np.ndarray:
    """A multiplicative gain field (H, W) with the soft shadow of a hand, phone or pen."""
    width, height = size
    mask = Image.new("L", (max(2, width // 8), max(2, height // 8)), 0)
    draw = ImageDraw.Draw(mask)
    cx, cy = rng.uniform(0, mask.width), rng.uniform(0, mask.height)
    r = rng.uniform(0.1, 0.4) * max(mask.size)
    if rng.random() < 0.5:
        draw.ellipse((cx - r, cy - r * 0.5, cx + r, cy + r * 0.5), fill=255)
    else:
        a = rng.uniform(0, np.pi)
        d = np.array([np.cos(a), np.sin(a)]) * r
        draw.line((cx - d[0], cy - d[1], cx + d[0], cy + d[1]), fill=255,
                  width=max(1, int(r * rng.uniform(0.1, 0.4))))
    mask = textures.blurred(mask, rng.uniform(1, 6))
    field = np.asarray(mask.resize(size, Image.Resampling.BILINEAR), np.float32) / 255
    return 1 - rng.uniform(0.15, 0.5) * field


def bend_field(rng: np.random.Generator, size: tuple[int, int], card_outline: np.ndarray):
    """A slight curl: a smooth displacement (dx, dy) in pixels as a function of position, up
    to ~1.2% of the card's width in the middle of the card and none at its two ends (they
    rest on the table), so the card stays where it was placed: wholly in frame."""
    width = np.linalg.norm(card_outline[1] - card_outline[0])
    amplitude = rng.uniform(0.003, 0.012) * width
    direction = card_outline[1] - card_outline[0] if rng.random() < 0.5 else (
        card_outline[3] - card_outline[0])
    direction = direction / (np.linalg.norm(direction) + 1e-9)
    normal = np.array([-direction[1], direction[0]])
    origin = card_outline.mean(axis=0)
    reach = (card_outline - origin) @ direction  # the corners' reach along the curl

    def displacement(points: np.ndarray) -> np.ndarray:
        u = ((points - origin) @ direction)
        u = np.where(u >= 0, u / reach.max(), u / -reach.min())  # -1 .. 1 end to end
        bulge = amplitude * (1 - np.clip(u, -1, 1) ** 2)
        return bulge[..., None] * normal

    return displacement


def apply_bend(image: Image.Image, displacement, region: np.ndarray,
               step: int = 96) -> Image.Image:
    """Warp `image` so the content at p moves to p + displacement(p) (PIL MESH transform),
    inside the bounding box of `region` (the card's outline) grown by the bend's reach.
    Coarse cells suffice: the displacement is a smooth quadratic of a few pixels."""
    width, height = image.size
    reach = 8 + float(np.abs(displacement(region)).max())
    x0, y0 = np.maximum(0, np.floor(region.min(axis=0) - reach)).astype(int)
    x1, y1 = np.minimum([width, height], np.ceil(region.max(axis=0) + reach)).astype(int)
    mesh = []
    for y in range(int(y0), int(y1), step):
        for x in range(int(x0), int(x1), step):
            box = (x, y, min(int(x1), x + step), min(int(y1), y + step))
            dst = np.array([[box[0], box[1]], [box[0], box[3]], [box[2], box[3]],
                            [box[2], box[1]]], dtype=np.float64)
            # The source of an output pixel q is q - d(q) (d is smooth and small).
            src = dst - displacement(dst)
            mesh.append((box, tuple(src.flatten().tolist())))
    return image.transform(image.size, Image.Transform.MESH, mesh, Image.Resampling.BICUBIC)


def bent_points(points: np.ndarray, displacement, iterations: int = 6) -> np.ndarray:
    """Where `points` land under apply_bend: solve q - d(q) = p by fixed-point iteration."""
    q = np.asarray(points, np.float64).copy()
    for _ in range(iterations):
        q = points + displacement(q)
    return q


def cover(rng: np.random.Generator, card: Image.Image, box: tuple) -> Image.Image:
    """The card art (RGBA) with `box` (the number's ink) wholly under a paper or a card."""
    x0, y0, x1, y1 = box
    w, h = (x1 - x0) * rng.uniform(1.3, 2.2), (y1 - y0) * rng.uniform(2.0, 5.0)
    item = _page(rng, int(w), int(h)) if rng.random() < 0.6 else _other_card(rng, int(w), int(h))
    covered = card.copy()
    cx = (x0 + x1) / 2 + rng.uniform(-0.1, 0.1) * (x1 - x0)
    cy = (y0 + y1) / 2 + rng.uniform(-0.2, 0.2) * (y1 - y0)
    covered.paste(item, (int(cx - item.width / 2), int(cy - item.height / 2)), item)
    covered.putalpha(card.getchannel("A"))
    return covered
