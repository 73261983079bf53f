"""Parameters and the caller's identity: `appId` and `account` system
parameters, and parameter errors answered only after authentication —
including requests whose signature covers a body (dispatched before the body
is in, verified after). Signed by the vendor's real signer."""
import hashlib

import pytest

from conftest import gateway_with_backend
from test_app_auth_huawei import send, signed

KEY, SECRET = "paramsAppKey01", "params-app-secret-0001"
AK, SK = "PARAMSAK0001", "params-tenant-secret-01"

DEFS = """
groups:
  - name: g
    default: true
apis:
  - name: app-api
    group: g
    method: ANY
    path: /app/{{id}}
    auth: app
    parameters:
      - {{name: id, in: path, type: number}}
      - {{name: n, in: query, type: number, max: 10}}
    backend:
      http: {{address: "{backend}", path: "/be/{{id}}"}}
      params:
        - {{name: X-App-Id, in: header, system: appId}}
        - {{name: app, in: query, system: appId}}
    publish: [RELEASE]
  - name: iam-api
    group: g
    method: ANY
    path: /iam
    auth: iam
    parameters:
      - {{name: n, in: query, type: number, max: 10}}
    backend:
      http: {{address: "{backend}", path: /be/iam}}
      params:
        - {{name: X-Account, in: header, system: account}}
    publish: [RELEASE]
apps:
  - name: params-app
    key: {key}
    secret: "{secret}"
    authorizations:
      - {{group: g, api: app-api, environments: [RELEASE]}}
accounts:
  - name: tenant-p
    ak: {ak}
    sk: "{sk}"
"""


@pytest.fixture(scope="module")
def gw():
    with gateway_with_backend(DEFS, key=KEY, secret=SECRET, ak=AK, sk=SK) as g:
        yield g


def app_id(_gw):
    """The app's id: the compiler derives it from the app's name."""
    return hashlib.sha256(b"app/params-app").hexdigest()[:32]


@pytest.mark.parametrize("method,body", [("GET", b""), ("POST", b'{"order": 1}')])
def test_the_authenticated_app_reaches_the_backend(gw, method, body):
    headers = {"Content-Type": "application/json"} if body else {}
    uri, headers, body = signed(gw, method, "/app/7", [("n", "3")], headers=headers, body=body,
                                key=KEY, secret=SECRET)
    r = send(gw, method, uri, headers, body)
    assert r.status == 200, r.body
    seen = r.json()
    assert seen["headers"]["x-app-id"] == app_id(gw)
    assert seen["path"] == f"/be/7?n=3&app={seen['headers']['x-app-id']}"
    assert seen["body"] == body.decode()


def test_a_forged_app_id_header_is_replaced(gw):
    uri, headers, _ = signed(gw, "GET", "/app/7", headers={"X-App-Id": "forged"}, key=KEY, secret=SECRET)
    seen = send(gw, "GET", uri, headers).json()
    assert seen["headers"]["x-app-id"] == app_id(gw) != "forged"


@pytest.mark.parametrize("method,body", [("GET", b""), ("POST", b'{"a": 1}')])
def test_the_authenticated_account_reaches_the_backend(gw, method, body):
    uri, headers, body = signed(gw, method, "/iam", headers={"Content-Type": "application/json"},
                                body=body, key=AK, secret=SK)
    r = send(gw, method, uri, headers, body)
    assert r.status == 200, r.body
    assert r.json()["headers"]["x-account"] == "tenant-p"


@pytest.mark.parametrize("method,body", [("GET", b""), ("POST", b'{"a": 1}')])
def test_parameter_errors_come_after_authentication(gw, method, body):
    before = gw.backend.hits
    # A bad parameter from an unknown caller: the caller learns only that
    # it is not authenticated.
    uri, headers, body_ = signed(gw, method, "/app/7", [("n", "99")], body=body,
                                 key=KEY, secret="not-the-secret-000000")
    r = send(gw, method, uri, headers, body_)
    assert r.status == 401 and r.json()["error_code"] == "APIG.0303"
    # The same from the real app: the parameter is named.
    uri, headers, body_ = signed(gw, method, "/app/7", [("n", "99")], body=body, key=KEY, secret=SECRET)
    r = send(gw, method, uri, headers, body_)
    assert r.status == 400, r.body
    assert r.json()["error_code"] == "APIG.0201"
    assert "'n' (query) must be at most 10" in r.json()["error_msg"]
    assert gw.backend.hits == before


def test_a_signed_body_with_a_false_claim_never_reaches_the_backend(gw):
    before = gw.backend.hits
    uri, headers, body = signed(gw, "POST", "/app/7", body=b'{"x": 1}', key=KEY, secret=SECRET)
    r = send(gw, "POST", uri, headers, b'{"x": 2}')  # body changed after signing
    assert r.status == 401
    assert gw.backend.hits == before
