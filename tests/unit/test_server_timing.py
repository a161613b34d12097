"""Every response carries the handler's timing as a Server-Timing header: answers,
refusals and errors, through the real handler."""

from __future__ import annotations

import base64
import re

import pytest

from tests.conftest import HELD_OUT, Context, load_event

STEP = re.compile(r"([a-z_]+);dur=(\d+\.\d)")


def server_timing(response: dict) -> dict[str, float]:
    """The header as API Gateway sends it (a REST proxy answer's multiValueHeaders)."""
    (header,) = response["multiValueHeaders"]["Server-Timing"]
    steps = dict((name, float(ms)) for name, ms in STEP.findall(header))
    assert ", ".join(f"{k};dur={v:.1f}" for k, v in steps.items()) == header
    return steps


def test_an_answer_times_decode_inference_read_and_total(handler):
    handler(load_event("corners-jpeg.json"), Context())  # the cold one loads the model
    response = handler(load_event("corners-jpeg.json"), Context())
    assert response["statusCode"] == 200
    steps = server_timing(response)
    assert list(steps) == ["decode", "inference", "read", "total"]
    assert 0 < steps["decode"] + steps["inference"] + steps["read"] <= steps["total"]


def test_the_cold_request_times_the_models_load(handler):
    response = handler(load_event("corners-jpeg.json"), Context())
    steps = server_timing(response)
    assert list(steps) == ["model_fetch", "decode", "inference", "read", "total"]
    assert steps["model_fetch"] > steps["decode"]


def test_a_refusal_says_what_it_cost(handler):
    handler(load_event("corners-jpeg.json"), Context())
    event = load_event("corners-jpeg.json")
    event["body"] = base64.b64encode(
        (HELD_OUT / "desk-without-certificate.jpg").read_bytes()).decode()
    response = handler(event, Context())
    assert response["statusCode"] == 422
    steps = server_timing(response)
    assert list(steps) == ["decode", "inference", "total"] and steps["inference"] > 0


@pytest.mark.parametrize("event_name, status", [("corners-undecodable.json", 422),
                                                ("uploads.json", 503)])
def test_errors_carry_the_header_too(handler, event_name, status):
    response = handler(load_event(event_name), Context())
    assert response["statusCode"] == status
    assert "total" in server_timing(response)


def test_a_bad_request_carries_the_header(handler):
    event = load_event("corners-json.json")
    event["body"] = "{"
    response = handler(event, Context())
    assert response["statusCode"] == 400
    assert list(server_timing(response)) == ["total"]


def test_an_unexpected_error_carries_the_header(handler, app_module, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr(app_module, "find_corners", broken)
    response = handler(load_event("corners-jpeg.json"), Context())
    assert response["statusCode"] == 500
    assert "total" in server_timing(response)


def test_the_model_card_carries_the_header(handler):
    response = handler(load_event("model.json"), Context())
    assert response["statusCode"] == 200 and "total" in server_timing(response)
