"""APP authentication with Alibaba's X-Ca-Signature, signed by the vendor's
real Node SDK (npm `aliyun-api-gateway`), verified by the filter on a real
Envoy with two workers."""
import json
import subprocess
import threading
import time

import pytest

from conftest import ROOT, gateway_with_backend

KEY, SECRET = "aliKey000001", "ali-secret-0123456789"
NODE_CLIENT = ROOT / "tests/node/aliyun_client.js"

DEFS = """
environments:
  - name: TEST
groups:
  - name: shop
    default: true
apis:
  - {{name: items, group: shop, method: ANY, path: /items, match: prefix, auth: app,
     backend: {{http: {{address: "{backend}", path: /be/items}}}}, publish: [RELEASE, TEST]}}
  - {{name: legacy, group: shop, method: GET, path: /legacy, auth: app, allow_hmac_sha1: true,
     backend: {{http: {{address: "{backend}", path: /be/legacy}}}}, publish: [RELEASE]}}
  - {{name: staged, group: shop, method: GET, path: /staged, auth: app,
     backend: {{http: {{address: "{backend}", path: /be/staged}}}}, publish: [TEST]}}
apps:
  - name: ali
    key: {key}
    secret: "{secret}"
    authorizations:
      - {{group: shop, api: items, environments: [RELEASE]}}
      - {{group: shop, api: legacy, environments: [RELEASE]}}
      - {{group: shop, api: staged, environments: [TEST]}}
"""


@pytest.fixture(scope="module")
def gw():
    with gateway_with_backend(DEFS, key=KEY, secret=SECRET) as g:
        yield g


def sdk(gw, mode, method, path, **kw):
    args = {"mode": mode, "method": method, "url": f"http://127.0.0.1:{gw.port}{path}",
            "key": kw.pop("key", KEY), "secret": kw.pop("secret", SECRET), **kw}
    out = subprocess.run(["node", str(NODE_CLIENT), json.dumps(args)], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def capture(gw, method, path, **kw):
    """A request exactly as the SDK signs it, not yet sent."""
    return sdk(gw, "capture", method, path, **kw)


def send(gw, req, **overrides):
    headers = {k: str(v) for k, v in req["headers"].items()}
    headers.update(overrides.pop("headers", {}))
    path = overrides.pop("path", req["path"])
    body = overrides.pop("body", req["body"]).encode()
    headers.pop("host", None)
    return gw.request(req.get("method", "GET"), path, headers, body if body else None)


def assert_refused(r, says):
    assert r.status == 401, (r.status, r.body)
    body = r.json()
    assert body["error_code"] == "APIG.0303"
    assert says in body["error_msg"]
    assert says in r.header("x-ca-error-message")
    assert r.header("x-ca-request-id") == r.header("x-request-id")
    assert SECRET not in r.body.decode()


# --- the unmodified SDK, end to end -------------------------------------------

def test_sdk_get_with_query(gw):
    r = sdk(gw, "call", "GET", "/items/list", query={"b": "2", "a": "1", "empty": "", "sp": "x y", "plus": "1+1",
                                                     "zh": "中文", "rep": ["1", "2"]})
    assert r["status"] == 200, r
    assert r["body"]["path"].startswith("/be/items/list?")
    assert "rep=1&rep=2" in r["body"]["path"], "repeated keys reach the backend"
    assert "x-ca-signature" not in r["body"]["headers"], "the signature is not forwarded"


def test_sdk_post_json(gw):
    r = sdk(gw, "call", "POST", "/items", data={"item": 42, "note": "café"})
    assert r["status"] == 200, r
    assert json.loads(r["body"]["body"]) == {"item": 42, "note": "café"}


def test_sdk_post_form(gw):
    r = sdk(gw, "call", "POST", "/items/form", data={"a": "1", "b": "two words", "c": "中"},
            headers={"content-type": "application/x-www-form-urlencoded"})
    assert r["status"] == 200, r
    assert "b=two%20words" in r["body"]["body"]


def test_sdk_encoded_path(gw):
    r = sdk(gw, "call", "GET", "/items/a%20b/%E4%B8%AD")
    assert r["status"] == 200, r
    assert r["body"]["path"] == "/be/items/a%20b/%E4%B8%AD"


def test_sdk_stage_header_selects_environment(gw):
    assert sdk(gw, "call", "GET", "/staged", stage="TEST")["status"] == 200
    assert sdk(gw, "call", "GET", "/staged")["status"] == 404  # RELEASE: not published


def test_sdk_wrong_secret_gets_error_message_header(gw):
    r = sdk(gw, "call", "GET", "/items", secret="not-the-secret-000")
    assert r["status"] == 401
    assert "Invalid Signature" in r["headers"]["x-ca-error-message"]
    assert "StringToSign" not in r["headers"]["x-ca-error-message"], "no echo without debug"


# --- tampering, replay, windows (SDK-signed requests, then altered) ------------

def test_tampering_with_any_signed_part_is_refused(gw):
    req = capture(gw, "POST", "/items/t", query={"a": "1"}, data={"n": 1})
    req["method"] = "POST"
    assert send(gw, req).status == 200
    before = gw.backend.hits
    cases = {
        "query": dict(path=req["path"].replace("a=1", "a=2")),
        "path": dict(path=req["path"].replace("/items/t", "/items/u")),
        "signed header": dict(headers={"x-ca-stage": "TEST"}),
        "accept": dict(headers={"accept": "text/plain"}),
        "signature": dict(headers={"x-ca-signature": "AAAA" + req["headers"]["x-ca-signature"][4:]}),
    }
    for what, change in cases.items():
        fresh = capture(gw, "POST", "/items/t", query={"a": "1"}, data={"n": 1})
        fresh["method"] = "POST"
        assert_refused(send(gw, fresh, **change), "Invalid Signature")
    tampered_body = capture(gw, "POST", "/items/t", query={"a": "1"}, data={"n": 1})
    tampered_body["method"] = "POST"
    assert_refused(send(gw, tampered_body, body='{"n":2}'), "Invalid Content-MD5")
    assert gw.backend.hits == before


def test_expired_timestamp(gw):
    req = capture(gw, "GET", "/items", headers={"x-ca-timestamp": str(int(time.time() * 1000) - 16 * 60 * 1000)})
    assert_refused(send(gw, req), "Timestamp Expired")


def test_unknown_key(gw):
    assert_refused(send(gw, capture(gw, "GET", "/items", key="nobody000000")), "Invalid AppKey")


def test_debug_mode_echoes_string_to_sign(gw):
    req = capture(gw, "GET", "/items/dbg", secret="not-the-secret-000", headers={"x-ca-request-mode": "debug"})
    r = send(gw, req)
    assert r.status == 401
    assert "Server StringToSign:GET#application/json#" in r.header("x-ca-error-message")
    assert "not-the-secret" not in r.body.decode()


def test_hmac_sha1_only_where_allowed(gw):
    # The Node SDK only signs with SHA-256; sign SHA-1 the documented way here.
    import base64
    import hashlib
    import hmac
    ts = str(int(time.time() * 1000))
    headers = {"accept": "application/json", "x-ca-key": KEY, "x-ca-timestamp": ts,
               "x-ca-signature-method": "HmacSHA1",
               "x-ca-signature-headers": "x-ca-key,x-ca-signature-method,x-ca-timestamp"}
    for path, status in [("/legacy", 200), ("/items", 401)]:
        sts = f"GET\napplication/json\n\n\n\nx-ca-key:{KEY}\nx-ca-signature-method:HmacSHA1\nx-ca-timestamp:{ts}\n{path}"
        sig = base64.b64encode(hmac.new(SECRET.encode(), sts.encode(), hashlib.sha1).digest()).decode()
        r = gw.request("GET", path, {**headers, "x-ca-signature": sig})
        assert r.status == status, (path, r.body)


def test_replayed_nonce_is_refused(gw):
    req = capture(gw, "GET", "/items/once")
    assert send(gw, req).status == 200
    assert_refused(send(gw, req), "Nonce Used")


def worker_connections(gw):
    import http.client
    c = http.client.HTTPConnection("127.0.0.1", gw.admin_port, timeout=5)
    c.request("GET", "/stats?filter=worker_.\\.downstream_cx_total")
    stats = c.getresponse().read().decode()
    return {line.split(".worker_")[1].split(".")[0]: int(line.rsplit(" ", 1)[1])
            for line in stats.splitlines() if f"_{gw.port}.worker_" in line}


def test_replay_across_workers_is_refused(gw):
    """The same signed request on many parallel connections: both Envoy
    workers take some of them, and exactly one is accepted."""
    for _ in range(5):
        req = capture(gw, "GET", "/items/burst")
        before = worker_connections(gw)
        results, gate = [], threading.Barrier(12)

        def fire():
            gate.wait()
            results.append(send(gw, req).status)

        threads = [threading.Thread(target=fire) for _ in range(12)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        after = worker_connections(gw)
        assert sorted(results) == [200] + [401] * 11, results
        used = [w for w in after if after[w] > before.get(w, 0)]
        if len(used) == 2:
            return  # the replays reached both workers and were still refused
    pytest.fail("connections never spread over both workers")


def test_request_id_on_every_reply(gw):
    # The Alibaba gateway sends X-Ca-Request-Id on successes too, not only
    # on its own errors; SDK users log it.
    r = send(gw, capture(gw, "GET", "/items/ok"))
    assert r.status == 200, r.body
    assert r.header("x-request-id")
    assert r.header("x-ca-request-id") == r.header("x-request-id")


def test_signature_covers_the_path_as_sent(gw):
    # Java's URL encoder sends `%7E` for `~`; the SDK signs the path as it
    # goes on the wire. Routing normalises (`%41` is `A`), the signature
    # is checked against what was sent.
    r = sdk(gw, "call", "GET", "/items/%7Et%41")
    assert r["status"] == 200, r
    assert r["body"]["path"] == "/be/items/~tA"
    req = capture(gw, "GET", "/items/%7Et%41")
    assert req["path"] == "/items/%7Et%41", "the SDK sends the path as given"
