"""APP authentication with Huawei's SDK-HMAC-SHA256, signed by the vendor's
real signer (PyPI `huaweicloudsdkcore`), verified by the filter on a real Envoy."""
import datetime
import tempfile
from urllib.parse import quote

import pytest
from huaweicloudsdkcore.auth.credentials import BasicCredentials
from huaweicloudsdkcore.sdk_request import SdkRequest
from huaweicloudsdkcore.signer.signer import Signer

from conftest import Backend, serving

KEY, SECRET = "mobileKey0001", "mobile-secret-0123456789"
OTHER_KEY, OTHER_SECRET = "otherKey00002", "other-secret-9876543210"

DEFS = """
environments:
  - name: TEST
groups:
  - name: shop
    default: true
apis:
  - name: orders
    group: shop
    method: ANY
    path: /orders
    match: prefix
    auth: app
    backend: {{http: {{address: "{backend}", path: /be/orders}}}}
    publish: [RELEASE, TEST]
  - name: mocked
    group: shop
    method: POST
    path: /mocked
    auth: app
    backend: {{mock: {{status: 200, body: "mock ok"}}}}
    publish: [RELEASE]
  - name: open
    group: shop
    method: GET
    path: /open
    backend: {{http: {{address: "{backend}", path: /be/open}}}}
    publish: [RELEASE]
  - name: denied-context
    group: shop
    method: GET
    path: /ctx
    auth: app
    response: ids
    backend: {{http: {{address: "{backend}", path: /be/ctx}}}}
    publish: [RELEASE]
apps:
  - name: mobile
    key: {key}
    secret: {{env: PYLON_TEST_MOBILE_SECRET}}
    authorizations:
      - {{group: shop, api: orders, environments: [RELEASE]}}
      - {{group: shop, api: mocked, environments: [RELEASE]}}
  - name: other
    key: {other_key}
    secret: "{other_secret}"
    authorizations:
      - {{group: shop, api: orders, environments: [TEST]}}
"""

RESPONSES = """
    responses:
      ids:
        UNAUTHORIZED:
          body: '{"code":"$context.error.code","app":"$context.appId"}'
"""


@pytest.fixture(scope="module")
def gw(monkeypatch_module):
    backend = Backend("be")
    monkeypatch_module.setenv("PYLON_TEST_MOBILE_SECRET", SECRET)
    defs = DEFS.format(backend=backend.address, key=KEY, other_key=OTHER_KEY, other_secret=OTHER_SECRET)
    defs = defs.replace("    default: true\n", "    default: true\n" + RESPONSES, 1)
    with tempfile.TemporaryDirectory(prefix="pylon-e2e-") as work:
        with serving(defs, work, backend) as g:
            yield g


@pytest.fixture(scope="module")
def monkeypatch_module():
    mp = pytest.MonkeyPatch()
    yield mp
    mp.undo()


def signed(gw, method, path, query=(), headers=None, body=b"", key=KEY, secret=SECRET):
    """Signs with the vendor SDK and returns what goes on the wire."""
    req = SdkRequest(method=method, schema="http", host=f"127.0.0.1:{gw.port}", resource_path=path,
                     query_params=list(query), header_params=dict(headers or {}), body=body)
    req = Signer(BasicCredentials(key, secret)).sign(req)
    wire_path, _, wire_query = req.uri.partition("?")
    uri = quote(wire_path, safe="/%") + ("?" + wire_query if wire_query else "")
    return uri, dict(req.header_params), req.body or b""


def send(gw, method, uri, headers, body=b"", **kw):
    headers = dict(headers)
    host = headers.pop("Host", None)
    return gw.request(method, uri, headers, body if (body or method in ("POST", "PUT", "PATCH")) else None,
                      host=host, **kw)


def assert_auth_failure(r, code="APIG.0303", status=401):
    assert r.status == status, (r.status, r.body)
    body = r.json()
    assert body["error_code"] == code
    assert SECRET not in r.body.decode() and OTHER_SECRET not in r.body.decode()
    return body


QUERIES = [
    [("limit", "2"), ("marker", "13551d6b")],
    [("a", "1"), ("a", "0"), ("b", "2")],                 # repeated keys
    [("empty", ""), ("x", "y")],                          # empty value
    [("q w", "x y")],                                     # spaces
    [("plus", "1+1=2"), ("slash", "a/b")],                # + and reserved characters
    [("name", "中文"), ("emoji", "é")],                   # non-ASCII
]


@pytest.mark.parametrize("query", QUERIES, ids=["plain", "repeated", "empty", "spaces", "plus", "non-ascii"])
def test_vendor_sdk_signed_get_passes(gw, query):
    uri, headers, body = signed(gw, "GET", "/orders/list", query)
    r = send(gw, "GET", uri, headers)
    assert r.status == 200, r.body
    seen = r.json()
    assert seen["path"].startswith("/be/orders/list")
    assert "authorization" not in seen["headers"], "credentials are not forwarded"


def test_vendor_sdk_signed_post_json(gw):
    body = b'{"item": 42, "note": "caf\\u00e9"}'
    uri, headers, body = signed(gw, "POST", "/orders", headers={"Content-Type": "application/json"}, body=body)
    r = send(gw, "POST", uri, headers, body)
    assert r.status == 200, r.body
    assert r.json()["body"] == body.decode()


def test_vendor_sdk_signed_post_form(gw):
    body = b"a=1&b=two+words&c=%E4%B8%AD"
    uri, headers, body = signed(gw, "POST", "/orders/form",
                                headers={"Content-Type": "application/x-www-form-urlencoded"}, body=body)
    assert headers.get("X-Sdk-Content-Sha256") == "UNSIGNED-PAYLOAD"  # what this SDK does for forms
    r = send(gw, "POST", uri, headers, body)
    assert r.status == 200, r.body
    assert r.json()["body"] == body.decode()


def test_vendor_sdk_signed_large_body(gw):
    body = b'{"blob":"' + b"x" * (2 * 1024 * 1024) + b'"}'
    uri, headers, body = signed(gw, "PUT", "/orders/big", headers={"Content-Type": "application/json"}, body=body)
    r = send(gw, "PUT", uri, headers, body)
    assert r.status == 200, r.body[:200]
    assert len(r.json()["body"]) == len(body)


def test_encoded_path_characters(gw):
    uri, headers, _ = signed(gw, "GET", "/orders/a b/%E4%B8%AD/x~y")
    r = send(gw, "GET", uri, headers)
    assert r.status == 200, r.body
    assert r.json()["path"] == "/be/orders/a%20b/%E4%B8%AD/x~y"


def test_mock_backend_behind_app_auth(gw):
    uri, headers, body = signed(gw, "POST", "/mocked", headers={"Content-Type": "application/json"}, body=b"{}")
    assert send(gw, "POST", uri, headers, body).body == b"mock ok"
    assert_auth_failure(send(gw, "POST", "/mocked", {"Content-Type": "application/json"}, b"{}"), status=401)


def test_tampering_with_any_signed_part_is_refused(gw):
    uri, headers, body = signed(gw, "POST", "/orders/t", [("a", "1")],
                                headers={"Content-Type": "application/json", "X-Custom": "v"}, body=b'{"n":1}')
    assert send(gw, "POST", uri, headers, body).status == 200
    before = gw.backend.hits
    for what, (u, h, b) in {
        "query": (uri.replace("a=1", "a=2"), headers, body),
        "path": (uri.replace("/orders/t", "/orders/u"), headers, body),
        "body": (uri, headers, b'{"n":2}'),
        "signed header": (uri, {**headers, "X-Custom": "w"}, body),
        "date": (uri, {**headers, "X-Sdk-Date": "20200101T000000Z"}, body),
        "signature": (uri, {**headers, "Authorization": headers["Authorization"][:-4] + "0000"}, body),
    }.items():
        r = send(gw, "POST", u, h, b)
        assert_auth_failure(r)
    assert gw.backend.hits == before, "refused requests never reach the backend"


def test_wrong_secret_and_unknown_key(gw):
    uri, headers, _ = signed(gw, "GET", "/orders", secret="not-the-secret")
    body = assert_auth_failure(send(gw, "GET", uri, headers))
    assert "verify signature fail" in body["error_msg"]
    assert "canonicalRequest" not in body["error_msg"], "no echo without debug"
    uri, headers, _ = signed(gw, "GET", "/orders", key="nobody000001")
    assert "app not found" in assert_auth_failure(send(gw, "GET", uri, headers))["error_msg"]


def test_expired_date(gw):
    old = (datetime.datetime.utcnow() - datetime.timedelta(minutes=16)).strftime("%Y%m%dT%H%M%SZ")
    uri, headers, _ = signed(gw, "GET", "/orders", headers={"X-Sdk-Date": old})
    assert "expired" in assert_auth_failure(send(gw, "GET", uri, headers))["error_msg"]
    fresh = (datetime.datetime.utcnow() - datetime.timedelta(minutes=10)).strftime("%Y%m%dT%H%M%SZ")
    uri, headers, _ = signed(gw, "GET", "/orders", headers={"X-Sdk-Date": fresh})
    assert send(gw, "GET", uri, headers).status == 200


def test_missing_credentials(gw):
    r = gw.request("GET", "/orders")
    assert r.status == 401
    assert r.json()["error_code"] == "APIG.0303"
    assert r.json()["error_msg"] == "Authentication information is missing"


def test_debug_mode_echoes_canonical_request_without_secrets(gw):
    uri, headers, _ = signed(gw, "GET", "/orders/dbg", [("x", "1")], headers={"X-Apig-Mode": "debug"},
                             secret="not-the-secret")
    body = assert_auth_failure(send(gw, "GET", uri, headers))
    assert body["error_msg"].startswith(
        "Incorrect app authentication information: verify signature fail, canonicalRequest:GET|/orders/dbg/|x=1|")
    assert "not-the-secret" not in body["error_msg"]


def test_app_not_authorized_for_api_or_environment(gw):
    # `other` may call `orders` in TEST only.
    uri, headers, _ = signed(gw, "GET", "/orders", key=OTHER_KEY, secret=OTHER_SECRET)
    r = send(gw, "GET", uri, headers)
    assert r.status == 403 and r.json()["error_code"] == "APIG.0304"
    uri, headers, _ = signed(gw, "GET", "/orders", headers={"X-Stage": "TEST"}, key=OTHER_KEY, secret=OTHER_SECRET)
    assert send(gw, "GET", uri, headers).status == 200
    # `mobile` may call `orders` in RELEASE only.
    uri, headers, _ = signed(gw, "GET", "/orders", headers={"X-Stage": "TEST"})
    assert send(gw, "GET", uri, headers).status == 403


def test_app_id_reaches_response_templates(gw):
    uri, headers, _ = signed(gw, "GET", "/ctx")
    r = send(gw, "GET", uri, headers)
    assert r.status == 403
    body = r.json()
    assert body["code"] == "APIG.0304"
    assert len(body["app"]) == 32


def test_no_auth_api_needs_no_credentials(gw):
    assert gw.request("GET", "/open").status == 200
