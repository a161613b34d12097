"""A local HTTP API on 127.0.0.1 for the real handler, like `sam local start-api`.

Each request becomes an API Gateway REST proxy event; the handler's answer becomes the HTTP
response. Run by `make serve` in a bare interpreter whose path holds only the built layer and
function, so it exercises exactly what `sam build` made.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

if __package__ in (None, ""):  # run as a script beside the built layer
    import proxy
else:
    from certcorners_tools import proxy

MAX_BODY_BYTES = 10 * 1024 * 1024  # API Gateway's payload limit
OPENAPI = Path(__file__).resolve().parents[2] / "docs" / "openapi.json"
PAGE = Path(__file__).resolve().parent / "page.html"  # drop a photo, see its answer


def swagger_page() -> bytes:
    """Swagger UI over docs/openapi.json, its script, style and page from the copies that
    Powertools ships (no network). Its swagger_ui package imports pydantic for OAuth2
    settings, which the layer leaves out (cold start), so the page's module is loaded alone."""
    import importlib.util

    import aws_lambda_powertools.event_handler as event_handler

    assets = Path(event_handler.__file__).parent / "openapi" / "swagger_ui"
    spec = importlib.util.spec_from_file_location("powertools_swagger_html", assets / "html.py")
    html = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(html)
    return html.generate_swagger_html(OPENAPI.read_text(),
                                      (assets / "swagger-ui-bundle.min.js").read_text(),
                                      (assets / "swagger-ui.min.css").read_text(), "",
                                      None).encode()


def make_handler(lambda_handler, api_key: str | None, nagle: bool = False):
    # Connections are served on threads, but one invocation at a time reaches the handler:
    # a Lambda execution environment never runs two at once, and Powertools keeps the
    # request's log context and metrics per process on that promise.
    invocation = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # Headers and body go out in two sends: with Nagle's algorithm on, the second waits
        # for the client's delayed ACK (~40 ms on Linux) on every keep-alive request.
        disable_nagle_algorithm = not nagle

        def _answer(self, status: int, headers: dict[str, str], body: bytes) -> None:
            self.send_response(status)
            for key, value in headers.items():
                if key.lower() not in ("content-length", "connection"):
                    self.send_header(key, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _dispatch(self) -> None:
            path = self.path.split("?", 1)[0]
            if self.command == "GET" and path == "/openapi.json":  # the API's contract
                self._answer(200, {"Content-Type": "application/json"}, OPENAPI.read_bytes())
                return
            if self.command == "GET" and path == "/docs":  # and a page to try it
                self._answer(200, {"Content-Type": "text/html; charset=utf-8"}, swagger_page())
                return
            if self.command == "GET" and path == "/":  # a page to drop a photo on
                self._answer(200, {"Content-Type": "text/html; charset=utf-8"},
                             PAGE.read_bytes())
                return
            if (self.command, path) not in proxy.ROUTES:
                self._refuse("MISSING_AUTHENTICATION_TOKEN")
                return
            if api_key and self.headers.get("x-api-key") != api_key:
                self._refuse("INVALID_API_KEY")
                return
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_BODY_BYTES:
                self._refuse("REQUEST_TOO_LARGE")
                return
            body = self.rfile.read(length) if length else b""
            event = proxy.to_event(self.command, self.path, dict(self.headers.items()), body)
            try:
                with invocation:
                    response = lambda_handler(event, proxy.LambdaContext())
            except Exception as exc:  # what API Gateway shows for a crashed function
                print(f"handler raised {type(exc).__name__}: {exc}", file=sys.stderr)
                self._refuse("DEFAULT_5XX")
                return
            self._answer(*proxy.from_response(response))

        def _refuse(self, kind: str) -> None:
            """API Gateway's own refusal, as the template's gateway responses shape it; the
            body of a refused request is drained so that the connection can be reused."""
            length = int(self.headers.get("Content-Length") or 0)
            if 0 < length <= MAX_BODY_BYTES:
                self.rfile.read(length)
            else:
                self.close_connection = length > 0
            self._answer(*proxy.gateway_response(kind))

        do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = _dispatch

        def log_message(self, format, *args):  # one line a request, never the body
            print(f"{self.address_string()} {format % args}", file=sys.stderr)

    return Handler


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=3000)
    parser.add_argument("--api-key", default=None, help="require this x-api-key")
    parser.add_argument("--nagle", action="store_true",
                        help="leave Nagle's algorithm on (~40 ms a request; for the benchmark)")
    args = parser.parse_args()
    import app  # the function, from the built function folder on the path

    server = ThreadingHTTPServer((args.host, args.port), make_handler(app.lambda_handler,
                                                                      args.api_key, args.nagle))
    print(json.dumps({"listening": f"http://{args.host}:{args.port}"}), flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
