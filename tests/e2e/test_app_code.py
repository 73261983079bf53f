"""AppCode simple authentication in each accepted form, HTTPS-only unless an
API allows plain HTTP, with Alibaba's real SimpleClient (npm) among callers."""

import pytest

from conftest import gateway_with_backend
from test_app_auth_aliyun import sdk

CODE = "appcode-0123456789abcdef0123"
OTHER_CODE = "appcode-fedcba9876543210fedc"

DEFS = """
groups:
  - name: g
    default: true
apis:
  - {{name: plain, group: g, method: ANY, path: /plain, match: prefix, auth: app, app_code: http_allowed,
     backend: {{http: {{address: "{backend}", path: /be}}}}, publish: [RELEASE]}}
  - {{name: tls-only, group: g, method: GET, path: /tls-only, auth: app, app_code: https,
     backend: {{http: {{address: "{backend}", path: /be}}}}, publish: [RELEASE]}}
  - {{name: signed-only, group: g, method: GET, path: /signed-only, auth: app,
     backend: {{http: {{address: "{backend}", path: /be}}}}, publish: [RELEASE]}}
apps:
  - name: coder
    key: coderKey0001
    secret: coder-secret-01
    codes: ["{code}"]
    authorizations:
      - {{group: g, api: plain, environments: [RELEASE]}}
      - {{group: g, api: tls-only, environments: [RELEASE]}}
      - {{group: g, api: signed-only, environments: [RELEASE]}}
  - name: outsider
    key: outsiderKey1
    secret: outsider-secret
    codes: [{{env: PYLON_TEST_OTHER_CODE}}]
"""


@pytest.fixture(scope="module")
def gw():
    mp = pytest.MonkeyPatch()
    mp.setenv("PYLON_TEST_OTHER_CODE", OTHER_CODE)
    try:
        with gateway_with_backend(DEFS, code=CODE) as g:
            yield g
    finally:
        mp.undo()


def refused(r, says, status=401):
    assert r.status == status, (r.status, r.body)
    assert says in r.json()["error_msg"]
    assert CODE not in r.body.decode()


@pytest.mark.parametrize("form", ["header", "authorization", "query"])
def test_each_form_is_accepted_and_not_forwarded(gw, form):
    headers, path = {}, "/plain/x?keep=1"
    if form == "header":
        headers["X-Apig-AppCode"] = CODE
    elif form == "authorization":
        headers["Authorization"] = f"APPCODE {CODE}"
    else:
        path += f"&AppCode={CODE}"
    r = gw.request("GET", path, headers)
    assert r.status == 200, r.body
    seen = r.json()
    assert seen["path"] == "/be/x?keep=1"
    assert CODE not in str(seen["headers"]), "the AppCode stays at the gateway"


def test_alibaba_simple_client(gw):
    r = sdk(gw, "call", "GET", "/plain/simple", appCode=CODE)
    assert r["status"] == 200, r
    r = sdk(gw, "call", "GET", "/plain/simple", appCode="appcode-wrong-00000000000")
    assert r["status"] == 401
    assert "Invalid AppCode" in r["headers"]["x-ca-error-message"]


def test_refused_over_http_unless_allowed(gw):
    refused(gw.request("GET", "/tls-only", {"X-Apig-AppCode": CODE}), "only accepted over HTTPS")
    # A caller cannot claim HTTPS: Envoy sets x-forwarded-proto itself.
    refused(gw.request("GET", "/tls-only", {"X-Apig-AppCode": CODE, "X-Forwarded-Proto": "https"}),
            "only accepted over HTTPS")


def test_not_enabled_wrong_code_and_unauthorized_app(gw):
    refused(gw.request("GET", "/signed-only", {"X-Apig-AppCode": CODE}), "not enabled")
    refused(gw.request("GET", "/plain", {"X-Apig-AppCode": "appcode-not-a-real-one-000"}), "Invalid AppCode")
    r = gw.request("GET", "/plain", {"X-Apig-AppCode": OTHER_CODE})
    assert r.status == 403 and r.json()["error_code"] == "APIG.0304"
