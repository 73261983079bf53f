#!/usr/bin/env python3
"""Publishing churn: how fast a publish takes effect, and Envoy's memory over
many consecutive publishes (Wasm VMs are replaced with each configuration).

`make bench-publish` runs this with the project's .venv Python (stdlib only).
It writes definitions with one mock API, publishes them to a live directory
(`pylon publish … --live`), starts Envoy once on it (2 workers), then N times
(default 100) changes the API's body, publishes, and polls until callers get
the new body. It prints the time from the command's start to the first new
answer (median and max), the command's own time, and Envoy's RSS and live
Wasm VM count before and after. Envoy validation is skipped (no `--envoy`)
so the figures are the gateway's, not the validator's.

Everything listens on 127.0.0.1, free ports; Envoy is stopped on exit; every
poll loop is bounded in time. It measures, it does not assert.
"""
import argparse
import http.client
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PYLON = ROOT / "target/release/pylon"
WASM = ROOT / "target/wasm32-wasip1/release/pylon_filter.wasm"
ENVOY = ROOT / ".venv/bin/envoy"

DEFS = """
gateway:
  listen: 127.0.0.1:{port}
  admin: 127.0.0.1:{admin}
groups:
  - name: bench
    default: true
apis:
  - name: churn
    group: bench
    method: GET
    path: /churn
    backend:
      mock: {{status: 200, body: "v{n}"}}
    publish: [RELEASE]
"""


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(port, path="/churn"):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
    try:
        c.request("GET", path)
        r = c.getresponse()
        return r.status, r.read().decode()
    finally:
        c.close()


def rss_kb(pid):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def stat(admin, name):
    c = http.client.HTTPConnection("127.0.0.1", admin, timeout=2)
    c.request("GET", f"/stats?filter=^{name}$")
    body = c.getresponse().read().decode()
    c.close()
    return int(body.split(":")[1]) if ":" in body else 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--publishes", type=int, default=100)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="pylon-bench-publish-"))
    port, admin = free_port(), free_port()
    defs, live = work / "defs", work / "live"
    defs.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYLON_ENVOY", "PYLON_SEAL_KEY")}
    env["PATH"] = "/usr/bin:/bin"  # no Envoy to validate with: measure the gateway

    def publish(n):
        (defs / "defs.yaml").write_text(DEFS.format(port=port, admin=admin, n=n))
        subprocess.run([str(PYLON), "publish", str(defs), "--env", "RELEASE", "--note", f"v{n}",
                        "--live", str(live), "--wasm", str(WASM)],
                       check=True, capture_output=True, env=env, timeout=60)

    publish(0)
    envoy = subprocess.Popen([str(ENVOY), "-c", str(live / "envoy.yaml"), "--concurrency", "2",
                              "--log-level", "warn", "--base-id", str(port),
                              "--log-path", str(work / "envoy.log")],
                             stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if get(port) == (200, "v0"):
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                sys.exit("Envoy did not start")
            time.sleep(0.1)
        for _ in range(50):
            get(port)
        rss_before, vms_before = rss_kb(envoy.pid), stat(admin, "wasm.envoy.wasm.runtime.v8.active")
        effect, command = [], []
        for n in range(1, args.publishes + 1):
            start = time.monotonic()
            publish(n)
            command.append(time.monotonic() - start)
            while get(port) != (200, f"v{n}"):
                if time.monotonic() - start > 10:
                    sys.exit(f"publish {n} did not take effect in 10 s")
                time.sleep(0.005)
            effect.append(time.monotonic() - start)
        time.sleep(2)
        rss_after, vms_after = rss_kb(envoy.pid), stat(admin, "wasm.envoy.wasm.runtime.v8.active")
    finally:
        envoy.terminate()
        envoy.wait(10)
        shutil.rmtree(work, ignore_errors=True)
    ms = lambda xs: f"median {statistics.median(xs) * 1000:.0f} ms, max {max(xs) * 1000:.0f} ms"
    print(f"{args.publishes} publishes, Envoy with 2 workers")
    print(f"  pylon publish:                   {ms(command)}")
    print(f"  command start to new answer:     {ms(effect)}")
    print(f"  Envoy RSS: {rss_before / 1024:.1f} MiB before, {rss_after / 1024:.1f} MiB after")
    print(f"  live Wasm VMs: {vms_before} before, {vms_after} after")


if __name__ == "__main__":
    main()
