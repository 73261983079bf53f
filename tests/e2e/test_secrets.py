"""No AppSecret, AppCode or account SK in anything Envoy shows: the plan
carries them sealed, Envoy hands the key to the filter from its environment,
and without the right key (or with a tampered plan) nothing is served."""
import base64
import re

import pytest

from conftest import (SEAL_KEY, Envoy, compile_defs, compiled_with_backend, free_port,
                      base_env, gateway_with_backend, refuses_connections, write_defs)
from conftest import pylon_call as call

DEFS = """
groups:
  - name: g
    default: true
apis:
  - {{name: open-api, group: g, method: GET, path: /open, match: prefix,
     backend: {{http: {{address: "{backend}", path: /be-open}}}}, publish: [RELEASE]}}
  - {{name: app-api, group: g, method: ANY, path: /app, match: prefix, auth: app, app_code: http_allowed,
     backend: {{http: {{address: "{backend}", path: /be}}}}, publish: [RELEASE]}}
  - {{name: iam-api, group: g, method: GET, path: /iam, auth: iam,
     backend: {{http: {{address: "{backend}", path: /be-iam}}}}, publish: [RELEASE]}}
apps:
  - name: alpha
    key: alphaKey0001
    secret: alpha-SECRET-7f3a9c1e55
    codes: [alpha-APPCODE-c0ffee0123456789]
    authorizations: [{{group: g, api: app-api, environments: [RELEASE]}}]
  - name: beta
    key: betaKey00002
    secret: beta-SECRET-0b1d2e3f44
    authorizations: [{{group: g, api: app-api, environments: [RELEASE]}}]
accounts:
  - {{name: tenant, ak: TENANTAK0009, sk: tenant-SK-9d8c7b6a55}}
"""

SECRETS = ["alpha-SECRET-7f3a9c1e55", "alpha-APPCODE-c0ffee0123456789", "beta-SECRET-0b1d2e3f44",
           "tenant-SK-9d8c7b6a55"]


def admin_get(gw, path):
    import http.client

    c = http.client.HTTPConnection("127.0.0.1", gw.admin_port, timeout=10)
    c.request("GET", path)
    r = c.getresponse()
    body = r.read().decode()
    c.close()
    assert r.status == 200, body
    return body


@pytest.fixture(scope="module")
def gw():
    with gateway_with_backend(DEFS) as g:
        yield g


def test_admin_endpoints_and_log_show_no_secret(gw):
    dump = admin_get(gw, "/config_dump")
    # The filter's configuration is there (so the check below means something),
    # and the key is named, never given.
    assert "alphaKey0001" in dump and "TENANTAK0009" in dump
    assert "PYLON_SEAL_KEY" in dump
    assert "pylon-sealed:v1:" in dump
    shown = dump + admin_get(gw, "/server_info") + admin_get(gw, "/config_dump?include_eds")
    for value in SECRETS + [SEAL_KEY]:
        assert value not in shown, f"{value} is in what the admin port shows"
    # Signed and AppCode requests are logged by nobody either.
    assert call(gw, "/app/x", "--scheme", "appcode",
                env={"PYLON_APP_CODE": "alpha-APPCODE-c0ffee0123456789"}).returncode == 0
    log = gw.log.read_text() if gw.log.exists() else ""
    for value in SECRETS + [SEAL_KEY]:
        assert value not in log


@pytest.mark.parametrize("scheme", ["huawei", "aliyun"])
def test_signed_requests_still_work(gw, scheme):
    for key, secret in (("alphaKey0001", "alpha-SECRET-7f3a9c1e55"), ("betaKey00002", "beta-SECRET-0b1d2e3f44")):
        out = call(gw, "/app/x", "--scheme", scheme, "--key", key, secret=secret)
        assert out.returncode == 0, out.stdout + out.stderr
        assert '"path": "/be/x"' in out.stdout
    # One app's secret does not sign for the other.
    out = call(gw, "/app/x", "--scheme", scheme, "--key", "betaKey00002", secret="alpha-SECRET-7f3a9c1e55")
    assert out.stdout.startswith("HTTP/1.1 401"), out.stdout


def test_app_code_and_account_still_work(gw):
    out = call(gw, "/app/c", "--scheme", "appcode", env={"PYLON_APP_CODE": "alpha-APPCODE-c0ffee0123456789"})
    assert out.returncode == 0, out.stdout + out.stderr
    out = call(gw, "/iam", "--key", "TENANTAK0009", secret="tenant-SK-9d8c7b6a55")
    assert out.returncode == 0, out.stdout + out.stderr
    assert '"path": "/be-iam"' in out.stdout


def test_compiled_files_hold_no_secret_and_are_private(workdir):
    defs = write_defs(DEFS.format(backend="127.0.0.1:9"), workdir)
    res = compile_defs(defs, workdir / "out", free_port(), free_port())
    assert res.returncode == 0, res.stderr
    for name in ("envoy.yaml", "pylon.json"):
        path = workdir / "out" / name
        text = path.read_text()
        assert "pylon-sealed:v1:" in text
        for value in SECRETS + [SEAL_KEY]:
            assert value not in text, f"{value} in {name}"
        assert path.stat().st_mode & 0o777 == 0o600
    # Without a key the compiler refuses, and writes nothing.
    res = compile_defs(defs, workdir / "nokey", free_port(), free_port(), env=base_env())
    assert res.returncode != 0
    assert "PYLON_SEAL_KEY" in res.stderr and "pylon keygen" in res.stderr
    assert not (workdir / "nokey" / "envoy.yaml").exists()


@pytest.fixture
def compiled(workdir):
    with compiled_with_backend(DEFS, workdir) as c:
        yield c


def swap_sealed_secrets(text):
    """Gives app alpha the sealed secret of app beta and beta alpha's."""
    sealed = re.findall(r'"secret":"(pylon-sealed:v1:[^"]+)"', text)
    assert len(sealed) == 2, text
    return text.replace(sealed[0], "SWAP").replace(sealed[1], sealed[0]).replace("SWAP", sealed[1])


def flip_one_byte(text):
    """Changes one byte of the first sealed value's ciphertext."""
    m = re.search(r"pylon-sealed:v1:([0-9a-f]+):([A-Za-z0-9+/=]+)", text)
    raw = bytearray(base64.b64decode(m.group(2)))
    raw[-1] ^= 1
    return text.replace(m.group(0), f"pylon-sealed:v1:{m.group(1)}:{base64.b64encode(raw).decode()}")


WRONG_KEY = base64.b64encode(b"\x01" * 32).decode()


@pytest.mark.parametrize("case,key,edit,logged", [
    ("no key", None, None, "PYLON_SEAL_KEY"),
    ("wrong key", WRONG_KEY, None, "PYLON_SEAL_KEY"),
    ("malformed key", "not a key", None, "PYLON_SEAL_KEY is not base64"),
    ("tampered value", SEAL_KEY, flip_one_byte, "does not open"),
    ("secrets swapped between apps", SEAL_KEY, swap_sealed_secrets, "does not open"),
])
def test_without_the_right_key_or_plan_nothing_is_served(compiled, workdir, case, key, edit, logged):
    config, port, admin, backend = compiled
    env = base_env() if key is None else {**base_env(), "PYLON_SEAL_KEY": key}
    if edit:
        changed = workdir / "edited.yaml"
        changed.write_text(edit(config.read_text()))
        config = changed
    envoy = Envoy(config, port, admin, workdir, env=env)
    try:
        if envoy.wait_ready(timeout=15):
            # Should Envoy serve at all, every request is a gateway error.
            for path in ("/open/x", "/app/x", "/iam"):
                r = envoy.request("GET", path, headers={"X-Apig-AppCode": "alpha-APPCODE-c0ffee0123456789"})
                assert r.status >= 500, (case, path, r.status, r.body)
        else:
            assert envoy.proc.poll() not in (None, 0), f"{case}: Envoy neither served nor refused"
            assert refuses_connections(port)
        assert backend.hits == 0
        log = envoy.log.read_text()
        assert "pylon" in log and logged in log, log
        for value in SECRETS + [SEAL_KEY]:
            assert value not in log
    finally:
        envoy.stop()


def test_a_previous_key_still_serves_during_rotation(compiled, workdir):
    """Envoy restarted with a new key and the old one as previous still loads
    a plan sealed with the old key."""
    config, port, admin, backend = compiled
    env = {**base_env(), "PYLON_SEAL_KEY": WRONG_KEY, "PYLON_SEAL_KEY_PREVIOUS": SEAL_KEY}
    envoy = Envoy(config, port, admin, workdir, env=env)
    try:
        assert envoy.wait_ready(), envoy.log.read_text()
        r = envoy.request("GET", "/app/x", headers={"X-Apig-AppCode": "alpha-APPCODE-c0ffee0123456789"})
        assert r.status == 200, r.body
        assert backend.hits == 1
    finally:
        envoy.stop()
