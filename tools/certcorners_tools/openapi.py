"""docs/openapi.json, the API's contract, produced from the function's code: Powertools'
OpenAPI generation over the routes (function/app.py, function/api_docs.py), with the answers'
schemas those name filled in from certcorners_tools/api_models.py.

    python -m certcorners_tools.openapi            # rewrite docs/openapi.json
    python -m certcorners_tools.openapi --check    # exit 1 if the code and the file differ
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOCUMENT = ROOT / "docs" / "openapi.json"
DESCRIPTION = ("Finds the registration number on a photo of a vehicle registration "
               "certificate (docs/certificate-spec.md) and answers the four corners of its "
               "box in photo pixels, with a confidence. Every refusal, API Gateway's own "
               "included, is JSON {\"error\": {\"code\", \"message\"}}.")


def function_module():
    """function/app.py, imported without loading a model or tracing."""
    for key, value in {"MODEL_PRELOAD": "false", "MODEL_S3_URI": "",
                       "POWERTOOLS_TRACE_DISABLED": "true",
                       "POWERTOOLS_SERVICE_NAME": "certcorners",
                       "POWERTOOLS_METRICS_NAMESPACE": "Certcorners"}.items():
        os.environ.setdefault(key, value)
    if str(ROOT / "function") not in sys.path:
        sys.path.insert(0, str(ROOT / "function"))
    import app

    return app


def document() -> dict:
    from aws_lambda_powertools.event_handler.openapi.models import APIKey, APIKeyIn
    from pydantic.json_schema import models_json_schema

    from certcorners_tools.api_models import SCHEMAS

    app = function_module()
    spec = json.loads(app.app.get_openapi_json_schema(
        title="certcorners", version="1", description=DESCRIPTION,
        security_schemes={"api_key": APIKey(name="x-api-key", in_=APIKeyIn.header)},
        security=[{"api_key": []}]))
    _, schemas = models_json_schema([(model, "serialization") for model in SCHEMAS],
                                    ref_template="#/components/schemas/{model}")
    spec.setdefault("components", {})["schemas"] = schemas["$defs"]
    missing = {ref.rsplit("/", 1)[1] for ref in _refs(spec)} - set(schemas["$defs"])
    if missing:
        raise SystemExit(f"the routes name schemas api_models.py lacks: {sorted(missing)}")
    return spec


def _refs(node):
    """Every $ref in a JSON document."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref":
                yield value
            else:
                yield from _refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _refs(value)


def rendered() -> str:
    return json.dumps(document(), indent=2, sort_keys=True) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m certcorners_tools.openapi",
                                     description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true",
                        help="compare with docs/openapi.json instead of writing it")
    args = parser.parse_args(argv)
    text = rendered()
    if args.check:
        if not DOCUMENT.exists() or DOCUMENT.read_text() != text:
            print(f"{DOCUMENT} differs from the code: run python -m certcorners_tools.openapi",
                  file=sys.stderr)
            return 1
        return 0
    DOCUMENT.write_text(text)
    print(f"wrote {DOCUMENT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
