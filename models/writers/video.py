"""H.264 mp4 that browsers play, written frame by frame (bounded memory).

OpenCV's wheels write only MPEG-4 part 2 ('mp4v'), which no browser decodes. PyAV (`av` on PyPI,
BSD-3-Clause bindings) ships FFmpeg with libx264 in its wheels (that FFmpeg build is GPL-2.0+ because
of libx264); we encode with it: yuv420p (the only pixel format every browser decodes), `+faststart`
(the index at the front, so a browser starts playing before the whole file is read).
"""
from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np

ENCODERS = ("libx264", "libopenh264")   # tried in this order


def h264_encoder() -> str | None:
    """Name of an H.264 encoder PyAV can use here, or None (no `av`, or a build without one)."""
    try:
        import av
        from av.codec import Codec
    except ImportError:
        return None
    for name in ENCODERS:
        if name in av.codecs_available:
            try:
                Codec(name, "w")
                return name
            except Exception:   # listed but not usable as an encoder in this build
                continue
    return None


def even_size(width: int, height: int) -> tuple[int, int]:
    """(width, height) rounded down to even numbers (yuv420p halves both chroma axes)."""
    return max(width - width % 2, 2), max(height - height % 2, 2)


class H264Writer:
    """Streamed H.264 mp4: `write(bgr)` per frame (uint8 (H, W, 3), the size given), then `close()`.

    fps may be fractional (Fraction or float); crf 0-51 (lower = better, 23 = x264's default).
    """

    def __init__(self, path: str | Path, width: int, height: int, fps: float, crf: int = 26):
        import av

        enc = h264_encoder()
        if enc is None:
            raise RuntimeError("no H.264 encoder: `pip install av` (its wheels ship FFmpeg with libx264)")
        if width % 2 or height % 2:
            raise ValueError(f"H.264 (yuv420p) needs even frame sizes, got {width}x{height}; see even_size")
        self.size = (width, height)
        self.encoder = enc
        rate = Fraction(fps).limit_denominator(1001)
        self._out = av.open(str(path), mode="w", format="mp4", options={"movflags": "+faststart"})
        self._stream = self._out.add_stream(enc, rate=rate)
        self._stream.width, self._stream.height = width, height
        self._stream.pix_fmt = "yuv420p"
        if enc == "libx264":
            self._stream.options = {"crf": str(crf), "preset": "veryfast"}
        self.frames = 0

    def write(self, bgr: np.ndarray) -> None:
        import av

        if bgr.shape[:2] != (self.size[1], self.size[0]):
            raise ValueError(f"frame is {bgr.shape[1]}x{bgr.shape[0]}, the writer was opened for {self.size[0]}x{self.size[1]}")
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(bgr), format="bgr24")
        for packet in self._stream.encode(frame):
            self._out.mux(packet)
        self.frames += 1

    def close(self) -> None:
        for packet in self._stream.encode():   # flush the encoder's delayed frames
            self._out.mux(packet)
        self._out.close()

    def __enter__(self) -> "H264Writer":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
