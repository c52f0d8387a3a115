"""Per-user folders: `$ENV` if set, else `$XDG_CACHE_HOME/video2mesh/<name>` (default ~/.cache)."""
from __future__ import annotations

import os
from pathlib import Path


def user_dir(name: str, env: str) -> Path:
    """The folder for `name` (models, cache...), overridden by the environment variable `env`."""
    if os.environ.get(env):
        return Path(os.environ[env]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "video2mesh" / name
