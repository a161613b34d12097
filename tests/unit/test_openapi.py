"""The committed OpenAPI document is what the code produces, and says what the API does."""

from __future__ import annotations

import json

from certcorners_tools.openapi import DOCUMENT, rendered


def test_the_committed_document_matches_the_code():
    assert DOCUMENT.read_text() == rendered(), (
        "docs/openapi.json is stale: run python -m certcorners_tools.openapi")


def test_the_document_types_bodies_answers_and_every_error():
    spec = json.loads(DOCUMENT.read_text())
    corners = spec["paths"]["/v1/corners"]["post"]
    assert set(corners["requestBody"]["content"]) == {"image/jpeg", "image/png", "image/webp",
                                                      "application/json"}
    assert set(corners["responses"]) == {"200", "400", "404", "413", "415", "422", "503"}
    for status in ("400", "404", "413", "415", "422", "503"):
        schema = corners["responses"][status]["content"]["application/json"]["schema"]
        assert schema == {"$ref": "#/components/schemas/ErrorBody"}
    answer = spec["components"]["schemas"]["CornersAnswer"]["properties"]
    assert {"corners", "polygon", "confidence", "image", "model", "crop",
            "timing_ms"} <= set(answer)
    assert "certificate_not_found" in corners["responses"]["422"]["description"]
    assert [p["name"] for p in corners["parameters"]] == ["include"]
    assert set(spec["paths"]["/v1/model"]["get"]["responses"]) == {"200", "503"}
    # Photos over 4.5 MB: a presigned upload, then {"s3_key"}.
    uploads = spec["paths"]["/v1/uploads"]["post"]
    assert set(uploads["responses"]) == {"200", "400", "503"}
    assert set(spec["components"]["schemas"]["UploadAnswer"]["properties"]) == {
        "url", "fields", "key", "expires_in", "max_bytes"}
    json_body = corners["requestBody"]["content"]["application/json"]["schema"]["oneOf"]
    assert [set(b["required"]) for b in json_body] == [{"image"}, {"s3_key"}]
    assert spec["components"]["securitySchemes"]["api_key"] == {
        "type": "apiKey", "in": "header", "name": "x-api-key"}
    assert "HTTPValidationError" not in json.dumps(spec)  # a shape the API never returns
    for path, methods in spec["paths"].items():  # every answer says where its time went
        for method, operation in methods.items():
            for status, answer in operation["responses"].items():
                assert "Server-Timing" in answer.get("headers", {}), (path, method, status)
