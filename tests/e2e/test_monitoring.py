"""Monitoring end to end: a real Prometheus (Debian's `prometheus`, loopback
only) scrapes the test Envoy's /stats/prometheus while known traffic runs;
the numbers are checked with PromQL through Prometheus's HTTP API, every
expression of the shipped dashboard and alert rules is evaluated, the JSON
access log is parsed field by field, and no credential shows in either."""
import hashlib
import json
import re
import shutil
import subprocess
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from conftest import ROOT, free_port, gateway_with_backend
from test_app_auth_aliyun import capture, send as send_signed

DASHBOARD = ROOT / "docs/monitoring/pylon-dashboard.json"
ALERTS = ROOT / "docs/monitoring/pylon-alerts.yml"

KEY, SECRET = "mobileKey001", "mobile-secret-0123456789"
CODE = "mobile-code-0000000001"

DEFS = """
gateway: {{access_log: "{log}"}}
environments:
  - name: TEST
groups:
  - name: shop
    default: true
apis:
  - {{name: items, group: shop, method: GET, path: /items, backend: {{http: {{address: "{backend}", path: /be/items}}}}, publish: [RELEASE, TEST]}}
  - {{name: coded, group: shop, method: GET, path: /coded, auth: app, app_code: http_allowed,
     backend: {{http: {{address: "{backend}", path: /be/coded}}}}, publish: [RELEASE]}}
  - {{name: limited, group: shop, method: GET, path: /limited, auth: app, app_code: http_allowed,
     backend: {{mock: {{body: ok}}}}, publish: [RELEASE]}}
  - {{name: fenced, group: shop, method: GET, path: /fenced, backend: {{mock: {{body: ok}}}}, publish: [RELEASE]}}
  - {{name: down, group: shop, method: GET, path: /down, backend: {{http: {{address: "127.0.0.1:{closed}", path: /x}}}}, publish: [RELEASE]}}
  - {{name: signed, group: shop, method: GET, path: /signed, auth: app, backend: {{mock: {{body: ok}}}}, publish: [RELEASE]}}
  - name: routed
    group: shop
    method: GET
    path: /routed
    parameters: [{{name: tier, in: query}}]
    backend: {{mock: {{body: default}}}}
    policies:
      - name: gold
        conditions: [{{param: tier, type: equal, value: gold}}]
        backend: {{mock: {{body: gold}}}}
    publish: [RELEASE]
apps:
  - name: mobile
    key: {key}
    secret: "{secret}"
    codes: ["{code}"]
    authorizations:
      - {{group: shop, api: coded, environments: [RELEASE]}}
      - {{group: shop, api: limited, environments: [RELEASE]}}
      - {{group: shop, api: signed, environments: [RELEASE]}}
throttles:
  - name: two-per-app
    unit: hour
    interval: 1
    api_limit: 100
    app_limit: 2
    bindings: [{{group: shop, api: limited, environments: [RELEASE]}}]
acls:
  - name: no-loopback
    type: ip
    action: deny
    values: ["127.0.0.0/8"]
    bindings: [{{group: shop, api: fenced, environments: [RELEASE]}}]
"""

CODE_HEADER = {"X-Apig-AppCode": CODE}


class Prometheus:
    """A real Prometheus on loopback scraping one Envoy every second, with
    the shipped alert rules loaded."""

    def __init__(self, admin_port, workdir):
        self.port = free_port()
        config = Path(workdir) / "prometheus.yml"
        config.write_text(json.dumps({
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "rule_files": [str(ALERTS)],
            "scrape_configs": [{
                "job_name": "pylon",
                "metrics_path": "/stats/prometheus",
                "static_configs": [{"targets": [f"127.0.0.1:{admin_port}"]}],
            }],
        }))
        self.log = open(Path(workdir) / "prometheus.log", "w")
        self.proc = subprocess.Popen(
            [shutil.which("prometheus"), f"--config.file={config}",
             f"--storage.tsdb.path={Path(workdir) / 'tsdb'}",
             f"--web.listen-address=127.0.0.1:{self.port}", "--log.level=warn"],
            stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + 30
        while time.time() < deadline:
            try:
                if urllib.request.urlopen(f"{self.url}/-/ready", timeout=1).status == 200:
                    return
            except OSError:
                time.sleep(0.2)
        self.stop()
        raise AssertionError("Prometheus did not start")

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def api(self, path, **params):
        q = urllib.parse.urlencode(params)
        with urllib.request.urlopen(f"{self.url}/api/v1/{path}?{q}", timeout=10) as r:
            return json.loads(r.read())

    def query(self, expr):
        body = self.api("query", query=expr)
        assert body["status"] == "success", (expr, body)
        return body["data"]["result"]

    def value(self, expr):
        result = self.query(expr)
        return float(result[0]["value"][1]) if result else None

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()


def traffic(gw, ids):
    """One phase of known traffic; returns nothing, records request ids."""
    def go(path, headers=None, want=None):
        r = gw.request("GET", path, headers or {})
        if want is not None:
            assert r.status == want, (path, r.status, r.body)
        ids.setdefault(path.split("?")[0], []).append((r.header("x-request-id"), r))
        return r

    for _ in range(3):
        go("/items", want=200)
    go("/items", {"X-Stage": "TEST"}, want=200)
    # A stage nobody defined is the caller's text: never a label value.
    go("/items", {"X-Stage": "caller-text-42"}, want=404)
    for _ in range(2):
        go("/coded", CODE_HEADER, want=200)
        go("/coded", want=401)
    go("/fenced", want=403)
    go("/down")
    go("/routed?tier=gold", want=200)
    go("/routed", want=200)
    go("/nothing", want=404)
    req = capture(gw, "GET", "/signed", key=KEY, secret=SECRET)
    first, again = send_signed(gw, req), send_signed(gw, req)
    assert (first.status, again.status) == (200, 401), (first.body, again.body)
    ids.setdefault("/signed", []).extend([(first.header("x-request-id"), first),
                                          (again.header("x-request-id"), again)])
    return req


@pytest.fixture(scope="module")
def setup():
    with tempfile.TemporaryDirectory(prefix="pylon-mon-") as work:
        log = Path(work) / "access.log"
        closed = free_port()
        with gateway_with_backend(DEFS, log=log, closed=closed, key=KEY, secret=SECRET,
                                  code=CODE) as gw:
            prom = Prometheus(gw.admin_port, work)
            try:
                ids, signed = {}, []
                signed.append(traffic(gw, ids))
                limited = [gw.request("GET", "/limited", CODE_HEADER).status for _ in range(4)]
                assert sorted(limited) == [200, 200, 429, 429]
                # Prometheus must see every series before the second phase
                # raises it, so rates are not zero (Envoy flushes histograms
                # every 5 s).
                wait_for(prom, 'pylon_request_duration_milliseconds_count{api="items",stage="RELEASE"}', 3)
                signed.append(traffic(gw, ids))
                limited += [gw.request("GET", "/limited", CODE_HEADER).status for _ in range(2)]
                assert limited.count(429) == 4
                # An AppCode in the query must not reach metrics or logs.
                r = gw.request("GET", f"/coded?AppCode={CODE}&x=1")
                assert r.status == 200
                wait_for(prom, 'pylon_request_duration_milliseconds_count{api="items",stage="RELEASE"}', 6)
                yield gw, prom, ids, log, signed
            finally:
                prom.stop()


def wait_for(prom, expr, want, timeout=40):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if prom.value(expr) == want:
            return
        time.sleep(0.5)
    raise AssertionError(f"{expr}: {prom.value(expr)}, want {want}")


def count(prom, selector):
    return prom.value(f"sum({selector})") or 0


def test_prometheus_counts_requests_per_api_and_status_class(setup):
    _, prom, _, _, _ = setup
    assert count(prom, 'pylon_requests_total{api="items",group="shop",stage="RELEASE",class="2xx"}') == 6
    assert count(prom, 'pylon_requests_total{api="coded",class="2xx"}') == 5
    assert count(prom, 'pylon_requests_total{api="coded",class="4xx"}') == 4
    assert count(prom, 'pylon_requests_total{api="limited",class="2xx"}') == 2
    assert count(prom, 'pylon_requests_total{api="limited",class="4xx"}') == 4
    assert count(prom, 'pylon_requests_total{api="down",class="5xx"}') == 2
    assert count(prom, 'pylon_requests_total{api="items",stage="TEST",class="2xx"}') == 2
    # Before routing there is no API: one series, whatever path or stage
    # was asked.
    assert count(prom, 'pylon_requests_total{api="",stage="",class="4xx"}') == 4
    assert not prom.query('{__name__=~"pylon_.*", stage="caller-text-42"}')


def test_prometheus_counts_errors_auth_acl_throttling_nonces_policies_apps(setup):
    _, prom, _, _, _ = setup
    assert count(prom, 'pylon_gateway_errors_total{api="coded",error_type="AUTH_HEADER_MISSING"}') == 4
    assert count(prom, 'pylon_gateway_errors_total{api="limited",error_type="THROTTLED",code="APIG.0308"}') == 4
    assert count(prom, 'pylon_gateway_errors_total{api="down",error_type="BACKEND_UNAVAILABLE"}') == 2
    assert count(prom, 'pylon_gateway_errors_total{api="",error_type="NOT_FOUND"}') == 4
    assert count(prom, 'pylon_throttled_requests_total{api="limited",dimension="app"}') == 4
    assert count(prom, 'pylon_app_throttled_requests_total{app="mobile"}') == 4
    assert count(prom, 'pylon_acl_refusals_total{api="fenced",acl="ip"}') == 2
    assert count(prom, 'pylon_auth_total{scheme="app_code",outcome="success"}') == 5 + 6
    assert count(prom, 'pylon_auth_total{scheme="none",outcome="missing"}') == 4
    assert count(prom, 'pylon_auth_total{scheme="aliyun_signature",outcome="success"}') == 2
    assert count(prom, 'pylon_auth_total{scheme="aliyun_signature",outcome="replayed"}') == 2
    assert count(prom, "pylon_nonce_replays_total") == 2
    assert count(prom, 'pylon_policy_backend_selections_total{api="routed",policy="1"}') == 2
    # coded 5 + limited 2 + signed 2 answered 2xx; 4 throttled, 2 replayed.
    assert count(prom, 'pylon_app_requests_total{app="mobile",class="2xx"}') == 9
    assert count(prom, 'pylon_app_requests_total{app="mobile",class="4xx"}') == 6


def test_latency_histograms_total_and_backend(setup):
    _, prom, _, _, _ = setup
    assert count(prom, 'pylon_request_duration_milliseconds_count{api="items",stage="RELEASE"}') == 6
    assert count(prom, 'pylon_backend_duration_milliseconds_count{api="items",stage="RELEASE"}') == 6
    # A mock has no backend.
    assert count(prom, 'pylon_backend_duration_milliseconds_count{api="fenced"}') == 0
    p99 = prom.value('histogram_quantile(0.99, sum by (le) (pylon_request_duration_milliseconds_bucket{api="items"}))')
    assert p99 is not None and 0 <= p99 < 10000


def dashboard_exprs():
    dash = json.loads(DASHBOARD.read_text())
    return [(p["title"], t["expr"]) for p in dash["panels"] for t in p["targets"]]


def grafana(expr):
    """Grafana's variables as a dashboard showing everything would set them."""
    return (expr.replace("$__rate_interval", "1m").replace("$group", ".*")
            .replace("$stage", ".*"))


def test_every_dashboard_expression_returns_series(setup):
    _, prom, _, _, _ = setup
    exprs = dashboard_exprs()
    assert len(exprs) >= 12
    for title, expr in exprs:
        result = prom.query(grafana(expr))
        assert result, f"{title}: {expr} returned nothing"


def test_every_alert_rule_loads_and_evaluates(setup):
    _, prom, _, _, _ = setup
    promtool = subprocess.run([shutil.which("promtool"), "check", "rules", str(ALERTS)],
                              capture_output=True, text=True)
    assert promtool.returncode == 0, promtool.stdout + promtool.stderr
    rules = [r for g in prom.api("rules")["data"]["groups"] for r in g["rules"]]
    assert len(rules) == 4
    for rule in rules:
        assert rule["health"] == "ok", rule
        # Without its threshold, each expression must find the series it
        # watches in this traffic.
        body = re.sub(r"\s*>\s*[0-9.]+\s*$", "", rule["query"])
        assert prom.query(body), f"{rule['name']}: {body} returned nothing"
    # The unreachable backend fails every call: both of its alerts are on
    # their way (pending for their `for`).
    deadline = time.time() + 20
    while time.time() < deadline:
        active = {(a["labels"]["alertname"], a["labels"].get("api")) for a in prom.api("alerts")["data"]["alerts"]}
        if {("PylonApiErrorRate", "down"), ("PylonBackendFailures", "down")} <= active:
            break
        time.sleep(0.5)
    else:
        raise AssertionError(active)


def log_lines(log):
    deadline = time.time() + 10
    lines = []
    while time.time() < deadline:
        lines = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
        if len(lines) >= 2 * 17 + 7:
            break
        time.sleep(0.2)
    return {line["request_id"]: line for line in lines}


def test_access_log_lines_field_by_field(setup):
    _, _, ids, log, _ = setup
    lines = log_lines(log)
    api_id = hashlib.sha256(b"shop/items").hexdigest()[:32]
    rid, r = ids["/items"][0]
    line = lines[rid]
    assert line["api_id"] == api_id
    assert (line["api"], line["group"], line["stage"]) == ("items", "shop", "RELEASE")
    assert (line["method"], line["path"], line["status"]) == ("GET", "/items", 200)
    assert line["client_address"] == "127.0.0.1"
    assert line["error_code"] is None and line["app_id"] is None and line["account"] is None
    assert isinstance(line["duration_ms"], int) and isinstance(line["backend_duration_ms"], int)
    assert line["bytes_in"] == 0 and line["bytes_out"] == len(r.body)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT.*Z", line["time"])
    # An app's call names the app; a refusal carries its code.
    ok = [lines[i] for i, r in ids["/coded"] if r.status == 200]
    refused = [lines[i] for i, r in ids["/coded"] if r.status == 401]
    assert all(re.fullmatch(r"[0-9a-f]{32}", line["app_id"]) for line in ok)
    assert all(line["error_code"] == "APIG.0303" and line["app_id"] is None for line in refused)
    assert all(line["backend_duration_ms"] is None for line in refused)
    # Before routing: no API fields, the path and the error code.
    rid, r = ids["/nothing"][0]
    line = lines[rid]
    assert line["api"] is None and line["path"] == "/nothing"
    assert line["error_code"] == r.json()["error_code"] == "APIG.0101"
    # The backend that is down: a gateway error after forwarding.
    line = lines[ids["/down"][0][0]]
    assert line["status"] >= 500 and line["error_code"] is not None


def test_no_credential_in_metrics_or_logs(setup):
    gw, prom, _, log, signed = setup
    with urllib.request.urlopen(f"http://127.0.0.1:{gw.admin_port}/stats/prometheus") as r:
        stats = r.read().decode()
    series = json.dumps(prom.api("series", **{"match[]": '{__name__=~"pylon_.*"}'}))
    text = log.read_text()
    signatures = [{k.lower(): v for k, v in req["headers"].items()}["x-ca-signature"] for req in signed]
    assert signatures and all(signatures)
    for where, content in (("stats", stats), ("prometheus", series), ("access log", text)):
        for secret in [SECRET, CODE, KEY, *signatures]:
            assert secret not in content, f"{where} holds {secret}"
    assert "pylon_requests_total" in stats and '"path":"/coded"' in text
