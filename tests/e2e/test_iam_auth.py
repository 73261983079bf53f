"""Accounts (IAM-style): AK/SK SDK-HMAC-SHA256 requests, signed by the
vendor's real signer (PyPI `huaweicloudsdkcore`), identify the account."""

import pytest

from conftest import free_port, gateway_with_backend
from test_app_auth_huawei import send, signed

AK, SK = "TENANTAK0001", "tenant-a-secret-key-01"

DEFS = """
groups:
  - name: g
    default: true
    responses:
      who:
        BACKEND_UNAVAILABLE:
          body: '{{"account":"$context.account","code":"$context.error.code"}}'
apis:
  - {{name: tenant-api, group: g, method: ANY, path: /tenant, match: prefix, auth: iam,
     backend: {{http: {{address: "{backend}", path: /be}}}}, publish: [RELEASE]}}
  - {{name: tenant-down, group: g, method: GET, path: /down, auth: iam, response: who,
     backend: {{http: {{address: "{dead}", path: /}}}}, publish: [RELEASE]}}
accounts:
  - name: tenant-a
    ak: {ak}
    sk: {sk}
apps:
  - name: some-app
    key: someAppKey01
    secret: some-app-secret
"""


@pytest.fixture(scope="module")
def gw():
    with gateway_with_backend(DEFS, dead=f"127.0.0.1:{free_port()}", ak=AK, sk=SK) as g:
        yield g


def test_account_signed_request_passes(gw):
    uri, headers, body = signed(gw, "POST", "/tenant/orders", [("q", "1")],
                                headers={"Content-Type": "application/json"}, body=b'{"a":1}', key=AK, secret=SK)
    r = send(gw, "POST", uri, headers, body)
    assert r.status == 200, r.body
    assert "authorization" not in r.json()["headers"]


def test_account_is_the_callers_identity(gw):
    uri, headers, _ = signed(gw, "GET", "/down", key=AK, secret=SK)
    r = send(gw, "GET", uri, headers)
    assert r.status == 502
    assert r.json() == {"account": "tenant-a", "code": "APIG.0201"}


def test_iam_failures_use_iam_codes(gw):
    missing = gw.request("GET", "/tenant")
    assert missing.status == 401 and missing.json()["error_code"] == "APIG.0301"
    uri, headers, _ = signed(gw, "GET", "/tenant", key=AK, secret="wrong-secret-key")
    bad = send(gw, "GET", uri, headers)
    assert bad.status == 401
    assert bad.json()["error_code"] == "APIG.0301"
    assert "Incorrect IAM authentication information" in bad.json()["error_msg"]
    assert SK not in bad.body.decode()
    # An app's credentials are not an account's.
    uri, headers, _ = signed(gw, "GET", "/tenant", key="someAppKey01", secret="some-app-secret")
    assert send(gw, "GET", uri, headers).status == 401
