"""The client's protocol and domain as system parameters (Alibaba's
CaHttpSchema and CaDomain), over HTTP and HTTPS on the real Envoy: the echo
backend reports what it received."""
import http.client
import json
import socket
import ssl
from urllib.parse import parse_qsl, urlsplit

import pytest

from conftest import Backend, free_port, start_gateway
from pki import Ca

DEFS = """
gateway:
  https_listen: "127.0.0.1:{https}"
groups:
  - name: shop
    default: true
    domains: [shop.test]
    certificates:
      - {{cert: "{cert}", key: "{key}"}}
apis:
  - name: facts
    group: shop
    method: GET
    path: /facts
    backend:
      http: {{address: "{echo}", path: "/be/{{domain}}"}}
      params:
        - {{name: X-Client-Proto, in: header, system: protocol}}
        - {{name: domain, in: path, system: domain}}
        - {{name: d, in: query, system: domain}}
    publish: [RELEASE]
"""


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    work = tmp_path_factory.mktemp("tls-params")
    ca = Ca(work / "certs")
    cert, key = ca.issue("shop.test")
    echo = Backend("echo")
    https_port = free_port()
    gw = start_gateway(DEFS.format(https=https_port, cert=cert, key=key, echo=echo.address), work)
    yield gw, ca, https_port
    gw.stop()
    echo.close()


def over_tls(env, path, host, headers=None):
    gw, ca, port = env
    ctx = ssl.create_default_context(cafile=str(ca.cert))
    conn = http.client.HTTPSConnection(host, port, timeout=10, context=ctx)
    # SNI and the certificate's name come from `host`; the socket goes to loopback.
    conn._create_connection = lambda addr, *a, **k: socket.create_connection(("127.0.0.1", port), *a, **k)
    conn.request("GET", path, headers={"Host": f"{host}:{port}", **(headers or {})})
    r = conn.getresponse()
    body = r.read()
    conn.close()
    assert r.status == 200, (r.status, body)
    return json.loads(body)


def test_protocol_and_domain_over_https(env):
    seen = over_tls(env, "/facts", "shop.test")
    assert seen["headers"]["x-client-proto"] == "https"
    url = urlsplit(seen["path"])
    assert url.path == "/be/shop.test"
    assert dict(parse_qsl(url.query)) == {"d": "shop.test"}


def test_protocol_and_domain_over_http_cannot_be_forged(env):
    gw, _, _ = env
    r = gw.request("GET", "/facts?d=forged.test", host="shop.test:8080",
                   headers={"X-Forwarded-Proto": "https", "X-Client-Proto": "https"})
    assert r.status == 200, r.body
    seen = json.loads(r.body)
    assert seen["headers"]["x-client-proto"] == "http"
    assert urlsplit(seen["path"]).path == "/be/shop.test"
    assert dict(parse_qsl(urlsplit(seen["path"]).query)) == {"d": "shop.test"}
