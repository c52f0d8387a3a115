"""Start and stop test subprocesses by PID: each in its own process group, killed as a group."""
from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Iterator

from tests.conftest import PYTHONPATH, ROOT


def env(**extra: str) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": PYTHONPATH, **extra}


def spawn(args: list[str], log: Path, **extra_env: str) -> subprocess.Popen:
    """`python -m ARGS...` in a new session (its own process group), output to `log`."""
    with open(log, "ab") as f:
        return subprocess.Popen([sys.executable, "-m", *args], cwd=ROOT, env=env(**extra_env), stdout=f,
                                stderr=subprocess.STDOUT, start_new_session=True)


def kill_group(p: subprocess.Popen, sig: int = signal.SIGKILL) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(p.pid, sig)
    with contextlib.suppress(subprocess.TimeoutExpired):
        p.wait(20)


@contextlib.contextmanager
def group(*procs: subprocess.Popen) -> Iterator[list[subprocess.Popen]]:
    """Kill every process group started here on the way out, whatever happens."""
    live = list(procs)
    try:
        yield live
    finally:
        for p in live:
            kill_group(p)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
