#!/usr/bin/env python3
"""Pylon benchmark: bare Envoy against Envoy + the Pylon filter, in one run.

`make bench` runs this with the project's .venv Python (stdlib only). It

  1. starts a fast backend (an Envoy answering with a `direct_response`, never
     the bottleneck), a bare Envoy with the HTTP connection manager settings
     `pylon compile` emits, and the same with a Wasm filter that does nothing;
  2. writes definitions (defs.py) with 10 APIs / 10 apps and 10,000 APIs /
     1,000 apps, compiles each with `pylon compile` and starts an Envoy each;
  3. signs the full pipeline's request with `pylon call` (the CLI's Huawei
     signer);
  4. measures each configuration with wrk (16 connections, then 1), in
     interleaved rounds with the proxy pinned to core 0, and takes medians;
  5. measures each lever in isolation: variants of the 10-API Envoy
     (config edits, envoys.LEVERS) and other filter builds (`--wasm`);
  6. measures memory per worker, and what metrics cost in memory at both
     sizes (observability.py; their cost per request is the `nolog` and
     `noobs` levers), prints the ratio table and writes the generated part
     of docs/BENCHMARKS.md (report.py).

Every process is bound to 127.0.0.1 on free ports and killed on exit. Nothing
here asserts on timings: it is a measurement, not a test.
"""

from __future__ import annotations

import argparse
import base64
import datetime
import json
import os
import shutil
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import checks
import defs
import envoys
import instr
import load
import observability
import report
from envoys import WORK, BenchError, Envoy

SIZES = {"10": (10, 10), "10k": (10_000, 1_000)}  # name: (APIs, apps)
LADDER_RUNGS = range(9)  # bench/ladder/src/lib.rs: rung 0 makes no host call, 8 all of them


@dataclass
class Config:
    """One thing measured: a request sent to one proxy."""
    key: str
    label: str
    proxy: Envoy
    path: str
    headers: list[tuple[str, str]] = field(default_factory=list)
    signed: bool = False  # headers are re-signed at each round (15-minute window)


def log(msg: str, started: float = time.monotonic()) -> None:
    print(f"[{time.monotonic() - started:6.1f}s] {msg}", file=sys.stderr, flush=True)


def start_pylon(tools: dict, name: str, defs_dir: Path, ports, core, wasm: envoys.Build | None = None,
                lever: str | None = None, wrapper: list[str] | None = None) -> Envoy:
    out = WORK / name
    proxy = Envoy(name, out / "envoy.yaml", next(ports), next(ports), core)
    envoys.pylon_compile(defs_dir, out, proxy.port, proxy.admin, wasm)
    if lever:
        envoys.apply_lever(proxy.config, lever)
    proxy.start(tools["envoy"], tools["taskset"], 1, wrapper)
    return proxy


def count_instructions(tools: dict, it: dict, ports, backend_port: int, defs_dirs: dict, variants: list,
                       log, ladder: bool) -> dict[str, float]:
    """Instructions per request (instr.py) of every configuration and lever,
    one valgrind'ed Envoy at a time."""
    vg = {**tools, "envoy": it["envoy"]}
    counted: dict[str, float] = {}
    full = (defs.FULL_PATH, None)
    subjects = [("bare", None, None, None), ("noop", None, None, None)]
    subjects += [(size, d, None, None) for size, d in defs_dirs.items()]
    subjects += [(f"10+{name}", defs_dirs["10"], wasm, name) for name, wasm in variants]
    # What metrics and the access log cost at 10,000 APIs too (issue 13).
    if "10k" in defs_dirs and "noobs" in envoys.LEVERS:
        subjects.append(("10k+noobs", defs_dirs["10k"], None, "noobs"))
    # Pylon's pass-through host calls without Pylon, rung by rung (bench/ladder).
    if ladder:
        subjects += [(f"ladder{n}", None, None, None) for n in LADDER_RUNGS]
    for key, defs_dir, wasm, lever in subjects:
        name = f"instr-{key.replace('+', '-')}"
        wrap = instr.wrapper(it, name)
        if defs_dir is None:
            rung = int(key[len("ladder"):]) if key.startswith("ladder") else None
            proxy = envoys.start_bare(vg, name, ports, None, backend_port, noop=key == "noop", wrapper=wrap,
                                      rung=rung)
            requests = [(key, defs.PASS_API_PATH, [])]
        else:
            proxy = start_pylon(vg, name, defs_dir, ports, None, wasm=wasm,
                                lever=None if wasm or lever is None else lever, wrapper=wrap)
            requests = [(f"pass{key}", defs.PASS_API_PATH, []), (f"full{key}", full[0], sign())]
        counted.update(instr.per_request(it, proxy, name, requests))
        proxy.stop()
        log(f"instructions per request: " + ", ".join(f"{k} {counted[k]:,.0f}" for k, _, _ in requests))
    return counted


def sign() -> list[tuple[str, str]]:
    """The full pipeline's request, signed now by `pylon call`."""
    return defs.signed_headers(defs.FULL_PATH, defs.FULL_HEADERS)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--duration", type=int, default=6, help="seconds per 16-connection wrk run")
    ap.add_argument("--unloaded-duration", type=int, default=3, help="seconds per 1-connection run")
    ap.add_argument("--warmup", type=int, default=1, help="seconds of wrk warm-up before each run")
    ap.add_argument("--rounds", type=int, default=3, help="interleaved rounds")
    ap.add_argument("--connections", type=int, default=16)
    ap.add_argument("--levers", default=",".join(envoys.LEVERS),
                    help="Envoy-config levers to measure on the 10-API Pylon (comma-separated; '' for none)")
    ap.add_argument("--pairs", type=int, default=0,
                    help="also time each lever in this many alternating wrk run pairs (noisy on a shared machine)")
    ap.add_argument("--no-instructions", dest="instructions", action="store_false",
                    help="skip the instruction counts (valgrind)")
    ap.add_argument("--pair-duration", type=int, default=2, help="seconds per lever run")
    ap.add_argument("--wasm", action="append", default=[], metavar="NAME=PATH",
                    help="also measure the 10-API Pylon with another filter build (a lever in the filter)")
    ap.add_argument("--build", action="append", default=[], metavar="NAME=DIR",
                    help="also measure the 10-API Pylon compiled and filtered by another built source tree "
                         "(e.g. `git worktree add DIR REV && make -C DIR build`: before and after in one run)")
    ap.add_argument("--no-ladder", dest="ladder", action="store_false",
                    help="skip the host-call ladder (bench/ladder) under callgrind")
    ap.add_argument("--no-large", action="store_true", help="skip the 10,000-API Pylon (quick runs)")
    ap.add_argument("--doc", default=str(report.DOC), help="report to update ('' writes none)")
    args = ap.parse_args()
    signal.signal(signal.SIGTERM, envoys._on_signal)
    signal.signal(signal.SIGHUP, envoys._on_signal)
    started = time.monotonic()
    date = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")

    # Apps' secrets are sealed in envoy.yaml; the Envoys (children) open
    # them with the same key from the environment.
    os.environ.setdefault("PYLON_SEAL_KEY", base64.b64encode(os.urandom(32)).decode())
    tools = envoys.require_tools()
    info = envoys.machine_info(tools)
    pin = bool(tools["taskset"]) and (os.cpu_count() or 1) >= 2
    proxy_core, load_core = (0, 1) if pin else (None, None)
    if WORK.exists():
        shutil.rmtree(WORK)
    WORK.mkdir(parents=True)
    ports = iter(envoys.free_ports(128))

    backend = Envoy("backend", WORK / "backend.json", next(ports), next(ports), load_core)
    backend.config.write_text(json.dumps(envoys.backend_bootstrap(backend.port, backend.admin), indent=1))
    backend.start(tools["envoy"], tools["taskset"])
    bare = envoys.start_bare(tools, "bare", ports, proxy_core, backend.port)
    noop = envoys.start_bare(tools, "noop", ports, proxy_core, backend.port, noop=True)
    checks.bare(bare)
    checks.bare(noop)
    log("backend, bare Envoy and the no-op Wasm reference are up")

    configs = [
        Config("bare", "bare Envoy", bare, defs.PASS_API_PATH),
        Config("noop", "*bare Envoy + no-op Wasm filter (reference)*", noop, defs.PASS_API_PATH),
    ]
    # Floors any proxy-wasm filter doing Pylon's job meets (bench/ladder):
    # reading the request headers alone, and every host call of a Pylon
    # pass-through request without Pylon's own work.
    if args.ladder:
        for rung, label in ((1, "*bare Envoy + a filter that only reads the request headers (ladder rung 1)*"),
                            (8, "*bare Envoy + a filter making a pass-through request's 18 host calls "
                                "and nothing else (ladder rung 8)*")):
            proxy = envoys.start_bare(tools, f"ladder{rung}", ports, proxy_core, backend.port, rung=rung)
            checks.reaches_backend(proxy, defs.PASS_API_PATH, [], "/items/42" if rung >= 4 else defs.PASS_API_PATH)
            configs.append(Config(f"ladder{rung}", label, proxy, defs.PASS_API_PATH))
    defs_dirs, pylons, compile_s = {}, {}, {}
    for size, (apis, apps) in SIZES.items():
        if size == "10k" and args.no_large:
            continue
        defs_dirs[size] = WORK / f"defs{size}"
        defs.write_definitions(defs_dirs[size], apis, apps, backend.port)
        t0 = time.perf_counter()
        pylons[size] = start_pylon(tools, f"pylon{size}", defs_dirs[size], ports, proxy_core)
        compile_s[size] = time.perf_counter() - t0
        signed = sign()
        checks.pylon(pylons[size], signed)
        configs += [
            Config(f"pass{size}", f"Pylon {apis:,} APIs / {apps:,} apps: pass-through API", pylons[size],
                   defs.PASS_API_PATH),
            Config(f"full{size}", f"Pylon {apis:,} APIs / {apps:,} apps: full pipeline", pylons[size],
                   defs.FULL_PATH, signed, signed=True),
        ]
        log(f"Pylon {size} compiled and ready in {compile_s[size]:.2f} s; sanity checks passed")

    # Lever variants of the 10-API Pylon: started now, measured after the
    # main rounds.
    variants = [(lever, None) for lever in filter(None, args.levers.split(","))]
    variants += [(spec.split("=", 1)[0], envoys.Build.filter_only(Path(spec.split("=", 1)[1])))
                 for spec in args.wasm]
    variants += [(spec.split("=", 1)[0], envoys.Build.checkout(Path(spec.split("=", 1)[1])))
                 for spec in args.build]
    levers = []
    for name, wasm in variants:
        proxy = start_pylon(tools, f"lever-{name}", defs_dirs["10"], ports, proxy_core, wasm=wasm,
                            lever=None if wasm else name)
        checks.pylon(proxy, sign())
        what = envoys.LEVERS[name][0] if wasm is None else wasm.what
        levers.append((name, what, proxy))
        log(f"lever {name} ready")

    # Interleaved rounds, order rotated each round.
    raw: list[dict] = []
    for rnd in range(args.rounds):
        fresh = {}
        order = configs[rnd % len(configs):] + configs[:rnd % len(configs)]
        for c in order:
            if c.signed:
                if c.proxy.name not in fresh:
                    fresh[c.proxy.name] = sign()
                c.headers = fresh[c.proxy.name]
            url = c.proxy.url(c.path)
            load.run_wrk(tools, load_core, url, args.connections, args.warmup, c.headers)
            for conns, secs in ((args.connections, args.duration), (1, args.unloaded_duration)):
                r = load.measure(tools, load_core, c.proxy, url, conns, secs, c.headers)
                raw.append({"round": rnd + 1, "key": c.key, "conns": conns, **r})
        log(f"round {rnd + 1}/{args.rounds} done")

    # Each lever alone: its Envoy and the unchanged 10-API Pylon, run by run
    # in alternation (A B B A ...), so that the machine's load, which drifts
    # over seconds, falls on both alike; the figures are per-pair differences.
    lever_runs: list[dict] = []
    refs = {c.key: c for c in configs}
    for name, what, proxy in levers:
        for kind in ("pass", "full"):
            ref = refs[f"{kind}10"]
            headers = sign() if ref.signed else []
            for i in range(args.pairs):
                pair = {}
                for which, p in ((("ref", ref.proxy), ("var", proxy)) if i % 2 == 0
                                 else (("var", proxy), ("ref", ref.proxy))):
                    pair[which] = load.measure(tools, load_core, p, p.url(ref.path), args.connections,
                                               args.pair_duration, headers)
                lever_runs.append({"lever": name, "what": what, "kind": kind, **pair})
        log(f"lever {name} measured")

    instructions: dict[str, float] = {}
    it = instr.tools() if args.instructions else None
    if args.instructions and not it:
        log("valgrind not found: no instruction counts (apt-get install valgrind)")
    if it:
        instructions = count_instructions(tools, it, ports, backend.port, defs_dirs, variants, log,
                                          args.ladder)

    memory = envoys.memory_per_worker(tools, ports, backend.port, defs_dirs, log)
    obs_memory = observability.memory(tools, ports, defs_dirs, log)
    envoys.CHILDREN.stop_all()
    elapsed = time.monotonic() - started
    text = report.render(configs=configs, raw=raw, lever_runs=lever_runs, instructions=instructions,
                         variants=variants, memory=memory, info=info, date=date, args=args,
                         pin=pin, compile_s=compile_s, elapsed=elapsed,
                         observability=observability.render(obs_memory, instructions))
    print(report.summary(configs, raw))
    if args.doc:
        report.write(Path(args.doc), text)
        log(f"wrote {args.doc}")
    log(f"total {elapsed:.0f} s")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BenchError as e:
        print(f"bench: {e}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)
