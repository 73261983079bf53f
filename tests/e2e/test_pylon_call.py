"""`pylon call` signs requests the gateway accepts, in every scheme."""
import pytest

from conftest import gateway_with_backend
from conftest import pylon_call as call

DEFS = """
groups:
  - name: g
    default: true
apis:
  - {{name: app-api, group: g, method: ANY, path: /app, match: prefix, auth: app, app_code: http_allowed,
     backend: {{http: {{address: "{backend}", path: /be}}}}, publish: [RELEASE]}}
  - {{name: iam-api, group: g, method: GET, path: /iam, auth: iam,
     backend: {{http: {{address: "{backend}", path: /be-iam}}}}, publish: [RELEASE]}}
apps:
  - name: cli
    key: cliKey000001
    secret: cli-secret-000001
    codes: [cli-appcode-0000000001]
    authorizations: [{{group: g, api: app-api, environments: [RELEASE]}}]
accounts:
  - {{name: tenant, ak: TENANTAK0002, sk: tenant-sk-0000001}}
"""


@pytest.fixture(scope="module")
def gw():
    with gateway_with_backend(DEFS) as g:
        yield g


@pytest.mark.parametrize("scheme", ["huawei", "aliyun"])
def test_signed_get_and_post(gw, scheme):
    out = call(gw, "/app/x?b=2&a=1&s=a%20b", "--scheme", scheme, "--key", "cliKey000001", secret="cli-secret-000001")
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.startswith("HTTP/1.1 200")
    assert '"path": "/be/x?b=2&a=1&s=a%20b"' in out.stdout
    out = call(gw, "/app/post", "-X", "POST", "-H", "Content-Type: application/json", "-d", '{"n": 1}',
               "--scheme", scheme, "--key", "cliKey000001", secret="cli-secret-000001")
    assert out.returncode == 0, out.stdout + out.stderr
    assert '"body": "{\\"n\\": 1}"' in out.stdout


@pytest.mark.parametrize("scheme", ["huawei", "aliyun"])
def test_wrong_secret_fails_with_exit_22(gw, scheme):
    out = call(gw, "/app/x", "--scheme", scheme, "--key", "cliKey000001", secret="not-the-secret-1")
    assert out.returncode == 22
    assert out.stdout.startswith("HTTP/1.1 401")
    assert "not-the-secret" not in out.stdout


def test_app_code_and_account(gw):
    out = call(gw, "/app/code", "--scheme", "appcode", env={"PYLON_APP_CODE": "cli-appcode-0000000001"})
    assert out.returncode == 0, out.stdout + out.stderr
    out = call(gw, "/iam", "--key", "TENANTAK0002", secret="tenant-sk-0000001")
    assert out.returncode == 0, out.stdout + out.stderr
    assert '"path": "/be-iam"' in out.stdout


def test_missing_credentials_is_a_usage_error(gw):
    out = call(gw, "/app/x", "--scheme", "huawei")
    assert out.returncode == 2
    assert "--key" in out.stderr
