r"""Call the API (deployed or local) with a photo; print the corners; save an overlay.
Photos over 4 MB go by the upload path: POST /v1/uploads, the photo to S3, then its key.

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
import uuid
from pathlib import Path

from certcorners.labels import draw_quads
from certcorners.request_body import sniff_format

CONTENT_TYPES = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp"}
# Bodies above this go by S3: the API takes at most 4.5 MB of image in a request.
UPLOAD_ABOVE_BYTES = 4_000_000


def _call(request: urllib.request.Request, timeout: float) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            status, body = response.status, response.read()
    except urllib.error.HTTPError as error:
        status, body = error.code, error.read()
    try:
        return status, json.loads(body or b"{}")
    except json.JSONDecodeError:
        return status, {"error": {"code": "not_json",
                                  "message": body[:200].decode(errors="replace")}}


def multipart_form(fields: dict[str, str], data: bytes, content_type: str) -> tuple[bytes, str]:
    """A multipart/form-data body: the fields in order, then the file (S3's POST upload)."""
    boundary = uuid.uuid4().hex
    parts = [f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'
             f"{value}\r\n".encode() for name, value in fields.items()]
    parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="file"; '
                 f'filename="photo"\r\nContent-Type: {content_type}\r\n\r\n'.encode())
    body = b"".join(parts) + data + f"\r\n--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


def upload(url: str, data: bytes, kind: str, api_key: str | None,
           timeout: float) -> tuple[int, dict]:
    """POST /v1/uploads, then the photo to S3 with its form: (200, {"s3_key": key}) or the
    refusal of either step."""
    headers = {"Content-Type": "application/json", **({"x-api-key": api_key} if api_key else {})}
    status, form = _call(urllib.request.Request(
        url.rstrip("/") + "/v1/uploads", method="POST", headers=headers,
        data=json.dumps({"content_type": kind}).encode()), timeout)
    if status != 200:
        return status, form
    body, form_type = multipart_form(form["fields"], data, kind)
    request = urllib.request.Request(form["url"], data=body, method="POST",
                                     headers={"Content-Type": form_type})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            response.read()
    except urllib.error.HTTPError as error:  # S3 answers XML: pass its words on
        return error.code, {"error": {"code": "upload_refused",
                                      "message": error.read()[:500].decode(errors="replace")}}
    return 200, {"s3_key": form["key"]}


def predict(url: str, photo: Path, api_key: str | None = None, crop: bool = False,
            overlay: Path | None = None, timeout: float = 60) -> tuple[int, dict]:
    data = photo.read_bytes()
    kind = CONTENT_TYPES.get(sniff_format(data) or "", "application/octet-stream")
    target = url.rstrip("/") + "/v1/corners" + ("?include=crop" if crop else "")
    if len(data) > UPLOAD_ABOVE_BYTES and kind != "application/octet-stream":
        status, uploaded = upload(url, data, kind, api_key, timeout)
        if status != 200:
            return status, uploaded
        request = urllib.request.Request(target, data=json.dumps(uploaded).encode(),
                                         method="POST",
                                         headers={"Content-Type": "application/json"})
    else:
        request = urllib.request.Request(target, data=data, method="POST",
                                         headers={"Content-Type": kind})
    if api_key:
        request.add_header("x-api-key", api_key)
    status, answer = _call(request, timeout)
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
