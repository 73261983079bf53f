"""Publishing live (Huawei user guide §5.2.5 publish and history, §5.2.6
offline): one Envoy started once on the `xds` target; `pylon publish`,
`rollback` and `offline` replace its files and callers see the change
without a restart, with no failed request under load."""
import http.client
import json
import os
import subprocess
import threading
import time

import pytest

from conftest import ENVOY, PYLON, WASM, Backend, Envoy, free_port, seal_env

DEFS = """
gateway:
  listen: 127.0.0.1:{port}
  admin: 127.0.0.1:{admin}
environments:
  - name: TEST
groups:
  - name: shop
    default: true
apis:
  - name: alpha
    group: shop
    method: GET
    path: /alpha
    auth: {auth}
    backend:
      mock: {{status: 200, body: "{alpha}"}}
    publish: [RELEASE, TEST]
  - name: beta
    group: shop
    method: GET
    path: /beta
    backend:
      http: {{address: "{beta}", path: /echo}}
    publish: [RELEASE, TEST]
  - name: gamma
    group: shop
    method: GET
    path: /gamma
    backend:
      mock: {{status: 200, body: "gamma"}}
    publish: [RELEASE]
{extra}"""


class Live:
    """Definitions, their release store and live files, and one Envoy."""

    def __init__(self, workdir, validate=True, extra="", auth="none"):
        self.work = workdir
        self.defs = workdir / "defs"
        self.defs.mkdir()
        self.live = workdir / "live"
        self.be1, self.be2 = Backend("be1"), Backend("be2")
        self.port, self.admin = free_port(), free_port()
        self.fields = {"port": self.port, "admin": self.admin, "alpha": "alpha-1",
                       "beta": self.be1.address, "extra": extra,
                       "auth": auth}
        self.env = {**seal_env(), "PYLON_PUBLISHER": "e2e"}
        if validate:
            self.env["PYLON_ENVOY"] = str(ENVOY)
        else:
            self.env.pop("PYLON_ENVOY", None)
            self.env["PATH"] = "/usr/bin:/bin"
        self.write()
        self.ok("publish", str(self.defs), "--env", "RELEASE", "--note", "initial")
        self.ok("publish", str(self.defs), "--env", "TEST", "--note", "initial")
        self.envoy = Envoy(self.live / "envoy.yaml", self.port, self.admin, workdir)
        if not self.envoy.wait_ready():
            self.close()
            raise AssertionError(f"Envoy did not start:\n{self.envoy.log.read_text()}")

    def write(self, **changes):
        self.fields.update(changes)
        (self.defs / "defs.yaml").write_text(DEFS.format(**self.fields))

    def pylon(self, *args):
        cmd = [str(PYLON), *args]
        if args[0] != "history":
            cmd += ["--live", str(self.live), "--wasm", str(WASM)]
        if args[0] != "publish":
            cmd += ["--defs", str(self.defs)]
        return subprocess.run(cmd, capture_output=True, text=True, env=self.env, timeout=60)

    def ok(self, *args):
        res = self.pylon(*args)
        assert res.returncode == 0, res.stderr
        return res.stdout

    def get(self, path, stage=None):
        headers = {"X-Stage": stage} if stage else {}
        return self.envoy.request("GET", path, headers=headers)

    def body(self, path, stage=None):
        r = self.get(path, stage)
        if path == "/beta" and r.status == 200:
            return r.json()["backend"]
        return r.body.decode()

    def until(self, path, want, stage=None, within=2.0):
        """Polls until `path` answers `want`; returns the seconds it took."""
        start = time.monotonic()
        while True:
            got = self.body(path, stage)
            if got == want:
                return time.monotonic() - start
            if time.monotonic() - start > within:
                raise AssertionError(f"{path} still answers {got!r}, not {want!r}, after {within}s")
            time.sleep(0.05)

    def live_files(self):
        return {p.name: p.read_bytes() for p in sorted(self.live.iterdir()) if p.is_file()}

    def close(self):
        self.envoy.stop()
        self.be1.close()
        self.be2.close()


@pytest.fixture
def live(workdir):
    lv = Live(workdir)
    yield lv
    lv.close()


def test_publish_reaches_callers_without_restarting_envoy(live):
    pid = live.envoy.proc.pid
    assert live.body("/alpha") == "alpha-1"
    assert live.body("/beta") == "be1"
    live.write(alpha="alpha-2", beta=live.be2.address)
    out = live.ok("publish", str(live.defs), "--env", "RELEASE", "--note", "switch to be2")
    assert "shop/alpha v2" in out and "shop/beta v2" in out, out
    live.until("/alpha", "alpha-2")
    live.until("/beta", "be2")  # a new cluster, too
    # TEST was not published to: it keeps its version.
    assert live.body("/alpha", "TEST") == "alpha-1"
    assert live.body("/beta", "TEST") == "be1"
    assert live.envoy.proc.poll() is None and live.envoy.proc.pid == pid


def test_editing_definitions_alone_changes_nothing_live(live):
    live.write(alpha="alpha-2")
    # Another command rebuilds the live files; the edit is not published.
    live.ok("offline", "gamma", "--env", "RELEASE")
    start = time.monotonic()
    while live.get("/gamma").status != 404:
        assert time.monotonic() - start < 2, "gamma still served after 2 s"
        time.sleep(0.05)
    assert live.body("/alpha") == "alpha-1"


def test_rollback_of_one_api_leaves_the_others_untouched(live):
    live.write(alpha="alpha-2", beta=live.be2.address)
    live.ok("publish", str(live.defs), "--env", "RELEASE", "--note", "v2")
    live.until("/alpha", "alpha-2")
    live.until("/beta", "be2")
    out = live.ok("rollback", "alpha", "--env", "RELEASE", "--to", "1")
    assert "shop/alpha in RELEASE is now v1" in out, out
    live.until("/alpha", "alpha-1")
    for _ in range(20):
        assert live.body("/beta") == "be2"
    history = live.ok("history", "alpha", "--env", "RELEASE")
    rows = history.splitlines()[1:]
    assert " 2 " in rows[0] and "*" not in rows[0].split()[3], history
    assert rows[1].split()[2:4] == ["1", "*"], history


def test_offline_answers_not_found(live):
    live.ok("offline", "alpha", "--env", "RELEASE")
    start = time.monotonic()
    while live.get("/alpha").status != 404:
        assert time.monotonic() - start < 2, "still served after 2 s"
        time.sleep(0.05)
    r = live.get("/alpha")
    assert r.json()["error_code"] == "APIG.0101"
    # Only that API, only that environment.
    assert live.body("/alpha", "TEST") == "alpha-1"
    assert live.body("/beta") == "be1"
    # Its history stays; making a version current brings it back.
    live.ok("rollback", "alpha", "--env", "RELEASE", "--to", "1")
    live.until("/alpha", "alpha-1")


def test_refused_publish_changes_nothing_live(live):
    before = live.live_files()
    # A backend at the cloud metadata address is refused by the compiler.
    live.write(alpha="alpha-2", beta="169.254.169.254:80")
    res = live.pylon("publish", str(live.defs), "--env", "RELEASE", "--note", "bad")
    assert res.returncode != 0
    assert "nothing written" in res.stderr, res.stderr
    # Valid definitions whose publication collides with a live API.
    live.write(beta=live.be1.address)
    text = (live.defs / "defs.yaml").read_text()
    (live.defs / "defs.yaml").write_text(text.replace("path: /alpha", "path: /gamma2")
                                         .replace("path: /gamma\n", "path: /alpha\n"))
    res = live.pylon("publish", str(live.defs), "--env", "RELEASE", "--api", "gamma",
                     "--note", "clash")
    assert res.returncode != 0
    assert "already serves GET /alpha" in res.stderr, res.stderr
    assert live.live_files() == before
    assert "bad" not in live.ok("history") and "clash" not in live.ok("history")
    time.sleep(0.5)
    assert live.body("/alpha") == "alpha-1"
    assert live.body("/beta") == "be1"


def test_history_keeps_exactly_the_last_ten_per_api_and_environment(workdir):
    lv = Live(workdir, validate=False)  # 12 publishes; Envoy validation elsewhere
    try:
        for i in range(2, 13):
            lv.write(alpha=f"alpha-{i}")
            lv.ok("publish", str(lv.defs), "--env", "RELEASE", "--api", "alpha",
                  "--note", f"note {i}")
        lv.until("/alpha", "alpha-12")
        rows = lv.ok("history", "alpha", "--env", "RELEASE").splitlines()[1:]
        assert [r.split()[2] for r in rows] == [str(v) for v in range(12, 2, -1)], rows
        assert rows[0].endswith("note 12") and rows[0].split()[3] == "*"
        # Other APIs and environments keep their own history.
        assert len(lv.ok("history", "alpha", "--env", "TEST").splitlines()[1:]) == 1
        assert len(lv.ok("history", "beta", "--env", "RELEASE").splitlines()[1:]) == 1
        # Version 2 is gone; version 3 can be made current.
        res = lv.pylon("rollback", "alpha", "--env", "RELEASE", "--to", "2")
        assert res.returncode != 0 and "no version 2" in res.stderr, res.stderr
        lv.ok("rollback", "alpha", "--env", "RELEASE", "--to", "3")
        lv.until("/alpha", "alpha-3")
    finally:
        lv.close()


THROTTLE = """
throttles:
  - name: daily
    unit: day
    api_limit: 3
    bindings:
      - {group: shop, api: alpha, environments: [RELEASE]}
"""


def test_throttling_counts_survive_a_publish_that_keeps_the_policy(workdir):
    lv = Live(workdir, extra=THROTTLE)
    try:
        assert [lv.get("/alpha").status for _ in range(3)] == [200, 200, 200]
        # Another API's new version: the filter's configuration is replaced.
        lv.write(beta=lv.be2.address)
        lv.ok("publish", str(lv.defs), "--env", "RELEASE", "--api", "beta", "--note", "be2")
        lv.until("/beta", "be2")
        r = lv.get("/alpha")
        assert r.status == 429, r.body
        assert r.json()["error_code"] == "APIG.0308"
    finally:
        lv.close()


APP = """
apps:
  - name: ali
    key: aliKey000001
    secret: ali-secret-0123456789
    authorizations:
      - {group: shop, api: alpha, environments: [RELEASE]}
"""


def aliyun_signed(nonce):
    """GET /alpha signed the Alibaba way (HmacSHA256) with an X-Ca-Nonce."""
    import base64
    import hashlib
    import hmac
    ts = str(int(time.time() * 1000))
    headers = {"accept": "application/json", "x-ca-key": "aliKey000001", "x-ca-nonce": nonce,
               "x-ca-timestamp": ts, "x-ca-signature-method": "HmacSHA256",
               "x-ca-signature-headers": "x-ca-key,x-ca-nonce,x-ca-signature-method,x-ca-timestamp"}
    sts = (f"GET\napplication/json\n\n\n\nx-ca-key:aliKey000001\nx-ca-nonce:{nonce}\n"
           f"x-ca-signature-method:HmacSHA256\nx-ca-timestamp:{ts}\n/alpha")
    sig = hmac.new(b"ali-secret-0123456789", sts.encode(), hashlib.sha256).digest()
    return {**headers, "x-ca-signature": base64.b64encode(sig).decode()}


def test_a_used_nonce_stays_used_across_a_publish(workdir):
    lv = Live(workdir, extra=APP, auth="app")
    try:
        signed = aliyun_signed(os.urandom(8).hex())
        assert lv.envoy.request("GET", "/alpha", signed).status == 200
        lv.write(beta=lv.be2.address)
        lv.ok("publish", str(lv.defs), "--env", "RELEASE", "--api", "beta", "--note", "be2")
        lv.until("/beta", "be2")
        r = lv.envoy.request("GET", "/alpha", signed)
        assert r.status == 401 and "Nonce Used" in (r.header("x-ca-error-message") or ""), r.body
        fresh = aliyun_signed(os.urandom(8).hex())
        assert lv.envoy.request("GET", "/alpha", fresh).status == 200
    finally:
        lv.close()


def test_an_update_envoy_refuses_is_undone_and_not_recorded(workdir):
    """Envoy holds a different seal key than the one the publish seals with:
    it refuses the filter's new configuration and keeps serving the old one;
    the publish fails, puts the previous files back, and records nothing."""
    import base64
    lv = Live(workdir, extra=APP)
    try:
        before, history = lv.live_files(), lv.ok("history")
        lv.write(alpha="alpha-2")
        lv.env = {**lv.env, "PYLON_SEAL_KEY": base64.b64encode(os.urandom(32)).decode()}
        res = lv.pylon("publish", str(lv.defs), "--env", "RELEASE", "--note", "wrong key")
        assert res.returncode != 0
        assert "Envoy refused the update" in res.stderr, res.stderr
        assert lv.live_files() == before
        assert lv.ok("history") == history
        assert lv.body("/alpha") == "alpha-1"
    finally:
        lv.close()


class Load:
    """Steady GET traffic on keep-alive connections and on new connections,
    bounded in time and count; records every failure."""

    def __init__(self, port, paths, accept):
        self.port, self.paths, self.accept = port, paths, accept
        self.stop_at = time.monotonic() + 60  # hard bound
        self.done = threading.Event()
        self.count = 0
        self.failures = []
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self.run, args=(keep,), daemon=True)
                        for keep in (True, True, False, False)]

    def start(self):
        for t in self.threads:
            t.start()

    def finish(self):
        self.done.set()
        for t in self.threads:
            t.join(10)

    def one(self, conn, path):
        conn.request("GET", path, headers={"Host": f"127.0.0.1:{self.port}"})
        r = conn.getresponse()
        body = r.read()
        if path == "/beta" and r.status == 200:
            body = json.loads(body)["backend"].encode()
        return r.status, body.decode()

    def run(self, keep_alive):
        conn = None
        i = 0
        while not self.done.is_set() and time.monotonic() < self.stop_at and i < 20000:
            path = self.paths[i % len(self.paths)]
            i += 1
            try:
                if conn is None:
                    conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
                status, body = self.one(conn, path)
                ok = status == 200 and body in self.accept[path]
                if not ok:
                    with self.lock:
                        self.failures.append((path, status, body[:200]))
            except (OSError, http.client.HTTPException) as e:
                with self.lock:
                    self.failures.append((path, "error", repr(e)))
                conn = None
            with self.lock:
                self.count += 1
            if not keep_alive and conn is not None:
                conn.close()
                conn = None


def test_no_request_fails_across_publish_rollback_and_offline_under_load(live):
    load = Load(live.port, ["/alpha", "/beta"],
                {"/alpha": {"alpha-1", "alpha-2"}, "/beta": {"be1", "be2"}})
    load.start()
    try:
        time.sleep(1)
        live.write(alpha="alpha-2", beta=live.be2.address)
        live.ok("publish", str(live.defs), "--env", "RELEASE", "--note", "v2")
        took_publish = live.until("/alpha", "alpha-2", within=1.0)
        live.until("/beta", "be2", within=1.0)
        time.sleep(0.5)
        live.ok("rollback", "beta", "--env", "RELEASE", "--to", "1")
        took_rollback = live.until("/beta", "be1", within=1.0)
        time.sleep(0.5)
        live.ok("offline", "gamma", "--env", "RELEASE")
        start = time.monotonic()
        while live.get("/gamma").status != 404:
            assert time.monotonic() - start < 1.0
            time.sleep(0.02)
        time.sleep(1)
    finally:
        load.finish()
    assert load.count > 200, load.count
    assert load.failures == [], load.failures[:10]
    print(f"{load.count} requests, 0 failed; publish took effect in {took_publish:.2f}s, "
          f"rollback in {took_rollback:.2f}s")
