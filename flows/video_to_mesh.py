"""The `video-to-mesh` Prefect flow: thin tasks that call the runner, one task per stage.

Task results are StageResults (paths and digests), never arrays. Caching is the runner's (content
keys on disk), so Prefect's own result caching is off.
"""
from __future__ import annotations

import dataclasses
import logging
import shutil
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NONE
from prefect.states import Failed

from video2mesh.pipeline import logs
from video2mesh.pipeline.errors import ConfigError, InputError, V2MError
from video2mesh.pipeline.names import artifact_key, claim_output_dir, find_output_dir
from video2mesh.pipeline.runner import PROBE, StageResult
from video2mesh.pipeline.store import atomic_write_json
from video2mesh.pipeline.video import VideoInfo, check_video

from . import methods
from .spec import RunSpec, build_runner, resolve_method
from . import progress

log = logging.getLogger(__name__)

NOBODY_AFTER = "tracklets"  # no tracklet: nobody to fit or export, an input error rather than empty files


@task(name="probe", cache_policy=NONE)
def probe_task(video: str, spec: RunSpec) -> tuple[VideoInfo, StageResult]:
    """Hash and probe the video (cached by content digest)."""
    try:
        return build_runner(spec, progress.factory()).probe_video(video)
    except V2MError as e:  # expected: a Failed state with the error, no traceback in the run's logs
        return Failed(message=str(e), data=e)


@task(name="stage", cache_policy=NONE)
def stage_task(name: str, info: VideoInfo, inputs: dict[str, StageResult], spec: RunSpec) -> StageResult:
    """Run one stage (a cache hit when its key is on disk)."""
    try:
        runner = build_runner(spec, progress.factory())
        return runner.run_stage(name, info, {k: r.ref for k, r in inputs.items()})
    except V2MError as e:
        return Failed(message=str(e), data=e)


def output_dir(spec: RunSpec, info: VideoInfo) -> Path:
    """`<out>/<name>` (pipeline/names.py): the folder this video's outputs go to."""
    return find_output_dir(spec.out, info.path, info.digest)


def error_line(video: str, e: BaseException) -> str:
    """The error as one line that names the video once (most messages already start with its path)."""
    msg = " ".join(str(e).split())
    return msg if Path(video).name in msg else f"{video}: {msg}"


def run_video(video: str, spec: RunSpec, use_prefect: bool = True) -> dict[str, Any]:
    """All stages for one video; writes `<out>/<stem>/run.json` and returns its content."""
    check_video(video)  # a wrong path or a file that is no video is reported before anything else
    reason = ""
    if spec.method == "auto":
        spec, reason = resolve_method(spec)
    runner = build_runner(spec, progress.factory())
    names = methods.targets(methods.METHODS[spec.method], runner, spec.until)
    runner.preflight(names)
    if use_prefect:
        info, first = probe_task(video, spec, return_state=True).result()  # raises the task's error
    else:
        info, first = runner.probe_video(video)
    results: dict[str, StageResult] = {PROBE: first}
    for name in names[1:]:
        inputs = {i: results[i] for i in runner.stages[name].inputs}
        if use_prefect:
            results[name] = stage_task.with_options(name=name)(name, info, inputs, spec, return_state=True).result()
        else:
            results[name] = runner.run_stage(name, info, {k: r.ref for k, r in inputs.items()})
        if name == NOBODY_AFTER and name != names[-1] and results[name].ref.rows == 0:
            tc = runner.config(name)
            raise InputError(f"{info.path}: no person found (no track lasts {tc.min_len} frames or {tc.min_len_s:.2g} s); "
                             "give a video where a whole person is in view, or lower --set tracklets.min_len_s")
    summary = {
        "video": info.path,
        "video_digest": info.digest,
        "fps": info.fps,
        "n_frames": info.n_frames,
        "size": [info.width, info.height],
        "device": runner.device,
        "method": spec.method,
        "method_label": methods.METHODS[spec.method].label,
        "method_reason": reason,
        "cache_root": str(runner.store.root),
        "stages": {n: r.to_dict() for n, r in results.items()},
        "settings": {n: dataclasses.asdict(runner.config(n)) for n in names},
    }
    fresh = not output_dir(spec, info).exists()
    out = claim_output_dir(spec.out, info.path, info.digest)
    try:
        summary["published"] = publish_outputs(runner, results, info.path, out)
        atomic_write_json(out / "run.json", summary)
    except BaseException:
        if fresh:  # no half-written output folder
            shutil.rmtree(out, ignore_errors=True)
        raise
    return summary


@flow(name="video-to-mesh", log_prints=False)
def video_to_mesh(videos: list[str] | None = None, out: str = "out", cache: str | None = None, models_dir: str | None = None,
                  weights: dict[str, str] | None = None, settings: dict[str, dict[str, Any]] | None = None,
                  device: str = "auto", until: str | None = None, method: str = "auto",
                  video: str | None = None) -> list[dict[str, Any]]:
    """Videos in, per-person motion out. Each video's failure is logged and reported; the others go on.

    `video` is one more video (so `prefect deployment run ... --param video=clip.mp4` needs no JSON list).
    """
    videos = list(videos or []) + ([video] if video else [])
    if not videos:
        raise ConfigError("no video given: pass videos=[...] or video=PATH")
    spec = RunSpec(out=out, cache=cache, models_dir=models_dir, weights=dict(weights or {}),
                   settings=dict(settings or {}), device=device, until=until, method=method)
    logs.install(spec.cache_root, terminal=False)  # a served run's detail also goes to the cache's log file
    logger = get_run_logger()
    summaries: list[dict[str, Any]] = []
    for v in videos:
        try:
            s = run_video(v, spec)
        except V2MError as e:
            summaries.append({"video": v, "error": error_line(v, e), "exit_code": e.exit_code})
            logger.error("%s", summaries[-1]["error"])
            continue
        logger.info("%s: done; outputs in %s", v, output_dir(spec, _info_stub(s)))
        try:
            _flow_artifact(spec, s)
        except Exception as e:  # the outputs are written; a UI artifact is not worth failing the run for
            logger.warning("%s: no Prefect artifact (%s: %s)", v, type(e).__name__, e)
        summaries.append(s)
    failed = [s["error"] for s in summaries if "error" in s]
    if failed and len(failed) == len(videos):  # the run is Failed (for a deployment's caller), no traceback
        return Failed(message="; ".join(failed), data=summaries)
    return summaries


def _info_stub(summary: dict[str, Any]) -> VideoInfo:
    return VideoInfo(path=summary["video"], digest=summary["video_digest"], fps=summary["fps"],
                     n_frames=summary["n_frames"], width=summary["size"][0], height=summary["size"][1], size_bytes=0)


def publish_outputs(runner, results: dict[str, StageResult], video: str, folder: Path) -> dict[str, int]:
    """Write the files of whichever file-table stages ran (those that declare `publish`: a method's
    outputs, stages/_methods.py) into `folder` (`<out>/<name>`, pipeline/names.py), from their finished
    artifacts (nothing is re-run). Returns {stage: files written}."""
    from video2mesh.stages import all_stages

    declared = all_stages()
    out, folder_name = folder.parent, folder.name
    return {name: len(declared[name].publish(runner, results, video, out, folder_name))
            for name in results if name in declared and declared[name].publish is not None}


def _flow_artifact(spec: RunSpec, summary: dict[str, Any]) -> None:
    """The run's outputs as a markdown artifact on the flow run (shown in the UI and `prefect artifact ls`)."""
    out = output_dir(spec, _info_stub(summary)).resolve()
    files = sorted(p for p in out.rglob("*") if p.is_file()) if out.is_dir() else []
    reports = [p for p in files if p.suffix.lower() in (".html", ".md", ".pdf") or "report" in p.name.lower()]
    lines = [f"# {Path(summary['video']).name}", "", f"- outputs: `{out}`", f"- run summary: `{out / 'run.json'}`"]
    lines += [f"- report: `{p}`" for p in reports]
    lines += ["", "| stage | status | rows | seconds |", "|---|---|---|---|"]
    lines += [f"| {n} | {r['status']} | {r['ref']['rows']} | {r['seconds']:.1f} |" for n, r in summary["stages"].items()]
    lines += ["", "files:", *[f"- `{p.relative_to(out)}`" for p in files]]
    create_markdown_artifact("\n".join(lines), key=artifact_key(summary["video"], summary["video_digest"]),
                             description=f"video2mesh outputs for {summary['video']}")
