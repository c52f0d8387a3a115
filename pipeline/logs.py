"""Where log records go: all detail into a file under the cache root, the terminal only what a user acts on.

    path = logs.install(cache_root, verbose=False)   # at the edge (the CLI, a served flow run)

The file `<cache>/logs/v2m-<UTC time>-<pid>.log` gets every record at INFO and up (DEBUG for
video2mesh), with tracebacks. The terminal gets our WARNING and up as one line each, without
tracebacks, and nothing from Prefect's engine (task/flow run state changes and the tracebacks of
expected errors); with `verbose` it gets everything the file gets. Python warnings go the same way.
A stage failure's message names this file (`log_path()`), so the traceback is one `less` away.
"""
from __future__ import annotations

import logging
import os
import sys
import time
from pathlib import Path

LOG_DIR = "logs"
KEEP = 100
DETAIL = "video2mesh.detail"  # tracebacks of errors already told as one line: the file (and -v) only
FILE_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(threadName)s]: %(message)s"

_path: Path | None = None
_handlers: list[logging.Handler] = []


def log_path() -> Path | None:
    """The log file of this process, once `install` ran."""
    return _path


def detail() -> logging.Logger:
    """The logger for detail behind a one-line error (its traceback): not on the terminal without -v."""
    return logging.getLogger(DETAIL)


class _Quiet(logging.Filter):
    """The terminal without -v: WARNING and up (INFO from the `chatty` loggers), nothing from Prefect's
    engine and no Python warnings (both are in the file)."""

    def __init__(self, chatty: tuple[str, ...] = ()):
        super().__init__()
        self.chatty = chatty

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name.startswith("prefect") or record.name == "py.warnings":
            return False
        return record.levelno >= logging.WARNING or (bool(self.chatty) and record.name.startswith(self.chatty))


class _OneLine(logging.Formatter):
    """`v2m: message` with the traceback left out (it is in the file)."""

    def format(self, record: logging.LogRecord) -> str:
        msg = record.getMessage()
        return f"v2m: {msg}" if record.levelno < logging.ERROR else f"v2m: error: {msg}"


def install(cache_root: str | os.PathLike, verbose: bool = False, terminal: bool = True,
            chatty: tuple[str, ...] = ()) -> Path:
    """Route logging as described above (idempotent: a second call only returns the path).
    `chatty`: loggers whose INFO records are progress a user wants on the terminal (the folder watch).

    Call it before Prefect is imported: Prefect keeps root handlers it finds, instead of its own console.
    """
    global _path
    if _path is not None:
        return _path
    folder = Path(cache_root).expanduser() / LOG_DIR
    folder.mkdir(parents=True, exist_ok=True)
    for old in sorted(folder.glob("v2m-*.log"))[:-KEEP]:  # one file per command: keep the newest KEEP
        old.unlink(missing_ok=True)
    _path = folder / f"v2m-{time.strftime('%Y%m%d-%H%M%S', time.gmtime())}-{os.getpid()}.log"
    root = logging.getLogger()
    fh = logging.FileHandler(_path, encoding="utf-8", delay=True)
    fh.setFormatter(logging.Formatter(FILE_FORMAT))
    fh.setLevel(logging.DEBUG)
    _handlers.append(fh)
    if terminal:
        for h in list(root.handlers):  # basicConfig's or Prefect's console: replaced by ours
            if isinstance(h, logging.StreamHandler) and getattr(h, "stream", None) in (sys.stderr, sys.stdout):
                root.removeHandler(h)
        th = logging.StreamHandler(sys.stderr)
        if verbose:
            th.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        else:
            th.setFormatter(_OneLine())
            th.addFilter(_Quiet(chatty))
            th.setLevel(logging.INFO)
        _handlers.append(th)
    for h in _handlers:
        root.addHandler(h)
    detail().propagate = False  # its records skip the terminal unless verbose
    detail().addHandler(fh)
    if terminal and verbose:
        detail().addHandler(_handlers[-1])
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    logging.getLogger("video2mesh").setLevel(logging.DEBUG)
    logging.captureWarnings(True)
    return _path
