"""Access control by client IP (addresses, CIDR, ranges; IPv4 and IPv6) and
by account, with the client address taken from the peer or from the
X-Forwarded-For entry that the configured trusted hops vouch for."""
import pytest

from conftest import gateway_with_backend
from test_app_auth_huawei import send, signed

DEFS = """
gateway: {{trusted_hops: {hops}}}
groups:
  - name: g
    default: true
    responses:
      default:
        ACCESS_DENIED:
          body: '{{"error_code":"$context.error.code","ip":"$context.sourceIp","msg":"$context.error.message"}}'
apis:
  - {{name: office, group: g, method: GET, path: /office, backend: {{http: {{address: "{backend}", path: /be}}}}, publish: [RELEASE]}}
  - {{name: public, group: g, method: GET, path: /public, backend: {{http: {{address: "{backend}", path: /be}}}}, publish: [RELEASE]}}
  - {{name: tenant, group: g, method: GET, path: /tenant, auth: iam, backend: {{http: {{address: "{backend}", path: /be}}}}, publish: [RELEASE]}}
acls:
  - name: office-only
    type: ip
    action: allow
    values: ["10.0.0.0/8", "192.168.1.10-192.168.1.20", "2001:db8::/32"]
    bindings: [{{group: g, api: office, environments: [RELEASE]}}]
  - name: blocklist
    type: ip
    action: deny
    values: ["203.0.113.7", "2001:db8:bad::1"]
    bindings: [{{group: g, api: public, environments: [RELEASE]}}]
  - name: tenants
    type: account
    action: allow
    values: [tenant-a]
    bindings: [{{group: g, api: tenant, environments: [RELEASE]}}]
accounts:
  - {{name: tenant-a, ak: TENANTAK00A1, sk: tenant-a-secret-1}}
  - {{name: tenant-b, ak: TENANTAK00B1, sk: tenant-b-secret-1}}
"""


@pytest.fixture(scope="module")
def behind_proxy():
    with gateway_with_backend(DEFS, hops=1) as gw:
        yield gw


@pytest.fixture(scope="module")
def direct():
    with gateway_with_backend(DEFS, hops=0) as gw:
        yield gw


def from_ip(gw, path, xff):
    return gw.request("GET", path, {"X-Forwarded-For": xff})


def denied(r, ip):
    assert r.status == 403, (r.status, r.body)
    body = r.json()
    assert body["error_code"] == "APIG.0402"
    assert body["ip"] == ip
    return body


@pytest.mark.parametrize("ip", ["10.1.2.3", "192.168.1.10", "192.168.1.20", "2001:db8::7", "2001:db8:ffff::1"])
def test_allow_list_admits_addresses_ranges_and_cidrs(behind_proxy, ip):
    assert from_ip(behind_proxy, "/office", ip).status == 200


@pytest.mark.parametrize("ip", ["11.0.0.1", "192.168.1.9", "192.168.1.21", "2001:db9::1", "::1"])
def test_allow_list_refuses_everyone_else(behind_proxy, ip):
    denied(from_ip(behind_proxy, "/office", ip), ip)


def test_deny_list(behind_proxy):
    denied(from_ip(behind_proxy, "/public", "203.0.113.7"), "203.0.113.7")
    denied(from_ip(behind_proxy, "/public", "2001:db8:bad::1"), "2001:db8:bad::1")
    assert from_ip(behind_proxy, "/public", "203.0.113.8").status == 200
    assert from_ip(behind_proxy, "/public", "2001:db8:bad::2").status == 200


def test_spoofed_left_entries_do_not_count(behind_proxy):
    # One trusted hop: only the rightmost entry (added by that proxy) is the client.
    denied(from_ip(behind_proxy, "/office", "10.0.0.1, 8.8.8.8"), "8.8.8.8")
    r = from_ip(behind_proxy, "/public", "203.0.113.7, 198.51.100.1")
    assert r.status == 200, "a blocked address hidden on the left is not the client"


def test_without_trusted_hops_x_forwarded_for_is_ignored(direct):
    r = from_ip(direct, "/office", "10.1.2.3")
    body = r.json()
    assert r.status == 403, "the peer, not the header, is the client"
    assert body["ip"] != "10.1.2.3"
    assert from_ip(direct, "/public", "203.0.113.7").status == 200


def test_account_acl(behind_proxy):
    uri, headers, _ = signed(behind_proxy, "GET", "/tenant", key="TENANTAK00A1", secret="tenant-a-secret-1")
    assert send(behind_proxy, "GET", uri, headers).status == 200
    uri, headers, _ = signed(behind_proxy, "GET", "/tenant", key="TENANTAK00B1", secret="tenant-b-secret-1")
    r = send(behind_proxy, "GET", uri, headers)
    assert r.status == 403
    assert r.json()["error_code"] == "APIG.0302"
