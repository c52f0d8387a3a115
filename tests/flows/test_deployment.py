"""A Prefect server on loopback, the deployment served by `v2m serve` (fed by `v2m watch --deployment`)
and the prefect.yaml one pulled by two process workers; three runs of one video at once on one cache root. Every process is started
here, by PID, in its own process group, and killed as a group at the end."""
from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import ROOT, write_video
from tests.flows.procs import env, free_port, kill_group, spawn
from tests.flows.test_run import FAST

STAGES = ("probe", "detect", "tracks", "appearance", "tracklets")


def _api(url: str, body: dict | None = None):
    req = urllib.request.Request(url, data=None if body is None else json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"}, method="GET" if body is None else "POST")
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read() or b"null")


def _wait(cond, what: str, timeout_s: float, procs=()) -> None:
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        for p, log in procs:
            assert p.poll() is None, f"{p.args} exited {p.returncode} while waiting for {what}:\n{Path(log).read_text()[-3000:]}"
        try:
            if cond():
                return
        except OSError:
            pass
        time.sleep(0.5)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")


def _prefect(args: list[str], penv: dict, timeout: float = 120) -> subprocess.CompletedProcess:
    p = subprocess.run([sys.executable, "-m", "prefect", *args], cwd=ROOT, env=env(**penv), capture_output=True,
                       text=True, timeout=timeout)
    assert p.returncode == 0, f"prefect {' '.join(args)}: {p.returncode}\n{p.stdout[-3000:]}\n{p.stderr[-3000:]}"
    return p


@pytest.mark.slow
def test_deployment_run_on_loopback_server_with_two_workers(tmp_path, tiny_yolo):
    port = free_port()
    api = f"http://127.0.0.1:{port}/api"
    home = tmp_path / "prefect-home"
    penv = {"PREFECT_HOME": str(home), "PREFECT_API_URL": api, "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "DO_NOT_TRACK": "1", "PREFECT_WORKER_QUERY_SECONDS": "2", "PREFECT_RUNNER_POLL_FREQUENCY": "2"}
    video = write_video(tmp_path / "clip.mp4", n_frames=24, size=(160, 120))
    cache = tmp_path / "cache"
    procs: list[subprocess.Popen] = []
    server_pid = None
    serve_log, worker_logs = tmp_path / "serve.log", [tmp_path / f"worker{i}.log" for i in range(2)]
    try:
        serve = spawn(["video2mesh.flows.cli", "serve", "--name", "served", "--port", str(port), "--prefect-home", str(home),
                       "--limit", "1", "--cache", str(cache), "--weights", f"yolo={tiny_yolo}", "--until", "tracklets",
                       *FAST, "--set", "detect.imgsz=160"], serve_log, **penv)
        procs.append(serve)
        _wait(lambda: "Prefect server pid" in serve_log.read_text(), "the server to start", 60, [(serve, serve_log)])
        server_pid = int(re.search(r"Prefect server pid (\d+)", serve_log.read_text()).group(1))
        _wait(lambda: _api(f"{api}/health"), "the API", 180, [(serve, serve_log)])

        # The prefect.yaml deployment on a process pool, pulled by two workers (one run each at a time).
        _prefect(["work-pool", "create", "v2m", "--type", "process"], penv)
        _prefect(["--no-prompt", "deploy", "--all"], penv)
        for i, log in enumerate(worker_logs):
            procs.append(spawn(["prefect", "worker", "start", "--pool", "v2m", "--limit", "1", "--name", f"w{i}"],
                               log, V2M_REPO=str(ROOT), **penv))
        _wait(lambda: _api(f"{api}/deployments/name/video-to-mesh/served"), "v2m serve's deployment", 120,
              [(serve, serve_log)])
        _wait(lambda: all("started" in log.read_text() for log in worker_logs), "the workers", 120,
              list(zip(procs[1:], worker_logs)))

        params = json.dumps({"cache": str(cache), "weights": {"yolo": str(tiny_yolo)}, "until": "tracklets",
                             "settings": {"detect": {"imgsz": 160, "max_det": 5}, "tracklets": {"min_len": 10}}})
        # Three runs at once: `v2m watch --deployment` submits a copy dropped in its inbox to the served
        # deployment; two `prefect deployment run` go to the pool's workers.
        inbox = tmp_path / "inbox"
        inbox.mkdir()
        (inbox / video.name).write_bytes(video.read_bytes())
        watch_log = tmp_path / "watch.log"
        watcher = spawn(["video2mesh.flows.cli", "watch", str(inbox), "--out", str(tmp_path / "out0"), "--cache", str(cache),
                         "--weights", f"yolo={tiny_yolo}", "--until", "tracklets", *FAST, "--set", "detect.imgsz=160",
                         "--stable-seconds", "0.5", "--poll-seconds", "0.2", "--deployment", "video-to-mesh/served",
                         "--once"], watch_log, **penv)
        procs.append(watcher)
        runs = []
        for i in (1, 2):
            runs.append(subprocess.Popen(
                [sys.executable, "-m", "prefect", "deployment", "run", "video-to-mesh/default", "--params", params,
                 "--param", f"video={video}", "--param", f"out={tmp_path / f'out{i}'}", "--watch",
                 "--watch-interval", "1", "--watch-timeout", "300"],
                cwd=ROOT, env=env(**penv), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                start_new_session=True))
        procs += runs
        for r in runs:
            text = r.communicate(timeout=320)[0]
            assert r.returncode == 0 and "Completed" in text, text[-3000:]
        assert watcher.wait(320) == 0, watch_log.read_text()[-3000:]
        assert (inbox / "done" / video.name).is_file() and not (inbox / "failed").exists(), watch_log.read_text()

        summaries = [json.loads((tmp_path / f"out{i}" / "clip" / "run.json").read_text())["stages"] for i in range(3)]
        for stage in STAGES:
            assert sorted(s[stage]["status"] for s in summaries) == ["cached", "cached", "computed"], \
                f"{stage}: computed once across three concurrent runs"
            assert len({json.dumps(s[stage]["ref"], sort_keys=True) for s in summaries}) == 1, f"{stage}: one artifact"
        for log in worker_logs:
            assert len(re.findall(r"done; outputs in", log.read_text())) == 1, "each worker took one run"

        artifacts = _api(f"{api}/artifacts/filter", {"artifacts": {"key": {"like_": "v2m-clip-"}}})
        for i in range(3):
            out = str((tmp_path / f"out{i}" / "clip").resolve())
            assert any(out in (a["data"] or "") and "run.json" in a["data"] for a in artifacts), f"no artifact for {out}"
        logs = _api(f"{api}/logs/filter", {"limit": 200, "logs": {"level": {"ge_": 20}}})
        assert sum("outputs in" in lg["message"] for lg in logs) == 3, "each run logs where its outputs are"
    finally:
        if procs and procs[0].poll() is None:  # v2m serve stops its own server on SIGTERM
            os.killpg(procs[0].pid, signal.SIGTERM)
            try:
                procs[0].wait(30)
            except subprocess.TimeoutExpired:
                pass
        for p in procs:
            kill_group(p)
        if server_pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(server_pid, signal.SIGKILL)


def test_serve_refuses_a_busy_port(tmp_path):
    """A server already on the port would answer our health checks: refuse, and say how to use it."""
    import socket

    from video2mesh.flows.serve import start_server
    from video2mesh.pipeline.errors import ConfigError

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        with pytest.raises(ConfigError, match=f"--api-url http://127.0.0.1:{port}/api"):
            start_server(port, tmp_path / "home")
    assert not (tmp_path / "home").exists(), "nothing started"


def test_an_orphaned_server_is_stopped_at_the_next_start(tmp_path):
    """A server left running by a killed `v2m serve` (recorded in its home) is stopped, group and all."""
    from video2mesh.flows.serve import PID_FILE, reap_orphan

    home = tmp_path / "home"
    home.mkdir()
    # Stands for `python -m prefect server start` (the check reads its command line) with a child.
    fake = subprocess.Popen([sys.executable, "-c", "import subprocess, sys, time  # prefect server\n"
                             "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(120)'])\n"
                             "time.sleep(120)"], start_new_session=True)
    try:
        time.sleep(1.0)
        (home / PID_FILE).write_text(f"{fake.pid}\n")
        reap_orphan(home)
        assert fake.wait(15) is not None
        left = subprocess.run(["ps", "-o", "pid=", "-g", str(fake.pid)], capture_output=True, text=True).stdout.split()
        assert not left, f"processes of the orphan's group still running: {left}"
        assert not (home / PID_FILE).exists()
        reap_orphan(home)  # nothing recorded: nothing to do
    finally:
        kill_group(fake)


@pytest.mark.slow
def test_killed_serve_leaves_no_server(tmp_path, tiny_yolo):
    """SIGKILL `v2m serve` (its own group; the server has another): the server goes too, `ps` shows none."""
    port = free_port()
    home = tmp_path / "prefect-home"
    log = tmp_path / "serve.log"
    serve = spawn(["video2mesh.flows.cli", "serve", "--port", str(port), "--prefect-home", str(home), "--cache",
                   str(tmp_path / "cache"), "--weights", f"yolo={tiny_yolo}", "--until", "tracklets"], log,
                  PREFECT_HOME=str(home))
    server_pid = None
    try:
        _wait(lambda: "Prefect server pid" in log.read_text(), "the server to start", 120, [(serve, log)])
        server_pid = int(re.search(r"Prefect server pid (\d+)", log.read_text()).group(1))
        _wait(lambda: _api(f"http://127.0.0.1:{port}/api/health"), "the API", 300, [(serve, log)])
        kill_group(serve)
        deadline = time.time() + 60
        while time.time() < deadline and subprocess.run(["ps", "-o", "pid=", "-g", str(server_pid)],
                                                        capture_output=True, text=True).stdout.split():
            time.sleep(0.5)
        left = subprocess.run(["ps", "-o", "pid=,args=", "-g", str(server_pid)], capture_output=True, text=True).stdout
        assert not left.strip(), f"the server outlived v2m serve:\n{left}"
    finally:
        kill_group(serve)
        if server_pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(server_pid, signal.SIGKILL)


def test_orphaned_embedded_servers_are_stopped_by_the_next_run(tmp_path):
    """`v2m run` killed by SIGKILL leaves Prefect's embedded API server (uvicorn) running, adopted by init:
    the next command on the same Prefect home stops it; one on another home, or with a live parent, stays."""
    from video2mesh.flows.serve import EPHEMERAL_APP, reap_orphaned_ephemeral

    def orphan(home: Path) -> int:
        """A stand-in server whose parent exits at once (so init adopts it); returns its pid."""
        code = ("import subprocess, sys\n"
                f"p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(120)', '{EPHEMERAL_APP.decode()}'],"
                f" env={{'PREFECT_HOME': '{home}'}}, start_new_session=True, stdout=subprocess.DEVNULL,"
                " stderr=subprocess.DEVNULL)\nprint(p.pid)")
        return int(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout)

    mine, other = orphan(tmp_path / "home"), orphan(tmp_path / "other-home")
    try:
        time.sleep(0.5)
        if int(Path(f"/proc/{mine}/stat").read_text().rsplit(")", 1)[1].split()[1]) != 1:
            pytest.skip("orphans are adopted by a subreaper here, not init")
        assert reap_orphaned_ephemeral(tmp_path / "home") == 1
        deadline = time.time() + 10
        while time.time() < deadline and Path(f"/proc/{mine}").exists() and \
                Path(f"/proc/{mine}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z":
            time.sleep(0.1)
        assert not Path(f"/proc/{mine}").exists() or "Z" in Path(f"/proc/{mine}/stat").read_text().rsplit(")", 1)[1][:3]
        assert Path(f"/proc/{other}").exists(), "another home's server is not ours to stop"
    finally:
        for pid in (mine, other):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def test_the_embedded_server_is_ours_quiet_and_stopped(tmp_path):
    """`v2m run`'s API server: its output goes to the run's log file, not the terminal (Prefect's own
    inherited it, so its shutdown tracebacks reached users), it has its own session (Ctrl-C goes to the run)
    and it is gone when the run's block ends; a server that cannot start is a one-line ConfigError."""
    from video2mesh.flows.serve import embedded_server
    from video2mesh.pipeline.errors import ConfigError

    log = tmp_path / "run.log"
    log.write_text("the run's own lines\n")
    with embedded_server(tmp_path / "home", log, timeout_s=120) as url:
        with urllib.request.urlopen(f"{url}/health", timeout=10) as r:
            assert r.status == 200
        port = int(url.rsplit(":", 1)[1].split("/")[0])
        pids = [p.name for p in Path("/proc").glob("[0-9]*") if f"--port\0{port}\0" in _embedded_cmdline(p)]
        assert len(pids) == 1, pids
        pid = int(pids[0])
        for fd in (1, 2):
            assert os.readlink(f"/proc/{pid}/fd/{fd}") == str(log), "the server writes into the run's log"
        assert os.getsid(pid) != os.getsid(0), "its own session: a terminal's Ctrl-C reaches the run only"
    assert not Path(f"/proc/{pid}").exists() or " Z " in Path(f"/proc/{pid}/stat").read_text(), "stopped"
    assert log.read_text().startswith("the run's own lines\n"), "appended, nothing lost"

    home_is_a_file = tmp_path / "not-a-folder"
    home_is_a_file.write_text("")
    with pytest.raises(ConfigError, match=r"embedded API server exited with code \d+ \(its output is in .*run.log\)"):
        with embedded_server(home_is_a_file, log, timeout_s=60):
            pass


def _embedded_cmdline(proc: Path) -> str:
    """A process's command line ('' when it is gone or not the embedded app)."""
    try:
        cmd = (proc / "cmdline").read_bytes().decode(errors="replace")
    except OSError:
        return ""
    return cmd if "prefect.server.api.server:create_app" in cmd else ""
