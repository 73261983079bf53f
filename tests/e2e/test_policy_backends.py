"""Policy backends on a real Envoy: each condition type (source, parameter,
reqPath, reqMethod; equal, enum, pattern), each effect (any, all), first
match wins in order, and each policy's own backend (address with
`#variables#`, path, method, timeout, parameters, or a mock)."""
import json
import tempfile

import pytest

from conftest import Backend, start_gateway

DEFS = """
environments:
  - name: TEST
groups:
  - name: g
    default: true
    variables:
      RELEASE: {{vip: "{vip}"}}
      TEST: {{vip: "{vip_test}"}}
apis:
  - name: routed
    group: g
    method: ANY
    path: /r/{{id}}
    parameters:
      - {{name: tier, in: query}}
      - {{name: X-Region, in: header, default: eu}}
    policies:
      - name: by-param-equal
        conditions: [{{param: tier, type: equal, value: gold}}]
        backend:
          http: {{address: "#vip#", path: "/gold/{{id}}", method: POST}}
          params: [{{name: X-Policy, in: header, constant: gold}}]
      - name: by-param-enum
        conditions: [{{param: tier, type: enum, value: "silver, bronze"}}]
        backend:
          http: {{address: "{default}", path: /enum}}
      - name: by-pattern-all
        effect: all
        conditions:
          - {{param: tier, type: pattern, value: "^t[0-9]+$"}}
          - {{system: reqMethod, type: enum, value: "PUT,DELETE"}}
        backend:
          mock: {{status: 202, body: pattern-and-method}}
      - name: by-path-or-region
        effect: any
        conditions:
          - {{system: reqPath, type: pattern, value: "/r/9[0-9]*"}}
          - {{param: X-Region, type: equal, value: us}}
        backend:
          http: {{address: "{default}", path: /path-or-region, timeout: 300}}
      - name: by-method
        conditions: [{{system: reqMethod, type: equal, value: PATCH}}]
        backend:
          mock: {{status: 200, body: patched}}
    backend:
      http: {{address: "{default}", path: "/default/{{id}}"}}
    publish: [RELEASE, TEST]

  - name: by-source
    group: g
    method: GET
    path: /src
    policies:
      - name: loopback
        conditions: [{{source: "127.0.0.0/8"}}]
        backend:
          mock: {{body: from-loopback}}
    backend:
      mock: {{body: from-elsewhere}}
    publish: [RELEASE]

  - name: by-other-source
    group: g
    method: GET
    path: /src-other
    policies:
      - name: elsewhere
        conditions: [{{source: "10.0.0.0/8, 192.0.2.7"}}]
        backend:
          mock: {{body: from-10}}
    backend:
      mock: {{body: default}}
    publish: [RELEASE]
"""


@pytest.fixture(scope="module")
def gw():
    default, vip, vip_test = Backend("default"), Backend("vip"), Backend("vip-test")
    defs = DEFS.format(default=default.address, vip=vip.address, vip_test=vip_test.address)
    with tempfile.TemporaryDirectory(prefix="pylon-e2e-") as work:
        g = start_gateway(defs, work)
        g.backends = {"default": default, "vip": vip, "vip-test": vip_test}
        try:
            yield g
        finally:
            g.stop()
            for b in g.backends.values():
                b.close()


def where(r):
    """(backend name, method, path) the request reached, or the mock's body."""
    assert r.status in (200, 202), (r.status, r.body)
    try:
        seen = json.loads(r.body)
    except ValueError:
        return r.body.decode()
    return seen["backend"], seen["method"], seen["path"]


def test_no_policy_matches_default_backend(gw):
    assert where(gw.request("GET", "/r/1")) == ("default", "GET", "/default/1")
    assert where(gw.request("GET", "/r/1?tier=plain")) == ("default", "GET", "/default/1?tier=plain")


def test_equal_takes_its_own_address_path_method_and_params(gw):
    r = gw.request("GET", "/r/5?tier=gold")
    assert where(r) == ("vip", "POST", "/gold/5?tier=gold")
    assert r.json()["headers"]["x-policy"] == "gold"
    # `#vip#` resolves per environment.
    r = gw.request("GET", "/r/5?tier=gold", {"X-Stage": "TEST"})
    assert where(r) == ("vip-test", "POST", "/gold/5?tier=gold")
    # Equal is exact.
    assert where(gw.request("GET", "/r/5?tier=golden"))[0:1] == ("default",)


def test_enum_matches_any_listed_value(gw):
    assert where(gw.request("GET", "/r/1?tier=silver"))[2] == "/enum?tier=silver"
    assert where(gw.request("GET", "/r/1?tier=bronze"))[2] == "/enum?tier=bronze"
    assert where(gw.request("GET", "/r/1?tier=iron"))[2] == "/default/1?tier=iron"


def test_all_needs_every_condition(gw):
    assert where(gw.request("PUT", "/r/1?tier=t42")) == "pattern-and-method"
    assert where(gw.request("DELETE", "/r/1?tier=t7")) == "pattern-and-method"
    # Pattern holds, method does not; method holds, pattern does not.
    assert where(gw.request("GET", "/r/1?tier=t42"))[0] == "default"
    assert where(gw.request("PUT", "/r/1?tier=x42"))[0] == "default"


def test_any_needs_one_condition_and_defaults_count(gw):
    # reqPath pattern alone.
    assert where(gw.request("GET", "/r/99"))[2] == "/path-or-region"
    # A pattern must match the whole value (Huawei user guide §5.2.1):
    # /r/19 contains a match of /r/9[0-9]* but is not one.
    assert where(gw.request("GET", "/r/19"))[2] == "/default/19"
    assert where(gw.request("GET", "/r/9x"))[2] == "/default/9x"
    # The header parameter alone.
    assert where(gw.request("GET", "/r/1", {"X-Region": "us"}))[2] == "/path-or-region"
    # Its default (eu) does not match.
    assert where(gw.request("GET", "/r/1"))[2] == "/default/1"


def test_first_matching_policy_wins(gw):
    # tier=gold (policy 1) and path /r/9x (policy 4) both hold: policy 1 wins.
    assert where(gw.request("GET", "/r/91?tier=gold"))[0:2] == ("vip", "POST")
    # PATCH with tier=silver: policy 2 (enum) comes before policy 5 (method).
    assert where(gw.request("PATCH", "/r/1?tier=silver"))[2] == "/enum?tier=silver"
    assert where(gw.request("PATCH", "/r/1")) == "patched"


def test_source_conditions(gw):
    assert where(gw.request("GET", "/src")) == "from-loopback"
    assert where(gw.request("GET", "/src-other")) == "default"
    # A client's X-Forwarded-For is not its address (no trusted hops).
    assert where(gw.request("GET", "/src-other", {"X-Forwarded-For": "10.1.2.3"})) == "default"


def test_a_policy_backends_timeout_is_its_own(gw):
    r = gw.request("GET", "/r/99?sleep_ms=600")
    assert r.status == 504, r.body
    assert r.json()["error_code"] == "APIG.0201"
    # The default backend (5 s) waits that long.
    assert where(gw.request("GET", "/r/1?sleep_ms=600"))[0] == "default"


def test_trusted_proxy_address_drives_source_conditions(workdir):
    defs = """
gateway:
  trusted_hops: 1
groups:
  - name: g
    default: true
apis:
  - name: s
    group: g
    method: GET
    path: /s
    policies:
      - name: ten
        conditions: [{source: "10.0.0.0/8"}]
        backend: {mock: {body: ten}}
    backend: {mock: {body: other}}
    publish: [RELEASE]
"""
    gw = start_gateway(defs, workdir)
    try:
        assert gw.request("GET", "/s", {"X-Forwarded-For": "10.9.9.9"}).body == b"ten"
        assert gw.request("GET", "/s", {"X-Forwarded-For": "10.9.9.9, 203.0.113.5"}).body == b"other"
        assert gw.request("GET", "/s").body == b"other"
    finally:
        gw.stop()

