"""The report's 3D viewer library: three.js from the npm registry, bundled once at set-up time.

`setup_viewer()` (CLI: `v2m models setup-viewer`; `make setup` runs it and carries on without it)
installs pinned `three` and `esbuild` from the npm registry into `<viewer folder>/build` and bundles
three.js with its OrbitControls into one classic script, `three-viewer.js` (the global
`V2M_THREE = {THREE, OrbitControls}`), with three's MIT licence at its top. A classic script, not an
ES module: browsers refuse module scripts from file:// pages, and a report is opened from disk.
The viewer folder is `$V2M_VIEWER`, default `~/.cache/video2mesh/viewer`; nothing there is committed,
and a report never fetches anything at view time: the report stage copies the bundle next to report.html.
"""
from __future__ import annotations

import hashlib
import json
import logging
import shutil
import subprocess
import tempfile
from pathlib import Path

from .errors import AssetMissing
from .paths import user_dir

log = logging.getLogger(__name__)

ENV_VIEWER_DIR = "V2M_VIEWER"
THREE_VERSION = "0.187.0"
ESBUILD_VERSION = "0.28.2"
BUNDLE = "three-viewer.js"
INFO = "three-viewer.json"
HOW = "run `v2m models setup-viewer` once (needs npm and the npm registry) to add the 3D viewer"
_ENTRY = """import * as THREE from 'three';
import { OrbitControls } from 'three/examples/jsm/controls/OrbitControls.js';
window.V2M_THREE = { THREE, OrbitControls };
"""


def viewer_dir() -> Path:
    return user_dir("viewer", ENV_VIEWER_DIR)


def viewer_bundle(folder: Path | None = None) -> tuple[bytes, dict] | None:
    """(bundle bytes, info {three, sha256}) when the viewer is set up, else None."""
    folder = folder or viewer_dir()
    try:
        data = (folder / BUNDLE).read_bytes()
        info = json.loads((folder / INFO).read_text())
    except (OSError, ValueError):
        return None
    if info.get("sha256") != hashlib.sha256(data).hexdigest():
        log.warning("%s does not match its %s; ignoring it (%s)", BUNDLE, INFO, HOW)
        return None
    return data, info


def viewer_id(folder: Path | None = None) -> str:
    """'three <version> <sha256 prefix>' of the set-up bundle, '' without one (enters the report's key)."""
    found = viewer_bundle(folder)
    return f"three {found[1]['three']} {found[1]['sha256'][:12]}" if found else ""


def _run(cmd: list[str], cwd: Path) -> None:
    p = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=600)
    if p.returncode:
        raise AssetMissing(f"`{' '.join(cmd)}` failed ({p.returncode}): {(p.stderr or p.stdout).strip()[-300:]}")


def setup_viewer(folder: Path | None = None) -> Path:
    """Install three@THREE_VERSION and esbuild from npm, bundle them into `<folder>/three-viewer.js`."""
    folder = folder or viewer_dir()
    npm = shutil.which("npm")
    if not npm:
        raise AssetMissing("npm is not installed; the report works without its 3D viewer (apt-get install npm)")
    build = folder / "build"
    build.mkdir(parents=True, exist_ok=True)
    (build / "package.json").write_text(json.dumps({"name": "v2m-viewer", "private": True}))
    _run([npm, "install", "--no-audit", "--no-fund", "--silent", f"three@{THREE_VERSION}", f"esbuild@{ESBUILD_VERSION}"], build)
    (build / "entry.js").write_text(_ENTRY)
    with tempfile.TemporaryDirectory(dir=folder) as tmp:
        out = Path(tmp) / BUNDLE
        _run([str(build / "node_modules" / ".bin" / "esbuild"), "entry.js", "--bundle", "--format=iife",
              "--minify", "--legal-comments=none", f"--outfile={out}"], build)
        licence = (build / "node_modules" / "three" / "LICENSE").read_text()
        data = (f"/* three.js {THREE_VERSION} (npm `three`) with OrbitControls, bundled by esbuild for video2mesh.\n"
                f"{licence.replace('*/', '* /')}*/\n").encode() + out.read_bytes()
    (folder / BUNDLE).write_bytes(data)
    (folder / INFO).write_text(json.dumps({"three": THREE_VERSION, "esbuild": ESBUILD_VERSION,
                                           "sha256": hashlib.sha256(data).hexdigest()}))
    log.info("3D viewer bundle: %s (%d kB)", folder / BUNDLE, len(data) // 1024)
    return folder / BUNDLE
