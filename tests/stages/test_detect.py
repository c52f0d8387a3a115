"""detect stage, blazepose backend: chunks restart their carried ROIs, so a resumed chunk gives the
same boxes as one computed after its predecessor; the old single-pass behaviour stays reachable."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace

import cv2
import numpy as np
import pandas as pd

from video2mesh.pipeline.stage import Chunk
from video2mesh.stages.detect import DetectConfig, compute

from ..models.runners.test_person_search import _found, _people_at_scales


@dataclass
class FakeContext:
    """The parts of pipeline.stage.Context that detect's compute touches."""

    frames_bgr: list[np.ndarray]
    weights: dict[str, Path]
    device: str = "cpu"
    _memo: dict = field(default_factory=dict)
    video: SimpleNamespace = field(default_factory=lambda: SimpleNamespace(fps=30.0))

    def memo(self, key, factory):
        if key not in self._memo:
            self._memo[key] = factory()
        return self._memo[key]

    def weight(self, name: str) -> Path:
        return self.weights[name]

    def frames(self, start: int = 0, stop: int | None = None):
        yield from list(enumerate(self.frames_bgr))[start:stop]

    def advance(self, n: int = 1) -> None:
        pass


def _walking_frames(shared_data, net, n: int = 8) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """n BGR frames of the composed three-person image moved 12 px right per frame, and the boxes."""
    rgb, boxes = _people_at_scales(shared_data, net)
    h, w = rgb.shape[:2]
    frames = [cv2.warpAffine(rgb, np.float32([[1, 0, 12 * i], [0, 1, 0]]), (w, h), borderValue=(110, 110, 110))
              for i in range(n)]
    return [cv2.cvtColor(f, cv2.COLOR_RGB2BGR) for f in frames], [boxes + [12 * i, 0, 12 * i, 0] for i in range(n)]


def test_a_resumed_chunk_gives_the_boxes_of_an_uninterrupted_run(shared_data):
    from tests.stages.licence_free_helpers import blazepose_registry
    from video2mesh.models.runners.blazepose import BlazePose

    reg = blazepose_registry()
    weights = {n: reg.resolve(n) for n in ("blazepose_detector", "blazepose_landmark")}
    frames, boxes = _walking_frames(shared_data, BlazePose(*weights.values()))
    cfg = DetectConfig(backend="blazepose", batch=3, tiles_every=2)
    ctx = FakeContext(frames, weights)
    first, second = compute(ctx, cfg, Chunk(0, 0, 4)), compute(ctx, cfg, Chunk(1, 4, 8))
    resumed = compute(FakeContext(frames, weights), cfg, Chunk(1, 4, 8))   # a new process, chunk 1 only
    pd.testing.assert_frame_equal(second, resumed)
    assert sorted(first.frame.unique()) == [0, 1, 2, 3] and sorted(second.frame.unique()) == [4, 5, 6, 7]
    for f, rows in second.groupby("frame"):                                   # all three people, every frame
        assert _found(rows[["x1", "y1", "x2", "y2"]].to_numpy(), boxes[f]) == [True, True, True]
        assert len(rows) <= 4


def test_movenet_setting_is_checked_and_its_model_missing_is_a_clear_error(tmp_path, monkeypatch):
    import pytest

    from video2mesh.pipeline.errors import AssetMissing
    from video2mesh.stages.detect import load_movenet, search_config

    with pytest.raises(ValueError, match="multiple of 32"):
        DetectConfig(backend="blazepose", movenet_size=250)
    cfg = search_config(DetectConfig(backend="blazepose", movenet_every=5, movenet_size=384, movenet_score=0.3))
    assert (cfg.movenet_every, cfg.movenet_size, cfg.movenet_score) == (5, 384, 0.3)
    assert search_config(DetectConfig(backend="blazepose")).movenet_every == 0          # off by default
    monkeypatch.setenv("V2M_MOVENET_JSON", str(tmp_path / "absent.json"))
    load_movenet.cache_clear()
    with pytest.raises(AssetMissing, match="V2M_MOVENET_JSON"):
        load_movenet()
    monkeypatch.setenv("V2M_NANODET_JSON", str(tmp_path / "absent.json"))
    with pytest.raises(AssetMissing, match="V2M_NANODET_JSON"):
        load_movenet("nanodet")
    load_movenet.cache_clear()
