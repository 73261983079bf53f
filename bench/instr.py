"""Instructions per request: the proxy under valgrind's callgrind, counting
only while a fixed number of requests go through it.

On a machine shared with other work, time-based figures move by tens of µs
between identical runs; instruction counts repeat within a fraction of a
percent, so a lever worth a few hundred instructions still shows. They
count the work, not its speed (cache misses, contention), so they are the
lever table's figure and the wrk runs remain the targets' figures.
"""

from __future__ import annotations

import glob
import http.client
import shutil
import subprocess
from pathlib import Path

from envoys import HOST, ROOT, WORK, BenchError, Envoy

REQUESTS = 1000  # counted per configuration
WARMUP = 1000  # before counting: connection set up, caches, V8 tier-up


def tools() -> dict | None:
    """valgrind, callgrind_control and the Envoy binary itself (the venv's
    `envoy` is a Python launcher that execs it); None if any is missing."""
    binary = sorted(glob.glob(str(ROOT / ".venv/lib/python3*/site-packages/envoy/_bin/envoy")))
    valgrind, control = shutil.which("valgrind"), shutil.which("callgrind_control")
    if not (binary and valgrind and control):
        return None
    return {"envoy": binary[0], "valgrind": valgrind, "control": control}


def wrapper(t: dict, name: str) -> list[str]:
    # JIT code (V8's Wasm tiers) rewrites itself: --smc-check makes valgrind
    # notice. Counting starts off and is switched on around the requests.
    return [t["valgrind"], "--tool=callgrind", "--instr-atstart=no", "--smc-check=all-non-file",
            f"--callgrind-out-file={WORK / f'callgrind-{name}.out'}"]


def control(t: dict, pid: int, *args: str) -> None:
    r = subprocess.run([t["control"], *args, str(pid)], capture_output=True, text=True, timeout=120)
    if r.returncode != 0:
        raise BenchError(f"callgrind_control {' '.join(args)} {pid}: {r.stdout}{r.stderr}")


def send(port: int, path: str, headers: list[tuple[str, str]], n: int) -> None:
    conn = http.client.HTTPConnection(HOST, port, timeout=60)
    try:
        for _ in range(n):
            conn.request("GET", path, headers=dict(headers))
            r = conn.getresponse()
            r.read()
            if r.status != 200:
                raise BenchError(f"instructions: GET {path} gave {r.status}")
    finally:
        conn.close()


def per_request(t: dict, proxy: Envoy, name: str, requests: list[tuple[str, str, list]]) -> dict[str, float]:
    """Instructions per request of `proxy` (started under `wrapper`) for each
    (key, path, headers): counted over REQUESTS keep-alive requests."""
    out = {}
    for i, (key, path, headers) in enumerate(requests):
        send(proxy.port, path, headers, WARMUP)
        control(t, proxy.pid, "--zero")
        control(t, proxy.pid, "--instr=on")
        send(proxy.port, path, headers, REQUESTS)
        control(t, proxy.pid, "--dump")
        control(t, proxy.pid, "--instr=off")
        dumps = sorted(Path(WORK).glob(f"callgrind-{name}.out.*"), key=lambda p: int(p.suffix[1:]))
        if len(dumps) != i + 1:
            raise BenchError(f"instructions: no callgrind dump for {name} ({dumps})")
        totals = [line for line in dumps[-1].read_text().splitlines() if line.startswith("totals:")]
        if not totals:
            raise BenchError(f"instructions: no totals in {dumps[-1]}")
        out[key] = int(totals[0].split()[1]) / REQUESTS
        for part, count in by_object(dumps[-1]).items():
            out[f"{key}@{part}"] = count / REQUESTS
    return out


def by_object(dump: Path) -> dict[str, int]:
    """Self cost by code object: the Envoy binary, JIT-compiled code (V8's
    Wasm tiers and stubs, which have no file: `???`), libc and the rest.
    Read from callgrind_annotate (valgrind's own reader of its format)."""
    r = subprocess.run(["callgrind_annotate", "--threshold=100", str(dump)], capture_output=True, text=True,
                       timeout=300)
    parts = {"envoy": 0, "jit": 0, "libc": 0, "other": 0}
    for line in r.stdout.splitlines():
        head, _, where = line.strip().partition("  ")
        count = head.split(" (")[0].replace(",", "")
        if not count.isdigit() or "PROGRAM TOTALS" in line or not where:
            continue
        obj = where.rsplit("[", 1)[-1]
        part = ("envoy" if obj.endswith("/envoy]") else "jit" if obj == "???]"
                else "libc" if "libc" in obj or "ld-linux" in obj else "other")
        parts[part] += int(count)
    return parts
