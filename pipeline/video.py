"""Video probing and decoding with OpenCV: exact frame counts, bounded-memory frame iteration."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np

from .errors import InputError
from .hashing import sha256_file

VIDEO_SUFFIXES = (".mp4", ".mov", ".avi", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv")


@dataclass(frozen=True)
class VideoInfo:
    """What the pipeline knows about a video. `digest` is the sha256 of the file's bytes."""

    path: str
    digest: str
    fps: float
    n_frames: int
    width: int
    height: int
    size_bytes: int

    @property
    def duration_s(self) -> float:
        return self.n_frames / self.fps if self.fps > 0 else 0.0


def _open(path: Path) -> cv2.VideoCapture:
    """The one way videos are opened: FFmpeg, frames turned upright by the container's rotation
    (a phone's display matrix), so the probe's size, every stage and every overlay see the same pixels."""
    cap = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
    if cap.isOpened():
        cap.set(cv2.CAP_PROP_ORIENTATION_AUTO, 1)  # the default today; said here so no backend change flips it
    if not cap.isOpened():
        cap.release()
        raise InputError(
            f"{path}: not a readable video (no video stream FFmpeg can open: an audio-only, cut or non-video file?); "
            f"give an mp4/mov/avi/mkv file that a video player can play"
        )
    return cap


def check_video(path: str | os.PathLike) -> Path:
    """Fail fast, before any stage runs: the path exists and holds a video with at least two decodable
    frames (a still image or a one-frame clip has no motion). Cheap: decodes two frames. Returns the path."""
    p = check_path(path)
    cap = _open(p)
    try:
        ok, _ = cap.read()
        if not ok:
            raise InputError(f"{p}: no decodable video frames (corrupt, cut short or not a video); "
                             "give a video file that a player can play")
        if not cap.grab():
            raise InputError(f"{p}: holds a single frame (a still image?); give a video of a person moving")
    finally:
        cap.release()
    return p


def check_path(path: str | os.PathLike) -> Path:
    p = Path(path).expanduser()
    if not p.exists():
        raise InputError(f"{p}: no such file; check the path (relative paths are taken from {Path.cwd()})")
    if p.is_dir():
        raise InputError(f"{p}: is a folder; pass video files (or use `v2m watch FOLDER`)")
    if p.stat().st_size == 0:
        raise InputError(f"{p}: the file is empty (0 bytes); was the copy finished?")
    return p.resolve()


def probe(path: str | os.PathLike, digest: str | None = None) -> VideoInfo:
    """Open, hash and count a video. The frame count is exact: every frame is grabbed once,
    since container headers are wrong for truncated or variable-rate files.

    Raises InputError for a missing, empty, unreadable or zero-frame video.
    """
    p = check_path(path)
    cap = _open(p)
    try:
        fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
        ok, first = cap.read()  # the size of the frames as decoded (upright), not the container's header
        height, width = first.shape[:2] if ok else (0, 0)
        n = int(ok)
        while ok and cap.grab():
            n += 1
    finally:
        cap.release()
    if n == 0:
        raise InputError(f"{p}: no decodable video frames (corrupt, cut short or not a video); "
                         "give a video file that a player can play")
    if n == 1:
        raise InputError(f"{p}: holds a single frame (a still image?); give a video of a person moving")
    if fps <= 0 or not np.isfinite(fps):
        raise InputError(f"{p}: the video reports no frame rate; re-encode it (e.g. ffmpeg -i in -r 30 out.mp4)")
    if width <= 0 or height <= 0:
        raise InputError(f"{p}: the video reports no frame size")
    return VideoInfo(
        path=str(p),
        digest=digest or sha256_file(p),
        fps=fps,
        n_frames=n,
        width=width,
        height=height,
        size_bytes=p.stat().st_size,
    )


class FrameReader:
    """Sequential frame access with one open decoder: consecutive chunks continue where the last
    one stopped, so a whole video is decoded once however it is chunked (bounded memory: one frame
    at a time). Jumps forward grab without converting; jumps back reopen the file. Both are exact
    for every codec, unlike container seeks.
    """

    def __init__(self, info: VideoInfo, rgb: bool = False):
        self.info = info
        self.rgb = rgb
        self._cap: cv2.VideoCapture | None = None
        self._pos = 0

    def frames(self, start: int = 0, stop: int | None = None) -> Iterator[tuple[int, np.ndarray]]:
        """Yield (frame_index, HxWx3 uint8 image, BGR unless rgb) for frames [start, stop)."""
        info = self.info
        stop = info.n_frames if stop is None else min(stop, info.n_frames)
        if start >= stop:
            return
        if self._cap is None or start < self._pos:
            self.close()
            self._cap = _open(Path(info.path))
            self._pos = 0
        cap = self._cap
        while self._pos < start:
            if not cap.grab():
                raise InputError(f"{info.path}: ended at frame {self._pos} while seeking to {start}; the file changed since it was probed")
            self._pos += 1
        for idx in range(start, stop):
            ok, frame = cap.read()
            if not ok:
                self.close()
                raise InputError(f"{info.path}: could not decode frame {idx} of {info.n_frames}; the file is truncated or changed")
            self._pos = idx + 1
            yield idx, (cv2.cvtColor(frame, cv2.COLOR_BGR2RGB) if self.rgb else frame)

    def close(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None
            self._pos = 0

    def __enter__(self) -> "FrameReader":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def iter_frames(info: VideoInfo, start: int = 0, stop: int | None = None, rgb: bool = False) -> Iterator[tuple[int, np.ndarray]]:
    """Yield (frame_index, image) for frames [start, stop) through a private FrameReader."""
    with FrameReader(info, rgb=rgb) as r:
        yield from r.frames(start, stop)


def list_videos(folder: str | os.PathLike) -> list[Path]:
    """Video files directly in `folder`, sorted by name."""
    return sorted(p for p in Path(folder).iterdir() if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES)
