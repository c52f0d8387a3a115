"""`v2m watch`: the ledger's claim rules in-process, and a watcher killed mid-run then restarted."""
from __future__ import annotations

import dataclasses
import json
import os
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from video2mesh.flows.watch import CLAIMED, DONE, FAILED, Ledger
from tests.conftest import write_video
from tests.flows.procs import group, kill_group, spawn
from tests.flows.test_run import FAST


def _dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def test_ledger_claims(tmp_path):
    a = Ledger(tmp_path / "l.sqlite", lease_s=60)
    b = Ledger(tmp_path / "l.sqlite", lease_s=60)  # a second handle: another watcher on the same file
    assert a.claim("d1", "x.mp4")
    assert not b.claim("d1", "x.mp4"), "a live claim (this process, fresh heartbeat) is not taken twice"
    a.finish("d1", DONE, out_dir="/o/x")
    assert not b.claim("d1", "copy.mp4") and b.get("d1")["state"] == DONE, "finished content is never redone"
    assert a.claim("d0", "bad.mp4")
    a.finish("d0", FAILED, error="no frames")
    assert not b.claim("d0", "bad.mp4") and b.claim("d0", "bad.mp4", retry_failed=True), "failed: only on request"

    def set_row(**kw):
        with sqlite3.connect(tmp_path / "l.sqlite") as db:
            db.execute(f"UPDATE items SET {', '.join(f'{k} = ?' for k in kw)} WHERE digest = 'd2'", tuple(kw.values()))

    assert a.claim("d2", "y.mp4")
    set_row(pid=_dead_pid())
    assert b.claim("d2", "y.mp4"), "the claimer's process is gone: retried at once"
    assert b.get("d2")["attempts"] == 2
    set_row(pid=os.getppid(), heartbeat=time.time() - 61)
    assert a.claim("d2", "y.mp4"), "a live PID (perhaps reused) with a heartbeat older than the lease: retried"
    set_row(pid=os.getppid(), heartbeat=time.time(), host="other-host")
    assert not b.claim("d2", "y.mp4"), "another host's fresh claim is respected"
    set_row(pid=os.getpid(), host=a.host)
    a.release("d2")
    assert b.get("d2")["state"] == "released" and b.claim("d2", "y.mp4"), "a released item is taken at once"


def _write_slowly(src: bytes, dest: Path, pieces: int = 6, pause_s: float = 0.5) -> None:
    step = -(-len(src) // pieces)
    with open(dest, "wb") as f:
        for i in range(0, len(src), step):
            f.write(src[i:i + step])
            f.flush()
            time.sleep(pause_s)


def _ledger_rows(path: Path) -> dict[str, dict]:
    if not path.is_file():
        return {}
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30) as db:
        db.row_factory = sqlite3.Row
        try:
            return {r["name"]: dict(r) for r in db.execute("SELECT * FROM items")}
        except sqlite3.OperationalError:  # the watcher has not created its table yet
            return {}


@pytest.mark.slow
def test_watch_five_videos_killed_and_restarted(tmp_path, tiny_yolo):
    inbox, out, cache = tmp_path / "inbox", tmp_path / "out", tmp_path / "cache"
    inbox.mkdir()
    src = tmp_path / "src"
    src.mkdir()
    vids = {n: write_video(src / f"{n}.mp4", n_frames=32, size=(160, 120), seed=i) for i, n in enumerate("abs")}
    for n in "ab":
        (inbox / f"{n}.mp4").write_bytes(vids[n].read_bytes())
    (inbox / "a_copy.mp4").write_bytes(vids["a"].read_bytes())       # the duplicate
    (inbox / "corrupt.mp4").write_bytes(vids["b"].read_bytes()[:3000])  # a cut copy: no moov, no frames
    ledger = out / ".v2m-watch" / "ledger.sqlite"
    args = ["video2mesh.flows.cli", "watch", str(inbox), "--out", str(out), "--cache", str(cache), "--weights", f"yolo={tiny_yolo}",
            "--until", "tracklets", *FAST, "--set", "detect.imgsz=160", "--stable-seconds", "1.5",
            "--poll-seconds", "0.2", "--concurrency", "1"]

    first = spawn(args, tmp_path / "watch1.log")
    with group(first):
        slow = threading.Thread(target=_write_slowly, args=(vids["s"].read_bytes(), inbox / "slow.mp4"))
        slow.start()
        deadline = time.time() + 150
        while time.time() < deadline:  # kill once something is done and something else is mid-run
            rows = _ledger_rows(ledger)
            if any(r["state"] == DONE for r in rows.values()) and any(r["state"] == CLAIMED for r in rows.values()):
                break
            assert first.poll() is None, (tmp_path / "watch1.log").read_text()
            time.sleep(0.05)
        kill_group(first)
        slow.join()
    before = _ledger_rows(ledger)
    killed = [n for n, r in before.items() if r["state"] == CLAIMED]
    finished = {n: (out / Path(n).stem / "run.json").stat().st_mtime_ns for n, r in before.items()
                if r["state"] == DONE and r["out_dir"] == str(out / Path(n).stem)}
    assert killed and finished, f"the kill should land mid-run: {before}"

    second = spawn([*args, "--once"], tmp_path / "watch2.log")
    with group(second):
        assert second.wait(150) == 0, (tmp_path / "watch2.log").read_text()
    log2 = (tmp_path / "watch2.log").read_text()
    assert "taking over the claim" in log2, log2

    done = sorted(p.name for p in (inbox / "done").glob("*.mp4"))
    assert done == ["a.mp4", "a_copy.mp4", "b.mp4", "slow.mp4"]
    assert sorted(p.name for p in (inbox / "failed").iterdir()) == ["corrupt.mp4", "corrupt.mp4.error.txt"]
    assert "no decodable frames" in (inbox / "failed" / "corrupt.mp4.error.txt").read_text() or \
        "not a readable video" in (inbox / "failed" / "corrupt.mp4.error.txt").read_text()
    assert not [p for p in inbox.iterdir() if p.is_file()], "nothing left behind in the inbox"
    sidecar = {p.name: json.loads((inbox / "done" / f"{p.name}.v2m.json").read_text()) for p in (inbox / "done").glob("*.mp4")}
    dup, orig = ("a_copy.mp4", "a.mp4") if sidecar["a_copy.mp4"]["duplicate_of"] else ("a.mp4", "a_copy.mp4")
    assert sidecar[dup]["duplicate_of"] == orig and sidecar[orig]["duplicate_of"] is None
    assert sidecar[dup]["digest"] == sidecar[orig]["digest"] and sidecar[dup]["out_dir"] == sidecar[orig]["out_dir"]
    import hashlib
    assert sidecar["slow.mp4"]["digest"] == hashlib.sha256(vids["s"].read_bytes()).hexdigest(), \
        "the slow copy was taken only once complete"

    after = _ledger_rows(ledger)
    assert sorted(r["state"] for r in after.values()) == ["done", "done", "done", "failed"], after
    for n, mtime in finished.items():
        assert after[n]["attempts"] == 1 and (out / Path(n).stem / "run.json").stat().st_mtime_ns == mtime, \
            f"{n} was finished before the kill and must not run again"
    for n in killed:
        assert after[n]["attempts"] == 2 and after[n]["state"] in ("done", "failed")


def test_stop_finishes_or_releases_the_running_item(tmp_path):
    """In-process, with a stand-in for the pipeline: a stop request waits `grace_s` for the running
    video, then releases its claim (the CLI then exits at once); a second watcher takes it over."""
    from video2mesh.flows.spec import RunSpec
    from video2mesh.flows.watch import RELEASED, WatchConfig, Watcher

    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "v.mp4").write_bytes(b"some bytes")
    gate, started = threading.Event(), threading.Event()

    def blocked(video: Path, spec: RunSpec) -> str:
        started.set()
        gate.wait(30)
        raise SystemExit  # stands for the process exit that follows a release (no filing, no ledger write)

    cfg = WatchConfig(inbox=str(inbox), ledger=str(tmp_path / "l.sqlite"), stable_s=0, poll_s=0.05, grace_s=0.3)
    w = Watcher(cfg, RunSpec(out=str(tmp_path / "out")), submit=blocked)
    result: list[int] = []
    t = threading.Thread(target=lambda: result.append(w.run()))
    t.start()
    assert started.wait(10)
    w.stop.set()
    t.join(10)
    assert result == [143], "the item outlived the grace period: released, non-zero exit"
    (row,) = Ledger(tmp_path / "l.sqlite").rows()
    assert row["state"] == RELEASED and row["pid"] is None
    assert (inbox / "v.mp4").is_file(), "a released video stays in the inbox"
    gate.set()

    # The next watcher takes it at once, and a stop during a short item lets it finish (exit 0).
    w2 = Watcher(dataclasses.replace(cfg, grace_s=10), RunSpec(out=str(tmp_path / "out")),
                 submit=lambda v, s: (time.sleep(0.3), str(tmp_path / "out" / v.stem))[1])
    t = threading.Thread(target=lambda: result.append(w2.run()))
    t.start()
    deadline = time.time() + 10
    while not w2._running and time.time() < deadline:
        time.sleep(0.01)
    w2.stop.set()
    t.join(10)
    (row,) = Ledger(tmp_path / "l.sqlite").rows()
    assert result[-1] == 0 and row["state"] == DONE and row["attempts"] == 2
    assert (inbox / "done" / "v.mp4").is_file()


def test_missing_weights_stop_the_watcher_not_the_videos(tmp_path):
    """Missing weights are the operator's to fix: nothing is filed as failed, the claim is released."""
    from video2mesh.flows.spec import RunSpec
    from video2mesh.flows.watch import RELEASED, WatchConfig, Watcher
    from video2mesh.pipeline.errors import AssetMissing

    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "v.mp4").write_bytes(b"some bytes")
    spec = RunSpec(out=str(tmp_path / "out"), models_dir=str(tmp_path / "no-models"), until="tracklets")
    cfg = WatchConfig(inbox=str(inbox), ledger=str(tmp_path / "l.sqlite"), stable_s=0, poll_s=0.05, once=True)
    with pytest.raises(AssetMissing, match="yolo"):
        Watcher(cfg, spec).preflight()

    def missing(video: Path, spec: RunSpec) -> str:
        raise AssetMissing("weights for 'yolo' are missing")

    assert Watcher(cfg, spec, submit=missing).run() == AssetMissing.exit_code
    (row,) = Ledger(tmp_path / "l.sqlite").rows()
    assert row["state"] == RELEASED and (inbox / "v.mp4").is_file() and not (inbox / "failed").exists()


@pytest.mark.slow
def test_sigterm_releases_the_running_video(tmp_path, tiny_yolo):
    """The real CLI: SIGTERM with --grace-seconds 0 mid-run exits 143 at once, claim released, video kept."""
    import signal

    from video2mesh.flows.watch import RELEASED

    inbox, out = tmp_path / "inbox", tmp_path / "out"
    inbox.mkdir()
    write_video(inbox / "v.mp4", n_frames=32, size=(160, 120))
    ledger = out / ".v2m-watch" / "ledger.sqlite"
    p = spawn(["video2mesh.flows.cli", "watch", str(inbox), "--out", str(out), "--cache", str(tmp_path / "cache"), "--weights",
               f"yolo={tiny_yolo}", "--until", "tracklets", *FAST, "--set", "detect.imgsz=160", "--set",
               "detect.chunk_frames=8", "--stable-seconds", "0.3", "--poll-seconds", "0.1", "--grace-seconds", "0"],
              tmp_path / "watch.log")
    with group(p):
        deadline = time.time() + 120
        while not any(r["state"] == CLAIMED for r in _ledger_rows(ledger).values()):
            assert time.time() < deadline and p.poll() is None, (tmp_path / "watch.log").read_text()
            time.sleep(0.02)
        os.killpg(p.pid, signal.SIGTERM)
        assert p.wait(30) == 143, (tmp_path / "watch.log").read_text()
    (row,) = _ledger_rows(ledger).values()
    assert row["state"] == RELEASED and row["pid"] is None
    assert (inbox / "v.mp4").is_file() and not (inbox / "done").exists()
    assert "released unfinished" in (tmp_path / "watch.log").read_text()


def test_video_replaced_while_it_runs(tmp_path):
    """A file overwritten with other bytes while its run is under way: the old content's result is kept
    (done in the ledger), the new content is not filed under it but runs next, then both are done once."""
    from video2mesh.flows.spec import RunSpec
    from video2mesh.flows.watch import WatchConfig, Watcher
    from video2mesh.pipeline.hashing import sha256_file

    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "v.mp4").write_bytes(b"first take")
    seen: list[bytes] = []

    def submit(video: Path, spec: RunSpec) -> str:
        seen.append(video.read_bytes())
        if len(seen) == 1:  # the user saves a new version over it mid-run
            time.sleep(0.05)
            (inbox / "v.mp4").write_bytes(b"second take, longer")
        return str(tmp_path / "out" / f"run{len(seen)}")

    cfg = WatchConfig(inbox=str(inbox), ledger=str(tmp_path / "l.sqlite"), stable_s=0.2, poll_s=0.05, once=True)
    assert Watcher(cfg, RunSpec(out=str(tmp_path / "out")), submit=submit).run() == 0
    assert seen == [b"first take", b"second take, longer"], "each content ran exactly once"
    rows = {r["out_dir"]: r for r in Ledger(tmp_path / "l.sqlite").rows()}
    assert {r["state"] for r in rows.values()} == {DONE} and len(rows) == 2
    (done,) = (inbox / "done").glob("*.mp4")
    assert done.read_bytes() == b"second take, longer"
    sidecar = json.loads((inbox / "done" / "v.mp4.v2m.json").read_text())
    assert sidecar["digest"] == sha256_file(done) and sidecar["out_dir"].endswith("run2"), "filed under its own run"


def test_two_watchers_on_one_inbox(tmp_path):
    """Two watchers (own ledger handles, threads) on one inbox: every content runs once, every file is
    filed once (the duplicate as a duplicate), nothing is left in the inbox."""
    from video2mesh.flows.spec import RunSpec
    from video2mesh.flows.watch import WatchConfig, Watcher

    inbox = tmp_path / "inbox"
    inbox.mkdir()
    for i in range(6):
        (inbox / f"v{i}.mp4").write_bytes(f"video {i}".encode())
    (inbox / "copy_of_v0.mp4").write_bytes(b"video 0")
    runs: list[str] = []
    lock = threading.Lock()

    def submit(video: Path, spec: RunSpec) -> str:
        with lock:
            runs.append(video.read_bytes().decode())
        time.sleep(0.1)
        return str(tmp_path / "out" / video.stem)

    cfg = WatchConfig(inbox=str(inbox), ledger=str(tmp_path / "l.sqlite"), stable_s=0.1, poll_s=0.02, once=True)
    watchers = [Watcher(cfg, RunSpec(out=str(tmp_path / "out")), submit=submit) for _ in range(2)]
    codes: list[int] = []
    threads = [threading.Thread(target=lambda w=w: codes.append(w.run())) for w in watchers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert codes == [0, 0]
    assert sorted(runs) == [f"video {i}" for i in range(6)], "each content ran exactly once across both watchers"
    done = sorted(p.name for p in (inbox / "done").glob("*.mp4"))
    assert done == sorted([f"v{i}.mp4" for i in range(6)] + ["copy_of_v0.mp4"])
    assert len(list((inbox / "done").glob("*.v2m.json"))) == 7 and not [p for p in inbox.iterdir() if p.is_file()]
