"""The walking skeleton on a real Envoy: matching, environments, backends,
gateway responses, request ids and debug headers."""
import tempfile
import time
import uuid

import pytest

from conftest import Backend, free_port, start_gateway

DEFS = """
gateway: {{max_body_bytes: 4096}}
environments:
  - name: TEST
  - name: BETA
groups:
  - name: pub
    default: true
    variables:
      RELEASE: {{host: "{release}", ver: v1}}
      TEST: {{host: "{test}", ver: v2}}
    responses:
      custom:
        BACKEND_UNAVAILABLE:
          status: 503
          body: '{{"oops":"$context.error.code","type":"$context.error.type","api":"$context.apiId","name":"$context.apiName","stage":"$context.stage","ip":"$context.sourceIp","rid":"$context.requestId","msg":"$context.error.message"}}'
  - name: other
    domains: [api.example.com, "*.wild.example.com"]
    responses:
      default:
        NOT_FOUND:
          status: 410
          body: '{{"gone":"$context.error.code","rid":"$context.requestId","stage":"$context.stage"}}'
apis:
  - {{name: exact, group: pub, method: GET, path: /exact/a, backend: {{http: {{address: "{release}", path: /be/exact}}}}, publish: [RELEASE]}}
  - {{name: prefix, group: pub, method: ANY, path: /pre/AA, match: prefix, backend: {{http: {{address: "{release}", path: /be/pre}}}}, publish: [RELEASE]}}
  - {{name: prefix-deeper, group: pub, method: GET, path: /pre/AA/deep, match: prefix, backend: {{http: {{address: "{release}", path: /be/deep/}}}}, publish: [RELEASE]}}
  - {{name: params, group: pub, method: GET, path: "/users/{{id}}/orders/{{oid}}", backend: {{http: {{address: "{release}", path: "/be/u/{{id}}/o/{{oid}}"}}}}, publish: [RELEASE]}}
  - {{name: greedy, group: pub, method: GET, path: "/files/{{path+}}", backend: {{http: {{address: "{release}", path: "/be/files/{{path}}"}}}}, publish: [RELEASE]}}
  - {{name: any, group: pub, method: ANY, path: /any, backend: {{http: {{address: "{release}", path: /be/any}}}}, publish: [RELEASE]}}
  - {{name: only-post, group: pub, method: POST, path: /only-post, backend: {{http: {{address: "{release}", path: /be/post}}}}, publish: [RELEASE]}}
  - {{name: to-post, group: pub, method: GET, path: /to-post, backend: {{http: {{address: "{release}", path: /be/to-post, method: POST}}}}, publish: [RELEASE]}}
  - {{name: staged, group: pub, method: GET, path: "/staged/{{id}}", backend: {{http: {{address: "#host#", path: "/#ver#/staged/{{id}}"}}}}, publish: [RELEASE, TEST]}}
  - {{name: release-only, group: pub, method: GET, path: /release-only, backend: {{http: {{address: "{release}", path: /be/r}}}}, publish: [RELEASE]}}
  - {{name: unpublished, group: pub, method: GET, path: /unpublished, backend: {{http: {{address: "{release}", path: /be/u}}}}, publish: []}}
  - name: mock
    group: pub
    method: GET
    path: /mock
    backend: {{mock: {{status: 201, headers: {{x-mock: "yes"}}, body: "hello from the gateway"}}}}
    publish: [RELEASE, TEST]
  - {{name: down, group: pub, method: GET, path: /down, backend: {{http: {{address: "{dead}", path: /}}}}, publish: [RELEASE]}}
  - {{name: down-custom, group: pub, method: GET, path: /down-custom, response: custom, backend: {{http: {{address: "{dead}", path: /}}}}, publish: [RELEASE]}}
  - {{name: slow, group: pub, method: ANY, path: /slow, backend: {{http: {{address: "{release}", path: /be/slow, timeout: 400}}}}, publish: [RELEASE]}}
  - {{name: default-timeout, group: pub, method: GET, path: /default-timeout, backend: {{http: {{address: "{release}", path: /be/slow}}}}, publish: [RELEASE]}}
  - {{name: same-path, group: pub, method: GET, path: "/same/{{id}}", backend: {{http: {{address: "{release}", path: "/same/{{id}}"}}}}, publish: [RELEASE]}}
  - {{name: other-api, group: other, method: GET, path: /other, backend: {{http: {{address: "{test}", path: /be/other}}}}, publish: [RELEASE]}}
"""


@pytest.fixture(scope="module")
def env():
    release, test = Backend("release"), Backend("test")
    with tempfile.TemporaryDirectory(prefix="pylon-e2e-") as work:
        defs = DEFS.format(release=release.address, test=test.address, dead=f"127.0.0.1:{free_port()}")
        gw = start_gateway(defs, work)
        gw.release, gw.test = release, test
        try:
            yield gw
        finally:
            gw.stop()
            release.close()
            test.close()


def assert_not_found(r):
    assert r.status == 404, (r.status, r.body)
    body = r.json()
    assert body["error_code"] == "APIG.0101"
    assert "does not exist" in body["error_msg"]
    assert body["request_id"] == r.header("x-request-id")
    assert r.header("content-type") == "application/json"


# --- matching -----------------------------------------------------------------

def test_exact_match_forwards_to_backend_path(env):
    r = env.request("GET", "/exact/a?q=1&q=2")
    assert r.status == 200
    seen = r.json()
    assert (seen["backend"], seen["method"], seen["path"]) == ("release", "GET", "/be/exact?q=1&q=2")
    assert seen["headers"]["host"] == env.release.address, "Host is the backend address"


def test_exact_match_does_not_match_longer_or_shorter_paths(env):
    for path in ["/exact/a/b", "/exact", "/exact/a/", "/EXACT/a"]:
        assert_not_found(env.request("GET", path))


def test_prefix_match_on_segment_boundary_passes_remainder(env):
    assert env.request("GET", "/pre/AA/CC/dd?x=1").json()["path"] == "/be/pre/CC/dd?x=1"
    assert env.request("GET", "/pre/AA").json()["path"] == "/be/pre"
    assert_not_found(env.request("GET", "/pre/AACC"))


def test_deepest_prefix_wins(env):
    # backend path /be/deep/ + remainder /x → /be/deep/x (no double slash)
    assert env.request("GET", "/pre/AA/deep/x").json()["path"] == "/be/deep/x"
    assert env.request("GET", "/pre/AA/deeper").json()["path"] == "/be/pre/deeper"


def test_path_parameters_fill_backend_template(env):
    r = env.request("GET", "/users/7/orders/o-99?verbose=true")
    assert r.json()["path"] == "/be/u/7/o/o-99?verbose=true"
    assert_not_found(env.request("GET", "/users/7/orders"))


def test_greedy_parameter_takes_one_or_more_segments(env):
    assert env.request("GET", "/files/a/b/c.txt").json()["path"] == "/be/files/a/b/c.txt"
    assert env.request("GET", "/files/one").json()["path"] == "/be/files/one"
    assert_not_found(env.request("GET", "/files"))


def test_dot_segments_are_normalised_before_matching(env):
    assert env.request("GET", "/exact/zz/../a").json()["path"] == "/be/exact"
    assert_not_found(env.request("GET", "/pre/AA/../../../etc/passwd"))


def test_any_method_accepts_every_method(env):
    for method in ["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"]:
        r = env.request(method, "/any", body=b"" if method in ("POST", "PUT", "PATCH") else None)
        assert r.status == 200, method
        assert r.json()["method"] == method
    assert env.request("HEAD", "/any").status == 200


def test_method_that_does_not_exist_is_not_found(env):
    assert_not_found(env.request("GET", "/only-post"))
    assert_not_found(env.request("DELETE", "/only-post"))
    assert env.request("POST", "/only-post", body=b"x").json()["body"] == "x"


def test_backend_method_overrides_caller_method(env):
    assert env.request("GET", "/to-post").json()["method"] == "POST"


# --- environments ---------------------------------------------------------------

def test_x_stage_selects_backend_through_variables(env):
    rel = env.request("GET", "/staged/5").json()
    assert (rel["backend"], rel["path"]) == ("release", "/v1/staged/5")
    tst = env.request("GET", "/staged/5", {"X-Stage": "TEST"}).json()
    assert (tst["backend"], tst["path"]) == ("test", "/v2/staged/5")
    explicit = env.request("GET", "/staged/5", {"X-Stage": "RELEASE"}).json()
    assert explicit["backend"] == "release"


def test_unknown_or_unpublished_stage_is_not_found(env):
    assert_not_found(env.request("GET", "/staged/5", {"X-Stage": "NOPE"}))
    assert_not_found(env.request("GET", "/staged/5", {"X-Stage": "BETA"}))  # declared, nothing published
    assert_not_found(env.request("GET", "/release-only", {"X-Stage": "TEST"}))
    assert_not_found(env.request("GET", "/unpublished"))


# --- groups and domains --------------------------------------------------------

def test_group_domains_exact_and_wildcard(env):
    for host in ["api.example.com", "API.example.com:8080", "x.wild.example.com", "a.b.wild.example.com"]:
        r = env.request("GET", "/other", host=host)
        assert r.status == 200, host
        assert r.json()["path"] == "/be/other"
    # any other host or a bare IP reaches the default group, which lacks /other
    assert_not_found(env.request("GET", "/other", host="unknown.example.org"))
    assert_not_found(env.request("GET", "/other"))
    # ...and the domain-bound group does not serve the default group's APIs
    assert env.request("GET", "/exact/a", host="api.example.com").status == 410


def test_custom_not_found_template_of_group(env):
    r = env.request("GET", "/missing", {"X-Stage": "TEST"}, host="api.example.com")
    assert r.status == 410
    body = r.json()
    assert body == {"gone": "APIG.0101", "rid": r.header("x-request-id"), "stage": "TEST"}


# --- backends and gateway responses ----------------------------------------------

def test_mock_backend_is_answered_by_gateway(env):
    before = env.release.hits + env.test.hits
    r = env.request("GET", "/mock")
    assert r.status == 201
    assert r.body == b"hello from the gateway"
    assert r.header("x-mock") == "yes"
    assert r.header("x-request-id")
    assert env.release.hits + env.test.hits == before


def test_backend_unavailable_is_502(env):
    r = env.request("GET", "/down")
    assert r.status == 502
    body = r.json()
    assert body["error_code"] == "APIG.0201"
    assert body["error_msg"] == "Backend unavailable"
    assert body["request_id"] == r.header("x-request-id")


def test_custom_response_set_renders_context_variables(env):
    r = env.request("GET", "/down-custom")
    assert r.status == 503
    body = r.json()
    assert body["oops"] == "APIG.0201"
    assert body["type"] == "BACKEND_UNAVAILABLE"
    assert len(body["api"]) == 32 and int(body["api"], 16) >= 0
    assert body["name"] == "down-custom"
    assert body["stage"] == "RELEASE"
    assert body["ip"] == "127.0.0.1"
    assert body["rid"] == r.header("x-request-id")
    assert body["msg"] == "Backend unavailable"


def test_backend_timeout_is_504_and_enforced(env):
    start = time.monotonic()
    r = env.request("GET", "/slow?sleep_ms=3000")
    elapsed = time.monotonic() - start
    assert r.status == 504
    assert r.json()["error_code"] == "APIG.0201"
    assert r.json()["error_msg"] == "Backend timeout"
    assert elapsed < 2.5, "the API's 400 ms timeout must cut the 3 s backend short"
    assert env.request("GET", "/slow?sleep_ms=10").status == 200


def test_client_cannot_change_the_timeout_or_pick_a_cluster(env):
    r = env.request("GET", "/slow?sleep_ms=3000", {"x-envoy-upstream-rq-timeout-ms": "60000"})
    assert r.status == 504
    r = env.request("GET", "/slow?sleep_ms=50", {"x-envoy-upstream-rq-timeout-ms": "1"})
    assert r.status == 200
    # An unknown path stays unknown even when naming a real cluster.
    assert_not_found(env.request("GET", "/nowhere", {"x-pylon-cluster": "backend0_http_127_0_0_1_1"}))


def test_an_api_without_a_timeout_times_out_at_the_default_5_s(env):
    # Huawei user guide: a backend timeout defaults to 5000 ms. The backend
    # route applies it itself (the filter sets no timeout header for it).
    start = time.monotonic()
    r = env.request("GET", "/default-timeout?sleep_ms=7000", timeout=15)
    elapsed = time.monotonic() - start
    assert r.status == 504, (r.status, r.body)
    assert r.json()["error_code"] == "APIG.0201"
    assert r.json()["error_msg"] == "Backend timeout"
    assert 4.5 < elapsed < 6.5, elapsed


def test_a_client_cannot_shorten_the_default_timeout(env):
    r = env.request("GET", "/default-timeout?sleep_ms=300", {"x-envoy-upstream-rq-timeout-ms": "1"})
    assert r.status == 200, (r.status, r.body)
    assert r.json()["path"] == "/be/slow?sleep_ms=300"


def test_a_backend_path_equal_to_the_request_path_reaches_the_backend_as_sent(env):
    r = env.request("GET", "/same/42?q=a%20b&q=2")
    assert r.status == 200, (r.status, r.body)
    assert r.json()["path"] == "/same/42?q=a%20b&q=2"
    assert r.json()["backend"] == "release"


def test_oversized_body_is_413(env):
    big = b"x" * 5000
    r = env.request("POST", "/slow", body=big)
    assert r.status == 413
    assert r.json()["error_code"] == "APIG.0201"
    assert r.json()["error_msg"] == "Request entity too large"
    chunked = env.request_chunked("POST", "/slow", [b"y" * 1000] * 5)
    assert chunked.status == 413
    ok = env.request("POST", "/slow", body=b"z" * 4000)
    assert ok.status == 200 and ok.json()["body"] == "z" * 4000
    ok_chunked = env.request_chunked("POST", "/slow", [b"a" * 1000, b"b" * 1000])
    assert ok_chunked.status == 200
    assert ok_chunked.json()["body"] == "a" * 1000 + "b" * 1000


# --- request ids and debug headers ---------------------------------------------------

def test_every_response_has_a_unique_request_id(env):
    ids = []
    for path in ["/exact/a", "/mock", "/missing", "/down"] * 10:
        r = env.request("GET", path)
        assert len(r.all("x-request-id")) == 1, path
        ids.append(r.header("x-request-id"))
    assert len(set(ids)) == len(ids)
    for rid in ids:
        uuid.UUID(rid)


def test_client_request_id_is_replaced(env):
    r = env.request("GET", "/exact/a", {"X-Request-Id": "chosen-by-client"})
    assert r.header("x-request-id") != "chosen-by-client"
    assert r.json()["headers"]["x-request-id"] == r.header("x-request-id"), "backend sees the same id"


def test_debug_mode_adds_latency_headers(env):
    r = env.request("GET", "/exact/a", {"X-Apig-Mode": "debug"})
    assert int(r.header("x-apig-latency")) >= 0
    assert int(r.header("x-apig-upstream-latency")) >= 0
    slow = env.request("GET", "/slow?sleep_ms=150", {"X-Apig-Mode": "debug"})
    assert int(slow.header("x-apig-upstream-latency")) >= 140
    assert int(slow.header("x-apig-latency")) >= int(slow.header("x-apig-upstream-latency"))
    mock = env.request("GET", "/mock", {"X-Apig-Mode": "debug"})
    assert mock.header("x-apig-latency") is not None
    assert mock.header("x-apig-upstream-latency") is None, "no upstream for a mock"
    plain = env.request("GET", "/exact/a")
    assert plain.header("x-apig-latency") is None and plain.header("x-apig-upstream-latency") is None
