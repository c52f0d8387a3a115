"""The stages of the DAG, by name. Each module declares one `STAGE` (and its `ASSETS`, if any).

Add a stage by importing its module here; order does not matter (the runner sorts by inputs).
"""
from __future__ import annotations

from importlib import import_module

from pipeline.assets import Asset
from pipeline.stage import Stage

_MODULES = [
    "probe",
    "detect",
    "tracks",
    "tracklets",
    "export",
    "report",
    "homography",
    "mesh",
]


def all_stages() -> dict[str, Stage]:
    """Every registered stage by name."""
    out: dict[str, Stage] = {}
    for m in _MODULES:
        st = import_module(f"stages.{m}").STAGE
        out[st.name] = st
    return out


def all_assets() -> list[Asset]:
    """Every weight file any stage may use (modules declare them as `ASSETS`)."""
    assets: list[Asset] = []
    for m in _MODULES:
        assets.extend(getattr(import_module(f"stages.{m}"), "ASSETS", ()))
    return assets
