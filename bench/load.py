"""Load: wrk runs, their output, and the proxy's CPU time over each run."""

from __future__ import annotations

import re
import subprocess
import time

from envoys import BenchError, Envoy, core_busy, cpu_times, proc_cpu_seconds

UNIT_US = {"us": 1.0, "ms": 1000.0, "s": 1_000_000.0}


def parse_wrk(out: str) -> dict:
    def latency(pct: str) -> float:
        m = re.search(rf"^\s*{pct}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        if not m:
            raise BenchError(f"cannot find the {pct}% latency line in wrk output:\n{out}")
        return float(m.group(1)) * UNIT_US[m.group(2)]

    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    total = re.search(r"(\d+) requests in", out)
    if not rps or not total:
        raise BenchError(f"cannot parse wrk output:\n{out}")
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    return {
        "rps": float(rps.group(1)),
        "requests": int(total.group(1)),
        "p50": latency("50"),
        "p99": latency("99"),
        "non2xx": int(non2xx.group(1)) if non2xx else 0,
        "socket_errors": sum(int(x) for x in sock.groups()) if sock else 0,
    }


def wrk_header_args(headers: list[tuple[str, str]] | None) -> list[str]:
    return [arg for k, v in (headers or []) for arg in ("-H", f"{k}: {v}")]


def wrk_cmd(tools: dict, core: int | None, url: str, conns: int, seconds: int,
            headers: list[tuple[str, str]] | None = None) -> list[str]:
    cmd = [tools["wrk"], "-t1", f"-c{conns}", f"-d{seconds}s", "--timeout", "2s", "--latency",
           *wrk_header_args(headers), url]
    if tools["taskset"] and core is not None:
        cmd = [tools["taskset"], "-c", str(core)] + cmd
    return cmd


def run_wrk(tools: dict, core: int | None, url: str, conns: int, seconds: int,
            headers: list[tuple[str, str]] | None = None) -> str:
    cmd = wrk_cmd(tools, core, url, conns, seconds, headers)
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 30)
    except subprocess.TimeoutExpired:
        raise BenchError(f"wrk did not finish: {' '.join(cmd)}")
    if r.returncode != 0:
        raise BenchError(f"wrk failed ({r.returncode}): {' '.join(cmd)}\n{r.stderr}")
    return r.stdout

def measure(tools: dict, wrk_core: int | None, proxy: Envoy | None, url: str,
            conns: int, seconds: int, headers: list[tuple[str, str]] | None = None) -> dict:
    """One wrk run plus the proxy's CPU time and per-core utilisation."""
    cpu0 = proc_cpu_seconds(proxy.pid) if proxy else 0.0
    cores0 = cpu_times()
    t0 = time.perf_counter()
    out = run_wrk(tools, wrk_core, url, conns, seconds, headers)
    wall = time.perf_counter() - t0
    cores1 = cpu_times()
    result = parse_wrk(out)
    if result["non2xx"] or result["socket_errors"]:
        raise BenchError(
            f"{url}: {result['non2xx']} non-2xx responses, {result['socket_errors']} socket errors "
            f"under load; the figures would be meaningless.\n{out}"
        )
    if proxy:
        cpu = proc_cpu_seconds(proxy.pid) - cpu0
        result["proxy_cpu_pct"] = 100.0 * cpu / wall
        result["proxy_cpu_us_per_req"] = 1e6 * cpu / result["requests"] if result["requests"] else 0.0
    result["core0_pct"] = core_busy(cores0, cores1, "cpu0")
    result["core1_pct"] = core_busy(cores0, cores1, "cpu1")
    return result

