"""Output folder names and Prefect artifact keys from any file name (pipeline/names.py)."""
from __future__ import annotations

import hashlib
import re
import threading

from video2mesh.pipeline import names

NAMES = ["Take 01 é.mp4", "-final-.mov", ".hidden.mp4", "a" * 300 + ".mp4", "é" * 200 + ".mp4", "日本語 ダンス.mp4",
         "tab\there.mp4", "clip.mp4", "CLIP.MP4", "---.mp4", "🙂.mp4"]


def test_folder_names_are_safe_and_recognisable():
    for n in NAMES:
        f = names.folder_name(n)
        assert f and not f.startswith(("-", ".")) and "/" not in f and "\t" not in f, f
        assert len(f.encode()) <= names.MAX_NAME_BYTES, f
    assert names.folder_name("Take 01 é.mp4") == "Take 01 é" and names.folder_name("-final-.mov") == "_final-"
    long_a, long_b = names.folder_name("a" * 300 + "x.mp4"), names.folder_name("a" * 300 + "y.mp4")
    assert long_a != long_b, "names cut to fit keep a digest of the whole name"


def test_artifact_keys_are_what_prefect_accepts_and_unique_per_content():
    digest = hashlib.sha256(b"x").hexdigest()
    for n in NAMES:
        key = names.artifact_key(n, digest)
        assert re.fullmatch(r"[a-z0-9-]+", key) and len(key) <= 60, key
    assert names.artifact_key("Take 01 é.mp4", digest) == f"v2m-take-01-e-{digest[:8]}"
    other = hashlib.sha256(b"y").hexdigest()
    assert names.artifact_key("clip.mp4", digest) != names.artifact_key("clip.mp4", other)


def test_same_stem_from_two_folders_never_shares_an_output_folder(tmp_path):
    da, db = hashlib.sha256(b"a").hexdigest(), hashlib.sha256(b"b").hexdigest()
    got: dict[str, object] = {}

    def claim(tag: str, digest: str) -> None:
        got[tag] = names.claim_output_dir(tmp_path, f"/{tag}/clip.mp4", digest)

    threads = [threading.Thread(target=claim, args=(t, d)) for t, d in (("a", da), ("b", db))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert {got["a"].name, got["b"].name} in ({"clip", f"clip-{db[:8]}"}, {"clip", f"clip-{da[:8]}"}), got
    assert got["a"] != got["b"]
    for tag, d in (("a", da), ("b", db)):  # found again later, and claimed again by the same content
        assert names.find_output_dir(tmp_path, f"/other/clip.mp4", d) == got[tag]
        assert names.claim_output_dir(tmp_path, "clip.mp4", d) == got[tag]
