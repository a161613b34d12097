"""'Photograph' a rendered card under the spec's photo conditions.

Every random choice comes from the generator passed in, so one (seed, index) gives one photo.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
from certcorners.geometry import apply_homography, homography, warp
from PIL import Image, ImageDraw, ImageFilter

from training import scene, textures
from training.card import Card, render_card

ASPECTS = (4 / 3, 3 / 2, 16 / 9, 1200 / 847)


@dataclass(frozen=True)
class Profile:
    """The photo conditions of one envelope of the spec. Every profile makes the same random
    draws in the same order, so the spec's photos are the same whatever profiles exist."""

    name: str
    long_side: tuple[int, int]  # px, drawn uniformly
    aspects: tuple[float, ...]
    card_share: tuple[float, float]  # the card's bounding box / the photo
    card_share_log: bool  # drawn log-uniformly (small cards as often as large), or uniformly
    max_tilt_deg: float
    max_blur_px: float
    brightness: tuple[float, float]  # the light's overall gain
    max_noise: float  # sensor noise, sigma in grey levels
    jpeg_quality: tuple[int, int]  # inclusive
    exif_share: float  # stored sideways or upside down with an EXIF orientation
    card_px_per_mm: float  # the card's print resolution, before it is photographed


# The spec's first envelope ("The photos").
SPEC = Profile("spec", (800, 2000), ASPECTS, (0.35, 0.90), False, 25, 1.5, (0.6, 1.25), 8,
               (40, 95), 0.1, 14.0)
# "Phone photos": full resolution, the card small in the frame, steeper, softer, darker,
# saved by a phone (quality 70-95, half of them sideways). The card is printed finer so that
# it is not enlarged when it fills a 12 MP frame.
PHONE = Profile("phone", (3000, 4032), (4 / 3, 16 / 9), (0.12, 0.90), True, 40, 2.5,
                (0.3, 1.25), 14, (70, 95), 0.5, 28.0)
# The phone's composition (small cards, steep, dark, half sideways) rendered at about the size
# the card finder sees it (the 400-px view): ~15x fewer pixels, so ~15x faster to make. Blur
# and print resolution are scaled down with the photo; every aspect of either envelope.
PHONE_VIEW = Profile("phone-view", (560, 720), ASPECTS, (0.12, 0.90), True, 40, 0.6,
                     (0.3, 1.25), 10, (70, 95), 0.5, 5.0)
# The spec's compositions rendered a little above the size the locator sees them (its 400-px
# canvas), for the locator's training photos: ~7x fewer pixels than 800-2000 px. Blur, noise
# and print resolution are scaled down with the photo. The reference locator errs about as
# much on these as on the full-size photos of the same compositions (docs/training.md).
SPEC_VIEW = Profile("spec-view", (480, 600), ASPECTS, (0.35, 0.90), False, 25, 0.6,
                    (0.6, 1.25), 5, (40, 95), 0.1, 6.0)
PROFILES = {profile.name: profile for profile in (SPEC, PHONE, PHONE_VIEW, SPEC_VIEW)}
# What a dataset's phone photos may be drawn as, and what its other photos may.
PHONE_PROFILES = (PHONE.name, PHONE_VIEW.name)
SPEC_PROFILES = (SPEC.name, SPEC_VIEW.name)


@dataclass
class Photo:
    jpeg: bytes
    width: int  # as displayed (EXIF orientation applied)
    height: int
    corners: np.ndarray | None  # (4, 2): top-left, top-right, bottom-right, bottom-left;
    # None on a negative (no certificate, or its number hidden)
    card_corners: np.ndarray | None  # (4, 2) the card outline in the photo
    homography: np.ndarray | None  # card pixels -> photo pixels, before any bend
    card: Card | None
    flat_corners: np.ndarray | None = None  # the label before the card's bend (if any)
    fingers: tuple = ()  # outlines of the fingers drawn over the card

    @property
    def flat_card_corners(self) -> np.ndarray:
        """The card's outline before any bend: its corners through `homography`."""
        return apply_homography(self.homography, rect(*self.card.image.size))


def rect(width: float, height: float) -> np.ndarray:
    """The corners of a width x height rectangle at the origin, in spec order."""
    return np.array([[0, 0], [width, 0], [width, height], [0, height]], dtype=np.float64)


def tilted_outline(rng: np.random.Generator, w: float, h: float,
                    max_tilt_deg: float = 25) -> np.ndarray:
    """Card outline after an in-plane rotation and a camera tilt of up to `max_tilt_deg`."""
    corners = np.array([[-w / 2, -h / 2, 0], [w / 2, -h / 2, 0], [w / 2, h / 2, 0],
                        [-w / 2, h / 2, 0]])
    spin = rng.uniform(0, 2 * np.pi)
    rot_z = np.array([[np.cos(spin), -np.sin(spin), 0], [np.sin(spin), np.cos(spin), 0],
                      [0, 0, 1]])
    # Tilt about a random axis in the card plane (the camera's view off the normal).
    tilt = np.radians(rng.uniform(0, max_tilt_deg) if rng.random() < 0.85
                      else rng.uniform(0, 8))
    axis_angle = rng.uniform(0, 2 * np.pi)
    axis = np.array([np.cos(axis_angle), np.sin(axis_angle), 0.0])
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    rot_tilt = np.eye(3) + np.sin(tilt) * k + (1 - np.cos(tilt)) * k @ k
    points = corners @ rot_z.T @ rot_tilt.T
    distance = max(w, h) * rng.uniform(1.2, 3.0)  # wide-angle phone to longer lens
    z = points[:, 2] + distance
    return points[:, :2] * distance / z[:, None]


def _photo_size(rng: np.random.Generator, profile: Profile = SPEC) -> tuple[int, int]:
    long_side = int(rng.integers(profile.long_side[0], profile.long_side[1] + 1))
    short_side = round(long_side / profile.aspects[rng.integers(len(profile.aspects))])
    return (long_side, short_side) if rng.random() < 0.6 else (short_side, long_side)


def _place(rng: np.random.Generator, outline: np.ndarray, size: tuple[int, int],
           profile: Profile = SPEC) -> np.ndarray:
    """Scale and move the outline so its bounding box covers the profile's share of the photo
    (the spec: 35-90%), in frame."""
    width, height = size
    span = outline.max(axis=0) - outline.min(axis=0)
    low, high = profile.card_share
    coverage = (float(np.exp(rng.uniform(np.log(low), np.log(high))))
                if profile.card_share_log else rng.uniform(low, high))
    scale = np.sqrt(coverage * width * height / (span[0] * span[1]))
    scale = min(scale, 0.98 * width / span[0], 0.98 * height / span[1])
    outline = (outline - outline.min(axis=0)) * scale
    span = span * scale
    offset = np.array([rng.uniform(0, width - span[0]), rng.uniform(0, height - span[1])])
    return outline + offset


def lighting(rng: np.random.Generator, photo: np.ndarray, number_center: np.ndarray,
              number_radius: float, card_outline: np.ndarray,
              everything: bool = False, profile: Profile = SPEC) -> np.ndarray:
    h, w, _ = photo.shape
    # Brightness, colour temperature and a brightness gradient across the frame, as one
    # low-resolution gain field (light varies smoothly), upsampled once.
    small = (max(2, w // 8), max(2, h // 8))
    ys, xs = np.mgrid[0 : small[1], 0 : small[0]].astype(np.float32)
    xs, ys = xs * w / small[0], ys * h / small[1]
    angle = rng.uniform(0, 2 * np.pi)
    ramp = np.cos(angle) * xs / w + np.sin(angle) * ys / h
    ramp = (ramp - ramp.min()) / max(float(np.ptp(ramp)), 1e-6)
    gain = 1 - rng.uniform(0, 0.45) * ramp
    if rng.random() < 0.5:  # a soft shadow crossing the card
        shadow = Image.new("L", small, 0)
        cx, cy = card_outline.mean(axis=0) / 8
        a = rng.uniform(0, np.pi)
        reach = 2 * max(small)
        edge = np.array([np.cos(a), np.sin(a)])
        normal = np.array([-edge[1], edge[0]])
        offset = rng.uniform(-0.3, 0.3) * np.ptp(card_outline[:, 0]) / 8
        base = np.array([cx, cy]) + normal * offset
        poly = [base - edge * reach, base + edge * reach, base + edge * reach + normal * reach,
                base - edge * reach + normal * reach]
        ImageDraw.Draw(shadow).polygon([tuple(p) for p in poly], fill=255)
        shadow = textures.blurred(shadow, rng.uniform(0.6, 5))
        gain = gain * (1 - rng.uniform(0.15, 0.45) * np.asarray(shadow, np.float32) / 255)
    gain_field = np.asarray(Image.fromarray(gain.astype(np.float32)).resize(
        (w, h), Image.Resampling.BILINEAR), dtype=np.float32)
    if rng.random() < 0.3 or everything:  # the shadow of a hand, phone or pen held over it
        gain_field = gain_field * scene.object_shadow(rng, (w, h))
    if rng.random() < 0.5 or everything:  # vignetting: the lens darkens the corners
        yy, xx = np.ogrid[0:h, 0:w]
        r2 = ((xx - w / 2) / (w / 2)) ** 2 + ((yy - h / 2) / (h / 2)) ** 2
        gain_field = gain_field * (1 - rng.uniform(0.1, 0.45) * np.clip(r2 / 2, 0, 1))
    colour = rng.uniform(*profile.brightness) * np.array(
        [rng.uniform(0.85, 1.15), 1.0, rng.uniform(0.85, 1.15)], dtype=np.float32)
    photo = photo * gain_field[..., None] * colour
    # At most one specular glare spot: strong ones stay off the number, weak ones may touch it.
    if rng.random() < 0.35 or everything:
        strength = rng.uniform(80, 220) if rng.random() < 0.7 else rng.uniform(25, 60)
        for _ in range(20):
            centre = card_outline.min(axis=0) + rng.random(2) * np.ptp(card_outline, axis=0)
            radius = rng.uniform(0.03, 0.12) * max(w, h)
            if strength < 60 or (np.linalg.norm(centre - number_center)
                                 > radius * 1.6 + number_radius):
                x0, x1 = int(max(0, centre[0] - 3 * radius)), int(min(w, centre[0] + 3 * radius))
                y0, y1 = int(max(0, centre[1] - 3 * radius)), int(min(h, centre[1] + 3 * radius))
                if x1 > x0 and y1 > y0:  # a spot off a cut-out view falls outside it
                    gy, gx = np.ogrid[y0:y1, x0:x1]
                    glare = np.exp(-((gx - centre[0]) ** 2 + (gy - centre[1]) ** 2)
                                   / radius**2)
                    photo[y0:y1, x0:x1] += strength * glare[..., None]
                break
    return photo


def photograph(card: Card, rng: np.random.Generator, size: tuple[int, int] | None = None,
               hide_number: bool = False, everything: bool = False,
               profile: Profile = SPEC) -> Photo:
    """The card on a surface among clutter, under the light and camera of `profile`.

    `hide_number` covers the number with a paper or another card: a negative example.
    `everything` switches every distractor, occluder and effect on (tests, inspection)."""
    size = size or _photo_size(rng, profile)
    card_w, card_h = card.image.size
    outline = _place(rng, tilted_outline(rng, card_w, card_h, profile.max_tilt_deg), size,
                     profile)
    card_rect = rect(card_w, card_h)

    art = scene.wear(rng, card.image, card.number_box, everything)
    if hide_number:
        art = scene.cover(rng, art, card.number_box)
    # Pre-shrink the card near its size in the photo: the perspective warp does not filter.
    photo_span = np.linalg.norm(outline[1] - outline[0])
    shrink = min(1.0, 1.25 * photo_span / card_w)
    if shrink < 1.0:
        art = art.resize((max(8, round(card_w * shrink)), max(8, round(card_h * shrink))),
                         Image.Resampling.LANCZOS)
    art_rect = card_rect * np.array([art.width / card_w, art.height / card_h])
    to_art = homography(outline, art_rect)  # photo -> art, what PIL's transform wants
    warped = warp(art, to_art, size, Image.Resampling.BICUBIC)
    card_to_photo = homography(card_rect, outline)
    flat = apply_homography(card_to_photo, card.number_quad)
    corners = flat
    if rng.random() < 0.3 or everything:  # a slight curl: the label moves with the ink
        bend = scene.bend_field(rng, size, outline)
        warped = scene.apply_bend(warped, bend, outline)
        corners, outline = scene.bent_points(flat, bend), scene.bent_points(outline, bend)

    background = scene.surface(rng, size)
    scene.clutter(rng, background, 6 if everything else None)  # around and under the card
    background.paste(warped, (0, 0), warped)
    fingers = scene.fingers(rng, background, outline, scene.grown(corners, 1.5), everything)
    centre = corners.mean(axis=0)
    radius = np.linalg.norm(corners - centre, axis=1).max()
    pixels = lighting(rng, np.asarray(background, dtype=np.float32), centre, radius, outline,
                       everything, profile)
    image = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), "RGB")
    jpeg = camera(rng, image, everything, profile)
    if hide_number:  # flat_corners says where the covered number lies (hard negatives)
        return Photo(jpeg, size[0], size[1], None, outline, card_to_photo, card, corners,
                     tuple(fingers))
    return Photo(jpeg, size[0], size[1], corners, outline, card_to_photo, card, flat,
                 tuple(fingers))


def camera(rng: np.random.Generator, image: Image.Image, everything: bool = False,
            profile: Profile = SPEC) -> bytes:
    """Defocus or motion blur, exposure, sensor noise, JPEG quality (and sometimes a second
    compression, as when a photo is shared), within `profile` (the spec: blur up to 1.5 px,
    quality 40-95)."""
    blur = rng.uniform(0, profile.max_blur_px)
    if rng.random() < 0.7:
        image = textures.blurred(image, blur)
    else:
        image = _motion_blur(image, blur, rng.uniform(0, np.pi))
    pixels = np.asarray(image, dtype=np.float32)
    exposure = rng.uniform(0.75, 1.3) if rng.random() < 0.4 else 1.0  # under/over-exposed
    noise = rng.uniform(0, profile.max_noise)
    pixels = pixels * exposure + rng.normal(0, noise, pixels.shape[:2])[..., None]
    image = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), "RGB")
    if rng.random() < 0.2 or everything:
        buffer = io.BytesIO()
        image.save(buffer, "JPEG", quality=int(rng.integers(60, 96)))
        image = Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")
    quality = int(rng.integers(profile.jpeg_quality[0], profile.jpeg_quality[1] + 1))
    return _encode(image, quality, rng, profile.exif_share)


def scene_photo(rng: np.random.Generator, size: tuple[int, int] | None = None,
                profile: Profile = SPEC) -> Photo:
    """A negative without any card: a surface, clutter, light and camera."""
    size = size or _photo_size(rng, profile)
    background = scene.surface(rng, size)
    scene.clutter(rng, background, count=int(rng.integers(1, 7)))
    w, h = size
    outline = np.array([[0.3 * w, 0.3 * h], [0.7 * w, 0.3 * h], [0.7 * w, 0.7 * h],
                        [0.3 * w, 0.7 * h]])
    pixels = lighting(rng, np.asarray(background, dtype=np.float32), outline.mean(axis=0),
                       0.0, outline, profile=profile)
    image = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), "RGB")
    return Photo(camera(rng, image, profile=profile), w, h, None, None, None, None)


def _motion_blur(image: Image.Image, length: float, angle: float) -> Image.Image:
    if length < 0.5:
        return image
    n = 5
    kernel = np.zeros((n, n), dtype=np.float64)
    for t in np.linspace(-length, length, 21):
        x, y = 2 + t * np.cos(angle), 2 + t * np.sin(angle)
        kernel[int(round(y)), int(round(x))] += 1
    kernel /= kernel.sum()
    return image.filter(ImageFilter.Kernel((n, n), kernel.flatten().tolist(), scale=1))


# EXIF orientation -> the transpose that stores the displayed photo so the viewer undoes it.
_STORE_FOR_ORIENTATION = {
    3: Image.Transpose.ROTATE_180,
    6: Image.Transpose.ROTATE_90,  # viewer rotates 90 deg clockwise (270 counter-clockwise)
    8: Image.Transpose.ROTATE_270,
}


def _encode(image: Image.Image, quality: int, rng: np.random.Generator,
            exif_share: float = SPEC.exif_share) -> bytes:
    """JPEG bytes; `exif_share` of the photos are stored sideways or upside down with an EXIF
    orientation, as phones do (the spec's: one in ten)."""
    buffer = io.BytesIO()
    if rng.random() < exif_share:
        orientation = (3, 6, 8)[rng.integers(3)]
        exif = Image.Exif()
        exif[0x0112] = orientation
        image.transpose(_STORE_FOR_ORIENTATION[orientation]).save(
            buffer, "JPEG", quality=quality, exif=exif.tobytes())
    else:
        image.save(buffer, "JPEG", quality=quality)
    return buffer.getvalue()


def synthetic_photo(seed: int, index: int, size: tuple[int, int] | None = None,
                    profile: Profile = SPEC) -> Photo:
    """The photo number `index` of the dataset with `seed`: independent of worker count.
    `size` fixes the photo's width and height (sample photos, benchmarks)."""
    rng = np.random.default_rng([seed, index])
    return photograph(render_card(rng, profile.card_px_per_mm), rng, size, profile=profile)


def synthetic_negative(seed: int, index: int, profile: Profile = SPEC) -> Photo:
    """A photo without a findable number: no card at all (two in three), or a card whose
    number is covered by a paper or another card."""
    rng = np.random.default_rng([seed, index, 1])
    if rng.random() < 2 / 3:
        return scene_photo(rng, profile=profile)
    return photograph(render_card(rng, profile.card_px_per_mm), rng, hide_number=True,
                      profile=profile)


def profile_of(seed: int, index: int, phone_share: float, phone: Profile = PHONE,
               spec: Profile = SPEC) -> Profile:
    """Which profile the photo `index` of a dataset with `phone_share` photos of the `phone`
    profile (the rest of `spec`) has: drawn from a stream of its own, so the spec's photos
    stay what they were."""
    if phone_share <= 0:
        return spec
    return phone if np.random.default_rng([seed, index, 2]).random() < phone_share else spec
