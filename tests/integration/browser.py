"""Headless Chromium driven through ChromeDriver's W3C WebDriver protocol, with the standard
library only (no driver package, nothing downloaded): Debian's chromium and chromium-driver."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
import urllib.request

import pytest

ELEMENT = "element-6066-11e4-a52e-4f735466cecf"  # the W3C key of an element reference


class Browser:
    def __init__(self):
        driver, chromium = shutil.which("chromedriver"), shutil.which("chromium")
        if not (driver and chromium):
            pytest.fail("the page test needs Debian's chromium and chromium-driver "
                        "(make browser-debs installs them)")
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        self.process = subprocess.Popen([driver, f"--port={port}"], stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL)
        self.base = f"http://127.0.0.1:{port}"
        for _ in range(100):
            try:
                self._call("GET", "/status")
                break
            except OSError:
                time.sleep(0.1)
        options = {"binary": chromium, "args": ["--headless=new", "--no-sandbox",
                                                "--disable-gpu", "--disable-dev-shm-usage"]}
        session = self._call("POST", "/session", {"capabilities": {"alwaysMatch": {
            "browserName": "chrome", "goog:chromeOptions": options}}})
        self.session = f"/session/{session['sessionId']}"

    def _call(self, method: str, path: str, body: dict | None = None):
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.base + path, data=data, method=method,
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                return json.loads(response.read())["value"]
        except urllib.error.HTTPError as error:
            raise AssertionError(f"WebDriver {method} {path}: {error.read()[:500]!r}") from None

    def get(self, url: str) -> None:
        self._call("POST", f"{self.session}/url", {"url": url})

    def find(self, css: str) -> str:
        return self._call("POST", f"{self.session}/element",
                          {"using": "css selector", "value": css})[ELEMENT]

    def send_keys(self, css: str, text: str) -> None:
        self._call("POST", f"{self.session}/element/{self.find(css)}/value", {"text": text})

    def text(self, css: str) -> str:
        return self._call("GET", f"{self.session}/element/{self.find(css)}/text")

    def run(self, script: str):
        return self._call("POST", f"{self.session}/execute/sync",
                          {"script": script, "args": []})

    def wait_for_text(self, css: str, contains: str, seconds: float = 60) -> str:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            text = self.text(css)
            if contains in text:
                return text
            time.sleep(0.2)
        raise AssertionError(f"{css} never said {contains!r}; it says {self.text(css)!r}")

    def close(self) -> None:
        try:
            self._call("DELETE", self.session)
        finally:
            self.process.terminate()
            self.process.wait(10)
