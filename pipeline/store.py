"""The on-disk artifact store.

Layout: ``<root>/videos/<video-digest>/<stage>/<stage-key>/`` holding ``part-NNNNN.parquet`` files
and a ``manifest.json`` written last by atomic rename. An output without a manifest does not exist.
Every file is written to a temporary name, fsynced and renamed, so nothing half-written is read.
"""
from __future__ import annotations

import contextlib
import fcntl
import json
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from .artifacts import Artifact
from .hashing import digest_obj, sha256_file

MANIFEST = "manifest.json"
FORMAT_VERSION = 1


@dataclass(frozen=True)
class ArtifactRef:
    """Where a finished artifact lives and what it is: the value passed between flow tasks."""

    stage: str
    key: str
    path: str
    digest: str
    rows: int

    def to_dict(self) -> dict[str, Any]:
        return {"stage": self.stage, "key": self.key, "path": self.path, "digest": self.digest, "rows": self.rows}


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write `data` to `path` via temp file + fsync + rename (+ fsync of the folder)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}-{threading.get_ident()}")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    _fsync_dir(path.parent)


def atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write_bytes(path, (json.dumps(obj, indent=2, sort_keys=True) + "\n").encode())


def _fsync_dir(d: Path) -> None:
    try:
        fd = os.open(d, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class ArtifactStore:
    """A cache root. Thread- and process-safe: one lock file per stage key (see `claim`)."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root).expanduser().resolve()

    def stage_dir(self, video_digest: str, stage: str, key: str) -> Path:
        return self.root / "videos" / video_digest[:16] / stage / key

    def manifest(self, d: Path) -> dict[str, Any] | None:
        try:
            return json.loads((Path(d) / MANIFEST).read_text())
        except FileNotFoundError:
            return None

    def ref(self, d: Path) -> ArtifactRef | None:
        """The finished artifact in folder `d`, or None if it has no manifest."""
        m = self.manifest(d)
        if m is None:
            return None
        return ArtifactRef(stage=m["stage"], key=m["key"], path=str(d), digest=m["digest"], rows=m["rows"])

    @contextlib.contextmanager
    def claim(self, d: Path) -> Iterator[None]:
        """Exclusive claim of a stage folder across threads and processes (flock on a lock file).

        Two runs of the same video on one cache root never write the same stage key at once: the
        second waits, then finds the manifest and reuses it. The OS releases a dead holder's lock.
        """
        lock_path = self.root / "locks" / f"{Path(d).parent.parent.name}-{Path(d).parent.name}-{Path(d).name}.lock"
        lock_path.parent.mkdir(parents=True, exist_ok=True)
        with open(lock_path, "a+") as f:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(f.fileno(), fcntl.LOCK_UN)

    # -- writing -------------------------------------------------------------------------------
    @staticmethod
    def part_path(d: Path, index: int) -> Path:
        return Path(d) / f"part-{index:05d}.parquet"

    def write_part(self, d: Path, index: int, table: pa.Table) -> None:
        """Write one chunk atomically. Deterministic bytes: no pandas metadata, fixed writer options."""
        path = self.part_path(d, index)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp{os.getpid()}-{threading.get_ident()}")
        pq.write_table(table, tmp, compression="zstd", write_statistics=True, store_schema=True)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
        _fsync_dir(path.parent)

    def finish(self, d: Path, artifact: Artifact, n_parts: int, meta: dict[str, Any]) -> ArtifactRef:
        """Write the manifest (last, atomically) after checking every part is there.

        The manifest is deterministic (no timestamps), so an interrupted-and-resumed run and an
        uninterrupted one leave byte-identical folders; timings go to `run.json` beside it.
        """
        parts = []
        rows = 0
        for i in range(n_parts):
            p = self.part_path(d, i)
            n = pq.ParquetFile(p).metadata.num_rows
            parts.append({"file": p.name, "rows": n, "sha256": sha256_file(p)})
            rows += n
        digest = digest_obj([p["sha256"] for p in parts] + [artifact.name, artifact.version])
        manifest = {
            "format": FORMAT_VERSION,
            "artifact": artifact.name,
            "schema_version": artifact.version,
            "digest": digest,
            "rows": rows,
            "parts": parts,
            **meta,
        }
        atomic_write_json(Path(d) / MANIFEST, manifest)
        return self.ref(d)  # type: ignore[return-value]

    # -- reading -------------------------------------------------------------------------------
    def read_table(self, d: str | Path, columns: list[str] | None = None, filters=None) -> pa.Table:
        """All parts of a finished artifact as one Arrow table (optionally some columns / rows)."""
        m = self.manifest(Path(d))
        if m is None:
            raise FileNotFoundError(f"{d} has no {MANIFEST}: the artifact was never finished")
        tables = [pq.read_table(Path(d) / p["file"], columns=columns, filters=filters) for p in m["parts"]]
        if not tables:
            raise FileNotFoundError(f"{d}: manifest lists no parts")
        return pa.concat_tables(tables)

    def read_df(self, d: str | Path, columns: list[str] | None = None, filters=None) -> pd.DataFrame:
        return self.read_table(d, columns, filters).to_pandas()

    def iter_parts(self, d: str | Path, columns: list[str] | None = None) -> Iterator[pa.Table]:
        """Parts one at a time: bounded memory for long videos."""
        m = self.manifest(Path(d))
        if m is None:
            raise FileNotFoundError(f"{d} has no {MANIFEST}")
        for p in m["parts"]:
            yield pq.read_table(Path(d) / p["file"], columns=columns)

    def log_run(self, d: Path, info: dict[str, Any]) -> None:
        atomic_write_json(Path(d) / "run.json", {"finished_unix": time.time(), **info})
