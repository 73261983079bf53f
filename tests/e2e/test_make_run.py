"""The curl lines `make run` prints work as printed (README's first promise)."""
import os
import re
import shlex
import signal
import socket
import subprocess
import time

import pytest

from conftest import ROOT

PORTS = (8080, 8081, 8082, 8443, 9901)


def port_busy(port):
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


# Expected status of each printed line, in order.
EXPECTED = [200, 200, 200, 200, 200, 200, 404, 503, 404, 200, 400, 200, 200]


@pytest.mark.skipif(any(port_busy(p) for p in PORTS), reason="make run's fixed ports are in use")
def test_printed_curl_lines_work():
    proc = subprocess.Popen(["envoy/run.sh"], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, start_new_session=True)
    try:
        lines, deadline = [], time.time() + 60
        for line in proc.stdout:
            lines.append(line.rstrip("\n"))
            if "Ctrl-C" in line or time.time() > deadline:
                break
        curls = [l.strip().split("  #")[0].strip() for l in lines if l.strip().startswith("curl ")]
        assert len(curls) == len(EXPECTED), "\n".join(lines)
        for cmd, want in zip(curls, EXPECTED):
            out = subprocess.run(shlex.split(cmd) + ["-s", "-o", "/dev/null", "-w", "%{http_code}"],
                                 capture_output=True, text=True, timeout=10)
            assert out.stdout == str(want), f"{cmd} → {out.stdout}"
        body = subprocess.run(shlex.split(curls[1]) + ["-s"], capture_output=True, text=True).stdout
        assert '"path": "/v1/items/42"' in body, body  # over HTTPS, with the example's own CA
        body = subprocess.run(shlex.split(curls[2]) + ["-s"], capture_output=True, text=True).stdout
        assert re.search(r'"path": "/v2/items/42"', body), body
        body = subprocess.run(shlex.split(curls[9]) + ["-s"], capture_output=True, text=True).stdout
        assert '"path": "/v1/search?page=1&keyword=rust&source=pylon"' in body, body
        assert '"x-category": "books"' in body, body
        preflight = subprocess.run(shlex.split(curls[12]) + ["-s", "-D", "-"], capture_output=True, text=True).stdout
        assert "access-control-max-age: 172800" in preflight.lower(), preflight
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(10)
