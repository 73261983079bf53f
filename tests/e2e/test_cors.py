"""CORS (seed §5.2.2) on a real Envoy: simple requests, the backend's own
CORS headers winning, and preflight answered by an OPTIONS API with a mock
backend, header for header as the seed prints them."""
import json
import tempfile
import threading
from http.server import ThreadingHTTPServer

import pytest

from conftest import Backend, echo_backend, serving

DEFS = """
groups:
  - name: g
    default: true
apis:
  - name: simple
    group: g
    method: GET
    path: /simple
    cors: true
    parameters: [{{name: n, in: query, type: number}}]
    backend: {{http: {{address: "{backend}", path: /simple}}}}
    publish: [RELEASE]
  - name: simple-post
    group: g
    method: POST
    path: /simple
    cors: true
    backend: {{http: {{address: "{backend}", path: /simple}}}}
    publish: [RELEASE]
  - name: own-cors
    group: g
    method: GET
    path: /own
    cors: true
    backend: {{http: {{address: "{cors_backend}", path: /own}}}}
    publish: [RELEASE]
  - name: no-cors
    group: g
    method: GET
    path: /plain
    backend: {{http: {{address: "{backend}", path: /plain}}}}
    publish: [RELEASE]
  - name: cors-mock
    group: g
    method: GET
    path: /mocked
    cors: true
    backend: {{mock: {{body: hi}}}}
    publish: [RELEASE]
  - name: preflight
    group: g
    method: OPTIONS
    path: /
    match: prefix
    cors: true
    auth: app            # the seed: treated as no authentication
    backend: {{mock: {{status: 200}}}}
    publish: [RELEASE]
"""

SEED_PREFLIGHT = {
    "access-control-allow-origin": "*",
    "access-control-allow-headers":
        "X-Stage,X-Sdk-Date,X-Sdk-Nonce,X-Proxy-Signed-Headers,X-Sdk-Content-Sha256,X-Forwarded-For,"
        "Authorization,Content-Type,Accept,Accept-Ranges,Cache-Control,Range",
    "access-control-expose-headers":
        "X-Request-Id,X-Apig-Latency,X-Apig-Upstream-Latency,X-Apig-RateLimit-Api,X-Apig-RateLimit-User,"
        "X-Apig-RateLimit-App,X-Apig-RateLimit-Ip,X-Apig-RateLimit-Api-Allenv",
    "access-control-allow-methods": "GET,POST,PUT,DELETE,HEAD,OPTIONS,PATCH",
    "access-control-max-age": "172800",
}


class CorsEcho(echo_backend.Echo):
    """A backend that answers with its own CORS header (seed scenario 2)."""

    def end_headers(self):
        self.send_header("Access-Control-Allow-Origin", "http://www.cors.com")
        super().end_headers()


@pytest.fixture(scope="module")
def gw():
    backend = Backend("be")
    cors = ThreadingHTTPServer(("127.0.0.1", 0), CorsEcho)
    cors.daemon_threads = True
    cors.name = "cors"
    threading.Thread(target=cors.serve_forever, daemon=True).start()
    defs = DEFS.format(backend=backend.address, cors_backend=f"127.0.0.1:{cors.server_address[1]}")
    with tempfile.TemporaryDirectory(prefix="pylon-e2e-") as work:
        try:
            with serving(defs, work, backend) as g:
                yield g
        finally:
            cors.shutdown()
            cors.server_close()


ORIGIN = {"Origin": "http://www.cors.com"}


def test_simple_request_gets_allow_origin_star(gw):
    r = gw.request("GET", "/simple", ORIGIN)
    assert r.status == 200
    assert r.all("access-control-allow-origin") == ["*"]
    assert json.loads(r.body)["headers"]["origin"] == "http://www.cors.com"
    r = gw.request("POST", "/simple", {**ORIGIN, "Content-Type": "text/plain"}, body=b"x")
    assert r.all("access-control-allow-origin") == ["*"]


def test_the_backends_own_cors_header_wins(gw):
    r = gw.request("GET", "/own", ORIGIN)
    assert r.status == 200
    assert r.all("access-control-allow-origin") == ["http://www.cors.com"]


def test_apis_without_cors_add_nothing(gw):
    r = gw.request("GET", "/plain", ORIGIN)
    assert r.status == 200
    assert r.header("access-control-allow-origin") is None


def test_mocks_and_gateway_errors_of_a_cors_api_are_readable(gw):
    assert gw.request("GET", "/mocked", ORIGIN).all("access-control-allow-origin") == ["*"]
    bad = gw.request("GET", "/simple?n=abc", ORIGIN)
    assert bad.status == 400
    assert bad.all("access-control-allow-origin") == ["*"]


@pytest.mark.parametrize("path", ["/", "/simple", "/own/deeper"])
def test_preflight_answers_with_the_seeds_headers(gw, path):
    before = gw.backend.hits
    r = gw.request("OPTIONS", path, {**ORIGIN, "Access-Control-Request-Method": "PUT",
                                     "Access-Control-Request-Headers": "X-Sdk-Date"})
    assert r.status == 200, r.body
    for name, value in SEED_PREFLIGHT.items():
        assert r.all(name) == [value], name
    assert gw.backend.hits == before, "a preflight is answered by the gateway"


def test_preflight_needs_no_credentials_even_on_an_app_api(gw):
    r = gw.request("OPTIONS", "/simple")
    assert r.status == 200
    assert r.header("access-control-max-age") == "172800"
