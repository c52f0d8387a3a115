"""`v2m`: the command line. Lives in flows/ because `run` drives the Prefect flow (arrows point down).

    v2m run VIDEO... --out DIR [--cache DIR] [--config FILE] [--set STAGE.KEY=VALUE ...]
                     [--device cpu|cuda|auto] [--until STAGE] [--weights NAME=PATH ...] [--engine prefect|local]
    v2m models list | v2m models fetch NAME...
    v2m stages
    v2m bench [--quick] [--json FILE] [--only GROUP ...]
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path

from pipeline import config as cfgmod
from pipeline.errors import ConfigError, V2MError


def _set_env_defaults(cache: str | None) -> None:
    """Offline, quiet, tool homes inside the cache root (done at the edge, before prefect or
    ultralytics is imported, never at import time)."""
    from .spec import default_cache_root

    root = Path(cache).expanduser() if cache else default_cache_root()
    os.environ.setdefault("YOLO_OFFLINE", "1")
    os.environ.setdefault("YOLO_AUTOINSTALL", "false")
    os.environ.setdefault("YOLO_CONFIG_DIR", str(root / "ultralytics"))
    os.environ.setdefault("PREFECT_HOME", str(root / "prefect"))
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("DO_NOT_TRACK", "1")
    # The first start of the embedded server on a new home takes ~20 s on 2 cores.
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    os.environ.setdefault("MPLBACKEND", "Agg")


def _kv(items: list[str], what: str) -> dict[str, str]:
    out = {}
    for it in items:
        k, sep, v = it.partition("=")
        if not sep or not k or not v:
            raise ConfigError(f"{what} {it!r}: expected NAME=PATH")
        out[k] = v
    return out


def _spec_from_args(a: argparse.Namespace):
    from .spec import RunSpec

    file_cfg = cfgmod.load_yaml(a.config) if a.config else {}
    weights = {**(file_cfg.pop("weights", None) or {}), **_kv(a.weights, "--weights")}
    settings = cfgmod.merge(file_cfg, cfgmod.parse_sets(a.set))
    return RunSpec(out=a.out, cache=a.cache, models_dir=a.models_dir, weights={k: str(v) for k, v in weights.items()},
                   settings=settings, device=a.device, until=a.until)


def cmd_run(a: argparse.Namespace) -> int:
    import dataclasses

    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from . import progress as prog
    from .video_to_mesh import _info_stub, output_dir, run_video, video_to_mesh

    spec = _spec_from_args(a)
    Path(os.environ["PREFECT_HOME"]).mkdir(parents=True, exist_ok=True)
    console = Console(stderr=True)
    with Progress(TextColumn("{task.description:<12}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console, disable=a.quiet or not console.is_terminal) as bar:
        prog.set_factory(prog.rich_factory(bar))
        try:
            if a.engine == "prefect":
                kw = dataclasses.asdict(spec)
                try:
                    summaries = video_to_mesh(videos=a.videos, **kw)
                except V2MError as e:  # every video failed: the flow run is marked failed
                    failures = getattr(e, "failures", [str(e)])
                    summaries = [{"error": f, "exit_code": getattr(e, "exit_code", 1)} for f in failures]
            else:
                summaries = [_try(lambda v=v: run_video(v, spec, use_prefect=False)) for v in a.videos]
        finally:
            prog.set_factory(None)
    codes = []
    for s in summaries:
        if "error" in s:
            codes.append(s.get("exit_code", 1))
            print(f"v2m: error: {s['error']}", file=sys.stderr)
            continue
        statuses = ", ".join(f"{n}: {r['status']}" for n, r in s["stages"].items())
        print(f"{s['video']}: {statuses}", file=sys.stderr)
        print(output_dir(spec, _info_stub(s)))
    if not codes:
        return 0
    # All failed: the error's own code (2 bad input, 3 missing weights...); some failed: 1.
    return max(codes) if len(codes) == len(summaries) else 1


def _try(fn) -> dict:
    try:
        return fn()
    except V2MError as e:
        return {"error": str(e), "exit_code": e.exit_code}


def cmd_models(a: argparse.Namespace) -> int:
    import stages
    from pipeline.assets import AssetRegistry

    reg = AssetRegistry(stages.all_assets(), models_dir=Path(a.models_dir) if a.models_dir else None,
                        overrides=_kv(a.weights, "--weights"))
    if a.action == "list":
        print(f"models folder: {reg.models_dir}")
        for name in sorted(reg.assets):
            st = reg.status(name)
            mark = "present" if st.present else "MISSING"
            print(f"{name:<22} {mark:<8} {st.path}  [{st.asset.licence}]")
        return 0
    if not a.names:
        raise ConfigError("v2m models fetch NAME...: name at least one asset (see `v2m models list`)")
    for n in a.names:
        print(reg.fetch(n))
    return 0


def cmd_stages(a: argparse.Namespace) -> int:
    import dataclasses

    import stages

    for name, st in stages.all_stages().items():
        print(f"{name:<12} v{st.version}  inputs={','.join(st.inputs) or '-'}  {st.doc}")
        if a.verbose:
            for f in dataclasses.fields(st.config):
                print(f"    {name}.{f.name} = {getattr(st.config(), f.name)!r}")
    return 0


def cmd_bench(a: argparse.Namespace) -> int:
    import benchmarks
    from .spec import RunSpec

    device = RunSpec(device=a.device).resolved_device()
    rows = []
    for case in benchmarks.discover(quick=a.quick, device=device, only=a.only):
        rows.append(benchmarks.run_case(case, device))
        print(benchmarks.format_table(rows[-1:]).splitlines()[-1], file=sys.stderr)
    print(benchmarks.format_table(rows))
    if a.json:
        benchmarks.write_json(a.json, rows, benchmarks.environment(device))
        print(f"wrote {a.json}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="v2m", description="videos of people in, per-person 3D motion out")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = p.add_subparsers(dest="cmd", required=True)

    def common(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--models-dir", help="folder of weight files (default $V2M_MODELS or ~/.cache/video2mesh/models)")
        sp.add_argument("--weights", action="append", default=[], metavar="NAME=PATH", help="use this file for an asset")

    r = sub.add_parser("run", help="run the pipeline on videos")
    r.add_argument("videos", nargs="+")
    r.add_argument("--out", default="out", help="output folder (one sub-folder per video)")
    r.add_argument("--cache", help="cache root (default $V2M_CACHE or ~/.cache/video2mesh/cache)")
    r.add_argument("--config", help="YAML file: {stage: {param: value}, weights: {name: path}}")
    r.add_argument("--set", action="append", default=[], metavar="STAGE.KEY=VALUE", help="override one stage parameter")
    r.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto")
    r.add_argument("--until", help="stop after this stage (e.g. tracklets)")
    r.add_argument("--engine", choices=["prefect", "local"], default="prefect",
                   help="prefect: through the video-to-mesh flow (default); local: same runner, no Prefect")
    r.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    common(r)
    r.set_defaults(func=cmd_run)

    m = sub.add_parser("models", help="list or fetch weight files")
    m.add_argument("action", choices=["list", "fetch"])
    m.add_argument("names", nargs="*")
    common(m)
    m.set_defaults(func=cmd_models)

    s = sub.add_parser("stages", help="list the stages and (with -v) their parameters")
    s.add_argument("-v", "--verbose", action="store_true", help="also list every parameter and its default")
    s.set_defaults(func=cmd_stages)

    b = sub.add_parser("bench", help="time each stage/model on synthetic input with random weights")
    b.add_argument("--quick", action="store_true", help="small inputs, a few seconds per case")
    b.add_argument("--json", help="write results here")
    b.add_argument("--only", action="append", help="only these groups (repeatable)")
    b.add_argument("--device", default="auto")
    b.set_defaults(func=cmd_bench)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    _set_env_defaults(getattr(args, "cache", None))
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        return args.func(args)
    except V2MError as e:
        print(f"v2m: error: {e}", file=sys.stderr)
        return e.exit_code
    except BrokenPipeError:  # `v2m stages -v | head`
        return 0
    except KeyboardInterrupt:
        print("v2m: interrupted; finished stages and chunks are kept, re-run to resume", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
