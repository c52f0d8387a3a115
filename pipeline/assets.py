"""Weights are data: a registry names each asset and says where it comes from and under which licence.

Nothing downloads unless the user runs `v2m models fetch NAME`. A missing asset stops a run before
any work, with a message naming the file, where to get it and where to put it.
"""
from __future__ import annotations

import os
import shutil
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Mapping

from .errors import AssetMissing, InputError
from .hashing import sha256_file
from .paths import user_dir

ENV_MODELS_DIR = "V2M_MODELS"


@dataclass(frozen=True)
class Asset:
    """One weight file. `url` is None when the file can only be had by hand (registration)."""

    name: str
    filename: str
    source: str                      # human-readable origin (project / paper)
    licence: str
    url: str | None = None
    sha256: str | None = None        # expected digest where known; checked on fetch and on use
    instructions: str = ""           # what to do by hand when there is no URL or no network
    used_by: tuple[str, ...] = ()    # stages that need it


def default_models_dir() -> Path:
    return user_dir("models", ENV_MODELS_DIR)


@dataclass(frozen=True)
class AssetStatus:
    asset: Asset
    path: Path
    present: bool
    note: str = ""


class AssetRegistry:
    """Looks assets up by name; `overrides` map names to user-given paths (`--weights NAME=PATH`)."""

    def __init__(self, assets: Iterable[Asset], models_dir: Path | None = None, overrides: Mapping[str, str | os.PathLike] | None = None):
        self.assets: dict[str, Asset] = {}
        for a in assets:
            if a.name in self.assets and self.assets[a.name] != a:
                raise ValueError(f"asset {a.name!r} is declared twice with different contents")
            self.assets[a.name] = a
        self.models_dir = Path(models_dir) if models_dir else default_models_dir()
        self.overrides = {k: Path(v).expanduser() for k, v in (overrides or {}).items()}
        unknown = sorted(set(self.overrides) - set(self.assets))
        if unknown:
            raise InputError(f"--weights names unknown asset(s) {unknown}; known: {', '.join(sorted(self.assets))}")

    def get(self, name: str) -> Asset:
        try:
            return self.assets[name]
        except KeyError:
            raise InputError(f"unknown asset {name!r}; `v2m models list` shows the known ones") from None

    def path(self, name: str) -> Path:
        """Where the asset is expected (an override, else `<models_dir>/<filename>`)."""
        return self.overrides.get(name) or self.models_dir / self.get(name).filename

    def status(self, name: str) -> AssetStatus:
        a = self.get(name)
        p = self.path(name)
        return AssetStatus(a, p, p.is_file(), "" if p.is_file() else "missing")

    def resolve(self, name: str) -> Path:
        """The path of a present asset, or AssetMissing with instructions."""
        st = self.status(name)
        if not st.present:
            raise AssetMissing(self.missing_message([name]))
        return st.path

    def check(self, names: Iterable[str]) -> None:
        """Raise one AssetMissing listing every absent asset among `names` (before any work starts)."""
        missing = [n for n in dict.fromkeys(names) if not self.status(n).present]
        if missing:
            raise AssetMissing(self.missing_message(missing))

    def missing_message(self, names: list[str]) -> str:
        lines = [f"missing weight file(s) for this run: {', '.join(names)}"]
        for n in names:
            a = self.get(n)
            how = f"`v2m models fetch {n}` downloads it from {a.url}" if a.url else "it cannot be downloaded automatically"
            lines.append(f"  - {n}: put {a.filename} at {self.path(n)} ({a.source}; licence: {a.licence}). {how}.")
            if a.instructions:
                lines.append(f"    {a.instructions}")
        lines.append(f"  Or point to an existing file with --weights NAME=PATH; the models folder is ${ENV_MODELS_DIR} or {self.models_dir}.")
        return "\n".join(lines)

    def fetch(self, name: str, timeout_s: float = 20.0) -> Path:
        """Download one asset into the models folder (only ever on the user's request), verify sha256."""
        a = self.get(name)
        dest = self.models_dir / a.filename
        if dest.is_file() and (a.sha256 is None or sha256_file(dest) == a.sha256):
            return dest
        if not a.url:
            raise AssetMissing(f"{name} has no download URL. {a.instructions or ''} Put it at {dest}.")
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(dest.name + ".part")
        try:
            with urllib.request.urlopen(a.url, timeout=timeout_s) as r, open(tmp, "wb") as f:
                shutil.copyfileobj(r, f, 1 << 20)
        except (urllib.error.URLError, OSError, TimeoutError) as e:
            tmp.unlink(missing_ok=True)
            raise AssetMissing(
                f"could not download {name} from {a.url}: {e}. If this machine is offline, download it "
                f"elsewhere and put it at {dest}{' (sha256 ' + a.sha256 + ')' if a.sha256 else ''}."
            ) from e
        if a.sha256 and (got := sha256_file(tmp)) != a.sha256:
            tmp.unlink(missing_ok=True)
            raise AssetMissing(f"{name}: downloaded file has sha256 {got}, expected {a.sha256}; nothing was saved")
        os.replace(tmp, dest)
        return dest
