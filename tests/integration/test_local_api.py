"""Over real HTTP: moto's S3 server + the local API (the built layer in a bare interpreter)
+ an HTTP client. Also the Docker-free `invoke` path on the sample events."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from certcorners.model_card import locator_file
from certcorners_tools import api_eval, local, proxy
from certcorners_tools.client import predict

from tests.conftest import EVENTS, HELD_OUT, ROOT, corner_errors_px, photo_labels
from training.evaluate import evaluate

PHOTOS = EVENTS / "photos"


@pytest.fixture(scope="module")
def local_api(reference_package):
    if not (local.BUILD / "InferenceLayerX86" / "python").is_dir():
        pytest.fail("no sam build output: run `make build` (the test target does) first")
    s3_port, api_port = local.free_port(), local.free_port()
    with local.local_s3(s3_port, reference_package), \
            tempfile.TemporaryDirectory() as cache:
        process = local.handler_process("serve.py", ["--port", str(api_port)], s3_port, cache,
                                        stderr=subprocess.PIPE, text=True)
        url = f"http://127.0.0.1:{api_port}"
        try:
            local.wait_for_http(f"{url}/v1/model", seconds=60)
            yield url, process
        finally:
            process.terminate()
            process.wait(10)


@pytest.mark.parametrize("photo", ["certificate-1200x847.jpg", "certificate-600x800.png"])
def test_jpeg_and_png_over_http(local_api, reference_predictor, reference_threshold, photo,
                                tmp_path):
    url, _ = local_api
    status, answer = predict(url, PHOTOS / photo, overlay=tmp_path / "overlay.png")
    assert status == 200, answer
    direct = reference_predictor.predict((PHOTOS / photo).read_bytes(),
                                         threshold=reference_threshold).corners
    np.testing.assert_allclose(answer["polygon"], direct, atol=0.01)
    errors = corner_errors_px(answer, photo_labels()[photo])
    assert errors.max() < 3 and errors.mean() < 1.5, errors  # accepted answers' p95: 1.4 px
    assert (tmp_path / "overlay.png").stat().st_size > 1000


def test_errors_over_http_keep_their_status_and_shape(local_api):
    url, _ = local_api
    request = urllib.request.Request(f"{url}/v1/corners", data=b"plain text", method="POST",
                                     headers={"Content-Type": "text/plain"})
    with pytest.raises(urllib.error.HTTPError) as error:
        urllib.request.urlopen(request, timeout=30)
    assert error.value.code == 415
    assert json.loads(error.value.read())["error"]["code"] == "unsupported_media_type"



@pytest.mark.parametrize("method, path", [("GET", "/v2/nothing"), ("DELETE", "/v1/corners"),
                                          ("GET", "/v1/uploads"), ("PUT", "/v1/model")])
def test_unknown_routes_and_methods_get_the_deployed_apis_json(local_api, method, path):
    url, _ = local_api
    with pytest.raises(urllib.error.HTTPError) as error:
        urllib.request.urlopen(urllib.request.Request(f"{url}{path}", method=method),
                               timeout=30)
    assert error.value.code == 404
    assert json.loads(error.value.read()) == proxy.GATEWAY_RESPONSES[
        "MISSING_AUTHENTICATION_TOKEN"][1]


def test_the_local_apis_refusals_are_the_templates_gateway_responses():
    """make serve answers its own refusals as the deployed API's gateway responses do."""
    import yaml

    class Loader(yaml.SafeLoader):
        pass

    Loader.add_multi_constructor("!", lambda loader, suffix, node: None)
    template = yaml.load((ROOT / "template.yaml").read_text(), Loader=Loader)
    responses = template["Resources"]["CornersApi"]["Properties"]["GatewayResponses"]
    for kind, (status, body) in proxy.GATEWAY_RESPONSES.items():
        declared = responses[kind]
        shape = declared["ResponseTemplates"]["application/json"].replace(
            "$context.error.messageString", json.dumps(body["error"]["message"]))
        assert json.loads(shape) == body, kind
        if "StatusCode" in declared:
            assert int(declared["StatusCode"]) == status, kind


def test_a_12_mp_photo_goes_by_upload_in_one_client_call(local_api, tmp_path):
    """The client CLI takes the upload path by itself for a photo over 4 MB."""
    from tests.unit.test_uploads import phone_photo

    url, _ = local_api
    data, truth = phone_photo()
    photo = tmp_path / "phone.jpg"
    photo.write_bytes(data)
    result = subprocess.run([sys.executable, "-m", "certcorners_tools.client", str(photo),
                             "--url", url], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    answer = json.loads(result.stdout)
    errors = np.linalg.norm(np.array(answer["polygon"]) - truth, axis=1) * 400 / 4032
    assert errors.max() < 3, errors
    assert answer["timing_ms"]["upload_read"] > 0  # it came by S3, not in the body


def test_model_card_over_http(local_api, reference_package):
    url, _ = local_api
    with urllib.request.urlopen(f"{url}/v1/model", timeout=30) as response:
        card = json.loads(response.read())
    with tarfile.open(reference_package) as package:
        served = json.loads(package.extractfile("model_card.json").read())
    assert card["version"] == served["version"] and locator_file(card) in card["files"]


@pytest.mark.parametrize("event, status", [("corners-jpeg.json", 200), ("model.json", 200),
                                           ("corners-undecodable.json", 422)])
def test_docker_free_invoke_runs_the_built_handler(event, status, reference_package):
    result = subprocess.run(
        [sys.executable, "-m", "certcorners_tools.local", "--package", str(reference_package),
         "invoke", str(EVENTS / event)],
        capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert result.returncode == 0, result.stderr[-2000:]
    response = json.loads(result.stdout[result.stdout.index("{\n"):])
    assert response["statusCode"] == status
    # It ran the layer and function `sam build` made, not this environment's packages.
    origin = json.loads(next(line for line in result.stderr.splitlines()
                             if line.startswith('{"function"')))
    assert origin["layer"].startswith(str(ROOT / ".aws-sam/build/InferenceLayerX86/python/"))
    assert origin["function"].startswith(str(ROOT / ".aws-sam/build/CornersFunction/"))


def test_concurrent_clients_get_no_errors(reference_package):
    from certcorners_tools.soak import load

    report = load(clients=4, requests=8, max_seconds=120)
    assert report["requests"] == 32 and report["errors"] == 0, report
    assert report["statuses"] == {200: 32}


def test_two_requests_racing_the_first_load_share_it(reference_package, tmp_path):
    """A cold local server (no preload) gets two requests at once: both answered, one load."""
    from concurrent.futures import ThreadPoolExecutor

    s3_port, api_port = local.free_port(), local.free_port()
    with local.local_s3(s3_port, reference_package):
        env = {**local.function_environment(s3_port, str(tmp_path)),
               "PYTHONPATH": local.layer_path(), "MODEL_PRELOAD": "false"}
        process = subprocess.Popen([local.base_python(), "-S", str(local.TOOLS / "serve.py"),
                                    "--port", str(api_port)], env=env,
                                   stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        try:
            assert process.stdout.readline().startswith('{"listening"')
            photos = [PHOTOS / "certificate-1200x847.jpg", PHOTOS / "certificate-600x800.png"]
            with ThreadPoolExecutor(2) as pool:
                answers = list(pool.map(lambda p: predict(f"http://127.0.0.1:{api_port}", p),
                                        photos))
        finally:
            process.terminate()
            logs = process.communicate(timeout=10)[0]
    assert [status for status, _ in answers] == [200, 200]
    assert logs.count('"message":"model loaded"') == 1


def _processes_running(fragment: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            if fragment in cmdline:
                found.append(int(entry.name))
    return found


@contextlib.contextmanager
def _local_serve():
    """`python -m certcorners_tools.local serve` on a free port, answering; killed if a
    test leaves it running."""
    port = local.free_port()
    process = subprocess.Popen([sys.executable, "-m", "certcorners_tools.local", "serve",
                                "--port", str(port)], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    try:
        local.wait_for_http(f"http://127.0.0.1:{port}/v1/model")
        yield process, port
    finally:
        if process.poll() is None:
            process.terminate()
            process.wait(timeout=30)


def test_local_serve_stopped_with_sigterm_leaves_no_process_behind(reference_package):
    import signal

    with _local_serve() as (process, port):
        assert _processes_running(f"serve.py --port {port}")  # the handler's own process
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
    deadline = time.monotonic() + 10
    while _processes_running(f"serve.py --port {port}") and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _processes_running(f"serve.py --port {port}")


def test_soak_works_for_a_few_calls(reference_package):
    from certcorners_tools.soak import soak

    report = soak(5)
    assert report["statuses"] == {"200": 6} and len(report["rss"]) >= 2, report


def test_local_api_serves_the_openapi_document_and_a_swagger_page(reference_package):
    with _local_serve() as (_, port):
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/openapi.json") as response:
            served = response.read()
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/docs") as response:
            page = response.read().decode()
    assert served == (ROOT / "docs" / "openapi.json").read_bytes()
    assert "SwaggerUIBundle" in page and '"/v1/corners"' in page
    assert "https://" not in page.split("<script>", 1)[0]  # nothing fetched from elsewhere


@pytest.fixture(scope="module")
def browser():
    from tests.integration.browser import Browser

    driven = Browser()
    yield driven
    driven.close()


def test_the_page_shows_a_dropped_photos_box_corners_crop_text_and_confidence(local_api,
                                                                          browser):
    """make serve's page at /, in headless Chromium: a photo chosen, its answer drawn."""
    url, _ = local_api
    browser.get(f"{url}/")
    browser.send_keys("#photo", str(PHOTOS / "certificate-1200x847.jpg"))
    browser.wait_for_text("#status", "HTTP 200")
    assert float(browser.text("#confidence")) >= 0.99
    assert browser.text("#text") == "PE623MY"  # events/photos/labels.jsonl
    assert float(browser.text("#text-confidence")) >= 0.5
    assert "inference;dur=" in browser.text("#timing") and "read;dur=" in browser.text(
        "#timing")
    rows = browser.run("return [...document.querySelectorAll('#corners tr')]"
                       ".map(r => r.innerText.split('\\t')[0])")
    assert rows == ["top_left", "top_right", "bottom_right", "bottom_left"]
    assert browser.run("return document.getElementById('crop').naturalWidth") > 50
    # The box is drawn on the photo: red pixels on the canvas, where the number is.
    red = browser.run("""
        const c = document.getElementById('photo-canvas');
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        let n = 0;
        for (let i = 0; i < d.length; i += 4) if (d[i] > 200 && d[i+1] < 40 && d[i+2] < 40) n++;
        return n;""")
    assert red > 100


def test_the_page_shows_a_refusal_in_words(local_api, browser):
    url, _ = local_api
    browser.get(f"{url}/")
    browser.send_keys("#photo", str(ROOT / "tests" / "photos" / "held-out" /
                                    "desk-without-certificate.jpg"))
    status = browser.wait_for_text("#status", "HTTP 422")
    assert "certificate_not_found" in status


def test_the_apis_figures_on_a_labelled_folder_are_the_cascades(local_api, reference_package,
                                                                 tmp_path):
    """`certcorners_tools.api_eval` counts what the API answered over HTTP as `training
    evaluate` counts the cascade in-process: the same answers, refusals and readings."""
    url, _ = local_api
    served = api_eval.summarize(api_eval.served_records(url, HELD_OUT))
    direct = evaluate(reference_package, HELD_OUT, tmp_path / "evaluate", worst=0)
    assert served["positives"] == direct["positives"] == 12 and served["negatives"] == 1
    assert len(served["positives_refused"]) == round(
        direct["positives_refused_share"] * 12)
    assert served["answered"]["photos"] == direct["cascade_accepted"]["photos"]
    assert served["answered"]["mean_corner_error_px"] == pytest.approx(
        direct["cascade_accepted"]["mean_corner_error_px"], abs=0.002)
    for share in ("read_right_share", "read_wrong_share", "not_read_share"):
        assert served["reading"][share] == direct["reading"][share]
    assert served["negatives_refused_share"] == direct["negatives_refused_share"] == 1.0
    # A folder that is not labelled is a clear error, not an empty report.
    assert api_eval.main(["--url", url, "--data", str(tmp_path)]) == 2
