"""Client addresses in the forms Envoy passes through: an IPv6 zone id in a
trusted X-Forwarded-For entry must not let a caller past an IP deny list or
out of its IP limit (found red-teaming session 5's throttling changes)."""
import pytest

from conftest import gateway_with_backend

# Envoy vouches for the X-Forwarded-For entry of the trusted hop; it keeps an
# IPv6 zone id (`%1`) that a caller, or a proxy in front, writes there.
ADDRESS_DEFS = """
gateway: {{trusted_hops: 1}}
groups:
  - name: g
    default: true
    responses:
      default:
        ACCESS_DENIED:
          body: '{{"error_code":"$context.error.code","ip":"$context.sourceIp"}}'
apis:
  - {{name: limited, group: g, method: GET, path: /limited, backend: {{http: {{address: "{backend}", path: /be}}}}, publish: [RELEASE]}}
  - {{name: guarded, group: g, method: GET, path: /guarded, backend: {{http: {{address: "{backend}", path: /be}}}}, publish: [RELEASE]}}
throttles:
  - name: per-client
    unit: day
    interval: 1
    api_limit: 100000
    ip_limit: 3
    bindings: [{{group: g, api: limited, environments: [RELEASE]}}]
acls:
  - name: blocklist
    type: ip
    action: deny
    values: ["2001:db8:bad::1", "203.0.113.7"]
    bindings: [{{group: g, api: guarded, environments: [RELEASE]}}]
"""


@pytest.fixture(scope="module")
def proxied():
    with gateway_with_backend(ADDRESS_DEFS) as g:
        yield g


def test_zone_ids_do_not_escape_an_ip_limit(proxied):
    # Huawei user guide §5.3: the source IP limit counts each client
    # address. `2001:db8::1%N` is the address 2001:db8::1 whatever N is.
    forms = ["2001:db8::1", "2001:db8::1%1", "2001:db8::1%2", "2001:db8::1%3", "2001:db8:0::1%4"]
    statuses = [proxied.request("GET", "/limited", {"X-Forwarded-For": f}).status for f in forms * 2]
    assert statuses.count(200) == 3, statuses
    assert set(statuses) == {200, 429}, statuses


@pytest.mark.parametrize("form, address", [
    ("2001:db8:bad::1%1", "2001:db8:bad::1"),
    ("2001:db8:bad:0::1%25", "2001:db8:bad::1"),
    ("::ffff:203.0.113.7%1", "::ffff:203.0.113.7"),
])
def test_a_zone_id_does_not_escape_an_ip_deny_list(proxied, form, address):
    # Huawei user guide §5.4 (access control): a denied address is denied
    # in every spelling of it.
    before = proxied.backend.hits
    r = proxied.request("GET", "/guarded", {"X-Forwarded-For": form})
    assert r.status == 403, (r.status, r.body)
    assert r.json() == {"error_code": "APIG.0402", "ip": address}
    assert proxied.backend.hits == before
