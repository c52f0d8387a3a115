"""The stages of the DAG, by name. Each module here that declares a `STAGE` is one node (with its
`ASSETS`, if any); helper modules (names starting with `_`, or without `STAGE`) are skipped.

Adding a stage is adding a module: the runner sorts the nodes by their declared inputs.
"""
from __future__ import annotations

import pkgutil
from functools import lru_cache
from importlib import import_module
from types import ModuleType
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # importing the package stays light (the CLI reads stages._methods before anything heavy)
    from video2mesh.pipeline.assets import Asset
    from video2mesh.pipeline.stage import Stage


@lru_cache(maxsize=1)
def _modules() -> tuple[ModuleType, ...]:
    names = sorted(m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_"))
    return tuple(import_module(f"{__name__}.{n}") for n in names)


def all_stages() -> dict[str, Stage]:
    """Every registered stage by name."""
    out: dict[str, Stage] = {}
    for mod in _modules():
        st = getattr(mod, "STAGE", None)
        if st is None:
            continue
        if st.name in out:
            raise RuntimeError(f"two modules declare stage {st.name!r}: {out[st.name].doc!r} and {mod.__name__}")
        out[st.name] = st
    return out


def all_assets() -> list[Asset]:
    """Every weight file any stage may use (stage modules declare them as `ASSETS`)."""
    return [a for mod in _modules() if hasattr(mod, "STAGE") for a in getattr(mod, "ASSETS", ())]
