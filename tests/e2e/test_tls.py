"""HTTPS on the real Envoy: certificates per domain picked by SNI (wildcards,
the default group's certificate), minimum TLS versions, HTTP/2 by ALPN,
request protocols per API, AppCode over HTTPS only, the vendors' SDKs over
HTTPS, verified HTTPS backends, WebSocket through an authenticated API, and
a certificate replaced on disk served without a restart."""
import http.client
import json
import os
import shutil
import socket
import ssl
import subprocess
import threading
import time
from http.server import ThreadingHTTPServer
from urllib.parse import quote

import pytest
from huaweicloudsdkcore.auth.credentials import BasicCredentials
from huaweicloudsdkcore.sdk_request import SdkRequest
from huaweicloudsdkcore.signer.signer import Signer
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect as ws_connect
from websockets.sync.server import serve as ws_serve

import echo_backend
from conftest import ROOT, WASM, Backend, Envoy, free_port, seal_env, start_gateway
from pki import Ca

KEY, SECRET, CODE = "tlsKey000001", "tls-secret-0123456789", "tls-appcode-0123456789abcdef"

DEFS = """
gateway:
  https_listen: "127.0.0.1:{https}"
groups:
  - name: main
    default: true
    domains: [a.test, "*.w.test"]
    certificates:
      - {{cert: "{certs}/localhost.pem", key: "{certs}/localhost.key", domains: []}}
      - {{cert: "{certs}/a.test.pem", key: "{certs}/a.test.key", domains: [a.test]}}
      - {{cert: "{certs}/star.w.test.pem", key: "{certs}/star.w.test.key", domains: ["*.w.test"]}}
  - name: legacy
    domains: [b.test]
    certificates:
      - {{cert: "{certs}/b.test.pem", key: "{certs}/b.test.key", min_tls: TLS1.1}}
apis:
  - {{name: open, group: main, method: ANY, path: /open, backend: {{http: {{address: "{echo}", path: /be/open}}}}, publish: [RELEASE]}}
  - {{name: old, group: legacy, method: GET, path: /old, backend: {{http: {{address: "{echo}", path: /be/old}}}}, publish: [RELEASE]}}
  - {{name: secure, group: main, method: GET, path: /secure, protocol: HTTPS,
     backend: {{http: {{address: "{echo}", path: /be/secure}}}}, publish: [RELEASE]}}
  - {{name: plain, group: main, method: GET, path: /plain, protocol: HTTP,
     backend: {{http: {{address: "{echo}", path: /be/plain}}}}, publish: [RELEASE]}}
  - {{name: signed, group: main, method: ANY, path: /signed, auth: app, app_code: https,
     backend: {{http: {{address: "{echo}", path: /be/signed}}}}, publish: [RELEASE]}}
  - {{name: ws, group: main, method: GET, path: /ws, auth: app, app_code: https, websocket: true,
     backend: {{http: {{address: "{ws}", path: /chat}}}}, publish: [RELEASE]}}
  - {{name: verified, group: main, method: GET, path: /be/verified,
     backend: {{http: {{address: "localhost:{good}", scheme: https, path: /v, tls: {{ca: "{ca}"}}}}}}, publish: [RELEASE]}}
  - {{name: system-roots, group: main, method: GET, path: /be/system-roots,
     backend: {{http: {{address: "localhost:{good}", scheme: https, path: /v}}}}, publish: [RELEASE]}}
  - {{name: unknown-ca, group: main, method: GET, path: /be/unknown-ca,
     backend: {{http: {{address: "localhost:{rogue}", scheme: https, path: /v, tls: {{ca: "{ca}"}}}}}}, publish: [RELEASE]}}
  - {{name: skip, group: main, method: GET, path: /be/skip,
     backend: {{http: {{address: "localhost:{rogue}", scheme: https, path: /v, tls: {{insecure_skip_verify: true}}}}}}, publish: [RELEASE]}}
  - {{name: wrong-name, group: main, method: GET, path: /be/wrong-name,
     backend: {{http: {{address: "localhost:{wrong}", scheme: https, path: /v, tls: {{ca: "{ca}"}}}}}}, publish: [RELEASE]}}
  - {{name: expired, group: main, method: GET, path: /be/expired,
     backend: {{http: {{address: "localhost:{expired}", scheme: https, path: /v, tls: {{ca: "{ca}"}}}}}}, publish: [RELEASE]}}
  - {{name: mtls, group: main, method: GET, path: /be/mtls,
     backend: {{http: {{address: "localhost:{mtls}", scheme: https, path: /v,
                tls: {{ca: "{ca}", cert: "{certs}/gateway-client.pem", key: "{certs}/gateway-client.key"}}}}}}, publish: [RELEASE]}}
  - {{name: mtls-no-cert, group: main, method: GET, path: /be/mtls-no-cert,
     backend: {{http: {{address: "localhost:{mtls}", scheme: https, path: /w, tls: {{ca: "{ca}"}}}}}}, publish: [RELEASE]}}
apps:
  - name: caller
    key: {key}
    secret: "{secret}"
    codes: ["{code}"]
    authorizations:
      - {{group: main, api: signed, environments: [RELEASE]}}
      - {{group: main, api: ws, environments: [RELEASE]}}
"""


def tls_backend(name, cert, key, client_ca=None):
    server = ThreadingHTTPServer(("127.0.0.1", 0), echo_backend.Echo)
    server.daemon_threads = True
    server.name, server.hits = name, 0
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    if client_ca:
        ctx.verify_mode = ssl.CERT_REQUIRED
        ctx.load_verify_locations(client_ca)
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def ws_echo(conn):
    """Echoes messages; `who` answers with what the backend was sent."""
    for message in conn:
        if message == "who":
            h = conn.request.headers
            conn.send(json.dumps({"path": conn.request.path, "appcode": h.get("x-apig-appcode")}))
        else:
            conn.send(message)


class Env:
    pass


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    work = tmp_path_factory.mktemp("tls")
    certs = work / "certs"
    e = Env()
    e.ca = Ca(certs)
    rogue = Ca(certs / "rogue", "Rogue CA")
    e.ca.issue("localhost", ["localhost", "IP:127.0.0.1"])
    e.ca.issue("a.test")
    e.ca.issue("*.w.test")
    e.ca.issue("b.test")
    e.ca.issue("gateway-client")
    good = tls_backend("verified", *e.ca.issue("localhost", file="backend"))
    rogue_be = tls_backend("rogue", *rogue.issue("localhost"))
    wrong = tls_backend("wrong", *e.ca.issue("other.test"))
    expired = tls_backend("expired", *e.ca.issue("localhost", days=-1, file="expired"))
    mtls = tls_backend("mtls", *e.ca.issue("localhost", file="mtls"), client_ca=e.ca.cert)
    ws = ws_serve(ws_echo, "127.0.0.1", 0)
    threading.Thread(target=ws.serve_forever, daemon=True).start()
    e.echo = Backend("echo")
    e.https = free_port()
    e.certs = certs
    defs = DEFS.format(https=e.https, certs=certs, ca=e.ca.cert, echo=e.echo.address,
                       ws=f"127.0.0.1:{ws.socket.getsockname()[1]}", good=good.server_address[1],
                       rogue=rogue_be.server_address[1], wrong=wrong.server_address[1],
                       expired=expired.server_address[1], mtls=mtls.server_address[1],
                       key=KEY, secret=SECRET, code=CODE)
    e.gw = start_gateway(defs, work)
    e.gw.https = e.https
    yield e
    e.gw.stop()
    ws.shutdown()
    e.echo.close()
    for s in (good, rogue_be, wrong, expired, mtls):
        s.shutdown()


def client_ctx(env, **kw):
    ctx = ssl.create_default_context(cafile=str(env.ca.cert))
    for k, v in kw.items():
        setattr(ctx, k, v)
    return ctx


def https(env, method, path, host="localhost", headers=None, body=None, ctx=None):
    """A request over TLS to the HTTPS listener, with `host` as Host and
    (without its port) as SNI."""
    conn = http.client.HTTPSConnection("127.0.0.1", env.https, timeout=10,
                                       context=ctx or client_ctx(env))
    # SNI and certificate name come from the host; the socket goes to loopback.
    conn.host = host.split(":")[0]
    conn._create_connection = lambda addr, *a, **k: socket.create_connection(("127.0.0.1", env.https), *a, **k)
    conn.connect()
    version = conn.sock.version()
    peer = conn.sock.getpeercert()
    conn.request(method, path, body=body, headers={"Host": host, **(headers or {})})
    r = conn.getresponse()
    data = r.read()
    conn.close()
    return r.status, data, version, peer


def subject(peer):
    return dict(x[0] for x in peer["subject"])["commonName"]


def curl(env, *args, host="localhost"):
    out = subprocess.run(
        ["curl", "-sS", "--max-time", "10", "--cacert", str(env.ca.cert),
         "--resolve", f"{host}:{env.https}:127.0.0.1", "-w", "\n%{http_code} %{http_version}", *args],
        capture_output=True, text=True, timeout=20)
    body, _, tail = out.stdout.rpartition("\n")
    return out.returncode, body, tail, out.stderr


# --- certificates, SNI, versions ------------------------------------------

def test_sni_picks_each_domains_certificate_and_the_default_for_others(env):
    for host, cn in [("a.test", "a.test"), ("x.w.test", "*.w.test"), ("b.test", "b.test"),
                     ("localhost", "localhost")]:
        path = "/old" if host == "b.test" else "/open"
        status, body, _, peer = https(env, "GET", path, host=host)
        assert status == 200, (host, body)
        assert subject(peer) == cn
    # A name no certificate claims gets the default group's certificate,
    # which does not name it: a verifying client refuses.
    with pytest.raises(ssl.SSLCertVerificationError):
        https(env, "GET", "/open", host="nobody.test")


def test_curl_and_python_over_tls12_and_tls13(env):
    for flags, want in [(["--tlsv1.2", "--tls-max", "1.2"], "TLSv1.2"), (["--tlsv1.3"], "TLSv1.3")]:
        code, body, tail, err = curl(env, *flags, "-v", f"https://a.test:{env.https}/open", host="a.test")
        assert code == 0 and tail.startswith("200"), err
        assert f"SSL connection using {want}" in err
    for version in (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3):
        ctx = client_ctx(env, minimum_version=version, maximum_version=version)
        status, _, got, _ = https(env, "GET", "/open", host="a.test", ctx=ctx)
        assert (status, got) == (200, version.name.replace("v1_", "v1."))


def s_client(env, host, *flags):
    """OpenSSL's client speaking TLS 1.1 (its security level lowered so it
    may): whether the handshake completed."""
    out = subprocess.run(
        ["openssl", "s_client", "-connect", f"127.0.0.1:{env.https}", "-servername", host,
         "-tls1_1", "-cipher", "DEFAULT:@SECLEVEL=0", *flags],
        input="", capture_output=True, text=True, timeout=20)
    done = "Protocol  : TLSv1.1" in out.stdout and "Cipher is (NONE)" not in out.stdout
    return done


def test_tls11_only_where_the_domain_allows_it(env):
    # The local OpenSSL (3.x) still speaks TLS 1.1 at security level 0.
    assert s_client(env, "b.test"), "b.test sets min_tls: TLS1.1"
    assert not s_client(env, "a.test"), "a.test keeps the TLS 1.2 default"
    assert not s_client(env, "localhost")


def test_http2_over_tls_by_alpn(env):
    code, body, tail, err = curl(env, "--http2", f"https://a.test:{env.https}/open", host="a.test")
    assert code == 0, err
    assert tail == "200 2"
    assert json.loads(body)["path"] == "/be/open"


# --- request protocols ----------------------------------------------------

def test_each_api_answers_on_its_own_protocols(env):
    assert https(env, "GET", "/secure")[0] == 200
    r = env.gw.request("GET", "/secure")
    assert r.status == 400
    assert r.json()["error_code"] == "APIG.0204"
    assert r.json()["error_msg"] == "SSL protocol is not supported: HTTP"
    assert env.gw.request("GET", "/plain").status == 200
    status, body, _, _ = https(env, "GET", "/plain")
    assert (status, json.loads(body)["error_code"]) == (400, "APIG.0204")
    # Both: the default.
    assert env.gw.request("GET", "/open").status == 200
    assert https(env, "GET", "/open")[0] == 200


def test_a_client_cannot_claim_https_over_plain_http(env):
    r = env.gw.request("GET", "/secure", {"X-Forwarded-Proto": "https"})
    assert r.status == 400


def test_appcode_over_https_accepted_over_http_refused(env):
    status, body, _, _ = https(env, "GET", "/signed", headers={"X-Apig-AppCode": CODE})
    assert status == 200, body
    assert "x-apig-appcode" not in json.loads(body)["headers"]
    r = env.gw.request("GET", "/signed", {"X-Apig-AppCode": CODE})
    assert r.status == 401
    assert "HTTPS" in r.json()["error_msg"]


def test_huawei_sdk_signature_over_https(env):
    host = f"localhost:{env.https}"
    req = SdkRequest(method="POST", schema="https", host=host, resource_path="/signed",
                     query_params=[("n", "1")], header_params={"Content-Type": "application/json"},
                     body=b'{"a":1}')
    req = Signer(BasicCredentials(KEY, SECRET)).sign(req)
    headers = dict(req.header_params)
    headers.pop("Host", None)
    path, _, query = req.uri.partition("?")
    status, body, _, _ = https(env, "POST", quote(path, safe="/%") + "?" + query, host=host,
                               headers=headers, body=req.body)
    assert status == 200, body
    wrong = {**headers, "X-Sdk-Date": "20200101T000000Z"}
    status, body, _, _ = https(env, "POST", "/signed?n=1", host=host, headers=wrong, body=req.body)
    assert status == 401


def test_alibaba_node_sdk_over_https(env):
    args = {"mode": "call", "method": "GET", "url": f"https://localhost:{env.https}/signed?x=1",
            "key": KEY, "secret": SECRET}
    out = subprocess.run(["node", str(ROOT / "tests/node/aliyun_client.js"), json.dumps(args)],
                         capture_output=True, text=True, timeout=30,
                         env={**os.environ, "NODE_EXTRA_CA_CERTS": str(env.ca.cert)})
    assert out.returncode == 0, out.stderr
    r = json.loads(out.stdout)
    assert r["status"] == 200, r
    assert r["body"]["path"] == "/be/signed?x=1"


# --- verified HTTPS backends ----------------------------------------------

def test_a_backend_with_a_certificate_of_the_named_ca_and_its_name_is_reached(env):
    r = env.gw.request("GET", "/be/verified")
    assert r.status == 200, r.body
    assert r.json()["backend"] == "verified"


@pytest.mark.parametrize("path", ["/be/unknown-ca", "/be/wrong-name", "/be/expired", "/be/system-roots"])
def test_a_backend_certificate_that_does_not_verify_is_refused(env, path):
    r = env.gw.request("GET", path)
    assert r.status == 502, r.body
    assert r.json()["error_code"] == "APIG.0201"
    assert r.json()["error_msg"] == "Backend unavailable"


def test_skipping_verification_is_an_explicit_opt_out(env):
    r = env.gw.request("GET", "/be/skip")
    assert r.status == 200 and r.json()["backend"] == "rogue"


def test_mutual_tls_to_a_backend(env):
    r = env.gw.request("GET", "/be/mtls")
    assert r.status == 200 and r.json()["backend"] == "mtls"
    assert env.gw.request("GET", "/be/mtls-no-cert").status == 502


# --- WebSocket ------------------------------------------------------------

def test_websocket_round_trip_through_an_authenticated_api(env):
    url = f"wss://localhost:{env.https}/ws"
    with ws_connect(url, ssl=client_ctx(env), additional_headers={"X-Apig-AppCode": CODE},
                    open_timeout=10, close_timeout=2) as ws:
        for message in ["hello", "x" * 70000, "again"]:
            ws.send(message)
            assert ws.recv(timeout=10) == message
        ws.send("who")
        seen = json.loads(ws.recv(timeout=10))
    assert seen == {"path": "/chat", "appcode": None}
    with pytest.raises(InvalidStatus) as refused:
        ws_connect(url, ssl=client_ctx(env), open_timeout=10)
    assert refused.value.response.status_code == 401
    assert json.loads(refused.value.response.body)["error_code"] == "APIG.0303"


def test_websocket_upgrade_signed_by_the_huawei_sdk(env):
    """A signed upgrade is verified at its headers: the frames that follow
    are no body the gateway waits for."""
    host = f"localhost:{env.https}"
    req = Signer(BasicCredentials(KEY, SECRET)).sign(
        SdkRequest(method="GET", schema="https", host=host, resource_path="/ws", query_params=[], header_params={}, body=b""))
    headers = {k: v for k, v in req.header_params.items() if k.lower() != "host"}
    with ws_connect(f"wss://{host}/ws", ssl=client_ctx(env), additional_headers=headers,
                    open_timeout=10, close_timeout=2) as ws:
        ws.send("signed")
        assert ws.recv(timeout=10) == "signed"
    forged = {**headers, "Authorization": headers["Authorization"][:-4] + "0000"}
    with pytest.raises(InvalidStatus) as refused:
        ws_connect(f"wss://{host}/ws", ssl=client_ctx(env), additional_headers=forged, open_timeout=10)
    assert refused.value.response.status_code == 401


def test_an_api_without_websocket_refuses_the_upgrade_with_a_gateway_response(env):
    r = env.gw.request("GET", "/open", {"Connection": "Upgrade", "Upgrade": "websocket",
                                        "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
                                        "Sec-WebSocket-Version": "13"})
    assert r.status == 403
    assert r.json()["error_code"] == "APIG.0201"
    assert r.header("x-request-id")
    before = env.echo.hits
    env.gw.request("GET", "/open", {"Connection": "Upgrade", "Upgrade": "websocket"})
    assert env.echo.hits == before


# --- rotation -------------------------------------------------------------

def test_a_replaced_certificate_is_served_without_a_restart(env):
    status, _, _, peer = https(env, "GET", "/open", host="a.test")
    old = peer["serialNumber"]
    staging = env.certs / "staging"
    staging.mkdir(exist_ok=True)
    cert, key = env.ca.issue("a.test", file="staging/a.test")
    # Key first, then the certificate: each is renamed into place.
    shutil.move(key, env.certs / "a.test.key")
    shutil.move(cert, env.certs / "a.test.pem")
    deadline = time.time() + 10
    serial = old
    while time.time() < deadline and serial == old:
        time.sleep(0.2)
        try:
            serial = https(env, "GET", "/open", host="a.test")[3]["serialNumber"]
        except (ssl.SSLError, OSError):
            pass  # between the key's and the certificate's replacement
    assert serial != old
    assert env.gw.proc.poll() is None


LIVE_DEFS = """
gateway:
  listen: "127.0.0.1:{port}"
  admin: "127.0.0.1:{admin}"
  https_listen: "127.0.0.1:{https}"
groups:
  - name: g
    default: true
    certificates: [{{cert: "{cert}", key: "{key}"}}]
apis:
  - {{name: hello, group: g, method: GET, path: /hello, backend: {{mock: {{status: 200, body: hi}}}}, publish: [RELEASE]}}
"""


def test_a_certificate_change_is_part_of_a_publish(tmp_path):
    """The live target (what `make run` serves): a publish that names another
    certificate file is served by the running Envoy."""
    ca = Ca(tmp_path / "certs")
    first = ca.issue("localhost", ["localhost"], file="first")
    second = ca.issue("localhost", ["localhost"], file="second")
    defs, live = tmp_path / "defs", tmp_path / "live"
    defs.mkdir()
    e = Env()
    e.ca, e.https = ca, free_port()
    port, admin = free_port(), free_port()

    def publish(cert, key):
        (defs / "defs.yaml").write_text(LIVE_DEFS.format(https=e.https, port=port, admin=admin,
                                                         cert=cert, key=key))
        res = subprocess.run([str(ROOT / "target/release/pylon"), "publish", str(defs), "--env", "RELEASE",
                              "--note", "cert", "--live", str(live), "--wasm", str(WASM)],
                             capture_output=True, text=True, env={**seal_env(), "PYLON_PUBLISHER": "e2e"},
                             timeout=60)
        assert res.returncode == 0, res.stderr

    publish(*first)
    envoy = Envoy(live / "envoy.yaml", port, admin, tmp_path)
    try:
        assert envoy.wait_ready(), envoy.log.read_text()
        status, body, _, peer = https(e, "GET", "/hello")
        assert (status, body) == (200, b"hi")
        assert peer["serialNumber"] == "01"
        publish(*second)
        deadline = time.time() + 10
        while time.time() < deadline and https(e, "GET", "/hello")[3]["serialNumber"] == "01":
            time.sleep(0.2)
        assert https(e, "GET", "/hello")[3]["serialNumber"] == "02"
        assert envoy.proc.poll() is None
    finally:
        envoy.stop()
