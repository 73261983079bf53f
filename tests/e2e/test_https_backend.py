"""An `scheme: https` backend is reached over TLS, with SNI set to its host
and its certificate verified against the CA file the definitions name."""
import ssl
import subprocess
import threading
from http.server import ThreadingHTTPServer

import echo_backend
from conftest import start_gateway

DEFS = """
groups:
  - name: g
    default: true
apis:
  - name: secure
    group: g
    method: GET
    path: /secure/{{id}}
    backend:
      http:
        address: "localhost:{port}"
        scheme: https
        path: /tls/{{id}}
        tls: {{ca: "{ca}"}}
    publish: [RELEASE]
"""


def test_https_backend_over_tls(workdir):
    key, cert = workdir / "key.pem", workdir / "cert.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)
    server = ThreadingHTTPServer(("127.0.0.1", 0), echo_backend.Echo)
    server.name = "tls"
    seen_sni = []
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    ctx.sni_callback = lambda sock, name, _ctx: seen_sni.append(name)
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    gw = start_gateway(DEFS.format(port=server.server_address[1], ca=cert), workdir)
    try:
        r = gw.request("GET", "/secure/9?x=1")
        assert r.status == 200, r.body
        seen = r.json()
        assert seen["backend"] == "tls"
        assert seen["path"] == "/tls/9?x=1"
        assert seen["headers"]["host"] == f"localhost:{server.server_address[1]}"
        assert seen_sni == ["localhost"]
    finally:
        gw.stop()
        server.shutdown()
