"""Font faces as the generator draws them: TrueType outlines without their hinting programs.

Print has no hinting: a card's glyphs are the outlines at whatever scale the camera sees them.
Hinting also costs: FreeType runs each glyph's bytecode on every draw (Pillow caches no glyph),
and the heavily hinted faces (Arimo, Lato, Noto, Tinos, ...) drew text many times slower than
the others. So each TrueType face is drawn from a copy whose glyphs carry no programs, made
once per machine and kept in a cache folder (`CERTCORNERS_FONT_CACHE`, by default
~/.cache/certcorners/fonts). PostScript-outline faces (.otf with CFF) are drawn as they are.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import struct
import tempfile
from functools import lru_cache
from pathlib import Path

from PIL import ImageFont

# In the cached copies' names: a change to unhinted() makes new copies, never reads old ones.
COPY_VERSION = 1


def cache_dir() -> Path:
    default = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "certcorners"
    return Path(os.environ.get("CERTCORNERS_FONT_CACHE") or default / "fonts")


def unhinted(data: bytes) -> bytes:
    """The TrueType font `data` with every glyph's hinting program emptied; other fonts
    unchanged. The font-wide programs stay: copies without them drew text slower still."""
    from fontTools.ttLib import TTFont

    logging.getLogger("fontTools").setLevel(logging.ERROR)  # odd 'head' dates in some faces
    font = TTFont(io.BytesIO(data), recalcBBoxes=False)  # outlines kept as stored
    if "glyf" not in font:
        return data
    glyf = font["glyf"]
    for name in font.getGlyphOrder():
        glyph = glyf.glyphs[name]
        raw = getattr(glyph, "data", None)
        if raw and struct.unpack(">h", raw[:2])[0] >= 0:
            glyph.data = _without_instructions(raw)
        else:  # composite (few): fontTools rewrites it
            glyph = glyf[name]
            if hasattr(glyph, "program"):
                glyph.removeHinting()
    out = io.BytesIO()
    font.save(out)
    return out.getvalue()


def _without_instructions(raw: bytes) -> bytes:
    """A simple glyph's record with an empty program: contours, bounding box and end points,
    a zero instruction length, then its flags and coordinates as stored."""
    contours = struct.unpack(">h", raw[:2])[0]
    at = 10 + 2 * contours
    length = struct.unpack(">H", raw[at:at + 2])[0]
    return raw[:at] + b"\0\0" + raw[at + 2 + length:]


@lru_cache(maxsize=256)
def face_file(path: str) -> str | bytes:
    """What the generator draws `path` from: the path of its unhinted copy in the cache (the
    bytes themselves where the cache cannot be written), or `path` for a PostScript face."""
    if Path(path).suffix.lower() != ".ttf":
        return path
    data = Path(path).read_bytes()
    digest = hashlib.sha256(data).hexdigest()[:16]
    cached = cache_dir() / f"{Path(path).stem}-{digest}-v{COPY_VERSION}.ttf"
    if cached.is_file():
        return str(cached)
    stripped = unhinted(data)
    part = None
    try:  # written whole, then renamed: parallel workers never read half a file
        cached.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=cached.parent, delete=False) as part:
            part.write(stripped)
        os.replace(part.name, cached)
    except OSError:  # a read-only home or a full disk: this process keeps the copy in memory
        if part is not None:
            Path(part.name).unlink(missing_ok=True)
        return stripped
    return str(cached)


@lru_cache(maxsize=512)
def face(path: str, size_px: int) -> ImageFont.FreeTypeFont:
    """The face at `path`, `size_px` pixels, as every generated photo draws it."""
    source = face_file(path)
    return ImageFont.truetype(io.BytesIO(source) if isinstance(source, bytes) else source,
                              size_px)
