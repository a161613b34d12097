"""Rebuild events/ from `sam local generate-event apigateway aws-proxy` (kept verbatim in
events/aws-proxy.generated.json) and the committed sample photos:

    python -m certcorners_tools.events            # the events, from events/photos
    python -m certcorners_tools.events --photos   # first redraw the photos (see below)

The photos are drawn by the generator with the fonts and textures this machine has
(docs/training.md, "Training data"), and the generator has changed since they were drawn:
redrawn, they are other photos, and the docs' figures for the samples and the cascade's tests
(tests/photos/held-out) would no longer be about the photos committed. Hence only on request.
"""

from __future__ import annotations

import argparse
import base64
import copy
import io
import json
from pathlib import Path

from PIL import Image, ImageOps

ROOT = Path(__file__).resolve().parents[2]
EVENTS = ROOT / "events"
PHOTOS = EVENTS / "photos"
SAMPLE_SEED = 2026
# The cascade's tests run on these photos, committed so that every machine tests the same ones.
HELD_OUT = ROOT / "tests" / "photos" / "held-out"
HELD_OUT_SEED = 4242  # never generated for training or validation
HELD_OUT_COUNT = 12
BACKGROUND_ONLY = "desk-without-certificate.jpg"
SAMPLES = {  # file -> (index, size, format)
    "certificate-1200x847.jpg": (0, (1200, 847), "JPEG"),
    "certificate-600x800.png": (3, (600, 800), "PNG"),
}


def make_photos() -> None:
    from certcorners.labels import label_line

    from training.photo import synthetic_photo

    PHOTOS.mkdir(parents=True, exist_ok=True)
    lines = []
    for name, (index, size, kind) in SAMPLES.items():
        photo = synthetic_photo(SAMPLE_SEED, index, size)
        if kind == "JPEG":
            (PHOTOS / name).write_bytes(photo.jpeg)
        else:
            image = ImageOps.exif_transpose(Image.open(io.BytesIO(photo.jpeg))).convert("RGB")
            image.save(PHOTOS / name, "PNG")
        lines.append(label_line(name, photo.width, photo.height, photo.corners,
                                text=photo.card.number_text))
    (PHOTOS / "labels.jsonl").write_text("\n".join(lines) + "\n")


def make_held_out() -> None:
    import numpy as np
    from certcorners.labels import label_line

    from training.photo import scene_photo, synthetic_photo

    HELD_OUT.mkdir(parents=True, exist_ok=True)
    lines = []
    for index in range(HELD_OUT_COUNT):
        photo = synthetic_photo(HELD_OUT_SEED, index)
        name = f"{index:06d}.jpg"
        (HELD_OUT / name).write_bytes(photo.jpeg)
        lines.append(label_line(name, photo.width, photo.height, photo.corners,
                                text=photo.card.number_text))
    background = scene_photo(np.random.default_rng([HELD_OUT_SEED, 1]), (1200, 900))
    (HELD_OUT / BACKGROUND_ONLY).write_bytes(background.jpeg)
    lines.append(label_line(BACKGROUND_ONLY, background.width, background.height, None))
    (HELD_OUT / "labels.jsonl").write_text("\n".join(lines) + "\n")
    print(f"wrote {HELD_OUT.relative_to(ROOT)}")


def event(method: str, path: str, body: bytes | str | None, content_type: str | None,
          query: dict | None = None) -> dict:
    base = json.loads((EVENTS / "aws-proxy.generated.json").read_text())
    made = copy.deepcopy(base)
    made.update(resource=path, path=path, httpMethod=method, pathParameters=None,
                stageVariables=None, queryStringParameters=query,
                multiValueQueryStringParameters={k: [v] for k, v in query.items()}
                if query else None)
    made["requestContext"].update(resourcePath=path, httpMethod=method, path=f"/prod{path}",
                                  stage="prod")
    headers = {k: v for k, v in made["headers"].items() if k.lower() != "content-type"}
    headers["Accept"] = "application/json"
    headers["x-api-key"] = "local-example-key"
    if content_type:
        headers["Content-Type"] = content_type
    made["headers"] = headers
    made["multiValueHeaders"] = {k: [v] for k, v in headers.items()}
    if isinstance(body, bytes):
        made.update(body=base64.b64encode(body).decode("ascii"), isBase64Encoded=True)
    else:
        made.update(body=body, isBase64Encoded=False)
    return made


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m certcorners_tools.events",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--photos", action="store_true",
                        help="redraw the sample photos and the tests' held-out photos first")
    if parser.parse_args(argv).photos:
        make_photos()
        make_held_out()
    jpeg = (PHOTOS / "certificate-1200x847.jpg").read_bytes()
    png = (PHOTOS / "certificate-600x800.png").read_bytes()
    events = {
        "corners-jpeg.json": event("POST", "/v1/corners", jpeg, "image/jpeg"),
        "corners-png.json": event("POST", "/v1/corners", png, "image/png"),
        "corners-json.json": event("POST", "/v1/corners", json.dumps(
            {"image": base64.b64encode(jpeg).decode("ascii")}), "application/json"),
        "corners-jpeg-crop.json": event("POST", "/v1/corners", jpeg, "image/jpeg",
                                        {"include": "crop"}),
        # JPEG markers, then noise: claims to be a JPEG, cannot be decoded.
        "corners-undecodable.json": event("POST", "/v1/corners", jpeg[:600] + bytes(4000),
                                          "image/jpeg"),
        "model.json": event("GET", "/v1/model", None, None),
        "uploads.json": event("POST", "/v1/uploads", json.dumps(
            {"content_type": "image/jpeg"}), "application/json"),
        # The key an earlier POST /v1/uploads gave (make serve's uploads are such keys).
        "corners-s3-key.json": event("POST", "/v1/corners", json.dumps(
            {"s3_key": "uploads/0123456789abcdef0123456789abcdef.jpg"}), "application/json"),
    }
    for name, made in events.items():
        (EVENTS / name).write_text(json.dumps(made, indent=2) + "\n")
        print(f"wrote events/{name}")


if __name__ == "__main__":
    main()
