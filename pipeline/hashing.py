"""Content digests: cache keys hash content and parameters, never paths or modification times."""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import threading
from pathlib import Path
from typing import Any

_CHUNK = 1 << 20


def canonical_json(obj: Any) -> str:
    """JSON with sorted keys and no whitespace: equal values give equal strings."""
    return json.dumps(_plain(obj), sort_keys=True, separators=(",", ":"), allow_nan=False)


def digest_obj(obj: Any, length: int = 16) -> str:
    """Short sha256 hex digest of a JSON-able value (dataclasses, tuples and paths allowed)."""
    return hashlib.sha256(canonical_json(obj).encode()).hexdigest()[:length]


def sha256_file(path: str | os.PathLike) -> str:
    """Full sha256 hex digest of a file's bytes, read in 1 MiB blocks (bounded memory)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(_CHUNK):
            h.update(block)
    return h.hexdigest()


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _plain(obj: Any) -> Any:
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: _plain(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, float) and obj.is_integer():
        # 25 and 25.0 from a YAML file mean the same parameter: one cache key.
        return int(obj)
    if hasattr(obj, "item") and callable(obj.item):  # numpy scalars
        return _plain(obj.item())
    return obj


class DigestMemo:
    """Remembers file digests by (real path, size, mtime_ns) so large weights are hashed once.

    The memo only saves time: the digest itself is of the content, and a changed file has a
    new size or mtime, so it is hashed again.
    """

    def __init__(self, memo_file: Path):
        self.memo_file = Path(memo_file)
        try:
            self._memo: dict[str, str] = json.loads(self.memo_file.read_text())
        except (OSError, ValueError):
            self._memo = {}

    def sha256(self, path: str | os.PathLike) -> str:
        p = Path(path).resolve()
        st = p.stat()
        token = f"{p}|{st.st_size}|{st.st_mtime_ns}"
        if token not in self._memo:
            self._memo[token] = sha256_file(p)
            self._save()
        return self._memo[token]

    def _save(self) -> None:
        self.memo_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.memo_file.with_suffix(f".tmp{os.getpid()}-{threading.get_ident()}")  # unique per thread too
        tmp.write_text(json.dumps(self._memo, indent=0))
        os.replace(tmp, self.memo_file)
