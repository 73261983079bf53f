"""The audit trail (Huawei user guide chapter 7): publish, rollback,
offline and compile each leave an entry, with what they added, changed or
removed per environment, when, who and the note, read with `pylon audit`."""
import json
import subprocess

from conftest import PYLON, WASM, free_port
from test_publish import Live


def audit(lv, *args):
    res = subprocess.run([str(PYLON), "audit", *args, "--defs", str(lv.defs)],
                         capture_output=True, text=True, env=lv.env, timeout=30)
    assert res.returncode == 0, res.stderr
    return res.stdout.splitlines()


def compile_(lv, note):
    res = subprocess.run([str(PYLON), "compile", str(lv.defs), "--out", str(lv.work / "out"),
                          "--wasm", str(WASM), "--listen", f"127.0.0.1:{free_port()}",
                          "--admin", f"127.0.0.1:{free_port()}", "--note", note],
                         capture_output=True, text=True, env=lv.env, timeout=60)
    assert res.returncode == 0, res.stderr


def test_every_change_is_recorded_and_readable(workdir):
    lv = Live(workdir)
    try:
        lv.write(alpha="alpha-2")
        lv.ok("publish", str(lv.defs), "--env", "RELEASE", "--api", "alpha", "--note", "alpha two")
        lv.ok("rollback", "alpha", "--env", "RELEASE", "--to", "1", "--note", "alpha two broke")
        lv.ok("offline", "gamma", "--env", "RELEASE")
        compile_(lv, "first build")
        lv.write(alpha="alpha-3")
        compile_(lv, "second build")
    finally:
        lv.close()

    entries = [json.loads(line) for line in (lv.defs / ".pylon/audit.jsonl").read_text().splitlines()]
    assert [e["action"] for e in entries] == [
        "publish", "publish", "publish", "rollback", "offline", "compile", "compile"]
    assert all(e["by"] == "e2e" and e["at"].endswith("Z") for e in entries)
    initial = entries[0]
    assert initial["note"] == "initial"
    assert initial["changes"] == [{"environment": "RELEASE",
                                   "added": ["shop/alpha", "shop/beta", "shop/gamma"]}]
    assert entries[1]["changes"] == [{"environment": "TEST", "added": ["shop/alpha", "shop/beta"]}]
    assert entries[2]["note"] == "alpha two"
    assert entries[2]["changes"] == [{"environment": "RELEASE", "changed": ["shop/alpha"]}]
    assert entries[3]["changes"] == [{"environment": "RELEASE", "changed": ["shop/alpha"]}]
    assert entries[3]["note"] == "alpha two broke" and "is now v1" in entries[3]["detail"]
    assert entries[4]["changes"] == [{"environment": "RELEASE", "removed": ["shop/gamma"]}]
    # The first compile adds everything its definitions publish; the second
    # only what changed since.
    assert {c["environment"] for c in entries[5]["changes"]} == {"RELEASE", "TEST"}
    assert entries[6]["note"] == "second build"
    assert entries[6]["changes"] == [{"environment": "RELEASE", "changed": ["shop/alpha"]},
                                     {"environment": "TEST", "changed": ["shop/alpha"]}]

    lines = audit(lv)
    assert lines[0].split()[:5] == ["AT", "ACTION", "BY", "ENVIRONMENT", "CHANGES"]
    assert any("offline" in l and "-shop/gamma" in l for l in lines)
    assert any("publish" in l and "~shop/alpha" in l and l.endswith("alpha two") for l in lines)
    gamma = audit(lv, "gamma", "--env", "RELEASE")
    assert len(gamma) == 1 + 3  # header, initial publish, offline, first compile
    assert all("alpha" not in l for l in gamma[1:])
