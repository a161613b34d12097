"""The function's settings: a wrong value stops the cold start with the variable's name; right
ones, and unset ones, mean what the template's parameters say."""

from __future__ import annotations

import subprocess
import sys

import pytest
from certcorners import settings

from tests.conftest import ROOT, function_process_env


def test_unset_or_empty_variables_take_their_defaults():
    assert settings.whole_number("MAX_IMAGE_BYTES", 4_500_000, environ={}) == 4_500_000
    assert settings.whole_number("MAX_IMAGE_BYTES", 7, environ={"MAX_IMAGE_BYTES": " "}) == 7
    assert settings.confidence_or_none("MIN_CONFIDENCE", environ={"MIN_CONFIDENCE": ""}) is None
    assert settings.flag("SCAN_WHOLE_PHOTO", True, environ={}) is True
    assert settings.flag("MODEL_PRELOAD", False, environ={"MODEL_PRELOAD": ""}) is False


@pytest.mark.parametrize(("text", "value"), [("0", 0.0), ("0.9998", 0.9998), ("1", 1.0),
                                             (" 1.0 ", 1.0)])
def test_a_confidence_from_0_to_1_is_taken(text, value):
    assert settings.confidence_or_none("MIN_CONFIDENCE", {"MIN_CONFIDENCE": text}) == value


@pytest.mark.parametrize("text", ["99.98", "-0.1", "nan", "high", "1,0"])
def test_a_confidence_outside_0_to_1_names_the_variable(text):
    with pytest.raises(ValueError, match=r"MIN_CONFIDENCE .* from 0 to 1.*" + repr(text)):
        settings.confidence_or_none("MIN_CONFIDENCE", {"MIN_CONFIDENCE": text})


@pytest.mark.parametrize(("text", "value"), [("true", True), ("FALSE", False), ("True", True)])
def test_a_flag_is_true_or_false_in_any_case(text, value):
    assert settings.flag("SCAN_WHOLE_PHOTO", not value, {"SCAN_WHOLE_PHOTO": text}) is value


@pytest.mark.parametrize("text", ["0", "no", "yes", "off"])
def test_a_flag_that_is_neither_names_the_variable(text):
    with pytest.raises(ValueError, match=f"SCAN_WHOLE_PHOTO must be true or false, got '{text}'"):
        settings.flag("SCAN_WHOLE_PHOTO", True, {"SCAN_WHOLE_PHOTO": text})


@pytest.mark.parametrize(("text", "message"), [("4.5e6", "a whole number"),
                                               ("0", "at least 1"), ("-64", "at least 1")])
def test_a_size_limit_must_be_a_positive_whole_number(text, message):
    with pytest.raises(ValueError, match=f"MAX_IMAGE_BYTES must be {message}"):
        settings.whole_number("MAX_IMAGE_BYTES", 4_500_000, environ={"MAX_IMAGE_BYTES": text})


def _cold_start(**variables: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", "import app; print(app.MIN_CONFIDENCE, "
                           "app.SCAN_WHOLE_PHOTO)"], env=function_process_env(**variables),
                          capture_output=True, text=True, timeout=60, cwd=ROOT)


def test_the_function_s_init_stops_on_a_wrong_setting_and_says_which():
    started = _cold_start(MIN_CONFIDENCE="0.5", SCAN_WHOLE_PHOTO="false")
    assert started.returncode == 0, started.stderr[-1500:]
    assert started.stdout.split() == ["0.5", "False"]
    stopped = _cold_start(MIN_CONFIDENCE="99.98")
    assert stopped.returncode != 0
    assert "MIN_CONFIDENCE must be empty or a confidence from 0 to 1" in stopped.stderr


@pytest.mark.parametrize("text", ["two", "1.5", "-1"])
def test_a_wrong_thread_count_stops_the_init_and_names_the_variable(text):
    stopped = _cold_start(LITERT_NUM_THREADS=text)
    assert stopped.returncode != 0
    assert "LITERT_NUM_THREADS must be" in stopped.stderr


@pytest.mark.parametrize(("text", "threads"), [("", None), ("0", None), ("2", 2)])
def test_the_thread_count_reaches_the_model_store(text, threads, monkeypatch):
    from certcorners.model_store import ModelStore

    monkeypatch.setenv("LITERT_NUM_THREADS", text)
    assert ModelStore.from_environment().num_threads == threads


def test_upload_settings_are_checked_at_cold_start():
    stopped = _cold_start(MAX_UPLOAD_BYTES="40MB")
    assert stopped.returncode != 0 and "MAX_UPLOAD_BYTES must be" in stopped.stderr
    stopped = _cold_start(UPLOAD_PREFIX="/uploads")
    assert stopped.returncode != 0 and "UPLOAD_PREFIX must be a folder" in stopped.stderr
