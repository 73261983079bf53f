"""The filter fails closed: a plan it cannot load means no request reaches a
backend, and what `pylon compile` writes is a bootstrap Envoy accepts."""
import json
import re
import subprocess
import time

import pytest

from conftest import ENVOY, ROOT, Envoy, compile_defs, compiled_with_backend, free_port, refuses_connections

DEFS = """
groups:
  - name: g
    default: true
apis:
  - name: pass
    group: g
    method: ANY
    path: /pass
    match: prefix
    backend: {{http: {{address: "{backend}", path: /}}}}
    publish: [RELEASE]
"""


@pytest.fixture
def compiled(workdir):
    with compiled_with_backend(DEFS, workdir) as c:
        yield c


@pytest.mark.parametrize("plan", [
    "{not json",
    '{"version": 99, "max_body_bytes": 1, "stages": ["RELEASE"], "groups": []}',
    "",
])
def test_unloadable_plan_serves_nothing(compiled, workdir, plan):
    config, port, admin, backend = compiled
    text = config.read_text()
    # Replace the filter's plan (a quoted YAML scalar) with a broken one.
    broken, n = re.subn(r"(?m)^(\s+value: )'\{\"version\".*$", lambda m: m.group(1) + json.dumps(plan), text)
    assert n == 1
    bad = workdir / "broken.yaml"
    bad.write_text(broken)
    envoy = Envoy(bad, port, admin, workdir)
    try:
        deadline = time.time() + 15
        while envoy.proc.poll() is None and time.time() < deadline:
            time.sleep(0.1)
        assert envoy.proc.returncode not in (None, 0), "Envoy must refuse to start with a plan the filter rejects"
        assert "pylon" in envoy.log.read_text()
        assert refuses_connections(port)
        assert backend.hits == 0
    finally:
        envoy.stop()


def test_compiled_bootstrap_passes_envoy_validate(compiled):
    config, *_ = compiled
    res = subprocess.run([str(ENVOY), "--mode", "validate", "-c", str(config)], capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "OK" in res.stdout + res.stderr


def test_bundled_example_passes_envoy_validate(workdir):
    res = compile_defs(ROOT / "examples/shop", workdir / "out", free_port(), free_port())
    assert res.returncode == 0, res.stderr
    check = subprocess.run([str(ENVOY), "--mode", "validate", "-c", str(workdir / "out/envoy.yaml")],
                           capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr


def test_working_plan_is_served(compiled, workdir):
    """Control for the tests above: the same config, unbroken, serves."""
    config, port, admin, backend = compiled
    envoy = Envoy(config, port, admin, workdir)
    try:
        assert envoy.wait_ready()
        r = envoy.request("GET", "/pass/x")
        assert r.status == 200 and r.json()["path"] == "/x"
        assert backend.hits == 1
    finally:
        envoy.stop()
