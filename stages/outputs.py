"""File-table artifacts: stages whose products are files (export, report) store them as table rows.

A stage's compute must not write files, and the output folder must not enter the cache key. So the
`export` and `report` artifacts are tables with one row per file (relative path, sha256, bytes and a
JSON `meta`), cached like any other artifact; `publish` writes them into `<out>/<video-stem>/`.
"""
from __future__ import annotations

import json
import logging
from pathlib import Path, PurePosixPath
from typing import Any, Iterable

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from video2mesh.pipeline.artifacts import Artifact
from video2mesh.pipeline.errors import InputError
from video2mesh.pipeline.hashing import sha256_bytes, sha256_file
from video2mesh.pipeline.store import MANIFEST, ArtifactRef, atomic_write_bytes, atomic_write_json

log = logging.getLogger(__name__)

SMPL_LICENCE_NOTE = (
    "Files derived from the SMPL body model (poses, shapes, meshes, skeletons, animations) are subject "
    "to the SMPL Model License (https://smpl.is.tue.mpg.de/modellicense.html): non-commercial "
    "scientific research use unless you hold a commercial licence from Meshcapade/MPI."
)
ANNY_LICENCE_NOTE = (
    "Files derived from the Anny body model (NAVER's `anny` package: code Apache-2.0, body data from "
    "MakeHuman released CC0) carry no SMPL terms: Anny's code is Apache-2.0 "
    "(https://www.apache.org/licenses/LICENSE-2.0) and its MakeHuman-derived data are public domain (CC0 1.0)."
)


def files_artifact(name: str, version: int, doc: str) -> Artifact:
    """Schema of a file table: one row per file. track_id is -1 for files about the whole video."""
    return Artifact(name, version=version, doc=doc, schema=pa.schema([
        ("track_id", pa.int32()),
        ("kind", pa.string()),
        ("path", pa.string()),
        ("sha256", pa.string()),
        ("size_bytes", pa.int64()),
        ("meta", pa.string()),
        ("data", pa.large_binary()),
    ]))


def file_rows(files: Iterable[tuple[int, str, str, bytes, dict[str, Any]]]) -> pd.DataFrame:
    """Rows of a file table from (track_id, kind, relative path, bytes, meta) tuples."""
    rows = []
    for track_id, kind, path, data, meta in files:
        p = PurePosixPath(path)
        if p.is_absolute() or ".." in p.parts:
            raise ValueError(f"file table path must be relative and inside the folder, got {path!r}")
        rows.append({"track_id": track_id, "kind": kind, "path": str(p), "sha256": sha256_bytes(data),
                     "size_bytes": len(data), "meta": json.dumps(meta, sort_keys=True), "data": data})
    return pd.DataFrame(rows, columns=["track_id", "kind", "path", "sha256", "size_bytes", "meta", "data"])


def iter_files(ref: ArtifactRef | str | Path, with_data: bool = True) -> Iterable[dict[str, Any]]:
    """Rows of a finished file table, one part at a time (bounded memory)."""
    d = Path(ref.path if isinstance(ref, ArtifactRef) else ref)
    try:
        manifest = json.loads((d / MANIFEST).read_text())
    except FileNotFoundError:
        raise InputError(f"{d} is not a finished artifact (no {MANIFEST}); run the stage first") from None
    cols = None if with_data else ["track_id", "kind", "path", "sha256", "size_bytes", "meta"]
    for part in manifest["parts"]:
        for row in pq.read_table(d / part["file"], columns=cols).to_pylist():
            yield row


def publish(ref: ArtifactRef, out_dir: str | Path, manifest_name: str | None = "manifest.json",
            header: dict[str, Any] | None = None) -> list[Path]:
    """Write every file of a file-table artifact under `out_dir` (made if needed); returns the paths.

    Files already there with the same sha256 are left alone (re-publishing is cheap). With
    `manifest_name`, also writes a JSON manifest: `header` plus a list of every file with its sha256,
    size and meta (the meta keys are merged into each entry).
    """
    out = Path(out_dir)
    written, entries = [], []
    for row in iter_files(ref):
        dest = out / row["path"]
        if not (dest.is_file() and sha256_file(dest) == row["sha256"]):
            atomic_write_bytes(dest, row["data"])
        written.append(dest)
        entries.append({"path": row["path"], "kind": row["kind"], "track_id": row["track_id"],
                        "sha256": row["sha256"], "size_bytes": row["size_bytes"], **json.loads(row["meta"])})
    if manifest_name:
        dest = out / manifest_name
        atomic_write_json(dest, {**(header or {}), "files": entries})
        written.append(dest)
    log.info("published %d files to %s", len(written), out)
    return written
