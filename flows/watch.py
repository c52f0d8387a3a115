"""`v2m watch INBOX`: process every video dropped into a folder exactly once, unattended.

A file is taken once its size and mtime have not changed for `stable_s` seconds (copies in progress
are left alone). Its sha256 is the key of a SQLite ledger, so a restart or a second copy of the same
bytes never runs it again. A claim in the ledger carries the claimer's host, PID and a heartbeat: a
claim whose process is gone (same host) or whose heartbeat is older than the lease is taken over,
so a killed watcher's item is retried, never left claimed forever.

Finished files move to `INBOX/done/` with `NAME.v2m.json` beside them (digest, outputs, or the
original it duplicates); failed ones to `INBOX/failed/` with `NAME.error.txt`.
"""
from __future__ import annotations

import dataclasses
import json
import logging
import os
import shutil
import signal
import socket
import sqlite3
import threading
import time
import traceback
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from video2mesh.pipeline.errors import AssetMissing, ConfigError, V2MError
from video2mesh.pipeline.hashing import sha256_file
from video2mesh.pipeline.names import find_output_dir, fit_bytes
from video2mesh.pipeline.store import atomic_write_bytes
from video2mesh.pipeline.video import VIDEO_SUFFIXES

from .spec import RunSpec

log = logging.getLogger(__name__)

DONE, FAILED, CLAIMED, RELEASED = "done", "failed", "claimed", "released"
PARTIAL_SUFFIXES = (".part", ".tmp", ".crdownload", ".partial")
NAME_MAX = 255  # bytes in a file name (ext4, APFS, NTFS): a sidecar beside a long name is cut to fit


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, another user's
        return True
    return True


def _stamp(p: Path) -> tuple[int, int] | None:
    """(size, mtime) of a file, None once it is gone."""
    try:
        st = p.stat()
    except FileNotFoundError:
        return None
    return st.st_size, st.st_mtime_ns


class Ledger:
    """Digest -> state ('claimed', 'done', 'failed', 'released'), in SQLite (atomic, survives kills).

    Every change is one `BEGIN IMMEDIATE` transaction, so watchers sharing the file never both
    claim one digest. Keep the file on a local disk: SQLite locking over NFS is unreliable.
    """

    def __init__(self, path: str | os.PathLike, lease_s: float = 120.0):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.lease_s = lease_s
        self.host = socket.gethostname()
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, timeout=60, isolation_level=None, check_same_thread=False)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS items (digest TEXT PRIMARY KEY, state TEXT NOT NULL, name TEXT,"
            " out_dir TEXT, error TEXT, host TEXT, pid INTEGER, heartbeat REAL, attempts INTEGER NOT NULL DEFAULT 0,"
            " updated REAL)")

    def _tx(self, fn: Callable[[sqlite3.Connection], Any]) -> Any:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                out = fn(self._db)
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
            return out

    def get(self, digest: str) -> dict[str, Any] | None:
        with self._lock:
            row = self._db.execute("SELECT * FROM items WHERE digest = ?", (digest,)).fetchone()
        return dict(row) if row else None

    def rows(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(r) for r in self._db.execute("SELECT * FROM items ORDER BY updated")]

    def claim_is_live(self, row: dict[str, Any], now: float | None = None) -> bool:
        """A claim counts while its heartbeat is fresh and (on this host) its process exists."""
        now = time.time() if now is None else now
        if row["state"] != CLAIMED or now - (row["heartbeat"] or 0) > self.lease_s:
            return False
        return row["host"] != self.host or _pid_alive(int(row["pid"]))

    def claim(self, digest: str, name: str, retry_failed: bool = False) -> bool:
        """Take `digest` for this process; False if it is finished or claimed by a live process."""
        final = (DONE,) if retry_failed else (DONE, FAILED)

        def fn(db: sqlite3.Connection) -> bool:
            now = time.time()
            row = db.execute("SELECT * FROM items WHERE digest = ?", (digest,)).fetchone()
            if row is not None and (row["state"] in final or self.claim_is_live(dict(row), now)):
                return False
            if row is not None and row["state"] == CLAIMED:
                log.warning("%s: taking over the claim of pid %s on %s (process gone or heartbeat older than %.0f s)",
                            name, row["pid"], row["host"], self.lease_s)
            db.execute(
                "INSERT INTO items (digest, state, name, host, pid, heartbeat, attempts, updated) VALUES (?,?,?,?,?,?,1,?)"
                " ON CONFLICT(digest) DO UPDATE SET state=excluded.state, name=excluded.name, host=excluded.host,"
                " pid=excluded.pid, heartbeat=excluded.heartbeat, attempts=items.attempts+1, updated=excluded.updated",
                (digest, CLAIMED, name, self.host, os.getpid(), now, now))
            return True
        return self._tx(fn)

    def heartbeat(self, digests: list[str]) -> None:
        if digests:
            now = time.time()
            self._tx(lambda db: db.executemany(
                "UPDATE items SET heartbeat = ? WHERE digest = ? AND state = ? AND pid = ? AND host = ?",
                [(now, d, CLAIMED, os.getpid(), self.host) for d in digests]))

    def finish(self, digest: str, state: str, out_dir: str | None = None, error: str | None = None) -> None:
        self._tx(lambda db: db.execute(
            "UPDATE items SET state = ?, out_dir = ?, error = ?, updated = ? WHERE digest = ?",
            (state, out_dir, error, time.time(), digest)))

    def release(self, digest: str) -> None:
        """Give an unfinished item back (shutdown): the next watcher takes it at once."""
        self._tx(lambda db: db.execute(
            "UPDATE items SET state = ?, pid = NULL, updated = ? WHERE digest = ? AND state = ? AND pid = ?",
            (RELEASED, time.time(), digest, CLAIMED, os.getpid())))


@dataclass(frozen=True)
class WatchConfig:
    """How the watcher polls and submits. Paths are resolved by `v2m watch`."""

    inbox: str
    ledger: str | None = None          # default <out>/.v2m-watch/ledger.sqlite (beside the outputs it describes)
    stable_s: float = 10.0             # a copy over a slow network can pause for seconds
    poll_s: float = 1.0
    concurrency: int = 1
    lease_s: float = 120.0             # a live watcher beats every lease_s / 4
    grace_s: float = 30.0              # after SIGTERM, wait this long for running items, then release them
    deployment: str | None = None      # e.g. video-to-mesh/default; None: run in this process
    retry_failed: bool = False         # run content the ledger has as failed again (e.g. after a fix)
    once: bool = False                 # exit when the inbox holds nothing more to do

    def __post_init__(self) -> None:
        if self.concurrency < 1:
            raise ConfigError(f"--concurrency must be at least 1, got {self.concurrency}")
        if self.stable_s < 0 or self.poll_s <= 0 or self.lease_s <= 0:
            raise ConfigError("--stable-seconds must be >= 0; poll and lease intervals > 0")


def submit_local(video: Path, spec: RunSpec) -> str:
    """Run the pipeline in this process (the runner, without Prefect); returns the output folder."""
    from .video_to_mesh import _info_stub, output_dir, run_video

    return str(output_dir(spec, _info_stub(run_video(str(video), spec, use_prefect=False))))


def submit_deployment(name: str) -> Callable[[Path, RunSpec], str]:
    """Run through a Prefect deployment (a worker or `v2m serve` executes it) and wait for the end."""
    def submit(video: Path, spec: RunSpec) -> str:
        from prefect.deployments import run_deployment

        params = {**dataclasses.asdict(spec), "videos": [str(video)]}
        run = run_deployment(name, parameters=params, timeout=None, poll_interval=2, as_subflow=False)
        if not run.state or not run.state.is_completed():
            state = run.state.name if run.state else "unknown"
            raise V2MError(f"flow run {run.name} ({run.id}) of {name} ended {state}: {run.state.message if run.state else ''}")
        return str(find_output_dir(spec.out, video, sha256_file(video)))
    return submit


class Watcher:
    """Polls the inbox; runs at most `concurrency` videos at once on a thread pool."""

    def __init__(self, cfg: WatchConfig, spec: RunSpec, submit: Callable[[Path, RunSpec], str] | None = None):
        self.cfg = cfg
        self.spec = spec
        self.inbox = Path(cfg.inbox)
        if not self.inbox.is_dir():
            raise ConfigError(f"inbox {self.inbox} is not a folder; create it or pass the right path")
        self.done_dir, self.failed_dir = self.inbox / "done", self.inbox / "failed"
        self.ledger = Ledger(cfg.ledger or Path(spec.out) / ".v2m-watch" / "ledger.sqlite", cfg.lease_s)
        self.submit = submit or (submit_deployment(cfg.deployment) if cfg.deployment else submit_local)
        self.stop = threading.Event()
        self._seen: dict[Path, tuple[int, int, float]] = {}     # path -> (size, mtime_ns, unchanged since)
        self._digests: dict[tuple[Path, int, int], str] = {}
        self._running: dict[Future, tuple[Path, str]] = {}
        self.exit_code = 0  # set when a run fails for a reason no video can fix (weights, config)

    # -- the inbox ------------------------------------------------------------------------------
    def ready(self) -> tuple[list[Path], int]:
        """Videos whose size and mtime held still for stable_s, and how many are still settling."""
        now = time.monotonic()
        ready, settling, present = [], 0, set()
        for p in sorted(self.inbox.iterdir()):
            if not p.is_file() or p.name.startswith(".") or p.suffix.lower() not in VIDEO_SUFFIXES \
                    or p.name.lower().endswith(PARTIAL_SUFFIXES):
                continue
            present.add(p)
            try:
                st = p.stat()
            except FileNotFoundError:
                continue
            size, mtime, since = self._seen.get(p, (-1, -1, now))
            if (size, mtime) != (st.st_size, st.st_mtime_ns):
                self._seen[p] = (st.st_size, st.st_mtime_ns, now)
                settling += 1
            elif now - since >= self.cfg.stable_s:
                ready.append(p)
            else:
                settling += 1
        self._seen = {p: v for p, v in self._seen.items() if p in present}
        self._digests = {k: v for k, v in self._digests.items() if k[0] in present}
        return ready, settling

    def digest(self, p: Path) -> str:
        st = p.stat()
        key = (p, st.st_size, st.st_mtime_ns)
        if key not in self._digests:
            self._digests[key] = sha256_file(p)
        return self._digests[key]

    def _file(self, p: Path, folder: Path, sidecar: str, text: str) -> Path:
        """Move `p` into `folder` (a free name) and write its sidecar file beside it."""
        folder.mkdir(parents=True, exist_ok=True)
        dest = folder / p.name
        n = 1
        while dest.exists():
            dest = folder / f"{fit_bytes(p.stem, NAME_MAX - 16 - len(p.suffix.encode()))}.{n}{p.suffix}"
            n += 1
        shutil.move(str(p), dest)
        atomic_write_bytes(folder / (fit_bytes(dest.name, NAME_MAX - len(sidecar)) + sidecar), text.encode())
        self._seen.pop(p, None)
        return dest

    def _file_done(self, p: Path, info: dict[str, Any]) -> None:
        dest = self._file(p, self.done_dir, ".v2m.json", json.dumps(info, indent=2, sort_keys=True) + "\n")
        log.info("%s: done -> %s", p.name, dest)

    def _file_failed(self, p: Path, error: str) -> None:
        dest = self._file(p, self.failed_dir, ".error.txt", error.rstrip() + "\n")
        log.warning("%s: failed (%s) -> %s", p.name, error.splitlines()[0] if error else "", dest)

    # -- one item ---------------------------------------------------------------------------------
    def _consider(self, p: Path, pool: ThreadPoolExecutor) -> None:
        """Start `p`, or file it at once if its content was already handled."""
        stamp = _stamp(p)  # before hashing: a change from here on counts as a replacement
        digest = self.digest(p)
        if any(d == digest for _, d in self._running.values()):
            return  # a copy of what is running now: filed as a duplicate once that ends
        row = self.ledger.get(digest)
        if row and row["state"] == DONE:
            self._file_done(p, {"digest": digest, "out_dir": row["out_dir"], "duplicate_of": row["name"]})
            return
        if row and row["state"] == FAILED and not self.cfg.retry_failed:
            self._file_failed(p, f"same content as {row['name']}, which failed:\n{row['error']}")
            return
        if not self.ledger.claim(digest, p.name, self.cfg.retry_failed):
            return  # another live watcher has it
        self._running[pool.submit(self._process, p, digest, stamp)] = (p, digest)

    def _process(self, p: Path, digest: str, stamp: tuple[int, int] | None) -> None:
        """Run one video and file it; a file replaced meanwhile is not filed under the old content's result."""
        try:
            out_dir = self.submit(p, self.spec)
        except (AssetMissing, ConfigError) as e:  # not this video's fault: keep it, stop watching
            log.error("%s: %s; stopping (the video stays in the inbox)", p.name, e)
            self.ledger.release(digest)
            self.exit_code = e.exit_code
            self.stop.set()
        except V2MError as e:  # the error beside the file; a stage's bug with its traceback
            if self._replaced(p, stamp, digest):
                return
            err = str(e) if e.__cause__ is None else f"{e}\n\n{''.join(traceback.format_exception(e.__cause__))}"
            self.ledger.finish(digest, FAILED, error=err)
            self._file_failed(p, err)
        except Exception as e:  # a bug: keep the traceback next to the video
            err = f"{type(e).__name__}: {e}\n\n{traceback.format_exc()}"
            if self._replaced(p, stamp, digest):
                return
            self.ledger.finish(digest, FAILED, error=err)
            self._file_failed(p, err)
        else:
            if self._replaced(p, stamp, digest, out_dir):
                return
            self.ledger.finish(digest, DONE, out_dir=out_dir)
            self._file_done(p, {"digest": digest, "out_dir": out_dir, "duplicate_of": None})

    def _replaced(self, p: Path, stamp: tuple[int, int] | None, digest: str, out_dir: str | None = None) -> bool:
        """True (and the ledger settled) when `p` changed while it ran: the new content stays in the
        inbox for its own run; the old content is done if it finished, else released."""
        if _stamp(p) == stamp:
            return False
        if out_dir is not None:
            self.ledger.finish(digest, DONE, out_dir=out_dir)
        else:
            self.ledger.release(digest)
        log.warning("%s: replaced while it ran; the new content stays in the inbox and runs next", p.name)
        return True

    # -- the loop ---------------------------------------------------------------------------------
    def run(self) -> int:
        """Poll until stopped (or, with `once`, until the inbox is empty); returns an exit code."""
        log.info("watching %s (ledger %s, %d at once)", self.inbox, self.ledger.path, self.cfg.concurrency)
        last_beat = 0.0
        pool = ThreadPoolExecutor(self.cfg.concurrency, thread_name_prefix="v2m-watch")
        while True:
            for f in [f for f in self._running if f.done()]:
                del self._running[f]
            if time.monotonic() - last_beat > self.cfg.lease_s / 4:
                self.ledger.heartbeat([d for _, d in self._running.values()])
                last_beat = time.monotonic()
            if self.stop.is_set():
                break
            ready, settling = self.ready()
            busy = {p for p, _ in self._running.values()}
            for p in ready:
                if len(self._running) >= self.cfg.concurrency or self.stop.is_set():
                    break
                if p not in busy:
                    try:
                        self._consider(p, pool)
                    except FileNotFoundError:
                        continue  # moved away while we looked
            if self.cfg.once and not self._running and not settling and not ready:
                pool.shutdown()
                return 0
            self.stop.wait(self.cfg.poll_s)
        code = self._drain()
        pool.shutdown(wait=code == 0)
        return code or self.exit_code

    def _drain(self) -> int:
        """After a stop request: let running items finish for grace_s, then release the rest.

        Returns 0 when nothing is left running, else 143 with the claims released: the caller then
        exits the process (`os._exit`), since running threads cannot be interrupted.
        """
        deadline = time.monotonic() + self.cfg.grace_s
        while self._running and time.monotonic() < deadline:
            for f in [f for f in self._running if f.done()]:
                del self._running[f]
            self.ledger.heartbeat([d for _, d in self._running.values()])
            time.sleep(min(self.cfg.poll_s, 0.2))
        if not self._running:
            log.info("stopped cleanly")
            return 0
        for p, d in self._running.values():
            self.ledger.release(d)
            log.warning("%s: released unfinished (finished stages are cached; the next watcher resumes it)", p.name)
        return 143

    def preflight(self) -> None:
        """In-process runs: fail now, not once per video, if weights or settings are wrong."""
        if self.cfg.deployment is None and self.submit is submit_local:
            from . import methods
            from .spec import build_runner, resolve_method

            spec = resolve_method(self.spec)[0] if self.spec.method == "auto" else self.spec
            runner = build_runner(spec)  # only the chosen method's stages and weights, as `v2m run` checks
            runner.preflight(methods.targets(methods.METHODS[spec.method], runner, spec.until))

    def install_signal_handlers(self) -> None:
        def handler(signum, _frame):
            log.warning("signal %d: no new items; finishing running ones (up to %.0f s)", signum, self.cfg.grace_s)
            self.stop.set()
        signal.signal(signal.SIGTERM, handler)
        signal.signal(signal.SIGINT, handler)
