"""`pylon import` / `pylon export` end to end: a Huawei export imported,
compiled and called on the real Envoy (signed with Huawei's SDK), and every
exported document checked by an independent validator (PyPI
`openapi-spec-validator`)."""
import json
import subprocess
import tempfile
from pathlib import Path

import pytest
import yaml
from openapi_spec_validator import validate

from conftest import PYLON, ROOT, Backend, serving
from huaweicloudsdkcore.auth.credentials import BasicCredentials
from huaweicloudsdkcore.sdk_request import SdkRequest
from huaweicloudsdkcore.signer.signer import Signer

from test_app_auth_huawei import KEY, SECRET

DATA = ROOT / "tests/data/openapi"

APPS = """
apps:
  - name: mobile
    key: {key}
    secret: "{secret}"
    authorizations:
      - {{group: shop, api: get_order, environments: [RELEASE]}}
"""


def pylon(*args):
    return subprocess.run([str(PYLON), *map(str, args)], capture_output=True, text=True, timeout=60)


@pytest.fixture(scope="module")
def gw():
    backend = Backend("be")
    with tempfile.TemporaryDirectory(prefix="pylon-e2e-") as work:
        work = Path(work)
        doc = work / "export.yaml"
        doc.write_text((DATA / "e2e-huawei.yaml").read_text().replace("{backend}", backend.address))
        res = pylon("import", doc, "--out", work / "imported", "--publish", "RELEASE", "--strict")
        assert res.returncode == 0, res.stderr
        defs = (work / "imported/shop.yaml").read_text() + APPS.format(key=KEY, secret=SECRET)
        with serving(defs, work, backend) as g:
            yield g


HOST = "shop.example.com"  # the export's `host`, which becomes the group's domain


def call(gw, path, query=(), sign=True):
    """Signed by Huawei's SDK for the group's domain, sent to the gateway."""
    req = SdkRequest(method="GET", schema="http", host=HOST, resource_path=path,
                     query_params=list(query), header_params={}, body=b"")
    headers = {}
    if sign:
        req = Signer(BasicCredentials(KEY, SECRET)).sign(req)
        headers = {k: v for k, v in req.header_params.items() if k.lower() != "host"}
    uri = path + ("?" + "&".join(f"{k}={v}" for k, v in query) if query else "")
    return gw.request("GET", uri, headers, host=HOST)


def test_imported_app_api_takes_a_signed_call_and_maps_its_parameters(gw):
    r = call(gw, "/orders/42", [("tier", "gold")])
    assert r.status == 200, r.body
    seen = r.json()
    assert seen["path"].startswith("/be/orders/42")
    assert seen["headers"]["x-tier"] == "gold"
    assert seen["headers"]["x-source"] == "imported"


def test_imported_app_api_refuses_unsigned_and_bad_enum(gw):
    assert call(gw, "/orders/42", sign=False).status == 401
    assert call(gw, "/orders/42", [("tier", "platinum")]).status == 400


def test_imported_mock_answers(gw):
    r = gw.request("GET", "/health", host=HOST)
    assert r.status == 200 and r.json() == {"ok": True}


def assert_every_export_valid(tmp_path):
    """Exports `tmp_path/defs` in every format and scope to
    `tmp_path/FORMAT-SCOPE.json`, each a valid OpenAPI document."""
    for fmt in ("huawei", "aliyun", "openapi"):
        for scope in ("base", "full", "extended"):
            out = tmp_path / f"{fmt}-{scope}.json"
            res = pylon("export", tmp_path / "defs", "--format", fmt, "--scope", scope, "--out", out)
            assert res.returncode == 0, res.stderr
            validate(json.loads(out.read_text()))


@pytest.mark.parametrize("source", ["huawei-export-example.json", "petstore-swagger2.json",
                                    "swagger-petstore-openapi3.yaml", "ory-client-openapi3.json"])
def test_every_exported_document_is_valid(source, tmp_path):
    res = pylon("import", DATA / source, "--out", tmp_path / "defs", "--backend", "http://127.0.0.1:9000")
    assert res.returncode == 0, res.stderr
    assert_every_export_valid(tmp_path)


def test_example_definitions_export_valid_documents(tmp_path):
    groups = [g["name"] for f in sorted((ROOT / "examples/shop").glob("*.yaml"))
              for g in (yaml.safe_load(f.read_text()) or {}).get("groups", [])]
    assert groups
    for group in groups:
        for fmt in ("huawei", "aliyun", "openapi"):
            out = tmp_path / f"{group}-{fmt}.json"
            res = pylon("export", ROOT / "examples/shop", "--group", group, "--format", fmt,
                        "--scope", "extended", "--out", out)
            assert res.returncode == 0, res.stderr
            validate(json.loads(out.read_text()))


def test_strict_import_fails_on_what_is_not_honoured(tmp_path):
    res = pylon("import", DATA / "huawei-export-example.json", "--out", tmp_path / "defs", "--strict")
    assert res.returncode != 0
    assert "#/paths/~1test~1{path}/get/x-apigateway-backend-policies/0/type" in res.stderr
    assert not (tmp_path / "defs").exists()


TLS_DEFS = """
groups:
  - name: chat
    domains: [chat.example.com]
    certificates:
      - {cert: tls/chat.pem, key: tls/chat.key}
apis:
  - name: room
    group: chat
    method: GET
    path: /room
    protocol: HTTPS
    websocket: true
    backend:
      http:
        address: chat.internal:8443
        scheme: https
        path: /ws
        tls: {ca: tls/ca.pem, cert: tls/gw.pem, key: tls/gw.key}
  - name: plain
    group: chat
    method: GET
    path: /plain
    protocol: HTTP
    backend: {http: {address: 10.0.0.5:8080, path: /plain}}
"""


def test_protocol_websocket_and_tls_export_valid_and_import_back(tmp_path):
    """HTTPS, WebSocket, backend TLS and certificates survive a console
    document both ways, which stays valid; key contents are never written."""
    (tmp_path / "defs").mkdir()
    (tmp_path / "defs/chat.yaml").write_text(TLS_DEFS)
    assert_every_export_valid(tmp_path)
    hw = json.loads((tmp_path / "huawei-full.json").read_text())
    assert hw["paths"]["/room"]["get"]["schemes"] == ["https"]
    assert hw["paths"]["/plain"]["get"]["schemes"] == ["http"]
    ali = json.loads((tmp_path / "aliyun-full.json").read_text())
    assert ali["paths"]["/room"]["get"]["x-aliyun-apigateway-request-config"] == {
        "requestProtocol": "HTTPS,WEBSOCKET"}
    assert "protocol" in pylon("export", tmp_path / "defs", "--format", "openapi").stderr
    for fmt in ("huawei", "aliyun"):
        # Paths stay relative to the definitions: the import checks them there.
        (tmp_path / f"back-{fmt}/tls").mkdir(parents=True)
        for f in ("ca.pem", "gw.pem", "gw.key", "chat.pem", "chat.key"):
            (tmp_path / f"back-{fmt}/tls" / f).write_text("pem\n")
        res = pylon("import", tmp_path / f"{fmt}-full.json", "--out", tmp_path / f"back-{fmt}",
                    "--strict")
        assert res.returncode == 0, res.stderr
        back = yaml.safe_load((tmp_path / f"back-{fmt}/chat.yaml").read_text())
        apis = {a["name"]: a for a in back["apis"]}
        room = apis["room"]
        assert (room["protocol"], room["websocket"]) == ("HTTPS", True)
        assert room["backend"]["http"]["tls"] == {"ca": "tls/ca.pem", "cert": "tls/gw.pem",
                                                  "key": "tls/gw.key"}
        assert back["groups"][0]["certificates"] == [{"cert": "tls/chat.pem", "key": "tls/chat.key"}]
        assert apis["plain"]["protocol"] == "HTTP"


def test_https_only_huawei_export_imports_and_compile_asks_for_a_certificate(tmp_path):
    """The Huawei reference export (`schemes: [https]`) imports as HTTPS even
    though no console exports certificates; compile then names what is missing."""
    res = pylon("import", DATA / "huawei-export-example.json", "--out", tmp_path / "defs")
    assert res.returncode == 0, res.stderr
    assert "groups[].certificates" in res.stderr
    assert "protocol: HTTPS" in (tmp_path / "defs/APIGroup_test.yaml").read_text()
    res = pylon("validate", tmp_path / "defs")
    assert res.returncode != 0
    assert "HTTPS needs a certificate" in res.stderr + res.stdout
