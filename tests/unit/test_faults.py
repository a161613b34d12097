"""Faults around the model fetch: S3 unreachable or silent, a full disk, a download cut off
midway, two requests racing the first load. Each ends in a 503 well before API Gateway's
29 s (or in one shared download), never in a half-made model being served."""

from __future__ import annotations

import hashlib
import resource
import signal
import socket
import socketserver
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from certcorners import s3_fetch
from certcorners.errors import ModelUnavailable
from certcorners.model_card import locator_file
from certcorners.model_store import ModelStore

from tests.conftest import MODEL_BUCKET, MODEL_KEY, invoke, load_event, put_package

API_GATEWAY_LIMIT_S = 29


class _FaultyS3(socketserver.ThreadingTCPServer):
    """A loopback 'S3' that misbehaves: 'silent' accepts and never answers; 'cut' answers a
    GetObject with the full Content-Length and sha256 metadata, sends half, and hangs up."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, mode: str, body: bytes = b""):
        self.mode, self.body, self.requests = mode, body, 0
        super().__init__(("127.0.0.1", 0), self._Handler)

    class _Handler(socketserver.BaseRequestHandler):
        def handle(self):
            server = self.server
            server.requests += 1
            self.request.recv(65536)
            if server.mode == "silent":
                time.sleep(30)
                return
            digest = hashlib.sha256(server.body).hexdigest()
            head = (f"HTTP/1.1 200 OK\r\nContent-Length: {len(server.body)}\r\n"
                    f"Content-Type: application/gzip\r\nx-amz-meta-sha256: {digest}\r\n"
                    "ETag: \"x\"\r\n\r\n").encode()
            self.request.sendall(head + server.body[: len(server.body) // 2])
            self.request.shutdown(socket.SHUT_RDWR)


@pytest.fixture
def faulty_s3(monkeypatch):
    servers = []

    def start(mode, body=b""):
        server = _FaultyS3(mode, body)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        monkeypatch.setenv("AWS_ENDPOINT_URL_S3", f"http://127.0.0.1:{server.server_address[1]}")
        for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
            monkeypatch.setenv(key, "testing")
        monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
        return server

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_unreachable_s3_answers_503(app_module, monkeypatch, tmp_path):
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", f"http://127.0.0.1:{_closed_port()}")
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(key, "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setattr(app_module, "store",
                        ModelStore(f"s3://{MODEL_BUCKET}/{MODEL_KEY}", tmp_path))
    started = time.monotonic()
    status, body = invoke(app_module.lambda_handler, load_event("corners-jpeg.json"))
    assert status == 503 and body["error"]["code"] == "model_unavailable"
    assert time.monotonic() - started < API_GATEWAY_LIMIT_S - 4


def test_silent_s3_answers_503_before_api_gateway_gives_up(app_module, faulty_s3, monkeypatch,
                                                           tmp_path, caplog):
    server = faulty_s3("silent")
    monkeypatch.setattr(app_module, "store",
                        ModelStore(f"s3://{MODEL_BUCKET}/{MODEL_KEY}", tmp_path))
    started = time.monotonic()
    status, body = invoke(app_module.lambda_handler, load_event("corners-jpeg.json"))
    elapsed = time.monotonic() - started
    assert status == 503 and body["error"]["code"] == "model_unavailable"
    # The client learns nothing of the bucket or key; the function's log has the reason.
    assert MODEL_BUCKET not in body["error"]["message"]
    assert MODEL_KEY not in body["error"]["message"]
    logged = " ".join(str(getattr(r, "reason", "")) for r in caplog.records)
    assert "timeout" in logged.lower() and MODEL_KEY in logged
    assert elapsed < API_GATEWAY_LIMIT_S - 4, elapsed
    assert server.requests == 2  # one retry, then give up


def test_download_cut_midway_is_never_used(app_module, faulty_s3, monkeypatch, tmp_path,
                                           reference_package):
    server = faulty_s3("cut", reference_package.read_bytes())
    store = ModelStore(f"s3://{MODEL_BUCKET}/{MODEL_KEY}", tmp_path / "cache")
    monkeypatch.setattr(app_module, "store", store)
    status, body = invoke(app_module.lambda_handler, load_event("corners-jpeg.json"))
    assert status == 503, body
    assert server.requests >= 1
    assert not list((tmp_path / "cache").iterdir())  # no partial file, no model folder
    assert store.loaded is None


def test_full_disk_answers_503_then_recovers(app_module, s3, monkeypatch, tmp_path,
                                             reference_package):
    """A file-size limit makes every write past 64 KB fail (EFBIG), as a full /tmp does."""
    uri = put_package(s3, reference_package.read_bytes())
    store = ModelStore(uri, tmp_path / "cache")
    monkeypatch.setattr(app_module, "store", store)
    previous_limit = resource.getrlimit(resource.RLIMIT_FSIZE)
    previous_handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (64 * 1024, previous_limit[1]))
    try:
        status, body = invoke(app_module.lambda_handler, load_event("corners-jpeg.json"))
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, previous_limit)
        signal.signal(signal.SIGXFSZ, previous_handler)
    assert status == 503 and "model" in body["error"]["message"]
    assert MODEL_BUCKET not in body["error"]["message"]
    assert not [p for p in (tmp_path / "cache").iterdir()]
    assert invoke(app_module.lambda_handler, load_event("corners-jpeg.json"))[0] == 200


def test_requests_racing_the_first_load_share_one_download(s3, tmp_path, reference_package,
                                                           monkeypatch):
    uri = put_package(s3, reference_package.read_bytes())
    downloads = []
    real_get_object = s3_fetch.get_object

    def counted_get_object(*args, **kwargs):
        downloads.append(1)
        return real_get_object(*args, **kwargs)

    monkeypatch.setattr(s3_fetch, "get_object", counted_get_object)
    store = ModelStore(uri, tmp_path)
    with ThreadPoolExecutor(8) as pool:
        models = list(pool.map(lambda _: store.get(), range(8)))
    assert len(downloads) == 1
    assert all(m is models[0] for m in models)


def test_a_failed_load_is_retried_by_the_next_call(s3, tmp_path, reference_package):
    store = ModelStore(f"s3://{MODEL_BUCKET}/{MODEL_KEY}", tmp_path)
    with pytest.raises(ModelUnavailable):
        store.get()
    put_package(s3, reference_package.read_bytes())
    assert locator_file(store.get().card) in store.get().card["files"]
