"""Every answer the gateway makes is a gateway response: what Envoy answers
itself (bad requests it refuses before or instead of the filter) arrives as
the same JSON body, with an `error_code` and `X-Request-Id`. The product's
request limits (Huawei user guide §1.5, §6.3.3) apply, and slow clients are
cut off."""
import http.client
import json
import re
import select
import socket
import time

import pytest

from conftest import gateway_with_backend

DEFS = """
gateway: {{max_body_bytes: 4096}}
groups:
  - name: g
    default: true
  - name: odd
    domains: [odd.example.com]
    responses:
      default:
        NOT_FOUND: {{status: 431, body: '{{"mine":"$context.error.code"}}'}}
apis:
  - name: echo
    group: g
    method: ANY
    path: /echo
    match: prefix
    backend: {{http: {{address: "{backend}", path: /be}}}}
    publish: [RELEASE]
"""

UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
KIB = 1024


@pytest.fixture(scope="module")
def gw():
    with gateway_with_backend(DEFS) as gw:
        yield gw


def raw(gw, data, timeout=10):
    """Sends `data` as is and parses the one response Envoy sends."""
    with socket.create_connection(("127.0.0.1", gw.port), timeout=timeout) as s:
        s.sendall(data)
        resp = http.client.HTTPResponse(s)
        resp.begin()
        body = resp.read()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, body


def assert_gateway_response(status, headers, body, want_status, want_code):
    assert status == want_status, body
    assert headers["content-type"] == "application/json"
    doc = json.loads(body)
    assert list(doc) == ["error_code", "error_msg", "request_id"]
    assert doc["error_code"] == want_code
    assert doc["error_msg"]
    assert UUID.match(headers["x-request-id"]), headers
    assert doc["request_id"] == headers["x-request-id"]
    return doc


def get(path, extra=b""):
    return b"GET " + path + b" HTTP/1.1\r\nHost: gw\r\n" + extra + b"\r\n"


@pytest.mark.parametrize("req", [
    get(b"/echo/a%00b"),
    get(b"/echo/a\x01b"),
    get(b"echo"),
    b"GET /echo HTTP/1.1\r\n\r\n",  # no Host
], ids=["pct00", "ctl", "relative", "no-host"])
def test_bad_request_line_is_a_gateway_400(gw, req):
    before = gw.backend.hits
    assert_gateway_response(*raw(gw, req), 400, "APIG.0201")
    assert gw.backend.hits == before


def test_bad_framing_is_a_gateway_400(gw):
    req = (b"POST /echo HTTP/1.1\r\nHost: gw\r\nContent-Length: 3\r\n"
           b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n")
    assert_gateway_response(*raw(gw, req), 400, "APIG.0201")
    assert_gateway_response(*raw(gw, b"NOT HTTP AT ALL\r\n\r\n"), 400, "APIG.0201")


def test_http_1_0_is_a_gateway_426(gw):
    r = raw(gw, b"GET /echo HTTP/1.0\r\nHost: gw\r\n\r\n")
    doc = assert_gateway_response(*r, 426, "APIG.0201")
    assert "HTTP/1.1" in doc["error_msg"]


def test_websocket_upgrade_is_a_gateway_response(gw):
    before = gw.backend.hits
    r = raw(gw, get(b"/echo", b"Connection: Upgrade\r\nUpgrade: websocket\r\n"
                               b"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"))
    assert_gateway_response(*r, 403, "APIG.0201")
    assert gw.backend.hits == before


def test_chunked_body_over_the_limit_is_a_gateway_413(gw):
    before = gw.backend.hits
    chunk = b"x" * 3000
    req = b"POST /echo HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: chunked\r\n\r\n"
    req += (b"%x\r\n%s\r\n" % (len(chunk), chunk)) * 3 + b"0\r\n\r\n"
    assert_gateway_response(*raw(gw, req), 413, "APIG.0201")
    assert gw.backend.hits == before


def test_uri_over_32_kib_is_414(gw):
    before = gw.backend.hits
    path = b"/echo?q=" + b"a" * (33 * KIB)
    assert_gateway_response(*raw(gw, get(path)), 414, "APIG.0201")
    assert gw.backend.hits == before


def test_uri_of_32_kib_passes(gw):
    path = b"/echo?q=" + b"a" * (32 * KIB - 8)
    status, _, body = raw(gw, get(path))
    assert status == 200, body
    assert len(json.loads(body)["path"]) > 32 * KIB - 16


def test_one_header_over_32_kib_is_494(gw):
    before = gw.backend.hits
    r = raw(gw, get(b"/echo", b"X-Big: " + b"v" * (33 * KIB) + b"\r\n"))
    doc = assert_gateway_response(*r, 494, "APIG.0201")
    assert doc["error_msg"] == "Request headers too large"
    assert gw.backend.hits == before


def test_100_kib_of_headers_pass(gw):
    extra = b"".join(b"X-H%d: %s\r\n" % (i, b"v" * (25 * KIB)) for i in range(4))
    status, _, body = raw(gw, get(b"/echo", extra))
    assert status == 200, body
    assert json.loads(body)["headers"]["x-h3"] == "v" * (25 * KIB)


def test_headers_over_128_kib_in_total_are_494(gw):
    # Refused by the filter's count (150 KiB)...
    extra = b"".join(b"X-H%d: %s\r\n" % (i, b"v" * (30 * KIB)) for i in range(5))
    assert_gateway_response(*raw(gw, get(b"/echo", extra)), 494, "APIG.0201")
    # ...and past Envoy's own limit (240 KiB), Envoy's 431 becomes the same 494.
    extra = b"".join(b"X-H%d: %s\r\n" % (i, b"v" * (30 * KIB)) for i in range(8))
    assert_gateway_response(*raw(gw, get(b"/echo", extra)), 494, "APIG.0201")


def test_the_filters_own_replies_are_left_alone(gw):
    # A group's NOT_FOUND configured as 431 keeps its own body.
    status, headers, body = raw(gw, b"GET /nope HTTP/1.1\r\nHost: odd.example.com\r\n\r\n")
    assert status == 431
    assert json.loads(body) == {"mine": "APIG.0101"}
    assert UUID.match(headers["x-request-id"])


def test_slow_clients_are_disconnected(gw):
    dump = http.client.HTTPConnection("127.0.0.1", gw.admin_port, timeout=10)
    dump.request("GET", "/config_dump")
    config = dump.getresponse().read().decode()
    assert '"request_headers_timeout": "10s"' in config
    # Clients that never finish their headers are cut off after 10 s.
    socks = []
    try:
        for _ in range(20):
            s = socket.create_connection(("127.0.0.1", gw.port), timeout=5)
            s.sendall(b"GET /echo HTTP/1.1\r\nHost: gw\r\nX-Slow: ")
            socks.append(s)
        start = time.time()
        replies, open_ = {}, set(socks)
        while open_ and time.time() - start < 20:
            ready, _, _ = select.select(list(open_), [], [], 1)
            for s in ready:
                chunk = s.recv(4096)
                if chunk:
                    replies[s] = replies.get(s, b"") + chunk
                else:
                    open_.discard(s)
        elapsed = time.time() - start
    finally:
        for s in socks:
            s.close()
    assert not open_, f"{len(open_)} slow connections still open"
    assert 8 < elapsed < 15, elapsed
    # Envoy says why before it closes: a gateway response too.
    for data in replies.values():
        assert data.startswith(b"HTTP/1.1 408"), data
        assert b'"error_code":"APIG.0201"' in data, data
