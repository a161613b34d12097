"""The number's region cut out of the photo and rectified upright, for a user's OCR."""

from __future__ import annotations

import base64
import io

import numpy as np
from PIL import Image, ImageOps

from certcorners.geometry import homography, warp
from certcorners.preprocessing import DEFAULT_MAX_PIXELS, open_image

MAX_CROP_SIDE = 2000


def rectified_crop(data: bytes, corners: np.ndarray, max_pixels: int = DEFAULT_MAX_PIXELS,
                   margin: float = 0.08) -> Image.Image:
    """The quad (spec corner order) mapped to an upright rectangle, with a small margin so
    OCR sees whole glyphs even when the corners are a pixel or two off."""
    photo = ImageOps.exif_transpose(open_image(data, max_pixels)).convert("RGB")
    tl, tr, br, bl = np.asarray(corners, dtype=np.float64)
    width = (np.linalg.norm(tr - tl) + np.linalg.norm(br - bl)) / 2
    height = (np.linalg.norm(bl - tl) + np.linalg.norm(br - tr)) / 2
    pad_x, pad_y = margin * width + 2, margin * height + 2
    out_w = int(np.clip(round(width + 2 * pad_x), 8, MAX_CROP_SIDE))
    out_h = int(np.clip(round(height + 2 * pad_y), 8, MAX_CROP_SIDE))
    target = np.array([[pad_x, pad_y], [out_w - pad_x, pad_y], [out_w - pad_x, out_h - pad_y],
                       [pad_x, out_h - pad_y]])
    to_photo = homography(target, np.stack([tl, tr, br, bl]))
    return warp(photo, to_photo, (out_w, out_h), Image.Resampling.BICUBIC, (255, 255, 255))


def png_base64(image: Image.Image) -> str:
    buffer = io.BytesIO()
    image.save(buffer, "PNG", optimize=False)
    return base64.b64encode(buffer.getvalue()).decode("ascii")
