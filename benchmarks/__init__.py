"""Benchmark harness behind `v2m bench`: times named cases, prints a table, writes JSON.

A benchmark module `benchmarks/bench_<area>.py` exposes `cases(quick: bool, device: str) -> list[Case]`.
Each case's `setup()` builds what it needs (networks with random weights, synthetic inputs; compute
cost does not depend on trained weights) and returns `step() -> items`: one timed unit of work that
returns how many items (frames, crops, pairs...) it processed, or `(items, extra)` with a dict of
further numbers (sizes...) kept in the row's `extra` and printed after the table's columns. Peak RSS is sampled every 5 ms by a
thread while the case runs (an approximation that catches sustained peaks, not microsecond spikes).
"""
from __future__ import annotations

import gc
import importlib
import json
import pkgutil
import platform
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import psutil


@dataclass(frozen=True)
class Case:
    group: str                                   # stage or model name: "detect", "pose2d", "mesh"...
    name: str                                    # variant: "yolo11n 640 batch=8"
    setup: Callable[[], Callable[[], int]]
    unit: str = "frames"
    repeat: int = 3
    warmup: int = 1


@dataclass
class Row:
    group: str
    name: str
    device: str
    unit: str
    items: int
    seconds: float
    per_s: float
    peak_rss_mb: float
    extra: dict = field(default_factory=dict)


class _PeakRSS:
    def __init__(self) -> None:
        self.proc = psutil.Process()
        self.peak = self.proc.memory_info().rss
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.proc.memory_info().rss)
            time.sleep(0.005)

    def __enter__(self) -> "_PeakRSS":
        self._t.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._t.join()
        self.peak = max(self.peak, self.proc.memory_info().rss)


def run_case(case: Case, device: str) -> Row:
    gc.collect()
    with _PeakRSS() as rss:
        step = case.setup()
        for _ in range(case.warmup):
            step()
        _sync(device)
        items, extra, t0 = 0, {}, time.perf_counter()
        for _ in range(case.repeat):
            got = step()
            if isinstance(got, tuple):
                got, extra = got
            items += got
        _sync(device)
        dt = time.perf_counter() - t0
    return Row(case.group, case.name, device, case.unit, items, dt, items / dt if dt > 0 else float("nan"), rss.peak / 2**20, extra)


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        import torch

        torch.cuda.synchronize()


def discover(quick: bool, device: str, only: list[str] | None = None) -> list[Case]:
    cases: list[Case] = []
    for m in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if not m.name.startswith("bench_"):
            continue
        mod = importlib.import_module(f"{__name__}.{m.name}")
        for c in mod.cases(quick=quick, device=device):
            if not only or c.group in only:
                cases.append(c)
    return cases


def environment(device: str) -> dict:
    import torch

    env = {"python": platform.python_version(), "machine": platform.machine(), "cpus": psutil.cpu_count(),
           "torch": torch.__version__, "torch_threads": torch.get_num_threads(), "device": device}
    if device.startswith("cuda") and torch.cuda.is_available():
        env["gpu"] = torch.cuda.get_device_name()
    return env


def format_table(rows: list[Row]) -> str:
    head = f"{'group':<12} {'case':<44} {'device':<6} {'rate':>12} {'unit':<10} {'peak RSS MB':>11}"
    lines = [head, "-" * len(head)]
    for r in rows:
        more = "  " + " ".join(f"{k}={v}" for k, v in r.extra.items()) if r.extra else ""
        lines.append(f"{r.group:<12} {r.name:<44} {r.device:<6} {r.per_s:>12.2f} {r.unit + '/s':<10} {r.peak_rss_mb:>11.0f}{more}")
    return "\n".join(lines)


def write_json(path: str | Path, rows: list[Row], env: dict) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps({"environment": env, "rows": [asdict(r) for r in rows]}, indent=2) + "\n")
