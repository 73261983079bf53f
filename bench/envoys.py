"""Processes of the benchmark: the Envoys (fast backend, bare Envoy, the
no-op Wasm reference, Pylon), their bootstraps, `pylon compile`, and the
/proc readers that measure them."""

from __future__ import annotations

import atexit
import hashlib
import http.client
import json
import os
import platform
import re
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / "build" / "bench"
VENV_ENVOY = ROOT / ".venv" / "bin" / "envoy"
PYLON = ROOT / "target" / "release" / "pylon"
WASM = ROOT / "target" / "wasm32-wasip1" / "release" / "pylon_filter.wasm"
# bench/ladder: Pylon's pass-through host calls without Pylon (make bench builds it).
LADDER_WASM = ROOT / "target" / "wasm32-wasip1" / "release" / "pylon_bench_ladder.wasm"
HOST = "127.0.0.1"
BACKEND_BODY = '{"ok":true}\n'
# Asks the backend to echo the headers named in ECHO_HEADERS (sanity checks
# only, never under load).
ECHO_HEADER = "x-bench-echo"
ECHO_HEADERS = ("x-page-size", "x-plan", "x-gateway", "x-client-ip", "x-gateway-request-id")

class BenchError(Exception):
    """A missing piece or a failed step: reported in one line, exit 1."""


# --------------------------------------------------------------------------
# Child processes


class Children:
    """Every process we start; all of them are stopped on any exit path."""

    def __init__(self) -> None:
        self.procs: list[tuple[str, subprocess.Popen]] = []

    def start(self, name: str, cmd: list[str], log: Path) -> subprocess.Popen:
        out = open(log, "wb")
        try:
            p = subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=ROOT,
            )
        finally:
            out.close()
        self.procs.append((name, p))
        return p

    def stop_all(self) -> None:
        for _, p in self.procs:
            if p.poll() is None:
                try:
                    p.terminate()
                except ProcessLookupError:
                    pass
        deadline = time.monotonic() + 5
        for _, p in self.procs:
            try:
                p.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        self.procs.clear()


CHILDREN = Children()
atexit.register(CHILDREN.stop_all)


def _on_signal(signum, _frame):
    raise SystemExit(128 + signum)

def require_tools() -> dict:
    missing = []
    envoy = os.environ.get("ENVOY") or str(VENV_ENVOY)
    if not Path(envoy).is_file():
        missing.append(f"Envoy ({envoy}; run `make venv`)")
    if not PYLON.is_file():
        missing.append(f"pylon compiler ({PYLON.relative_to(ROOT)}; run `make pylon`)")
    if not WASM.is_file():
        missing.append(f"filter module ({WASM.relative_to(ROOT)}; run `make wasm`)")
    wrk = shutil.which("wrk")
    if not wrk:
        missing.append("wrk (apt-get install wrk)")
    if missing:
        raise BenchError("missing: " + "; ".join(missing))
    taskset = shutil.which("taskset")
    return {"envoy": envoy, "wrk": wrk, "taskset": taskset}


def cmd_output(cmd: list[str]) -> str:
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
        return (r.stdout + r.stderr).strip()
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"({e})"


def machine_info(tools: dict) -> dict:
    cpu_model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_total = ""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_total = f"{int(line.split()[1]) // 1024} MiB"
    except OSError:
        pass
    envoy_version = cmd_output([tools["envoy"], "--version"])
    m = re.search(r"version:\s*(\S+)", envoy_version)
    wrk_version = cmd_output([tools["wrk"], "-v"]).splitlines()
    git = cmd_output(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"])
    dirty = [line.split(maxsplit=1)[-1] for line in cmd_output(
        ["git", "-C", str(ROOT), "status", "--porcelain", "--", "filter", "compiler"]).splitlines() if line.strip()]
    wasm_sha = hashlib.sha256(WASM.read_bytes()).hexdigest()[:12] if WASM.is_file() else "?"
    return {
        "nproc": os.cpu_count(),
        "cpu_model": cpu_model,
        "kernel": f"{platform.system()} {platform.release()}",
        "mem_total": mem_total,
        "envoy_version": m.group(1) if m else envoy_version,
        "wrk_version": wrk_version[0].split(" Copyright")[0] if wrk_version else "unknown",
        "python": platform.python_version(),
        "git": git + (" + uncommitted changes to " + ", ".join(f"`{d}`" for d in dirty) if dirty else ""),
        "wasm_sha": wasm_sha,
    }


# --------------------------------------------------------------------------
# Ports, HTTP helpers, /proc readers


def free_ports(n: int) -> list[int]:
    socks = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind((HOST, 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def http_get(url: str, timeout: float = 5.0) -> tuple[int, dict, bytes]:
    req = urllib.request.Request(url, headers={"User-Agent": "pylon-bench"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, {k.lower(): v for k, v in r.headers.items()}, r.read()
    except urllib.error.HTTPError as e:
        return e.code, {k.lower(): v for k, v in e.headers.items()}, e.read()


def proc_cpu_seconds(pid: int) -> float:
    """utime + stime of the whole process (all threads)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    ticks = int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def cpu_times() -> dict[str, tuple[int, int]]:
    """Per-core (busy, total) jiffies from /proc/stat."""
    out = {}
    for line in Path("/proc/stat").read_text().splitlines():
        if line.startswith("cpu") and line[3:4].isdigit():
            parts = line.split()
            vals = [int(x) for x in parts[1:]]
            idle = vals[3] + (vals[4] if len(vals) > 4 else 0)
            total = sum(vals[:8])
            out[parts[0]] = (total - idle, total)
    return out


def core_busy(before: dict, after: dict, core: str) -> float | None:
    if core not in before or core not in after:
        return None
    busy = after[core][0] - before[core][0]
    total = after[core][1] - before[core][1]
    return 100.0 * busy / total if total else None


def vm_rss_kib(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None

def socket_address(port: int) -> dict:
    return {"socket_address": {"address": HOST, "port_value": port}}


def router_filter(suppress: bool) -> dict:
    cfg = {"@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}
    if suppress:
        cfg["suppress_envoy_headers"] = True
    return {"name": "envoy.filters.http.router", "typed_config": cfg}


def backend_bootstrap(port: int, admin: int) -> dict:
    """The fast backend: every request gets a small 200 from Envoy itself.
    A request carrying ECHO_HEADER (sanity checks only, never under load)
    also gets the headers the full pipeline's API maps, as `x-echo-<name>`."""
    def route(echo: bool) -> dict:
        headers = [
            {"header": {"key": "content-type", "value": "application/json"}},
            # Lets the sanity check see the path the backend got.
            {"header": {"key": "x-backend-path", "value": "%REQ(:PATH)%"}},
        ]
        if echo:
            headers += [{"header": {"key": f"x-echo-{h}", "value": f"%REQ({h})%"}}
                        for h in ECHO_HEADERS]
        match = {"prefix": "/"}
        if echo:
            match["headers"] = [{"name": ECHO_HEADER, "present_match": True}]
        return {
            "match": match,
            "direct_response": {"status": 200, "body": {"inline_string": BACKEND_BODY}},
            "response_headers_to_add": headers,
        }

    return {
        "admin": {"address": socket_address(admin)},
        "static_resources": {
            "listeners": [
                {
                    "name": "backend",
                    "address": socket_address(port),
                    "filter_chains": [
                        {
                            "filters": [
                                {
                                    "name": "envoy.filters.network.http_connection_manager",
                                    "typed_config": {
                                        "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
                                        "stat_prefix": "backend",
                                        "codec_type": "AUTO",
                                        "route_config": {
                                            "name": "backend",
                                            "virtual_hosts": [
                                                {
                                                    "name": "all",
                                                    "domains": ["*"],
                                                    "routes": [route(echo=True), route(echo=False)],
                                                }
                                            ],
                                        },
                                        "http_filters": [router_filter(False)],
                                    },
                                }
                            ]
                        }
                    ],
                }
            ]
        },
    }


def noop_wasm_module() -> bytes:
    """A proxy-wasm (ABI 0.2.1) module that does nothing: every callback the
    Rust SDK exports for a plain request, each returning at once. Written as
    raw Wasm bytes so the reference needs no toolchain. It measures what any
    Wasm filter costs in this Envoy before doing any work."""

    def leb(n: int) -> bytes:
        out = bytearray()
        while True:
            byte, n = n & 0x7F, n >> 7
            out.append(byte | (0x80 if n else 0))
            if not n:
                return bytes(out)

    def vec(items: list[bytes]) -> bytes:
        return leb(len(items)) + b"".join(items)

    def name(text: str) -> bytes:
        return leb(len(text)) + text.encode()

    def section(sid: int, body: bytes) -> bytes:
        return bytes([sid]) + leb(len(body)) + body

    i32 = b"\x7f"

    def functype(params: int, results: int) -> bytes:
        return b"\x60" + vec([i32] * params) + vec([i32] * results)

    def const(v: int) -> bytes:  # i32.const, 0 <= v < 2**13
        return b"\x41" + leb(v) if v < 64 else b"\x41" + bytes([0x80 | (v & 0x7F), (v >> 7) & 0x3F])

    types = [functype(0, 0), functype(1, 1), functype(2, 0), functype(2, 1), functype(3, 1), functype(1, 0)]
    funcs = [  # export name, type, body
        ("proxy_abi_version_0_2_1", 0, b""),
        ("proxy_on_memory_allocate", 1, const(1024)),  # never called: the module makes no host calls
        ("proxy_on_context_create", 2, b""),
        ("proxy_on_vm_start", 3, const(1)),
        ("proxy_on_configure", 3, const(1)),
        ("proxy_on_request_headers", 4, const(0)),  # 0 = Continue
        ("proxy_on_request_body", 4, const(0)),
        ("proxy_on_response_headers", 4, const(0)),
        ("proxy_on_response_body", 4, const(0)),
        ("proxy_on_log", 5, b""),
        ("proxy_on_done", 1, const(1)),
        ("proxy_on_delete", 5, b""),
    ]
    exports = [name("memory") + b"\x02" + leb(0)]
    exports += [name(n) + b"\x00" + leb(i) for i, (n, _, _) in enumerate(funcs)]
    bodies = []
    for _, _, body in funcs:
        code = vec([]) + body + b"\x0b"
        bodies.append(leb(len(code)) + code)
    return (
        b"\x00asm\x01\x00\x00\x00"
        + section(1, vec(types))
        + section(3, vec([leb(t) for _, t, _ in funcs]))
        + section(5, vec([b"\x00" + leb(2)]))  # memory: 2 pages
        + section(7, vec(exports))
        + section(10, vec(bodies))
    )


def noop_wasm_filter(path: Path, configuration: str | None = None) -> dict:
    """Configured like the Pylon filter (compiler/src/emit/bootstrap.rs),
    without a plan; `configuration` is the plugin's (the ladder's rung)."""
    config = {
        "name": "noop",
        "root_id": "noop",
        "failure_policy": "FAIL_RELOAD",
        "vm_config": {
            "vm_id": "noop",
            "runtime": "envoy.wasm.runtime.v8",
            "code": {"local": {"filename": str(path)}},
        },
    }
    if configuration is not None:
        config["configuration"] = {"@type": "type.googleapis.com/google.protobuf.StringValue",
                                   "value": configuration}
    return {
        "name": "noop",
        "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm",
                         "config": config},
    }


def bare_bootstrap(port: int, admin: int, backend_port: int, extra_filter: dict | None = None) -> dict:
    """Plain Envoy mirroring compiler/src/envoy.rs minus the Pylon filter:
    same HCM settings, router filter only, one route to the backend cluster.
    `extra_filter` (the no-op Wasm reference) goes before the router."""
    cluster = f"backend0_http_127_0_0_1_{backend_port}"
    hcm = {
        "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
        "stat_prefix": "bare",
        "codec_type": "AUTO",
        "normalize_path": True,
        "merge_slashes": True,
        "use_remote_address": True,
        "generate_request_id": True,
        "preserve_external_request_id": False,
        "always_set_request_id_in_response": True,
        "internal_address_config": {
            "cidr_ranges": [{"address_prefix": "255.255.255.255", "prefix_len": 32}]
        },
        "route_config": {
            "name": "bare",
            "ignore_port_in_host_matching": True,
            "virtual_hosts": [
                {
                    "name": "default",
                    "domains": ["*"],
                    "routes": [
                        {
                            "name": "backend",
                            "match": {"prefix": "/"},
                            "route": {"cluster": cluster, "auto_host_rewrite": True, "timeout": "600s"},
                        }
                    ],
                }
            ],
        },
        "http_filters": ([extra_filter] if extra_filter else []) + [router_filter(True)],
    }
    return {
        "admin": {"address": socket_address(admin)},
        "static_resources": {
            "listeners": [
                {
                    "name": "bare",
                    "address": socket_address(port),
                    "filter_chains": [
                        {"filters": [{"name": "envoy.filters.network.http_connection_manager", "typed_config": hcm}]}
                    ],
                }
            ],
            "clusters": [
                {
                    "name": cluster,
                    "type": "STATIC",
                    "connect_timeout": "2s",
                    "dns_lookup_family": "V4_PREFERRED",
                    "load_assignment": {
                        "cluster_name": cluster,
                        "endpoints": [
                            {
                                "lb_endpoints": [
                                    {
                                        "endpoint": {
                                            "address": socket_address(backend_port),
                                            "hostname": f"{HOST}:{backend_port}",
                                        }
                                    }
                                ]
                            }
                        ],
                    },
                }
            ],
        },
    }


def http_request(port: int, path: str, headers: list[tuple[str, str]]) -> tuple[int, dict, bytes]:
    """One GET with exactly these headers (Host included if given)."""
    conn = http.client.HTTPConnection(HOST, port, timeout=5)
    try:
        conn.request("GET", path, headers=dict(headers))
        r = conn.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        conn.close()


@dataclass(frozen=True)
class Build:
    """Another build to measure as a lever: its filter module, and the
    compiler that writes its configuration (a plan is read by the filter of
    the same source: the filter refuses fields it does not know)."""
    wasm: Path
    pylon: Path = PYLON
    what: str = ""

    @staticmethod
    def filter_only(path: Path) -> "Build":
        return Build(path, PYLON, f"filter build `{path.name}`")

    @staticmethod
    def checkout(directory: Path) -> "Build":
        """A source tree built with `make build` (e.g. `git worktree add DIR REV`)."""
        b = Build(directory / "target/wasm32-wasip1/release/pylon_filter.wasm",
                  directory / "target/release/pylon", f"compiler and filter built from `{directory}`")
        for p in (b.wasm, b.pylon):
            if not p.is_file():
                raise BenchError(f"{p} is missing: run `make build` in {directory}")
        return b


def pylon_compile(defs: Path, out: Path, port: int, admin: int, build: Build | None = None) -> float:
    """`pylon compile`: the definitions into envoy.yaml (and the plan) in `out`."""
    cmd = [
        str(build.pylon if build else PYLON), "compile", str(defs), "--out", str(out),
        "--listen", f"{HOST}:{port}", "--admin", f"{HOST}:{admin}", "--wasm", str(build.wasm if build else WASM),
    ]
    t0 = time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    elapsed = time.perf_counter() - t0
    if r.returncode != 0:
        raise BenchError(f"pylon compile {defs} failed:\n{r.stderr.strip()}")
    return elapsed


# The HCM's access_log list, as `pylon compile` writes it (indented 10).
ACCESS_LOG = re.compile(r"^ {10}access_log:\n(?: {10}[- ] .*\n| {12,}.*\n)+", re.M)

# The plan's `metrics` flag off (the compiler leaves it out when on).
NO_METRICS = ("value: '{\"version\":1,", "value: '{\"version\":1,\"metrics\":false,")
# What `gateway.access_log: off` also tells the filter: no log reads its fields.
NO_LOG_FIELDS = ("value: '{\"version\":1,", "value: '{\"version\":1,\"access_log\":false,")

# Levers in Envoy's configuration, each a set of edits of the envoy.yaml
# `pylon compile` wrote: what it measures, and (old text, new text) pairs (an
# empty old text prepends).
LEVERS = {
    # The same Envoy once more: what the method reads as a difference
    # between two identical proxies (the noise floor of the lever table).
    "same": ("unchanged (noise control)", []),
    "nobuffer": ("no buffer filter", [(
        "          - name: envoy.filters.http.buffer\n"
        "            typed_config:\n"
        "              '@type': type.googleapis.com/envoy.extensions.filters.http.buffer.v3.Buffer\n"
        "              max_request_bytes: 12582912\n", "")]),
    "nostats": ("no Envoy stats", [("", "stats_config:\n  stats_matcher:\n    reject_all: true\n")]),
    "noreqid": ("no request-id generation", [("generate_request_id: true", "generate_request_id: false")]),
    "notimers": ("no request and header timeouts", [("          request_headers_timeout: 10s\n", ""),
                                                     ("          request_timeout: 300s\n", "")]),
    # Issue 13's cost: the JSON access log, then metrics too (the plan's
    # `metrics` flag, which the compiler leaves out when on).
    "nometrics": ("no metrics or access-log fields (plan `metrics: false`)", [NO_METRICS]),
    "nolog": ("no JSON access log (`gateway.access_log: off`)", [(ACCESS_LOG, ""), NO_LOG_FIELDS]),
    "noobs": ("no metrics and no access log", [(ACCESS_LOG, ""), NO_METRICS]),
}


def apply_lever(config: Path, lever: str) -> None:
    text = config.read_text()
    for old, new in LEVERS[lever][1]:
        if isinstance(old, re.Pattern):
            text, n = old.subn(new, text, count=1)
            if n == 0:
                raise BenchError(f"lever {lever}: {config} does not match {old.pattern!r}")
            continue
        if old and old not in text:
            raise BenchError(f"lever {lever}: {config} does not hold {old!r}")
        text = text.replace(old, new, 1) if old else new + text
    config.write_text(text)


# --------------------------------------------------------------------------
# Envoy instances


class Envoy:
    def __init__(self, name: str, config: Path, port: int, admin: int, core: int | None) -> None:
        self.name = name
        self.config = config
        self.port = port
        self.admin = admin
        self.core = core
        self.proc: subprocess.Popen | None = None
        self.ready_s: float = 0.0

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self, envoy_bin: str, taskset: str | None, concurrency: int = 1,
              wrapper: list[str] | None = None) -> None:
        """`wrapper` (valgrind) runs Envoy inside it, unpinned."""
        log = WORK / f"{self.name}.log"
        cmd = [
            *(wrapper or []), envoy_bin, "-c", str(self.config), "--concurrency", str(concurrency),
            "--disable-hot-restart", "--log-level", "warn", "--log-path", str(log),
        ]
        if taskset and self.core is not None and not wrapper:
            cmd = [taskset, "-c", str(self.core)] + cmd
        t0 = time.perf_counter()
        self.proc = CHILDREN.start(self.name, cmd, WORK / f"{self.name}.stdout")
        deadline = time.monotonic() + (600 if wrapper else 120)
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise BenchError(
                    f"{self.name}: Envoy exited with {self.proc.returncode} during startup; "
                    f"see {log.relative_to(ROOT)}:\n{tail(log)}\n{tail(WORK / f'{self.name}.stdout')}"
                )
            try:
                status, _, _ = http_get(f"http://{HOST}:{self.admin}/ready", timeout=1)
                if status == 200:
                    self.ready_s = time.perf_counter() - t0
                    return
            except OSError:
                pass
            time.sleep(0.05)
        raise BenchError(f"{self.name}: Envoy not ready in time; see {log.relative_to(ROOT)}")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def url(self, path: str) -> str:
        return f"http://{HOST}:{self.port}{path}"

    def memory(self) -> dict:
        _, _, body = http_get(f"http://{HOST}:{self.admin}/memory")
        mem = {k: int(v) for k, v in json.loads(body).items()}
        mem["rss_kib"] = vm_rss_kib(self.pid) or 0
        return mem


def tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""




def start_bare(tools: dict, name: str, ports, core: int | None, backend_port: int, noop: bool = False,
               concurrency: int = 1, wrapper: list[str] | None = None, rung: int | None = None) -> Envoy:
    """Bare Envoy, or with the no-op Wasm filter before the router, or with
    bench/ladder's filter at `rung`."""
    extra = None
    if rung is not None:
        extra = noop_wasm_filter(LADDER_WASM, str(rung))
    elif noop:
        path = WORK / "noop.wasm"
        path.write_bytes(noop_wasm_module())
        extra = noop_wasm_filter(path)
    proxy = Envoy(name, WORK / f"{name}.json", next(ports), next(ports), core)
    proxy.config.write_text(json.dumps(bare_bootstrap(proxy.port, proxy.admin, backend_port, extra), indent=1))
    proxy.start(tools["envoy"], tools["taskset"], concurrency, wrapper)
    return proxy


def memory_per_worker(tools: dict, ports, backend_port: int, defs_dirs: dict[str, Path], log) -> dict:
    """RSS of each proxy with 1 and with 2 workers, idle after a few
    requests: the difference is what one more worker costs (its Wasm VM,
    the filter's index of the plan, Envoy's own per-worker state)."""
    out = {}
    kinds = [("bare", None), ("noop", None)] + [(f"pylon{size}", d) for size, d in defs_dirs.items()]
    for kind, defs_dir in kinds:
        rss = {}
        for workers in (1, 2):
            name = f"mem-{kind}-{workers}"
            if defs_dir is None:
                proxy = start_bare(tools, name, ports, None, backend_port, noop=kind == "noop",
                                   concurrency=workers)
            else:
                proxy = Envoy(name, WORK / name / "envoy.yaml", next(ports), next(ports), None)
                pylon_compile(defs_dir, WORK / name, proxy.port, proxy.admin)
                proxy.start(tools["envoy"], tools["taskset"], workers)
            for _ in range(20):
                http_get(proxy.url("/svc3/items/42"))
            time.sleep(0.5)
            rss[workers] = proxy.memory()
            proxy.stop()
        out[kind] = rss
        log(f"memory of {kind}: RSS {rss[1]['rss_kib'] / 1024:.1f} MiB with 1 worker, "
            f"{rss[2]['rss_kib'] / 1024:.1f} MiB with 2")
    return out
