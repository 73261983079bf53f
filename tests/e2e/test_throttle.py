"""Throttling on a real Envoy with two workers: bursts over many connections
admit exactly each limit; windows reset; shared vs basic policies; special
apps and tenants; the default limit; debug headers; spoofed
X-Forwarded-For neither escapes nor shifts IP counting; caller-chosen
addresses cannot reset another API's counter; IPv4-mapped = IPv4."""
import threading
import time

import pytest

from conftest import gateway_with_backend
from test_app_auth_huawei import send, signed

WINDOW = 4  # seconds

DEFS = """
gateway: {{trusted_hops: {hops}, default_limit: 5}}
groups:
  - name: g
    default: true
apis:
  - {{name: basic-a, group: g, method: GET, path: /basic-a, backend: {{mock: {{body: ok}}}}, publish: [RELEASE]}}
  - {{name: basic-b, group: g, method: GET, path: /basic-b, backend: {{mock: {{body: ok}}}}, publish: [RELEASE]}}
  - {{name: shared-a, group: g, method: GET, path: /shared-a, backend: {{mock: {{body: ok}}}}, publish: [RELEASE]}}
  - {{name: shared-b, group: g, method: GET, path: /shared-b, backend: {{mock: {{body: ok}}}}, publish: [RELEASE]}}
  - {{name: per-ip, group: g, method: GET, path: /per-ip, backend: {{http: {{address: "{backend}", path: /be}}}}, publish: [RELEASE]}}
  - {{name: per-app, group: g, method: GET, path: /per-app, auth: app, app_code: http_allowed,
     backend: {{mock: {{body: ok}}}}, publish: [RELEASE]}}
  - {{name: per-user, group: g, method: GET, path: /per-user, auth: iam, backend: {{mock: {{body: ok}}}}, publish: [RELEASE]}}
  - {{name: unlimited-policy-less, group: g, method: GET, path: /default, backend: {{mock: {{body: ok}}}}, publish: [RELEASE]}}
throttles:
  - name: basic
    unit: second
    interval: {window}
    api_limit: 5
    bindings:
      - {{group: g, api: basic-a, environments: [RELEASE]}}
      - {{group: g, api: basic-b, environments: [RELEASE]}}
  - name: shared
    unit: second
    interval: {window}
    api_limit: 6
    shared: true
    bindings:
      - {{group: g, api: shared-a, environments: [RELEASE]}}
      - {{group: g, api: shared-b, environments: [RELEASE]}}
  - name: ips
    unit: second
    interval: {window}
    api_limit: 100
    ip_limit: 3
    bindings: [{{group: g, api: per-ip, environments: [RELEASE]}}]
  - name: apps
    unit: second
    interval: {window}
    api_limit: 100
    app_limit: 2
    special_apps: {{vip: 5}}
    bindings: [{{group: g, api: per-app, environments: [RELEASE]}}]
  - name: users
    unit: second
    interval: {window}
    api_limit: 100
    user_limit: 2
    special_users: {{tenant-vip: 4}}
    bindings: [{{group: g, api: per-user, environments: [RELEASE]}}]
apps:
  - {{name: normal, key: normalKey001, secret: normal-secret-1, codes: [normal-code-000000001],
     authorizations: [{{group: g, api: per-app, environments: [RELEASE]}}]}}
  - {{name: vip, key: vipAppKey001, secret: vip-app-secret1, codes: [vip-app-code-00000001],
     authorizations: [{{group: g, api: per-app, environments: [RELEASE]}}]}}
accounts:
  - {{name: tenant-plain, ak: PLAINAK00001, sk: plain-tenant-sk1}}
  - {{name: tenant-vip, ak: VIPTENANT001, sk: vip-tenant-sk-01}}
"""


@pytest.fixture(scope="module")
def gw():
    with gateway_with_backend(DEFS, hops=1, window=WINDOW) as g:
        yield g


@pytest.fixture(scope="module")
def direct():
    with gateway_with_backend(DEFS, hops=0, window=WINDOW) as g:
        yield g


def fresh_window():
    """Waits until a window has just begun, so a burst stays inside it."""
    while time.time() % WINDOW > 0.3:
        time.sleep(0.05)


def next_window():
    """Waits for the next window to begin."""
    current = int(time.time() // WINDOW)
    while int(time.time() // WINDOW) == current:
        time.sleep(0.05)


def burst(gw, requests):
    """Sends every (path, headers) at once, each on its own connection."""
    statuses, gate = [None] * len(requests), threading.Barrier(len(requests))

    def one(i, path, headers):
        gate.wait()
        r = gw.request("GET", path, headers)
        if r.status == 429:
            assert r.json()["error_code"] == "APIG.0308"
        statuses[i] = r.status

    threads = [threading.Thread(target=one, args=(i, p, h)) for i, (p, h) in enumerate(requests)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return statuses


def admitted(statuses):
    assert set(statuses) <= {200, 429}, statuses
    return statuses.count(200)


def test_basic_policy_counts_each_api_and_resets(gw):
    fresh_window()
    s = burst(gw, [("/basic-a", {})] * 12 + [("/basic-b", {})] * 12)
    assert admitted(s[:12]) == 5 and admitted(s[12:]) == 5
    next_window()
    assert admitted(burst(gw, [("/basic-a", {})] * 8)) == 5, "a new window admits again"


def test_shared_policy_counts_its_apis_together(gw):
    fresh_window()
    assert admitted(burst(gw, [("/shared-a", {})] * 8 + [("/shared-b", {})] * 8)) == 6


def test_ip_limit_per_client_address(gw):
    fresh_window()
    s = burst(gw, [("/per-ip", {"X-Forwarded-For": "198.51.100.1"})] * 8
              + [("/per-ip", {"X-Forwarded-For": "2001:db8::9"})] * 8)
    assert admitted(s[:8]) == 3 and admitted(s[8:]) == 3


def test_spoofed_forwarded_for_does_not_escape_ip_counting(direct):
    fresh_window()
    spoofed = [("/per-ip", {"X-Forwarded-For": f"10.0.0.{i}"}) for i in range(10)]
    assert admitted(burst(direct, spoofed)) == 3, "all are the same peer"


def test_app_limit_and_special_app(gw):
    fresh_window()
    s = burst(gw, [("/per-app", {"X-Apig-AppCode": "normal-code-000000001"})] * 8
              + [("/per-app", {"X-Apig-AppCode": "vip-app-code-00000001"})] * 8)
    assert admitted(s[:8]) == 2 and admitted(s[8:]) == 5


def test_user_limit_and_special_tenant(gw):
    def signed_requests(ak, sk, n):
        out = []
        for _ in range(n):
            uri, headers, _ = signed(gw, "GET", "/per-user", key=ak, secret=sk)
            headers = dict(headers)
            headers.pop("Host", None)
            out.append((uri, headers))
        return out

    plain = signed_requests("PLAINAK00001", "plain-tenant-sk1", 6)
    vip = signed_requests("VIPTENANT001", "vip-tenant-sk-01", 6)
    fresh_window()
    s = burst(gw, plain + vip)
    assert admitted(s[:6]) == 2 and admitted(s[6:]) == 4


def test_default_limit_without_policy(gw):
    time.sleep(1.05 - time.time() % 1)  # the default window is one second
    assert admitted(burst(gw, [("/default", {})] * 10)) == 5


def test_debug_headers(gw):
    fresh_window()
    r = gw.request("GET", "/basic-b", {"X-Apig-Mode": "debug"})
    assert r.header("x-apig-ratelimit-api") == f"remain:4,limit:5,time:{WINDOW} second"
    r = gw.request("GET", "/per-ip", {"X-Apig-Mode": "debug", "X-Forwarded-For": "192.0.2.77"})
    assert r.header("x-apig-ratelimit-ip") == f"remain:2,limit:3,time:{WINDOW} second"
    assert r.header("x-apig-ratelimit-api") == f"remain:99,limit:100,time:{WINDOW} second"
    time.sleep(1.05 - time.time() % 1)
    r = gw.request("GET", "/default", {"X-Apig-Mode": "debug"})
    assert r.header("x-apig-ratelimit-api-allenv") == "remain:4,limit:5,time:1 second"
    assert gw.request("GET", "/basic-b").header("x-apig-ratelimit-api") is None, "debug only"


def test_debug_headers_for_app_and_user(gw):
    next_window()
    r = gw.request("GET", "/per-app", {"X-Apig-Mode": "debug", "X-Apig-AppCode": "vip-app-code-00000001"})
    assert r.status == 200
    assert r.header("x-apig-ratelimit-app") == f"remain:4,limit:5,time:{WINDOW} second"
    uri, headers, _ = signed(gw, "GET", "/per-user", headers={"X-Apig-Mode": "debug"},
                             key="PLAINAK00001", secret="plain-tenant-sk1")
    r = send(gw, "GET", uri, headers)
    assert r.status == 200
    assert r.header("x-apig-ratelimit-user") == f"remain:1,limit:2,time:{WINDOW} second"


# Counters of one API must not move when callers choose keys of another.
# These addresses were picked so that, under the old unkeyed slot hash, each
# one's counter on /flood lands in the slot of /victim's API counter; a
# full slot then dropped the counter whose window ended soonest: /victim's.
COLLIDING = ("100.96.118.62 100.96.131.194 100.96.180.228 100.96.193.234 100.97.252.124 "
             "100.98.28.231 100.98.30.171 100.98.68.248 100.98.116.46 100.98.171.176 "
             "100.98.190.32 100.98.211.217 100.98.248.244 100.99.104.62 100.99.153.145 "
             "100.99.168.152").split()
VICTIM_WINDOW = 10  # seconds

ISOLATION_DEFS = """
gateway: {{trusted_hops: 1}}
groups:
  - name: g
    default: true
apis:
  - {{name: victim, group: g, method: GET, path: /victim, backend: {{mock: {{body: ok}}}}, publish: [RELEASE]}}
  - {{name: flood, group: g, method: GET, path: /flood, backend: {{mock: {{body: ok}}}}, publish: [RELEASE]}}
  - {{name: mapped, group: g, method: GET, path: /mapped, backend: {{mock: {{body: ok}}}}, publish: [RELEASE]}}
throttles:
  - name: tight
    unit: second
    interval: {victim_window}
    api_limit: 5
    bindings: [{{group: g, api: victim, environments: [RELEASE]}}]
  - name: daily
    unit: day
    interval: 1
    api_limit: 1000
    ip_limit: 5
    bindings: [{{group: g, api: flood, environments: [RELEASE]}}]
  - name: seven
    unit: second
    interval: {window}
    api_limit: 100
    ip_limit: 3
    bindings: [{{group: g, api: mapped, environments: [RELEASE]}}]
"""


@pytest.fixture(scope="module")
def isolated():
    with gateway_with_backend(ISOLATION_DEFS, victim_window=VICTIM_WINDOW, window=WINDOW) as g:
        yield g


def test_chosen_addresses_on_one_api_cannot_reset_another_api_s_limit(isolated):
    while time.time() % VICTIM_WINDOW > 0.5:  # all of it inside one window
        time.sleep(0.05)
    assert admitted(burst(isolated, [("/victim", {})] * 8)) == 5
    for ip in COLLIDING:
        r = isolated.request("GET", "/flood", {"X-Forwarded-For": ip})
        assert r.status == 200, r.status
    assert admitted(burst(isolated, [("/victim", {})] * 8)) == 0, "still 5 in this window"
    assert time.time() % VICTIM_WINDOW < VICTIM_WINDOW - 1, "the test outran its window"


def test_ipv4_mapped_address_is_the_same_client(isolated):
    fresh_window()
    s = burst(isolated, [("/mapped", {"X-Forwarded-For": "198.51.100.77"})] * 5
              + [("/mapped", {"X-Forwarded-For": "::ffff:198.51.100.77"})] * 5)
    assert admitted(s) == 3, s
