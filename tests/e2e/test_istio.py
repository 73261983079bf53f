"""`pylon compile --target istio`: every resource it writes passes Istio's
published CRD schemas (@kubernetes-models/istio, run by
tests/node/validate_istio.mjs), for the bundled example and for a large
generated definition set; no secret is in the output in plaintext."""
import json
import subprocess
from pathlib import Path

import yaml

from conftest import PYLON, ROOT, SEAL_KEY, WASM, seal_env

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
