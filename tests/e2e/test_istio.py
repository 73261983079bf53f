"""`pylon compile --target istio`: every resource it writes passes Istio's
published CRD schemas (@kubernetes-models/istio, run by
tests/node/validate_istio.mjs), for the bundled example and for a large
generated definition set; no secret is in the output in plaintext."""
import json
import os
import subprocess
from pathlib import Path

import yaml

from conftest import PYLON, ROOT, SEAL_KEY, WASM, Backend, Envoy, compile_defs, free_port, seal_env
from pki import Ca

VALIDATOR = ROOT / "tests/node/validate_istio.mjs"


def compile_istio(defs, out, *extra):
    res = subprocess.run(
        [str(PYLON), "compile", str(defs), "--out", str(out), "--wasm", str(WASM),
         "--target", "istio", *extra],
        capture_output=True, text=True, env=seal_env(), timeout=120)
    assert res.returncode == 0, res.stderr
    text = (out / "istio.yaml").read_text()
    return text, [d for d in yaml.safe_load_all(text) if d]


def validate(docs):
    res = subprocess.run(["node", str(VALIDATOR)], input=json.dumps(docs),
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stdout + res.stderr
    return res.stderr


def kinds(docs):
    out = {}
    for d in docs:
        out[d["kind"]] = out.get(d["kind"], 0) + 1
    return out


def test_the_example_compiles_to_valid_istio_resources(workdir):
    text, docs = compile_istio(ROOT / "examples/shop", workdir / "out")
    validate(docs)
    assert kinds(docs) == {"WasmPlugin": 1, "Gateway": 1, "VirtualService": 1, "EnvoyFilter": 1,
                           "ServiceEntry": 3, "DestinationRule": 3}
    # `kubectl apply -f DIR` must find nothing else to apply.
    assert sorted(p.name for p in (workdir / "out").iterdir()) == ["istio.yaml", "pylon_filter.wasm"]
    plugin = next(d for d in docs if d["kind"] == "WasmPlugin")
    assert plugin["spec"]["url"] == f"file://{(workdir / 'out/pylon_filter.wasm').resolve()}"
    assert SEAL_KEY not in text


def generated_defs(groups=6, apis=300, backends=12):
    """`apis` APIs over `groups` groups, with http and https backends on IPs
    and host names, apps with secrets, and one default group."""
    lines = ["groups:"]
    for g in range(groups):
        lines.append(f"  - name: g{g}")
        lines.append(f"    domains: [g{g}.example.com, \"*.g{g}.example.org\"]")
        if g == 0:
            lines.append("    default: true")
    lines.append("apps:")
    secrets = []
    for a in range(5):
        secret = f"gen-SECRET-{a}-6c0ffee{a}"
        secrets.append(secret)
        lines += [f"  - name: app{a}", f"    key: genkey{a:04d}abcdef", f"    secret: {secret}"]
    lines.append("apis:")
    for i in range(apis):
        b = i % backends
        address = f"10.1.0.{b + 1}:{8000 + b}" if b % 3 == 0 else f"svc{b}.example.net"
        scheme = "https" if b % 2 else "http"
        lines += [
            f"  - name: api{i}",
            f"    group: g{i % groups}",
            f"    method: {'GET' if i % 2 else 'POST'}",
            f"    path: /v1/r{i}/{{id}}",
            f"    auth: {'app' if i % 4 == 0 else 'none'}",
            f"    backend: {{http: {{address: \"{address}\", scheme: {scheme}, path: \"/r{i}/{{id}}\"}}}}",
            "    publish: [RELEASE]",
        ]
    return "\n".join(lines) + "\n", secrets


def test_a_large_definition_set_compiles_to_valid_istio_resources(workdir):
    defs = workdir / "defs"
    defs.mkdir()
    text, secrets = generated_defs()
    (defs / "apis.yaml").write_text(text)
    out_text, docs = compile_istio(defs, workdir / "out", "--wasm-url", "oci://registry.example.com/pylon:1")
    summary = validate(docs)
    assert summary.startswith(f"{len(docs)} resources, 0 problems"), summary
    assert kinds(docs) == {"WasmPlugin": 1, "Gateway": 1, "VirtualService": 1, "EnvoyFilter": 1,
                           "ServiceEntry": 12, "DestinationRule": 12}
    plugin = next(d for d in docs if d["kind"] == "WasmPlugin")
    assert sum(len(g["apis"]) for g in plugin["spec"]["pluginConfig"]["groups"]) == 300
    # One route per backend, matched on the header the filter sets, then
    # the fail-closed answer.
    vs = next(d for d in docs if d["kind"] == "VirtualService")
    assert vs["spec"]["hosts"] == ["*"]  # g0 is the default group
    routes = vs["spec"]["http"]
    assert len(routes) == 13 and "directResponse" in routes[-1]
    assert all(r["match"] == [{"headers": {"x-pylon-cluster": {"exact": r["name"]}}}] for r in routes[:-1])
    tls = [d for d in docs if d["kind"] == "DestinationRule" and d["spec"]["trafficPolicy"]["tls"]["mode"] == "SIMPLE"]
    assert len(tls) == 6
    for secret in secrets:
        assert secret not in out_text
    assert SEAL_KEY not in out_text


HTTPS_DEFS = """
groups:
  - name: shop
    default: true
    domains: [shop.example.com, "*.shop.example.com", legacy.example.com]
    certificates:
      - {{cert: "{certs}/shop.example.com.pem", key: "{certs}/shop.example.com.key",
         domains: [shop.example.com, "*.shop.example.com"]}}
      - {{cert: "{certs}/legacy.example.com.pem", key: "{certs}/legacy.example.com.key",
         domains: [legacy.example.com], min_tls: TLS1.1}}
apis:
  - {{name: secure, group: shop, method: GET, path: /secure, protocol: HTTPS,
     backend: {{http: {{address: "10.0.0.5:8080", path: /s}}}}, publish: [RELEASE]}}
  - {{name: either, group: shop, method: GET, path: /either,
     backend: {{http: {{address: "10.0.0.5:8080", path: /e}}}}, publish: [RELEASE]}}
"""


def test_certificates_become_https_servers_and_secrets_made_by_a_script(workdir):
    ca = Ca(workdir / "certs")
    for name in ("shop.example.com", "legacy.example.com"):
        ca.issue(name)
    defs = workdir / "defs"
    defs.mkdir()
    (defs / "apis.yaml").write_text(HTTPS_DEFS.format(certs=workdir / "certs"))
    out = workdir / "out"
    text, docs = compile_istio(defs, out)
    validate(docs)
    servers = next(d for d in docs if d["kind"] == "Gateway")["spec"]["servers"]
    by_port = sorted((s["port"]["number"], tuple(s["hosts"]), s.get("tls", {}).get("minProtocolVersion"))
                     for s in servers)
    assert by_port == [(80, ("*",), None),
                       (443, ("*",), "TLSV1_2"),
                       (443, ("legacy.example.com",), "TLSV1_1"),
                       (443, ("shop.example.com", "*.shop.example.com"), "TLSV1_2")]
    # No key material in anything written; the script names the files.
    keys = [p.read_text() for p in (workdir / "certs").glob("*.key")]
    script = out / "istio-secrets.sh"
    for f in out.iterdir():
        if f.suffix != ".wasm":
            assert not any(k in f.read_text() for k in keys), f
    # `kubectl apply -f DIR` reads only the YAML; the script runs as is.
    assert sorted(p.name for p in out.iterdir()) == ["istio-secrets.sh", "istio.yaml", "pylon_filter.wasm"]
    assert os.access(script, os.X_OK)
    assert subprocess.run(["sh", "-n", str(script)]).returncode == 0
    # Run with a stand-in kubectl: each secret is made from its files.
    bin_dir = workdir / "bin"
    bin_dir.mkdir()
    log = workdir / "kubectl.log"
    (bin_dir / "kubectl").write_text(f'#!/bin/sh\necho "$@" >> {log}\ncat > /dev/null\n')
    (bin_dir / "kubectl").chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "NAMESPACE": "gw"}
    subprocess.run(["sh", str(script)], check=True, env=env, timeout=30)
    calls = log.read_text().splitlines()
    creates = [c for c in calls if c.startswith("create secret tls")]
    names = {s["tls"]["credentialName"] for s in servers if "tls" in s}
    assert sorted(c.split()[3] for c in creates) == sorted(names) == ["pylon-tls-shop-0", "pylon-tls-shop-1"]
    assert f"--cert={(workdir / 'certs/legacy.example.com.pem').resolve()}" in next(
        c for c in creates if c.split()[3] == "pylon-tls-shop-1")
    assert all("-n gw" in c for c in calls)
    # Certificates gone: the script goes too.
    (defs / "apis.yaml").write_text(TWO_BACKENDS.format(one="10.0.0.1:80", two="10.0.0.2:80"))
    compile_istio(defs, out)
    assert not script.exists()


def test_the_validator_refuses_what_istio_refuses(workdir):
    """The check is not vacuous: a wrong type, an unknown enum value and an
    unknown field (which `kubectl apply` refuses) are each reported."""
    _, docs = compile_istio(ROOT / "examples/shop", workdir / "out")
    for mutate in (
        lambda d: d[0]["spec"].__setitem__("phase", "EARLY"),
        lambda d: next(x for x in d if x["kind"] == "Gateway")["spec"]["servers"][0]["port"].__setitem__("number", "80"),
        lambda d: next(x for x in d if x["kind"] == "VirtualService")["spec"]["http"][0].__setitem__("cluster_header", "x"),
    ):
        broken = json.loads(json.dumps(docs))
        mutate(broken)
        res = subprocess.run(["node", str(VALIDATOR)], input=json.dumps(broken),
                             capture_output=True, text=True, timeout=60)
        assert res.returncode == 1, res.stdout + res.stderr


TWO_BACKENDS = """
groups:
  - name: shop
    domains: [shop.example.com]
apps:
  - {{name: mobile, key: istiokey0001, secret: istio-SECRET-0a1b2c3d}}
apis:
  - {{name: a, group: shop, method: GET, path: /a, backend: {{http: {{address: "{one}", path: /one}}}}, publish: [RELEASE]}}
  - {{name: b, group: shop, method: GET, path: /b, backend: {{http: {{address: "{two}", path: /two}}}}, publish: [RELEASE]}}
  - name: health
    group: shop
    method: GET
    path: /health
    backend: {{mock: {{status: 200, body: ok}}}}
    publish: [RELEASE]
"""


def as_envoy_routes(vs):
    """The Envoy routes Istio makes of the VirtualService's HTTP routes, with
    the static target's cluster of the same name standing in for Istio's
    `outbound|port||host` cluster."""
    routes = []
    for r in vs["spec"]["http"]:
        if "directResponse" in r:
            routes.append({"match": {"prefix": "/"}, "direct_response": {
                "status": r["directResponse"]["status"],
                "body": {"inline_string": r["directResponse"]["body"]["string"]}}})
            continue
        [header] = r["match"][0]["headers"].items()
        routes.append({
            "match": {"prefix": "/", "headers": [
                {"name": header[0], "string_match": {"exact": header[1]["exact"]}}]},
            "route": {"cluster": r["name"], "host_rewrite_literal": r["rewrite"]["authority"],
                      "timeout": r["timeout"]},
            "request_headers_to_remove": r["headers"]["request"]["remove"],
        })
    return routes


def test_the_filter_loads_the_plugin_config_and_routes_by_the_header(workdir):
    """On the real Envoy with the real filter: the plan as the WasmPlugin
    carries it (Istio hands `pluginConfig` to the filter as JSON) loads, and
    routes shaped like the VirtualService's send each API to its backend:
    Envoy re-routes after the filter sets `x-pylon-cluster`."""
    one, two = Backend("one"), Backend("two")
    try:
        defs = workdir / "defs"
        defs.mkdir()
        (defs / "apis.yaml").write_text(TWO_BACKENDS.format(one=one.address, two=two.address))
        _, docs = compile_istio(defs, workdir / "istio")
        plugin = next(d for d in docs if d["kind"] == "WasmPlugin")
        vs = next(d for d in docs if d["kind"] == "VirtualService")
        port, admin = free_port(), free_port()
        res = compile_defs(defs, workdir / "static", port, admin)
        assert res.returncode == 0, res.stderr
        boot = yaml.safe_load((workdir / "static/envoy.yaml").read_text())
        hcm = boot["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
        wasm = next(f for f in hcm["http_filters"] if f["name"] == "pylon")
        wasm["typed_config"]["config"]["configuration"]["value"] = json.dumps(plugin["spec"]["pluginConfig"])
        for vhost in hcm["route_config"]["virtual_hosts"]:
            vhost["routes"] = as_envoy_routes(vs)
        config = workdir / "istio-like.yaml"
        config.write_text(yaml.safe_dump(boot))
        envoy = Envoy(config, port, admin, workdir)
        try:
            assert envoy.wait_ready(), envoy.log.read_text() if envoy.log.exists() else ""
            host = "shop.example.com"
            a = envoy.request("GET", "/a", host=host)
            assert a.status == 200 and a.json()["backend"] == "one", a.body
            assert a.json()["path"] == "/one"
            assert "x-pylon-cluster" not in a.json()["headers"]
            b = envoy.request("GET", "/b", host=host)
            assert b.status == 200 and b.json()["backend"] == "two", b.body
            assert envoy.request("GET", "/health", host=host).body == b"ok"
            assert envoy.request("GET", "/nope", host=host).status == 404
        finally:
            envoy.stop()
    finally:
        one.close()
        two.close()
