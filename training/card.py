"""Render the reference certificate (../shared/certificate-spec.md) with random printed data.

All geometry is in millimetres from the card's top-left corner, converted to pixels at
`px_per_mm`. The renderer also returns the ink boxes of the registration number and of the
elements that must not be mistaken for it, so tests can check the label against the ink.
"""

from __future__ import annotations

import string
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
from certcorners.reader import DISTRICTS
from PIL import Image, ImageDraw, ImageFont

from training.fonts import face

CARD_W_MM, CARD_H_MM, CORNER_RADIUS_MM = 85.60, 53.98, 3.0

TINTS = {  # pale card tints and the slightly darker guilloche shade
    "green": ((222, 238, 220), (196, 220, 192)),
    "blue": ((218, 230, 244), (190, 208, 232)),
    "pink": ((246, 222, 228), (232, 194, 204)),
    "grey": ((232, 232, 230), (208, 208, 204)),
}
LEFT_LABELS = ("C.1.1", "C.1.2", "C.1.3", "", "D.1", "D.2", "D.3", "E")
RIGHT_LABELS = ("F.1", "G", "H", "I", "J", "K", "P.1", "P.2", "P.3", "Q", "S.1")
ROW_PITCH_MM, FIRST_ROW_BASELINE_MM = 3.4, 20.0

SURNAMES = ["NOVÁK", "KOVÁČ", "HORVÁTH", "VARGA", "TÓTH", "NAGY", "BALÁŽ", "SZABÓ", "MOLNÁR"]
GIVEN = ["JÁN", "PETER", "MÁRIA", "EVA", "MICHAL", "ZUZANA", "TOMÁŠ", "LUCIA", "MARTIN"]
STREETS = ["HLAVNÁ", "ŠTÚROVA", "MLYNSKÁ", "NÁMESTIE SNP", "DLHÁ", "KOŠICKÁ", "ZÁHRADNÁ"]
TOWNS = ["BRATISLAVA", "KOŠICE", "ŽILINA", "NITRA", "PREŠOV", "TRNAVA", "MARTIN", "POPRAD"]
MAKES = ["ŠKODA", "VOLKSWAGEN", "KIA", "HYUNDAI", "DACIA", "RENAULT", "TOYOTA", "FORD"]
FUELS = ["BA 95", "NM", "BENZÍN", "NAFTA", "LPG", "ELEKTRO"]
AUTHORITIES = ["OKRESNÉ RIADITEĽSTVO PZ", "OR PZ ODDELENIE DOPRAVNÉHO INŠPEKTORÁTU", "ODI OR PZ"]

# Font pairs (regular, bold): the common sans-serif families with a bold weight. DejaVu comes
# with matplotlib (a pinned dependency); the others with the Debian packages in the README
# ("Training data"); a family whose files are missing is skipped.
_FONT_CANDIDATES = (
    ("DejaVuSans.ttf", "DejaVuSans-Bold.ttf"),
    ("LiberationSans-Regular.ttf", "LiberationSans-Bold.ttf"),
    ("FreeSans.ttf", "FreeSansBold.ttf"),
    ("Arimo-Regular.ttf", "Arimo-Bold.ttf"),
    ("Carlito-Regular.ttf", "Carlito-Bold.ttf"),
    ("Lato-Regular.ttf", "Lato-Bold.ttf"),
    ("OpenSans-Regular.ttf", "OpenSans-Bold.ttf"),
    ("Roboto-Regular.ttf", "Roboto-Bold.ttf"),
    ("NotoSans-Regular.ttf", "NotoSans-Bold.ttf"),
    ("ClearSans-Regular.ttf", "ClearSans-Bold.ttf"),
    ("Oxygen-Sans.ttf", "Oxygen-Sans-Bold.ttf"),
    ("Cantarell-Regular.otf", "Cantarell-Bold.otf"),
    ("NimbusSans-Regular.otf", "NimbusSans-Bold.otf"),
)
# The spec's text needs these; a face that lacks one would print a box (tofu).
SPEC_CHARACTERS = "ČŠŤÝÁÉÍÓÚŽĽĎŇÔÄ–"


@lru_cache(maxsize=1)
def font_pairs() -> tuple[tuple[str, str], ...]:
    """Sans-serif (regular, bold) font files on this machine that render the spec's text."""
    roots = [Path("/usr/share/fonts")]
    try:
        import matplotlib

        roots.insert(0, Path(matplotlib.get_data_path()) / "fonts" / "ttf")
    except ImportError:
        pass
    found = {}
    for root in roots:
        if root.is_dir():
            for path in sorted(root.rglob("*")):
                if path.suffix in (".ttf", ".otf"):
                    found.setdefault(path.name, str(path))
    pairs = tuple((found[r], found[b]) for r, b in _FONT_CANDIDATES if r in found and b in found
                  and not missing_glyphs(found[r]) and not missing_glyphs(found[b]))
    if not pairs:
        raise RuntimeError("no sans-serif font pair found; install the training requirements")
    return pairs


def missing_glyphs(font_path: str, text: str = SPEC_CHARACTERS) -> str:
    """The characters of `text` the font draws as its 'missing glyph' box."""
    font = ImageFont.truetype(font_path, 48)

    def bitmap(char: str) -> bytes:
        mask = font.getmask(char)
        return bytes(mask.size) + bytes(mask)

    tofu = bitmap("\U0010fffd")  # a private-use code point that no face draws
    return "".join(c for c in text if bitmap(c) == tofu)


def family(font_path: str) -> str:
    """'LiberationSans' from '.../LiberationSans-Bold.ttf'."""
    return Path(font_path).stem.replace("-Regular", "").replace("-Bold", "").replace("Bold", "")


@lru_cache(maxsize=16)
def cap_ratio(path: str) -> float:
    """Cap height as a fraction of the font size, measured on 'H'."""
    left, top, right, bottom = face(path, 200).getbbox("H", anchor="ls")
    return -top / 200


@dataclass
class Card:
    """A rendered card: RGBA image (alpha = the rounded card shape) and its ink boxes."""

    image: Image.Image
    px_per_mm: float
    number_text: str
    number_box: tuple[float, float, float, float]  # ink of field A, card pixels (x0, y0, x1, y1)
    label_a_box: tuple[float, float, float, float]
    field_b_box: tuple[float, float, float, float]
    serial_box: tuple[float, float, float, float]
    font: str = ""  # the bold face of the number (file path)

    @property
    def number_quad(self) -> np.ndarray:
        """The label in card pixels: top-left, top-right, bottom-right, bottom-left."""
        x0, y0, x1, y1 = self.number_box
        return np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], dtype=np.float64)


class _Pen:
    """Draws text by cap height and baseline in millimetres, recording ink boxes."""

    def __init__(self, image: Image.Image, px_per_mm: float):
        self.image, self.k = image, px_per_mm
        self.draw = ImageDraw.Draw(image)

    def text(self, x_mm, baseline_mm, cap_mm, text, font_path, fill, anchor="ls"):
        size = max(4, round(cap_mm * self.k / cap_ratio(font_path)))
        font = face(font_path, size)
        xy = (x_mm * self.k, baseline_mm * self.k)
        self.draw.text(xy, text, font=font, fill=fill, anchor=anchor)
        return self.draw.textbbox(xy, text, font=font, anchor=anchor)

    def ink_box(self, x_mm, baseline_mm, cap_mm, text, font_path, anchor="ls"):
        """Tight box of the anti-aliased ink, in card pixels, to a fraction of a pixel. The
        text is drawn again, alone, exactly as text() drew it (the same face, size and
        sub-pixel start), so the box is the ink's in every face."""
        size = max(4, round(cap_mm * self.k / cap_ratio(font_path)))
        font = face(font_path, size)
        xy = (x_mm * self.k, baseline_mm * self.k)
        left, top, right, bottom = self.draw.textbbox(xy, text, font=font, anchor=anchor)
        # A canvas around the text, placed at whole pixels so that the sub-pixel start is kept.
        ox, oy = int(np.floor(left)) - 2, int(np.floor(top)) - 2
        mask = Image.new("L", (int(np.ceil(right)) - ox + 3, int(np.ceil(bottom)) - oy + 3), 0)
        ImageDraw.Draw(mask).text((xy[0] - ox, xy[1] - oy), text, font=font, fill=255,
                                  anchor=anchor)
        coverage = np.asarray(mask, dtype=np.float64) / 255
        across, down = coverage.max(axis=0), coverage.max(axis=1)
        cols, rows = np.flatnonzero(across >= 0.5), np.flatnonzero(down >= 0.5)
        # Each edge where its outermost column (row) of ink is covered half way: a pixel
        # covered a fraction c holds the ink's edge c from its inner side.
        return (ox + cols[0] + 1 - across[cols[0]], oy + rows[0] + 1 - down[rows[0]],
                ox + cols[-1] + across[cols[-1]], oy + rows[-1] + down[rows[-1]])


def registration_number(rng: np.random.Generator) -> str:
    district = DISTRICTS[rng.integers(len(DISTRICTS))]
    digits = "".join(str(d) for d in rng.integers(0, 10, 3))
    letters = "".join(rng.choice(list(string.ascii_uppercase), 2))
    separator = ("-", " ", "")[rng.integers(3)]
    return f"{district}{separator}{digits}{letters}"


def _row_values(rng: np.random.Generator) -> tuple[list[str], list[str]]:
    pick = lambda seq: seq[rng.integers(len(seq))]  # noqa: E731
    vin = "".join(rng.choice(list("ABCDEFGHJKLMNPRSTUVWXYZ0123456789"), 17))
    date = f"{rng.integers(1, 29):02d}.{rng.integers(1, 13):02d}.{rng.integers(1995, 2026)}"
    mass = int(rng.integers(1100, 2600))
    left = [
        pick(SURNAMES),
        f"{pick(GIVEN)} {pick(GIVEN)}",
        f"{pick(STREETS)} {rng.integers(1, 120)}",
        f"{rng.integers(800, 990)} {rng.integers(10, 99):02d} {pick(TOWNS)}",
        pick(MAKES),
        f"{''.join(rng.choice(list('ABCDEFNPX0123456789'), 3))}",
        f"{pick(['OCTAVIA', 'GOLF', 'CEED', 'I30', 'DUSTER', 'CLIO', 'COROLLA', 'FOCUS'])}",
        vin,
    ]
    right = [
        f"{mass + int(rng.integers(300, 700))}",
        f"{mass}",
        date,
        f"{rng.integers(1, 29):02d}.{rng.integers(1, 13):02d}.{rng.integers(2005, 2026)}",
        pick(["M1", "N1", "L3e", "M1G"]),
        f"e{rng.integers(1, 20)}*2007/46*{rng.integers(1000, 9999)}*{rng.integers(0, 20):02d}",
        f"{rng.integers(999, 2999)}",
        f"{rng.integers(50, 190)}",
        pick(FUELS),
        f"{rng.uniform(0.03, 0.12):.3f}",
        f"{rng.integers(2, 9)}",
    ]
    return left, right


def _guilloche(image: Image.Image, k: float, shade, rng: np.random.Generator) -> None:
    draw = ImageDraw.Draw(image)
    w, h = image.size
    xs = np.linspace(0, w, 220)
    freq, amp = rng.uniform(0.04, 0.09), rng.uniform(0.6, 1.4) * k
    phase_step = rng.uniform(0.15, 0.4)
    spacing = rng.uniform(1.0, 1.6) * k
    for i, y0 in enumerate(np.arange(-amp, h + amp, spacing)):
        ys = y0 + amp * np.sin(xs / k * freq * 2 * np.pi + i * phase_step)
        draw.line(list(zip(xs.tolist(), ys.tolist(), strict=True)), fill=shade, width=1)


def _emblem(image: Image.Image, k: float, shade) -> None:
    draw = ImageDraw.Draw(image)
    cx, cy, r = 62 * k, 32 * k, 10 * k
    for frac in (1.0, 0.82, 0.64):
        draw.ellipse((cx - r * frac, cy - r * frac, cx + r * frac, cy + r * frac), outline=shade,
                     width=max(1, round(0.25 * k)))
    for angle in np.linspace(0, np.pi, 6, endpoint=False):
        dx, dy = np.cos(angle) * r * 0.64, np.sin(angle) * r * 0.64
        draw.line((cx - dx, cy - dy, cx + dx, cy + dy), fill=shade, width=max(1, round(0.15 * k)))


def render_card(rng: np.random.Generator, px_per_mm: float = 14.0,
                fonts: tuple[str, str] | None = None) -> Card:
    """One card with random tint, typeface (or `fonts`: regular, bold), printed data and
    printer misregistration."""
    k = px_per_mm
    size = (round(CARD_W_MM * k), round(CARD_H_MM * k))
    tint, shade = TINTS[list(TINTS)[rng.integers(len(TINTS))]]
    chosen = font_pairs()[rng.integers(len(font_pairs()))]  # drawn either way: same stream
    regular, bold = fonts or chosen
    card = Image.new("RGB", size, tint)
    _guilloche(card, k, shade, rng)
    _emblem(card, k, shade)
    pen = _Pen(card, k)
    form_ink = (40, 40, 60)

    # Pre-printed form: identical on every card (apart from the tint and typeface).
    pen.draw.rectangle((2.5 * k, 2.0 * k, 9.5 * k, 7.0 * k), outline=form_ink,
                       width=max(1, round(0.2 * k)))
    pen.text(6.0, 6.1, 2.6, "SK", bold, form_ink, anchor="ms")
    pen.text(11.0, 5.0, 1.6, "OSVEDČENIE O EVIDENCII – ČASŤ I", bold, form_ink)
    pen.text(11.0, 7.6, 1.1, "REGISTRATION CERTIFICATE – PART I", regular, form_ink)
    pen.draw.line((1.5 * k, 9.5 * k, (CARD_W_MM - 1.5) * k, 9.5 * k), fill=form_ink,
                  width=max(1, round(0.15 * k)))
    pen.text(3.0, 15.0, 1.2, "A", regular, form_ink)
    label_a_box = pen.ink_box(3.0, 15.0, 1.2, "A", regular)
    pen.text(45.0, 15.0, 1.2, "B", regular, form_ink)
    for column_x, labels in ((3.0, LEFT_LABELS), (45.0, RIGHT_LABELS)):
        for row, label in enumerate(labels):
            if label:
                pen.text(column_x, FIRST_ROW_BASELINE_MM + row * ROW_PITCH_MM, 1.2, label,
                         regular, form_ink)

    # Printed data: shifted together (misregistration), cap heights scaled per card.
    dx, dy = rng.uniform(-1.0, 1.0), rng.uniform(-0.7, 0.7)
    cap = rng.uniform(0.9, 1.1)
    ink = tuple(int(v) for v in rng.integers(0, 40, 3))
    left, right = _row_values(rng)
    date_b = right[3]  # B: date of first registration
    pen.text(49.0 + dx, 15.5 + dy, 1.6 * cap, date_b, regular, ink)
    field_b_box = pen.ink_box(49.0 + dx, 15.5 + dy, 1.6 * cap, date_b, regular)
    number = registration_number(rng)
    pen.text(8.0 + dx, 15.5 + dy, 3.0 * cap, number, bold, ink)
    number_box = pen.ink_box(8.0 + dx, 15.5 + dy, 3.0 * cap, number, bold)
    for column_x, values in ((3.0, left), (45.0, right)):
        for row, value in enumerate(values):
            baseline = FIRST_ROW_BASELINE_MM + row * ROW_PITCH_MM + dy
            pen.text(column_x + 9.0 + dx, baseline, 1.5 * cap, value, regular, ink)
    authority = AUTHORITIES[rng.integers(len(AUTHORITIES))]
    pen.text(3.0 + dx, 51.0 + dy, 1.1 * cap, f"{authority} {TOWNS[rng.integers(len(TOWNS))]}",
             regular, ink)
    serial = f"No. {''.join(rng.choice(list(string.ascii_uppercase), 2))} " + "".join(
        str(d) for d in rng.integers(0, 10, 6))
    pen.text(83.0 + dx, 51.0 + dy, 1.4 * cap, serial, regular, (200, 30, 30), anchor="rs")
    serial_box = pen.ink_box(83.0 + dx, 51.0 + dy, 1.4 * cap, serial, regular, anchor="rs")

    # The rounded corners become the alpha channel.
    alpha = Image.new("L", size, 0)
    ImageDraw.Draw(alpha).rounded_rectangle((0, 0, size[0] - 1, size[1] - 1),
                                            radius=CORNER_RADIUS_MM * k, fill=255)
    card.putalpha(alpha)
    return Card(card, k, number, number_box, label_a_box, field_b_box, serial_box, bold)
