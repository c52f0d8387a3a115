"""A stage is a declaration plus a pure `compute`; the runner does all loading, caching and saving.

    STAGE = Stage(name="tracks", version=1, config=TrackConfig, output=TRACKS,
                  inputs=("probe", "detect"), compute=compute)

    def compute(ctx: Context, cfg: TrackConfig, chunk: Chunk) -> pd.DataFrame: ...

`compute` gets one chunk (a frame range) at a time and returns the rows of that chunk; it reads
upstream artifacts with `ctx.input(name)`, frames with `ctx.frames(...)`, weight files with
`ctx.weight(asset)`, and reports progress with `ctx.advance(n)`. It never writes files.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import pandas as pd
import pyarrow as pa

from .artifacts import Artifact
from .assets import AssetRegistry
from .store import ArtifactRef, ArtifactStore
from .video import FrameReader, VideoInfo


@dataclass(frozen=True)
class Chunk:
    """Frames [start, stop) of the video; `index` names the Parquet part it becomes."""

    index: int
    start: int
    stop: int


def frame_chunks(n_frames: int, chunk_frames: int) -> list[Chunk]:
    """Split [0, n_frames) into chunks of `chunk_frames` (the last one shorter). Always >= 1 chunk."""
    if chunk_frames <= 0:
        raise ValueError("chunk_frames must be positive")
    if n_frames <= 0:
        return [Chunk(0, 0, 0)]
    return [Chunk(i, s, min(s + chunk_frames, n_frames)) for i, s in enumerate(range(0, n_frames, chunk_frames))]


def _no_assets(cfg: Any) -> tuple[str, ...]:
    return ()


@dataclass(frozen=True)
class Stage:
    """Declaration of one DAG node. Its output artifact has the stage's name.

    - `inputs`: upstream stage names (their keys enter this stage's cache key).
    - `assets`: cfg -> names of weight files used (their sha256 enter the key).
    - `plan`: (ctx, cfg) -> chunks; default one chunk over the whole video. Chunked stages resume
      at the first missing part after a crash.
    - `version`: bump when the code's results change, so old cache entries are not reused.
    - `publish`: file-table stages only: (runner, results, video_path, out_dir, folder=None) ->
      written paths; writes the finished artifact's files into `<out_dir>/<folder or video-stem>/`
      (the flow calls it after a run; it runs nothing). Not part of the cache key.
    """

    name: str
    version: int
    config: type
    output: Artifact
    compute: Callable[["Context", Any, Chunk], pd.DataFrame]
    inputs: tuple[str, ...] = ()
    assets: Callable[[Any], tuple[str, ...]] = _no_assets
    plan: Callable[["Context", Any], list[Chunk]] | None = None
    doc: str = ""
    publish: Callable[..., list[Path]] | None = None

    def chunks(self, ctx: "Context", cfg: Any) -> list[Chunk]:
        if self.plan is None:
            return [Chunk(0, 0, ctx.video.n_frames)]
        chunks = self.plan(ctx, cfg)
        return chunks or [Chunk(0, 0, 0)]


@dataclass
class Context:
    """What a stage's compute may touch: the video, upstream artifacts, weights, device, progress."""

    video: VideoInfo
    store: ArtifactStore
    refs: dict[str, ArtifactRef]
    registry: AssetRegistry
    device: str = "cpu"
    on_advance: Callable[[int], None] | None = None
    _memo: dict[str, Any] = field(default_factory=dict)
    _reader: FrameReader | None = None

    def input(self, name: str, columns: list[str] | None = None, filters=None) -> pd.DataFrame:
        """An upstream artifact (declared in `inputs`) as a DataFrame, optionally filtered."""
        return self.store.read_df(self._ref(name).path, columns=columns, filters=filters)

    def input_table(self, name: str, columns: list[str] | None = None, filters=None) -> pa.Table:
        return self.store.read_table(self._ref(name).path, columns=columns, filters=filters)

    def input_frames(self, name: str, start: int, stop: int, columns: list[str] | None = None) -> pd.DataFrame:
        """Rows of an upstream per-frame artifact with start <= frame < stop (bounded memory)."""
        return self.input(name, columns=columns, filters=[("frame", ">=", start), ("frame", "<", stop)])

    def _ref(self, name: str) -> ArtifactRef:
        try:
            return self.refs[name]
        except KeyError:
            raise KeyError(f"stage input {name!r} was not declared in the stage's inputs") from None

    def weight(self, name: str) -> Path:
        return self.registry.resolve(name)

    def frames(self, start: int = 0, stop: int | None = None, rgb: bool = False) -> Iterator[tuple[int, np.ndarray]]:
        """Decoded frames [start, stop); consecutive chunks reuse one decoder."""
        if self._reader is None or self._reader.rgb != rgb:
            if self._reader is not None:
                self._reader.close()
            self._reader = FrameReader(self.video, rgb=rgb)
        return self._reader.frames(start, stop)

    def memo(self, key: str, factory: Callable[[], Any]) -> Any:
        """Build an expensive object (a loaded network) once per stage run, shared by its chunks."""
        if key not in self._memo:
            self._memo[key] = factory()
        return self._memo[key]

    def advance(self, n: int = 1) -> None:
        if self.on_advance is not None:
            self.on_advance(n)

    def close(self) -> None:
        if self._reader is not None:
            self._reader.close()
            self._reader = None
        self._memo.clear()
