"""Fail closed under hostile input, on the real Envoy with the real filter:
every way a request can end meets the same checks (HTTP/2 and chunked
trailers), bytes that are not UTF-8 never crash the VM, a Huawei signature
cannot be paired with another body, and a gateway calling itself stops."""
import hashlib
import json
import socket
import tempfile
import threading
import time
from pathlib import Path

import h2.config
import h2.connection
import h2.events
import pytest

from conftest import Backend, Envoy, compile_defs, free_port
from test_app_auth_huawei import signed

KEY, SECRET = "hostileKey001", "hostile-secret-0123456789"
AK, SK = "HOSTILEAK0001", "hostile-account-sk-0001"

DEFS = """
groups:
  - name: g
    default: true
apis:
  - {{name: signed, group: g, method: POST, path: /signed, auth: app,
     backend: {{http: {{address: "{backend}", path: /be/signed}}}}, publish: [RELEASE]}}
  - {{name: limited, group: g, method: POST, path: /limited, auth: app,
     backend: {{http: {{address: "{backend}", path: /be/limited}}}}, publish: [RELEASE]}}
  - {{name: iam, group: g, method: POST, path: /iam, auth: iam,
     backend: {{http: {{address: "{backend}", path: /be/iam}}}}, publish: [RELEASE]}}
  - {{name: open, group: g, method: ANY, path: /open, match: prefix,
     backend: {{http: {{address: "{backend}", path: /be/open}}}}, publish: [RELEASE]}}
  - name: tiered
    group: g
    method: GET
    path: /tiered
    parameters:
      - {{name: X-Tier, in: header, default: basic}}
    backend: {{http: {{address: "{backend}", path: /be/tiered}}}}
    publish: [RELEASE]
  - {{name: cors, group: g, method: GET, path: /cors, cors: true,
     backend: {{http: {{address: "{raw_backend}", path: /}}}}, publish: [RELEASE]}}
  - {{name: loop, group: g, method: GET, path: /loop,
     backend: {{http: {{address: "127.0.0.1:{port}", path: /loop}}}}, publish: [RELEASE]}}
throttles:
  - name: two
    unit: minute
    interval: 1
    api_limit: 2
    bindings: [{{group: g, api: limited, environments: [RELEASE]}}]
apps:
  - name: caller
    key: {key}
    secret: "{secret}"
    authorizations:
      - {{group: g, api: signed, environments: [RELEASE]}}
      - {{group: g, api: limited, environments: [RELEASE]}}
accounts:
  - name: tenant
    ak: {ak}
    sk: {sk}
"""


class RawBackend:
    """A backend that answers with a header value that is not UTF-8."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.address = "127.0.0.1:%d" % self.sock.getsockname()[1]
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                conn.settimeout(5)
                data = b""
                while b"\r\n\r\n" not in data:
                    chunk = conn.recv(4096)
                    if not chunk:
                        break
                    data += chunk
                conn.sendall(b"HTTP/1.1 200 OK\r\nAccess-Control-Allow-Origin: \xff\xfe\r\n"
                             b"X-Odd: caf\xe9\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")

    def close(self):
        self.sock.close()


@pytest.fixture(scope="module")
def gw():
    backend, raw = Backend("be"), RawBackend()
    with tempfile.TemporaryDirectory(prefix="pylon-e2e-") as work:
        port, admin = free_port(), free_port()
        defs = Path(work) / "defs"
        defs.mkdir()
        (defs / "defs.yaml").write_text(DEFS.format(
            backend=backend.address, raw_backend=raw.address, port=port, key=KEY, secret=SECRET, ak=AK, sk=SK))
        res = compile_defs(defs, Path(work) / "out", port, admin)
        assert res.returncode == 0, res.stderr
        envoy = Envoy(Path(work) / "out/envoy.yaml", port, admin, work)
        assert envoy.wait_ready(), envoy.log.read_text() if envoy.log.exists() else ""
        envoy.backend = backend
        try:
            yield envoy
        finally:
            envoy.stop()
            backend.close()
            raw.close()


# --- HTTP/2 and HTTP/1.1 requests that end with trailers ---------------------

def h2_request(gw, method, path, headers, data=None, trailers=None):
    """One cleartext HTTP/2 request (prior knowledge). The stream ends with
    `trailers` when given, else with the last DATA frame, else the HEADERS."""
    sock = socket.create_connection(("127.0.0.1", gw.port), timeout=10)
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True, header_encoding="utf-8"))
    conn.initiate_connection()
    sid = conn.get_next_available_stream_id()
    pseudo = [(":method", method), (":path", path), (":scheme", "http"), (":authority", f"127.0.0.1:{gw.port}")]
    conn.send_headers(sid, pseudo + [(k.lower(), v) for k, v in headers.items()],
                      end_stream=data is None and trailers is None)
    if data is not None:
        conn.send_data(sid, data, end_stream=trailers is None)
    if trailers is not None:
        conn.send_headers(sid, trailers, end_stream=True)
    sock.sendall(conn.data_to_send())
    status, body, done = None, b"", False
    deadline = time.time() + 10
    while not done and time.time() < deadline:
        chunk = sock.recv(65536)
        if not chunk:
            break
        for ev in conn.receive_data(chunk):
            if isinstance(ev, h2.events.ResponseReceived):
                status = int(dict(ev.headers)[":status"])
            elif isinstance(ev, h2.events.DataReceived):
                body += ev.data
                conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
            elif isinstance(ev, (h2.events.StreamEnded, h2.events.StreamReset)):
                done = True
        sock.sendall(conn.data_to_send())
    sock.close()
    return status, body


FORGED_ALIYUN = {"x-ca-key": KEY, "x-ca-signature": "forged", "content-type": "text/plain"}
FORGED_HUAWEI = {"x-sdk-date": time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()),
                 "authorization": f"SDK-HMAC-SHA256 Access={KEY}, SignedHeaders=host;x-sdk-date, Signature=00"}
TRAILERS = [("x-trailer", "t")]


@pytest.mark.parametrize("path,headers", [
    ("/signed", FORGED_ALIYUN),
    ("/signed", FORGED_HUAWEI),
    ("/iam", {**FORGED_HUAWEI, "authorization": FORGED_HUAWEI["authorization"].replace(KEY, AK)}),
], ids=["aliyun", "huawei", "iam"])
@pytest.mark.parametrize("shape", ["body+trailers", "trailers-only", "body"])
def test_http2_forged_signature_is_refused_however_the_stream_ends(gw, path, headers, shape):
    data = None if shape == "trailers-only" else b"hello"
    trailers = None if shape == "body" else TRAILERS
    hits = gw.backend.hits
    status, body = h2_request(gw, "POST", path, headers, data, trailers)
    assert status == 401, (status, body)
    assert json.loads(body)["error_code"] in ("APIG.0303", "APIG.0301")
    assert gw.backend.hits == hits, "a forged request reached the backend"


def test_http2_signed_request_with_trailers_passes_with_its_body(gw):
    body = b'{"order": 7}'
    uri, headers, body = signed(gw, "POST", "/signed", headers={"Content-Type": "application/json"},
                                body=body, key=KEY, secret=SECRET)
    headers.pop("Host")
    status, answer = h2_request(gw, "POST", uri, headers, body, TRAILERS)
    assert status == 200, answer
    assert json.loads(answer)["body"] == body.decode()


def test_http2_trailers_do_not_skip_throttling(gw):
    statuses = []
    for i in range(3):
        uri, headers, body = signed(gw, "POST", "/limited", headers={"Content-Type": "application/json"},
                                    body=b'{"n": %d}' % i, key=KEY, secret=SECRET)
        headers.pop("Host")
        statuses.append(h2_request(gw, "POST", uri, headers, body, TRAILERS)[0])
    assert statuses == [200, 200, 429]


def raw_http1(gw, request_bytes, timeout=10):
    with socket.create_connection(("127.0.0.1", gw.port), timeout=timeout) as s:
        s.sendall(request_bytes)
        data = b""
        while True:
            try:
                chunk = s.recv(65536)
            except socket.timeout:
                break
            if not chunk:
                break
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1]) if head else None
    return status, head, body


def test_http1_chunked_trailers_forged_signature_is_refused(gw):
    hits = gw.backend.hits
    status, _, body = raw_http1(gw, (
        b"POST /signed HTTP/1.1\r\nHost: x\r\nX-Ca-Key: " + KEY.encode() + b"\r\nX-Ca-Signature: forged\r\n"
        b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n5\r\nhello\r\n0\r\nX-Trailer: t\r\n\r\n"))
    assert status == 401, body
    assert gw.backend.hits == hits


def test_expect_100_continue_forged_signature_is_refused(gw):
    hits = gw.backend.hits
    with socket.create_connection(("127.0.0.1", gw.port), timeout=10) as s:
        s.sendall(b"POST /signed HTTP/1.1\r\nHost: x\r\nX-Ca-Key: " + KEY.encode() + b"\r\n"
                  b"X-Ca-Signature: forged\r\nContent-Length: 5\r\nExpect: 100-continue\r\n"
                  b"Connection: close\r\n\r\n")
        first = s.recv(65536)
        if first.startswith(b"HTTP/1.1 100"):
            s.sendall(b"hello")
            first = b""
        data = first
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    final = data[data.index(b"HTTP/1.1 4"):] if b"HTTP/1.1 4" in data else data
    assert final.startswith(b"HTTP/1.1 401"), data
    assert gw.backend.hits == hits


# --- bytes that are not UTF-8 -------------------------------------------------

def junk_request(gw, header_line):
    return raw_http1(gw, b"GET /open/1 HTTP/1.1\r\nHost: x\r\n" + header_line + b"\r\nConnection: close\r\n\r\n")


def test_non_utf8_header_value_is_forwarded_untouched(gw):
    status, head, body = junk_request(gw, b"X-Junk: \xff\xfe")
    assert status == 200, (head, body)
    assert json.loads(body)["headers"]["x-junk"] == "\xff\xfe"  # the echo backend reads Latin-1


def test_non_utf8_declared_header_parameter_is_refused(gw):
    status, _, body = raw_http1(gw, b"GET /tiered HTTP/1.1\r\nHost: x\r\nX-Tier: gold\xff\r\nConnection: close\r\n\r\n")
    assert status == 400, body
    answer = json.loads(body)
    assert answer["error_code"] == "APIG.0201"
    # An absent header takes its default instead.
    status, _, body = raw_http1(gw, b"GET /tiered HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert status == 200


def test_non_utf8_in_signed_header_fails_the_signature_not_the_vm(gw):
    status, _, body = raw_http1(gw, (
        b"POST /signed HTTP/1.1\r\nHost: x\r\nX-Ca-Key: " + KEY.encode() + b"\r\nX-Ca-Signature: x\r\n"
        b"X-Ca-Signature-Headers: x-odd\r\nX-Odd: \xc3\x28\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"))
    assert status == 401, body
    assert json.loads(body)["error_code"] == "APIG.0303"


def test_backend_header_that_is_not_utf8_does_not_crash_a_cors_api(gw):
    status, head, body = raw_http1(gw, b"GET /cors HTTP/1.1\r\nHost: x\r\nOrigin: http://a.example\r\n"
                                       b"Connection: close\r\n\r\n")
    assert status == 200, head
    assert b"access-control-allow-origin: \xff\xfe" in head.lower()
    assert body == b"ok"


def test_no_normal_request_fails_while_hostile_bytes_arrive(gw):
    """The observed denial of service: junk requests crashed the VM and took
    normal requests on the same worker with them."""
    failures, junk_answers = [], []
    stop = time.time() + 20

    def normal():
        for _ in range(115):
            if time.time() > stop:
                break
            r = gw.request("GET", "/open/ok")
            if r.status != 200:
                failures.append(r.status)

    def hostile():
        for i in range(15):
            line = [b"X-Junk: \xff", b"X-Odd: caf\xe9", b"X-Bad\xff: 1", b"User-Agent: \x80\x81"][i % 4]
            junk_answers.append(junk_request(gw, line)[0])

    threads = [threading.Thread(target=normal), threading.Thread(target=hostile)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert failures == [], failures
    assert len(junk_answers) == 15
    assert all(s in (200, 400) for s in junk_answers), junk_answers
    log = gw.log.read_text() if gw.log.exists() else ""
    assert "panicked" not in log


# --- Huawei signatures cover the body received --------------------------------

@pytest.mark.parametrize("key,secret,path", [(KEY, SECRET, "/signed"), (AK, SK, "/iam")], ids=["app", "iam"])
@pytest.mark.parametrize("declared", [False, True], ids=["hash-computed", "hash-declared"])
def test_huawei_signed_body_cannot_be_swapped(gw, key, secret, path, declared):
    original = b'{"pay": 1}'
    extra = {"Content-Type": "application/json"}
    if declared:  # the signer signs the header's value instead of hashing
        extra["X-Sdk-Content-Sha256"] = hashlib.sha256(original).hexdigest()
    uri, headers, body = signed(gw, "POST", path, headers=extra, body=original, key=key, secret=secret)
    headers.pop("Host")
    assert gw.request("POST", uri, headers, body).status == 200
    # Replayed with another body and the original's hash declared.
    headers["X-Sdk-Content-Sha256"] = hashlib.sha256(original).hexdigest()
    hits = gw.backend.hits
    r = gw.request("POST", uri, headers, b'{"pay": 1000000}')
    assert r.status == 401, r.body
    assert gw.backend.hits == hits


# --- a gateway that calls itself ----------------------------------------------

def test_a_backend_loop_stops_with_a_gateway_response(gw):
    r = gw.request("GET", "/loop")
    assert r.status == 500, r.body
    assert r.json()["error_code"] == "APIG.0612"


# --- paths ----------------------------------------------------------------------

@pytest.mark.parametrize("path", [
    "/open/..%2f..%2fadmin", "/open/..%2F..%2Fadmin", "/open/%2e%2E%2fadmin", "/open/a%5c..%5c..%5cadmin",
    "/open/x/..%5Cadmin",
])
def test_a_prefix_remainder_cannot_climb_out_of_the_backend_path(gw, path):
    hits = gw.backend.hits
    status, head, body = raw_http1(gw, b"GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" % path.encode())
    assert status == 400, (head, body)
    assert json.loads(body)["error_code"] == "APIG.0201"
    assert gw.backend.hits == hits


@pytest.mark.parametrize("sent,forwarded", [
    ("/open/./a/../b", "/be/open/b"),
    ("/open//a///b", "/be/open/a/b"),
    ("/open/%7Et%41", "/be/open/~tA"),
    ("/x/../open/c", "/be/open/c"),
])
def test_routing_uses_the_normalised_path(gw, sent, forwarded):
    status, head, body = raw_http1(gw, b"GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" % sent.encode())
    assert status == 200, (head, body)
    assert json.loads(body)["path"] == forwarded


@pytest.mark.parametrize("path", [b"/open/a%00b", b"/open/%2%65%2%65/x", b"/open/100%"])
def test_nul_or_a_stray_percent_in_a_path_is_a_gateway_response(gw, path):
    # A `%` that starts no escape could become one once the characters
    # after it are decoded (`%2%65` would read `%2e`): refused, found by fuzzing.
    status, head, body = raw_http1(gw, b"GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" % path)
    assert status == 400, (head, body)
    assert json.loads(body)["error_code"] == "APIG.0201"
