r"""Call the API (deployed or local) with a photo; print the corners; save an overlay.

    python -m certcorners_tools.client photo.jpg --api-key KEY \
        --url https://ID.execute-api.REGION.amazonaws.com/prod
    python -m certcorners_tools.client photo.jpg --url http://127.0.0.1:3000 \
        --overlay out.png --crop crop.png
"""

from __future__ import annotations

import argparse
import base64
import json
import sys
import urllib.error
import urllib.request
from pathlib import Path

from certcorners.labels import draw_quads
from certcorners.request_body import sniff_format

CONTENT_TYPES = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp"}


def predict(url: str, photo: Path, api_key: str | None = None, crop: bool = False,
            overlay: Path | None = None, timeout: float = 30) -> tuple[int, dict]:
    data = photo.read_bytes()
    kind = CONTENT_TYPES.get(sniff_format(data) or "", "application/octet-stream")
    target = url.rstrip("/") + "/v1/corners" + ("?include=crop" if crop else "")
    request = urllib.request.Request(target, data=data, method="POST",
                                     headers={"Content-Type": kind})
    if api_key:
        request.add_header("x-api-key", api_key)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            status, body = response.status, response.read()
    except urllib.error.HTTPError as error:
        status, body = error.code, error.read()
    try:
        answer = json.loads(body or b"{}")
    except json.JSONDecodeError:
        answer = {"error": {"code": "not_json", "message": body[:200].decode(errors="replace")}}
    if status == 200 and overlay:
        draw_quads(photo, [(answer["polygon"], (230, 0, 0))], overlay)
    return status, answer


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m certcorners_tools.client",
                                     description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("photo", type=Path)
    parser.add_argument("--url", required=True, help="the API's base URL (ApiUrl output)")
    parser.add_argument("--api-key", default=None)
    parser.add_argument("--overlay", type=Path, default=None, help="write an overlay PNG")
    parser.add_argument("--crop", type=Path, default=None, help="write the rectified number")
    args = parser.parse_args(argv)
    if not args.photo.is_file():
        parser.error(f"{args.photo} does not exist")
    try:
        status, answer = predict(args.url, args.photo, args.api_key, bool(args.crop),
                                 args.overlay)
    except (urllib.error.URLError, TimeoutError) as exc:
        print(f"error: cannot reach {args.url}: {exc}", file=sys.stderr)
        return 1
    if status == 200 and args.crop:
        args.crop.write_bytes(base64.b64decode(answer.pop("crop")["base64"]))
    print(json.dumps(answer, indent=2))
    return 0 if status == 200 else 1


if __name__ == "__main__":
    sys.exit(main())
