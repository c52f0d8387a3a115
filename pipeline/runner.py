"""Runs stages of the DAG for one video: cache keys, cache hits, chunked resumable writes, locks."""
from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

from .assets import AssetRegistry
from .errors import ConfigError, StageFailed, V2MError
from .hashing import DigestMemo, digest_obj, sha256_file
from .logs import detail, log_path
from .stage import Context, Stage
from .store import ArtifactRef, ArtifactStore
from .video import VideoInfo, check_path, probe

log = logging.getLogger(__name__)

PROBE = "probe"


@dataclass(frozen=True)
class StageResult:
    """What happened to one stage: 'cached' (manifest found), 'computed' or 'resumed' (some parts reused)."""

    stage: str
    status: str
    ref: ArtifactRef
    parts_total: int
    parts_computed: int
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "ref": self.ref.to_dict()}


ProgressFactory = Callable[[str, int], Callable[[int], None]]


@dataclass
class Runner:
    """Executes stages in dependency order for a video, reusing whatever the cache already holds.

    `configs` maps stage name -> config instance (defaults for the rest). Stage keys hash the stage
    name, version, output schema version, params, the keys of its inputs and the sha256 of its weights.
    """

    stages: Mapping[str, Stage]
    store: ArtifactStore
    registry: AssetRegistry
    configs: Mapping[str, Any] = field(default_factory=dict)
    device: str = "cpu"
    progress: ProgressFactory | None = None

    def __post_init__(self) -> None:
        unknown = sorted(set(self.configs) - set(self.stages))
        if unknown:
            raise ConfigError(f"config for unknown stage(s) {unknown}; stages: {', '.join(self.stages)}")
        self._digests = DigestMemo(self.store.root / "digests.json")

    # -- planning --------------------------------------------------------------------------------
    def config(self, name: str) -> Any:
        return self.configs.get(name) or self.stages[name].config()

    def order(self, targets: list[str] | None = None) -> list[str]:
        """Topological order of `targets` and their ancestors (all stages if None)."""
        targets = list(self.stages) if targets is None else targets
        seen: dict[str, None] = {}

        def visit(n: str, path: tuple[str, ...]) -> None:
            if n not in self.stages:
                raise ConfigError(f"unknown stage {n!r}; stages: {', '.join(self.stages)}")
            if n in path:
                raise ConfigError(f"stage cycle: {' -> '.join(path + (n,))}")
            if n in seen:
                return
            for i in self.stages[n].inputs:
                visit(i, path + (n,))
            seen[n] = None

        for t in targets:
            visit(t, ())
        return list(seen)

    def assets_for(self, names: list[str]) -> list[str]:
        return [a for n in names for a in self.stages[n].assets(self.config(n))]

    def preflight(self, names: list[str]) -> None:
        """Fail before any work if a weight file of any stage to run is missing."""
        self.registry.check(self.assets_for(names))

    def stage_key(self, name: str, input_keys: Mapping[str, str], video_digest: str | None = None) -> str:
        stage = self.stages[name]
        cfg = self.config(name)
        weights = {a: self._digests.sha256(self.registry.resolve(a)) for a in stage.assets(cfg)}
        return digest_obj({
            "stage": name,
            "version": stage.version,
            "schema": [stage.output.name, stage.output.version],
            "params": dataclasses.asdict(cfg),
            "inputs": dict(sorted(input_keys.items())),
            "weights": weights,
            "video": video_digest,
        })

    # -- running ---------------------------------------------------------------------------------
    def run(self, video_path: str | Path, until: str | list[str] | None = None) -> dict[str, StageResult]:
        """Run every stage needed for `until` (all by default) on one video; returns results by stage."""
        targets = [until] if isinstance(until, str) else until
        names = self.order(targets)
        if names[0] != PROBE:
            raise ConfigError(f"the DAG must start at {PROBE!r}")
        self.preflight(names)
        results: dict[str, StageResult] = {}
        info, results[PROBE] = self.probe_video(video_path)
        for name in names[1:]:
            refs = {i: results[i].ref for i in self.stages[name].inputs}
            results[name] = self.run_stage(name, info, refs)
        return results

    def probe_video(self, video_path: str | Path) -> tuple[VideoInfo, StageResult]:
        path = check_path(video_path)
        digest = sha256_file(path)
        key = self.stage_key(PROBE, {}, digest)
        d = self.store.stage_dir(digest, PROBE, key)
        t0 = time.perf_counter()
        ref = self.store.ref(d)
        if ref is not None:
            row = self.store.read_df(d).iloc[0]
            info = VideoInfo(path=str(path), digest=digest, fps=float(row.fps), n_frames=int(row.n_frames),
                             width=int(row.width), height=int(row.height), size_bytes=int(row.size_bytes))
            return info, StageResult(PROBE, "cached", ref, 1, 0, time.perf_counter() - t0)
        info = probe(path, digest=digest)
        return info, self.run_stage(PROBE, info, {})

    def run_stage(self, name: str, info: VideoInfo, refs: Mapping[str, ArtifactRef]) -> StageResult:
        """Run one stage whose inputs are finished: cache hit, resume, or compute all chunks."""
        stage = self.stages[name]
        cfg = self.config(name)
        key = self.stage_key(name, {k: r.key for k, r in refs.items()}, info.digest if name == PROBE else None)
        d = self.store.stage_dir(info.digest, name, key)
        t0 = time.perf_counter()
        ref = self.store.ref(d)
        if ref is not None:
            return StageResult(name, "cached", ref, len(self.store.manifest(d)["parts"]), 0, 0.0)
        with self.store.claim(d):
            ref = self.store.ref(d)  # another process may have finished it while we waited
            if ref is not None:
                return StageResult(name, "cached", ref, len(self.store.manifest(d)["parts"]), 0, time.perf_counter() - t0)
            ctx = Context(video=info, store=self.store, refs=dict(refs), registry=self.registry, device=self.device)
            try:
                chunks = stage.chunks(ctx, cfg)
                todo = [c for c in chunks if not self.store.part_path(d, c.index).is_file()]
                size = lambda c: max(c.stop - c.start, 1)  # noqa: E731  (progress units: frames)
                done = [0]
                bar = self.progress(name, sum(size(c) for c in chunks)) if self.progress else None

                def advance(n: int) -> None:
                    done[0] += n
                    if bar is not None:
                        bar(n)

                ctx.on_advance = advance
                advance(sum(size(c) for c in chunks if c not in todo))
                for chunk in todo:
                    before = done[0]
                    df = stage.compute(ctx, cfg, chunk)
                    self.store.write_part(d, chunk.index, stage.output.to_table(df))
                    advance(max(0, size(chunk) - (done[0] - before)))  # top up for stages that report less
            except V2MError:
                raise
            except Exception as e:  # a bug or a library error: name the stage and the video
                detail().exception("stage %s failed on %s", name, info.path)
                where = log_path()
                raise StageFailed(f"stage {name!r} failed on {info.path}: {type(e).__name__}: {' '.join(str(e).split())[:300]}"
                                  + (f"; the traceback is in {where}" if where else "")) from e
            finally:
                ctx.close()
            ref = self.store.finish(d, stage.output, len(chunks), {
                "stage": name,
                "key": key,
                "stage_version": stage.version,
                "params": dataclasses.asdict(cfg),
                "inputs": {k: r.key for k, r in sorted(refs.items())},
                "video_digest": info.digest,
            })
            seconds = time.perf_counter() - t0
            self.store.log_run(d, {"seconds": seconds, "parts_computed": len(todo), "device": self.device})
        status = "computed" if len(todo) == len(chunks) else "resumed"
        return StageResult(name, status, ref, len(chunks), len(todo), seconds)
