"""Synthetic test and benchmark clips: moving person-like figures on a textured background."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np


def write_video(path: str | Path, n_frames: int = 40, size: tuple[int, int] = (320, 240), fps: float = 25.0,
                people: int = 2, seed: int = 0) -> Path:
    """Write an mp4 (mp4v) of `people` figures (head, torso, legs) swaying left and right."""
    path = Path(path)
    rng = np.random.default_rng(seed)
    w, h = size
    bg = cv2.GaussianBlur(rng.integers(0, 255, (h, w, 3), dtype=np.uint8), (0, 0), 3)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
    if not writer.isOpened():
        raise RuntimeError(f"OpenCV cannot write mp4v video to {path}")
    s = h // 6
    for t in range(n_frames):
        img = bg.copy()
        for p in range(people):
            cx = int(w * (p + 0.5) / people + 0.08 * w * np.sin(0.1 * t + p))
            cy = int(h * 0.55)
            color = (60 + 80 * p % 180, 40, 200 - 80 * p % 180)
            cv2.circle(img, (cx, cy - 2 * s), s // 2, color, -1)
            cv2.rectangle(img, (cx - s // 2, cy - int(1.5 * s)), (cx + s // 2, cy + s // 2), color, -1)
            cv2.line(img, (cx - s // 4, cy + s // 2), (cx - s // 2, cy + 2 * s), color, max(2, s // 8))
            cv2.line(img, (cx + s // 4, cy + s // 2), (cx + s // 2, cy + 2 * s), color, max(2, s // 8))
        writer.write(img)
    writer.release()
    return path
