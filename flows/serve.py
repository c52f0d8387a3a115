"""`v2m serve`: a Prefect server on loopback (optional) and the `video-to-mesh/<name>` deployment.

    v2m serve                      # starts `prefect server start` on 127.0.0.1:4200 + serves `default`
    v2m serve --api-url URL        # serve against a server that already runs (compose, another host)

Then `prefect deployment run video-to-mesh/default --param video=/abs/clip.mp4 --param out=/abs/out`.
For a work pool with several workers instead, see prefect.yaml and docs/operations.md.
"""
from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

from video2mesh.pipeline.errors import ConfigError

log = logging.getLogger(__name__)


def start_server(port: int, home: Path, host: str = "127.0.0.1") -> subprocess.Popen:
    """`prefect server start` in its own process group (so stopping it stops its children too)."""
    reap_orphan(home)  # first: an orphan of ours would hold the port
    with socket.socket() as probe:  # otherwise a server already on that port would answer our health checks
        try:
            probe.bind((host, port))
        except OSError as e:
            raise ConfigError(f"{host}:{port} is in use ({e.strerror}); pass --port N, or --api-url "
                              f"http://{host}:{port}/api to serve against the server already there") from e
    home.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PREFECT_HOME": str(home), "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "DO_NOT_TRACK": "1"}
    env.pop("PREFECT_API_URL", None)  # the server itself must not look for another one
    logf = open(home / "server.log", "ab")
    try:
        proc = subprocess.Popen([sys.executable, "-m", "prefect", "server", "start", "--host", host, "--port", str(port),
                                 "--no-ui", "--analytics-off"], env=env, stdout=logf, stderr=subprocess.STDOUT,
                                start_new_session=True, preexec_fn=_die_with_parent)
    finally:
        logf.close()
    (home / PID_FILE).write_text(f"{proc.pid}\n")
    return proc


PID_FILE = "v2m-server.pid"  # in the server's PREFECT_HOME: the process group of the server we started


def _die_with_parent() -> None:
    """In the server's process (Linux): SIGTERM when `v2m serve` ends, even by SIGKILL, so no server is orphaned."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # 1 = PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # not Linux: reap_orphan at the next start covers it
        pass


def reap_orphan(home: Path) -> None:
    """Stop the server an earlier `v2m serve` on this home left behind (killed before it could stop it):
    its process group, if it still runs `prefect server`. It holds the database and usually the port."""
    try:
        pgid = int((home / PID_FILE).read_text())
        cmd = Path(f"/proc/{pgid}/cmdline").read_bytes().replace(b"\0", b" ")
    except (OSError, ValueError):
        return
    if b"prefect" in cmd and b"server" in cmd:
        log.warning("stopping the orphaned Prefect server (process group %d) left on %s", pgid, home)
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(pgid, sig)
            except ProcessLookupError:
                break
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and Path(f"/proc/{pgid}").exists():
                time.sleep(0.2)
    (home / PID_FILE).unlink(missing_ok=True)


EPHEMERAL_APP = b"prefect.server.api.server:create_app"


def reap_orphaned_ephemeral(home: str | os.PathLike) -> int:
    """Stop the embedded API servers (`uvicorn ... prefect.server.api.server:create_app`) that a killed
    `v2m run` left behind on this Prefect home: orphans (parent gone, adopted by init) whose PREFECT_HOME
    is `home`. A live run's server has its run as parent and is left alone. Returns how many were stopped."""
    want = f"PREFECT_HOME={Path(home).expanduser()}".encode()
    stopped = 0
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            if EPHEMERAL_APP not in (proc / "cmdline").read_bytes():
                continue
            ppid = int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
            env = (proc / "environ").read_bytes().split(b"\0")
        except (OSError, ValueError, IndexError):
            continue
        if ppid == 1 and want in env:
            log.info("stopping an orphaned embedded Prefect server (pid %s) on %s", proc.name, home)
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(proc.name), signal.SIGKILL)  # it only serves a dead run: nothing to flush
                stopped += 1
    return stopped


class EmbeddedServer:
    """Prefect's temporary API server for one `v2m run`, started as Prefect starts it (uvicorn on a free
    loopback port, the app in ephemeral mode, no UI), but ours: its output goes to `log_file` (appended,
    the run's own log), it is in its own session (Ctrl-C reaches the run, which stops it) and dies with
    the run. Prefect's own inherits the terminal, so the server's shutdown chatter reached users (e.g.
    SQLAlchemy's "Exception during reset" traceback when SIGTERM cancels a pooled connection). Starting
    it is not waiting for it: the run starts it first and imports its models meanwhile (~10 s to answer
    on 2 cores)."""

    def __init__(self, home: str | os.PathLike, log_file: str | os.PathLike):
        with socket.socket() as probe:  # a free port (the kernel's choice), released for uvicorn to take
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        env = {**os.environ, "PREFECT_HOME": str(Path(home).expanduser()), "PREFECT_UI_ENABLED": "0",
               "PREFECT__SERVER_EPHEMERAL": "1", "PREFECT__SERVER_FINAL": "1"}
        env.pop("PREFECT_API_URL", None)  # the server itself must not look for another one
        self.api_url, self.log_file = f"http://127.0.0.1:{port}/api", log_file
        with open(log_file, "ab") as logf:
            self.proc = subprocess.Popen([sys.executable, "-m", "uvicorn", "--factory", EPHEMERAL_APP.decode(),
                                          "--host", "127.0.0.1", "--port", str(port), "--log-level", "error",
                                          "--lifespan", "on"], env=env, stdin=subprocess.DEVNULL, stdout=logf,
                                         stderr=subprocess.STDOUT, start_new_session=True, preexec_fn=_die_with_parent)

    def wait(self, timeout_s: float = 120.0) -> str:
        """Block until it answers; its API URL. A one-line ConfigError naming the log when it cannot."""
        try:
            wait_healthy(self.api_url, timeout_s, self.proc)
        except ConfigError as e:
            why = (f"exited with code {self.proc.returncode}" if self.proc.poll() is not None
                   else f"did not answer within {timeout_s:.0f} s")
            raise ConfigError(f"Prefect's embedded API server {why} (its output is in {self.log_file}); run again, "
                              "or with --engine local") from e
        return self.api_url

    def stop(self) -> None:
        stop_group(self.proc, timeout_s=10.0)


@contextlib.contextmanager
def embedded_server(home: str | os.PathLike, log_file: str | os.PathLike, timeout_s: float = 120.0):
    """An EmbeddedServer for the block: yields its API URL once it answers, stops it after."""
    server = EmbeddedServer(home, log_file)
    try:
        yield server.wait(timeout_s)
    finally:
        server.stop()


def wait_healthy(api_url: str, timeout_s: float = 180.0, proc: subprocess.Popen | None = None) -> None:
    """Poll `<api>/health` until it answers 200; fail early if the server process died."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise ConfigError(f"the Prefect server exited with code {proc.returncode}; see server.log in its PREFECT_HOME")
        try:
            with urllib.request.urlopen(f"{api_url.rstrip('/')}/health", timeout=5) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.5)
    raise ConfigError(f"no Prefect API at {api_url} after {timeout_s:.0f} s; is the port free? raise --startup-timeout")


def stop_group(proc: subprocess.Popen, timeout_s: float = 15.0) -> None:
    """SIGTERM the process group, then SIGKILL whatever is left."""
    if proc.poll() is not None:
        with contextlib.suppress(ProcessLookupError):  # its children may outlive it
            os.killpg(proc.pid, signal.SIGKILL)
        return
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout_s)
            return
        except subprocess.TimeoutExpired:
            continue


def serve(name: str = "default", limit: int | None = None, api_url: str | None = None, port: int = 4200,
          home: str | None = None, defaults: dict[str, Any] | None = None, startup_timeout_s: float = 180.0) -> int:
    """Start a loopback server unless `api_url` is given, then serve the deployment until stopped."""
    server = None
    if api_url is None:
        prefect_home = Path(home or os.environ.get("PREFECT_HOME") or Path.home() / ".prefect").expanduser()
        api_url = f"http://127.0.0.1:{port}/api"
        server = start_server(port, prefect_home)
        log.warning("Prefect server pid %d on %s (PREFECT_HOME=%s)", server.pid, api_url, prefect_home)
    try:
        wait_healthy(api_url, startup_timeout_s, server)
        os.environ["PREFECT_API_URL"] = api_url  # read by Prefect when the flow's client is made
        # Flow runs are child processes that inherit this: INFO so "outputs in ..." reaches the run's logs.
        os.environ["PREFECT_LOGGING_LEVEL"] = os.environ.get("V2M_FLOW_LOG_LEVEL", "INFO")
        from .video_to_mesh import video_to_mesh

        print(f"serving video-to-mesh/{name} against {api_url}", flush=True)
        video_to_mesh.serve(name=name, limit=limit, parameters=defaults or None, print_starting_message=False,
                            description="videos of people in, per-person 3D motion out (parameters mirror `v2m run`)")
        return 0
    finally:
        if server is not None:
            stop_group(server)
