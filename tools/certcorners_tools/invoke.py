"""Invoke the real handler once on an event file, like `sam local invoke -e EVENT`.

Run by `make invoke` in a bare interpreter whose path holds only the built layer and function.
Prints the response with a JSON body shown as JSON (a crop's base64 shortened).
"""

from __future__ import annotations

import contextlib
import json
import sys

if __package__ in (None, ""):
    import proxy
else:
    from certcorners_tools import proxy


def shorten(value):
    if isinstance(value, dict):
        return {k: shorten(v) for k, v in value.items()}
    if isinstance(value, str) and len(value) > 200:
        return value[:60] + f"... ({len(value)} characters)"
    return value


def main() -> int:
    if len(sys.argv) != 2:
        print("usage: invoke.py EVENT.json", file=sys.stderr)
        return 2
    with open(sys.argv[1]) as handle:
        event = json.load(handle)
    import app
    import certcorners

    # Where the code came from: the folders `sam build` made, nothing else.
    print(json.dumps({"function": app.__file__, "layer": certcorners.__file__}),
          file=sys.stderr)
    response = app.lambda_handler(event, proxy.LambdaContext())
    shown = dict(response)
    with contextlib.suppress(json.JSONDecodeError):  # a non-JSON body is shown as it is
        shown["body"] = shorten(json.loads(response.get("body") or "null"))
    print(json.dumps(shown, indent=2))
    return 0 if response.get("statusCode", 500) < 500 else 1


if __name__ == "__main__":
    sys.exit(main())
