"""Names derived from a user's file name: output folders and Prefect artifact keys, for any name.

Users name videos "Take 01 é.mp4", "-final-.mov" or 200 characters long, and two folders hold
"clip.mp4" each. Output folders keep the name a user recognises (spaces and accents stay) but never
start with `-` or `.`, hold no control characters and fit a file-name limit; a folder already
holding another video's outputs is never written into (`claim_output_dir`). Artifact keys are what
Prefect allows: lowercase ASCII letters, digits and dashes, made unique by the content digest.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import unicodedata
from pathlib import Path

MAX_NAME_BYTES = 120          # leaves room under NAME_MAX (255) for suffixes such as ".v2m.json", "-<digest>"
MARKER = ".v2m-video"         # in each output folder: the sha256 of the video whose outputs it holds
_DIGEST_CHARS = 8


def _short(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogateescape")).hexdigest()[:_DIGEST_CHARS]


def fit_bytes(name: str, limit: int = MAX_NAME_BYTES) -> str:
    """`name` cut to `limit` UTF-8 bytes (on a character boundary) plus `~<digest of name>` if it was cut."""
    raw = name.encode("utf-8", "surrogateescape")
    if len(raw) <= limit:
        return name
    cut = raw[:limit - _DIGEST_CHARS - 1].decode("utf-8", "ignore")
    return f"{cut}~{_short(name)}"


def folder_name(video: str | os.PathLike) -> str:
    """The output folder's name for a video: its stem, NFC, without control characters or a leading
    `-`/`.`, cut to MAX_NAME_BYTES."""
    stem = unicodedata.normalize("NFC", Path(video).stem)
    stem = "".join("_" if unicodedata.category(c)[0] == "C" or c in "/\\" else c for c in stem).strip()
    stem = re.sub(r"^[-.]+", lambda m: "_" * len(m.group()), stem)
    return fit_bytes(stem or "video")


def artifact_key(video: str | os.PathLike, digest: str) -> str:
    """A Prefect artifact key for a video's outputs: `v2m-<ascii slug>-<digest[:8]>` (only [a-z0-9-])."""
    ascii_stem = unicodedata.normalize("NFKD", Path(video).stem).encode("ascii", "ignore").decode().lower()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_stem).strip("-")[:40].strip("-")
    return "-".join(p for p in ("v2m", slug, digest[:_DIGEST_CHARS].lower()) if p)


def find_output_dir(out: str | os.PathLike, video: str | os.PathLike, digest: str) -> Path:
    """The folder that holds (or will hold) this video's outputs: `<out>/<name>`, or
    `<out>/<name>-<digest[:8]>` when `<out>/<name>` belongs to another video. Creates nothing."""
    base = Path(out).expanduser() / folder_name(video)
    owner = _owner(base)
    return base if owner in (None, digest) else base.with_name(f"{base.name}-{digest[:_DIGEST_CHARS]}")


def claim_output_dir(out: str | os.PathLike, video: str | os.PathLike, digest: str) -> Path:
    """Create and take the output folder for this video (see `find_output_dir`). The marker is made
    with O_EXCL, so two processes publishing different videos of one name never share a folder."""
    base = Path(out).expanduser() / folder_name(video)
    for folder in (base, base.with_name(f"{base.name}-{digest[:_DIGEST_CHARS]}")):
        if _owner(folder) not in (None, digest):  # an older run's folder (run.json, no marker)
            continue
        folder.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(folder / MARKER, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            if _owner(folder) == digest:
                return folder
            continue
        with os.fdopen(fd, "w") as f:
            f.write(digest + "\n")
        return folder
    raise AssertionError(f"{base}-{digest[:_DIGEST_CHARS]} holds another video's outputs")  # a sha256 prefix collision


def _owner(folder: Path) -> str | None:
    """The digest a folder's outputs belong to: its marker, else its run.json's (older runs), else None."""
    try:
        return (folder / MARKER).read_text().strip() or None
    except (FileNotFoundError, NotADirectoryError):
        pass
    try:
        return json.loads((folder / "run.json").read_text()).get("video_digest")
    except (FileNotFoundError, NotADirectoryError, ValueError):
        return None
