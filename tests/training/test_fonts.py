"""The generator draws TrueType faces without hinting: the same outlines, no glyph programs, made
once and kept in the cache folder."""

import io
from pathlib import Path

import matplotlib
import numpy as np
import pytest
from fontTools.ttLib import TTFont
from PIL import Image, ImageDraw, ImageFont

from training import fonts

DEJAVU = str(Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf")


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("CERTCORNERS_FONT_CACHE", str(tmp_path / "fonts"))
    fonts.face_file.cache_clear()
    fonts.face.cache_clear()
    yield tmp_path / "fonts"
    fonts.face_file.cache_clear()
    fonts.face.cache_clear()


def test_unhinted_copy_keeps_every_outline_and_drops_every_program():
    original = TTFont(DEJAVU)
    assert "fpgm" in original and "prep" in original  # DejaVu is a hinted face
    stripped = TTFont(io.BytesIO(fonts.unhinted(Path(DEJAVU).read_bytes())))
    glyf, stripped_glyf = original["glyf"], stripped["glyf"]
    programs = 0
    for name in original.getGlyphOrder():
        before, after = glyf[name], stripped_glyf[name]
        programs += len(after.program.getBytecode()) if hasattr(after, "program") else 0
        if before.isComposite():
            assert [c.glyphName for c in after.components] == \
                [c.glyphName for c in before.components]
        elif before.numberOfContours > 0:
            assert list(after.coordinates) == list(before.coordinates), name
            assert list(after.endPtsOfContours) == list(before.endPtsOfContours), name
            assert (after.xMin, after.yMin, after.xMax, after.yMax) == \
                (before.xMin, before.yMin, before.xMax, before.yMax), name
    assert programs == 0


def test_faces_draw_from_a_cached_copy_made_once(cache):
    drawn = fonts.face(DEJAVU, 20)
    copies = list(cache.glob("DejaVuSans-*.ttf"))
    assert len(copies) == 1 and drawn.path == str(copies[0])
    assert list(cache.iterdir()) == copies  # no partial file left beside it
    stamp = copies[0].stat().st_mtime_ns
    fonts.face_file.cache_clear()
    fonts.face.cache_clear()
    assert fonts.face(DEJAVU, 12).path == str(copies[0])
    assert copies[0].stat().st_mtime_ns == stamp  # read back, not made again


def test_text_lands_where_hinted_text_did(cache):
    """Hinting only nudges points to the pixel grid: the ink of a line drawn at 20 px starts
    and ends within a pixel of where the hinted face put it."""
    def ink_box(font):
        image = Image.new("L", (420, 40))
        ImageDraw.Draw(image).text((4, 4), "KOŠICE BA-123XY 12.03.2024", font=font, fill=255)
        ink = np.asarray(image) >= 128
        cols, rows = np.flatnonzero(ink.any(axis=0)), np.flatnonzero(ink.any(axis=1))
        return np.array([cols[0], rows[0], cols[-1], rows[-1]])

    hinted, unhinted = ink_box(ImageFont.truetype(DEJAVU, 20)), ink_box(fonts.face(DEJAVU, 20))
    assert np.abs(unhinted - hinted).max() <= 1


def test_an_unwritable_cache_still_draws(tmp_path, monkeypatch, cache):
    blocked = tmp_path / "a-file"
    blocked.write_text("not a folder")
    monkeypatch.setenv("CERTCORNERS_FONT_CACHE", str(blocked / "fonts"))
    fonts.face_file.cache_clear()
    assert isinstance(fonts.face_file(DEJAVU), bytes)
    assert fonts.face(DEJAVU, 16).getbbox("H")[2] > 0


def test_postscript_faces_are_drawn_as_installed(tmp_path, cache):
    otf = tmp_path / "Face.otf"
    otf.write_bytes(b"not parsed")
    assert fonts.face_file(str(otf)) == str(otf)
