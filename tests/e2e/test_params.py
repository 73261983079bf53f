"""Request parameters, backend parameter mapping, constants, system
parameters and request modes, on a real Envoy with the real filter. The
echo backend reports exactly what it received."""
import json
from urllib.parse import parse_qsl, urlsplit

import pytest

from conftest import gateway_with_backend

DEFS = """
groups:
  - name: shop
    default: true
apis:
  # The seed's example (§5.2.1), as printed.
  - name: seed-example
    group: shop
    method: GET
    path: /v1.0/{{test01}}
    parameters:
      - {{name: test01, in: path}}
      - {{name: test02, in: header, required: true}}
      - {{name: test03, in: query, required: true}}
    backend:
      http: {{address: "{backend}", path: "/v1.0/{{test05}}"}}
      params:
        - {{name: test01, in: header, from: test01}}
        - {{name: test05, in: path, from: test02}}
        - {{name: test03, in: header, from: test03}}
    publish: [RELEASE]

  - name: checked
    group: shop
    method: GET
    path: /checked/{{id}}
    parameters:
      - {{name: id, in: path, type: number, min: 1, max: 1000}}
      - {{name: size, in: query, type: number, min: 1, max: 100, default: 10}}
      - {{name: sort, in: query, enum: [asc, desc], default: asc}}
      - {{name: code, in: query, pattern: '^[A-Z]{{3}}$'}}
      - {{name: name, in: query, min_length: 2, max_length: 5}}
      - {{name: X-Tenant, in: header, required: true}}
      - {{name: X-Trace, in: header, default: none}}
    backend:
      http: {{address: "{backend}", path: "/items/{{id}}"}}
    publish: [RELEASE]

  - name: constants
    group: shop
    method: GET
    path: /constants
    backend:
      http: {{address: "{backend}", path: "/c/{{seg}}/end"}}
      params:
        - {{name: seg, in: path, constant: '{path_constant}'}}
        - {{name: q, in: query, constant: '{query_constant}'}}
        - {{name: X-Const, in: header, constant: "hidden value"}}
    publish: [RELEASE]

  - name: system
    group: shop
    method: GET
    path: /system
    backend:
      http: {{address: "{backend}", path: "/s/{{stage}}"}}
      params:
        - {{name: stage, in: path, system: stage}}
        - {{name: X-Source-Ip, in: header, system: sourceIp}}
        - {{name: X-Api-Id, in: header, system: apiId}}
        - {{name: X-Req-Id, in: header, system: requestId}}
        - {{name: rid, in: query, system: requestId}}
    publish: [RELEASE]

  - name: moved
    group: shop
    method: GET
    path: /moved/{{id}}
    parameters:
      - {{name: q, in: query}}
      - {{name: h, in: header}}
    backend:
      http: {{address: "{backend}", path: "/m/{{to_path}}"}}
      params:
        - {{name: to_path, in: path, from: id}}
        - {{name: target, in: query, from: h}}
        - {{name: X-From-Query, in: header, from: q}}
    publish: [RELEASE]

  - name: greedy
    group: shop
    method: GET
    path: /files/{{rest+}}
    backend:
      http: {{address: "{backend}", path: "/store/{{rest}}"}}
    publish: [RELEASE]

  - name: mode-mapping
    group: shop
    method: GET
    path: /mode/mapping
    request_mode: mapping
    parameters:
      - {{name: keep, in: query}}
      - {{name: X-Keep, in: header}}
      - {{name: move, in: query}}
    backend:
      http: {{address: "{backend}", path: /mode}}
      params:
        - {{name: X-Moved, in: header, from: move}}
    publish: [RELEASE]

  - name: mode-mapping-passthrough
    group: shop
    method: GET
    path: /mode/mapping-passthrough
    request_mode: mapping_passthrough
    parameters:
      - {{name: keep, in: query}}
      - {{name: X-Keep, in: header}}
      - {{name: move, in: query}}
    backend:
      http: {{address: "{backend}", path: /mode}}
      params:
        - {{name: X-Moved, in: header, from: move}}
    publish: [RELEASE]

  - name: mode-passthrough
    group: shop
    method: GET
    path: /mode/passthrough/{{id}}
    request_mode: passthrough
    parameters:
      - {{name: id, in: path, type: number}}
    backend:
      http: {{address: "{backend}", path: "/mode/{{id}}"}}
    publish: [RELEASE]
"""

# Every character the seed lists for each location, plus a few it does not.
PATH_CONSTANT = '[apig] ?<>/%#"\\^`{|}é;:@'
QUERY_CONSTANT = '[apig] <>=+&%#"\\^`{|}é/?;'


@pytest.fixture(scope="module")
def gw():
    with gateway_with_backend(DEFS, path_constant=PATH_CONSTANT, query_constant=QUERY_CONSTANT) as g:
        yield g


def echo(resp):
    assert resp.status == 200, (resp.status, resp.body)
    return json.loads(resp.body)


def refused(resp, *words):
    assert resp.status == 400, (resp.status, resp.body)
    body = resp.json()
    assert body["error_code"] == "APIG.0201"
    assert body["error_msg"].startswith("Invalid request parameters: ")
    for w in words:
        assert w in body["error_msg"], (w, body)
    return body


def test_the_seeds_mapping_example_byte_for_byte(gw):
    # curl -ik -H 'test02:def' -X GET https://www.example01.com/v1.0/abc?test03=xyz
    seen = echo(gw.request("GET", "/v1.0/abc?test03=xyz", {"test02": "def"}))
    # curl -ik -H 'test01:abc' -H 'test03:xyz' -X GET https://www.example02.com/v1.0/def
    assert seen["method"] == "GET"
    assert seen["path"] == "/v1.0/def"
    assert seen["headers"]["test01"] == "abc"
    assert seen["headers"]["test03"] == "xyz"
    assert "test02" not in seen["headers"], "a mapped parameter moves; it is not copied"


def test_missing_required_parameters_are_named(gw):
    before = gw.backend.hits
    refused(gw.request("GET", "/v1.0/abc?test03=xyz"), "'test02' (header) is required")
    refused(gw.request("GET", "/v1.0/abc", {"test02": "def"}), "'test03' (query) is required")
    assert gw.backend.hits == before


def test_valid_values_pass_and_defaults_are_added(gw):
    seen = echo(gw.request("GET", "/checked/7?code=ABC&name=abc", {"X-Tenant": "t1"}))
    url = urlsplit(seen["path"])
    assert url.path == "/items/7"
    assert dict(parse_qsl(url.query)) == {"code": "ABC", "name": "abc", "size": "10", "sort": "asc"}
    assert seen["headers"]["x-tenant"] == "t1"
    assert seen["headers"]["x-trace"] == "none"
    # A value the caller sends is not replaced by the default.
    seen = echo(gw.request("GET", "/checked/7?size=50&sort=desc", {"X-Tenant": "t1", "X-Trace": "abc"}))
    assert dict(parse_qsl(urlsplit(seen["path"]).query)) == {"size": "50", "sort": "desc"}
    assert seen["headers"]["x-trace"] == "abc"


@pytest.mark.parametrize("path,words", [
    ("/checked/abc", ["'id' (path)", "not a number"]),
    ("/checked/0", ["'id' (path)", "between 1 and 1000"]),
    ("/checked/7?size=101", ["'size' (query)", "between 1 and 100"]),
    ("/checked/7?size=1e2", ["'size' (query)", "not a number"]),
    ("/checked/7?sort=up", ["'sort' (query)", "one of asc, desc"]),
    ("/checked/7?code=AB1", ["'code' (query)", "pattern"]),
    ("/checked/7?name=a", ["'name' (query)", "at least 2"]),
    ("/checked/7?name=abcdef", ["'name' (query)", "at most 5"]),
])
def test_each_invalid_value_is_refused_with_its_reason(gw, path, words):
    before = gw.backend.hits
    refused(gw.request("GET", path, {"X-Tenant": "t1"}), *words)
    assert gw.backend.hits == before, "a refused request never reaches the backend"


def test_a_custom_gateway_response_renders_parameter_errors(workdir):
    defs = """
groups:
  - name: g
    default: true
    responses:
      default:
        REQUEST_PARAMETERS_FAILURE: {{status: 422, body: '{{"bad":"$context.error.message"}}'}}
apis:
  - name: a
    group: g
    method: GET
    path: /a
    parameters: [{{name: n, in: query, required: true}}]
    backend: {{http: {{address: "{backend}", path: /a}}}}
    publish: [RELEASE]
"""
    with gateway_with_backend(defs) as g:
        r = g.request("GET", "/a")
        assert r.status == 422
        assert r.json() == {"bad": "Invalid request parameters: parameter 'n' (query) is required"}


def test_constants_follow_the_seeds_percent_encoding_rules(gw):
    seen = echo(gw.request("GET", "/constants"))
    # PATH: 0-31 ? > < / % # " [ \ ] ^ ` { | } whitespace 127-255 are encoded; ; : @ are not.
    assert seen["path"].split("?")[0] == (
        "/c/%5Bapig%5D%20%3F%3C%3E%2F%25%23%22%5C%5E%60%7B%7C%7D%C3%A9;:@/end")
    # QUERY: 0-31 > = < + & % # " [ \ ] ^ ` { | } whitespace 127-255; / ? ; are not.
    assert seen["path"].split("?", 1)[1] == (
        "q=%5Bapig%5D%20%3C%3E%3D%2B%26%25%23%22%5C%5E%60%7B%7C%7D%C3%A9/?;")
    assert seen["headers"]["x-const"] == "hidden value"
    # The seed's own example: [apig] -> %5Bapig%5D
    assert "%5Bapig%5D" in seen["path"]


def test_callers_cannot_override_constants_or_system_parameters(gw):
    seen = echo(gw.request("GET", "/constants?q=evil&other=1", {"X-Const": "evil"}))
    query = parse_qsl(urlsplit(seen["path"]).query, keep_blank_values=True)
    assert [v for k, v in query if k == "q"] == ['[apig] <>=+&%#"\\^`{|}é/?;']
    assert ("other", "1") in query
    assert seen["headers"]["x-const"] == "hidden value"
    seen = echo(gw.request("GET", "/system?rid=forged", {"X-Source-Ip": "6.6.6.6", "X-Api-Id": "x"}))
    assert seen["headers"]["x-source-ip"] == "127.0.0.1"
    assert seen["headers"]["x-api-id"] != "x"


def test_system_parameters_reach_header_query_and_path(gw):
    r = gw.request("GET", "/system", {"X-Stage": "RELEASE"})
    seen = echo(r)
    rid = r.header("x-request-id")
    url = urlsplit(seen["path"])
    assert url.path == "/s/RELEASE"
    assert dict(parse_qsl(url.query)) == {"rid": rid}
    assert seen["headers"]["x-req-id"] == rid == seen["headers"]["x-request-id"]
    assert seen["headers"]["x-source-ip"] == "127.0.0.1"
    api_id = seen["headers"]["x-api-id"]
    assert len(api_id) == 32 and all(c in "0123456789abcdef" for c in api_id)


def test_parameters_move_between_locations_with_encoding(gw):
    seen = echo(gw.request("GET", "/moved/a%20b?q=x%26y%3Dz&keep=1", {"h": "v&w=1 2"}))
    url = urlsplit(seen["path"])
    assert url.path == "/m/a%20b"
    # The header value lands as ONE query parameter, never two.
    query = parse_qsl(url.query, keep_blank_values=True)
    assert query == [("keep", "1"), ("target", "v&w=1 2")]
    assert "target=v%26w%3D1%202" in url.query
    assert seen["headers"]["x-from-query"] == "x&y=z"
    assert "h" not in seen["headers"]


@pytest.mark.parametrize("path,headers,words", [
    # CR/LF (encoded in the query) headed for a backend header.
    ("/moved/a?q=x%0D%0AX-Injected:%201", {}, ["'q' (query)", "control characters"]),
    ("/moved/a?q=x%0Ay", {}, ["control characters"]),
    ("/moved/a?q=%00", {}, ["control characters"]),
    # Climbing or adding segments in the backend path.
    ("/moved/..%2Fadmin", {}, ["'id' (path)"]),
    ("/moved/a%2Fb", {}, ["'id' (path)", "`/`"]),
    ("/moved/a%5Cb", {}, ["'id' (path)"]),
    # A header value headed for the backend path (test02 -> {test05}).
    ("/v1.0/abc?test03=x", {"test02": ".."}, ["'test02' (path)"]),
    ("/v1.0/abc?test03=x", {"test02": "../admin"}, ["'test02' (path)"]),
    ("/v1.0/abc?test03=x", {"test02": "a/b"}, ["'test02' (path)"]),
    ("/v1.0/abc?test03=x", {"test02": "a\\b"}, ["'test02' (path)"]),
    ("/files/a/..%2F..%2Fetc", {}, ["'rest' (path)"]),
    ("/files/a%2F..%2Fb", {}, ["'rest' (path)"]),
    # Not UTF-8 once decoded.
    ("/moved/a?q=%FF", {}, ["'q' (query)"]),
])
def test_injection_attempts_are_refused(gw, path, headers, words):
    before = gw.backend.hits
    refused(gw.request("GET", path, headers), *words)
    assert gw.backend.hits == before


def test_oversized_values_are_refused(gw):
    refused(gw.request("GET", "/moved/a?q=" + "x" * 4097), "'q' (query)", "longer than 4096 bytes")
    refused(gw.request("GET", "/moved/a", {"h": "y" * 5000}), "'h' (header)", "longer than 4096")
    echo(gw.request("GET", "/moved/a?q=" + "x" * 4096))


def test_greedy_path_parameters_keep_their_segments(gw):
    seen = echo(gw.request("GET", "/files/a/b%20c/d.txt?x=1"))
    assert seen["path"] == "/store/a/b%20c/d.txt?x=1"


def test_mapping_mode_drops_undeclared_parameters(gw):
    seen = echo(gw.request("GET", "/mode/mapping?keep=1&move=2&other=3&AppCode=x",
                           {"X-Keep": "k", "X-Other": "o", "Content-Type": "text/plain",
                            "User-Agent": "ua", "Accept": "*/*"}))
    assert seen["path"] == "/mode?keep=1"
    h = seen["headers"]
    assert h["x-keep"] == "k" and h["x-moved"] == "2"
    assert "x-other" not in h
    # Protocol headers stay.
    assert h["content-type"] == "text/plain" and h["user-agent"] == "ua" and h["accept"] == "*/*"
    assert "x-request-id" in h and "x-forwarded-for" in h


def test_mapping_passthrough_mode_forwards_undeclared_parameters(gw):
    seen = echo(gw.request("GET", "/mode/mapping-passthrough?keep=1&move=2&other=3",
                           {"X-Keep": "k", "X-Other": "o"}))
    assert seen["path"] == "/mode?keep=1&other=3"
    h = seen["headers"]
    assert (h["x-keep"], h["x-other"], h["x-moved"]) == ("k", "o", "2")


def test_passthrough_mode_forwards_everything_as_received(gw):
    seen = echo(gw.request("GET", "/mode/passthrough/5?a=1&a=2&b=%20x+y&c&&d=", {"X-Any": "v"}))
    assert seen["path"] == "/mode/5?a=1&a=2&b=%20x+y&c&&d="
    assert seen["headers"]["x-any"] == "v"
    # Declared path parameters are still checked.
    refused(gw.request("GET", "/mode/passthrough/five"), "'id' (path)", "not a number")
