"""What per-API metrics and the JSON access log cost (README "Monitoring",
issue 13): instructions per request come from the `nolog` and `noobs`
levers (envoys.LEVERS); this part measures memory at 10 and 10,000 APIs
with metrics off and on, after one request to every API — metric series
are created at an API's first request, so an idle gateway would hide them."""

from __future__ import annotations

import time
from pathlib import Path

from envoys import WORK, BenchError, Envoy, http_request, pylon_compile

# `gateway:` fields for each mode (defs.write_definitions writes the block).
MODES = {
    "off": '  metrics: false\n  access_log: "off"\n',
    "on": '  access_log: "off"\n',
}


def memory(tools: dict, ports, defs_dirs: dict[str, Path], log) -> list[tuple[str, str, dict, dict]]:
    """(size, mode, memory idle, memory after every API was called once)."""
    rows = []
    for size, defs_dir in defs_dirs.items():
        apis = sum(1 for line in (defs_dir / "apis.yaml").read_text().splitlines()
                   if line.startswith("  - {name: svc"))
        for mode, extra in MODES.items():
            name = f"obs{size}-{mode}"
            variant = WORK / f"{name}-defs"
            variant.mkdir(parents=True, exist_ok=True)
            for f in defs_dir.glob("*.yaml"):
                text = f.read_text()
                if f.name == "gateway.yaml":
                    text = text.replace("gateway:\n", "gateway:\n" + extra, 1)
                (variant / f.name).write_text(text)
            proxy = Envoy(name, WORK / name / "envoy.yaml", next(ports), next(ports), None)
            pylon_compile(variant, WORK / name, proxy.port, proxy.admin)
            proxy.start(tools["envoy"], tools["taskset"])
            before = proxy.memory()
            deadline = time.monotonic() + 180
            for i in range(apis):
                if time.monotonic() > deadline:
                    raise BenchError(f"{name}: calling every API took over 180 s")
                status, _, _ = http_request(proxy.port, f"/svc{i}/items/42", [])
                if status != 200:
                    raise BenchError(f"{name}: /svc{i}/items/42 answered {status}")
            time.sleep(6)  # Envoy merges histograms every 5 s
            after = proxy.memory()
            proxy.stop()
            rows.append((size, mode, before, after))
            log(f"metrics {mode} at {size} APIs: RSS {before['rss_kib'] / 1024:.1f} → "
                f"{after['rss_kib'] / 1024:.1f} MiB after every API was called")
    return rows


def render(rows, instructions: dict[str, float]) -> list[str]:
    out = ["", "### Metrics and access log", "",
           "Instructions per request of Pylon as built (metrics on, JSON access log to a file), without "
           "metrics and access-log fields (`nometrics`), without the access log (`nolog`) and without "
           "both (`noobs`):", "",
           "| APIs | request | as built | no metrics | no access log | neither |", "|---|---|--:|--:|--:|--:|"]
    for size in ("10", "10k"):
        for kind in ("pass", "full"):
            base = instructions.get(f"{kind}{size}")
            if base is None:
                continue
            cells = []
            for lever in ("nometrics", "nolog", "noobs"):
                v = instructions.get(f"{kind}{size}+{lever}")
                cells.append("–" if v is None else f"{v:,.0f} ({v - base:+,.0f})")
            out.append(f"| {size} | {kind} | {base:,.0f} | " + " | ".join(cells) + " |")
    out += ["", "Memory (one worker), idle and after one request to every API (so every API's request "
            "counter and latency histograms exist); access log off in both:", "",
            "| APIs | metrics | RSS idle | RSS after all APIs called | Envoy heap after |", "|---|---|--:|--:|--:|"]
    for size, mode, before, after in rows:
        out.append(f"| {size} | {mode} | {before['rss_kib'] / 1024:.1f} MiB | {after['rss_kib'] / 1024:.1f} MiB | "
                   f"{after.get('allocated', 0) / 2**20:.1f} MiB |")
    return out
