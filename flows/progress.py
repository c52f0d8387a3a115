"""The one progress helper: a rich progress bar per stage, set up by the CLI (library code never prints)."""
from __future__ import annotations

from typing import Callable

_factory: Callable[[str, int], Callable[[int], None]] | None = None


def factory() -> Callable[[str, int], Callable[[int], None]] | None:
    return _factory


def set_factory(f: Callable[[str, int], Callable[[int], None]] | None) -> None:
    global _factory
    _factory = f


def rich_factory(progress) -> Callable[[str, int], Callable[[int], None]]:
    """Bars on a `rich.progress.Progress`: one task per stage, advanced in frames."""

    def make(stage: str, total: int) -> Callable[[int], None]:
        tid = progress.add_task(stage, total=max(total, 1))
        return lambda n: progress.advance(tid, n)

    return make
