import pytest

from video2mesh.pipeline.assets import Asset, AssetRegistry
from video2mesh.pipeline.errors import AssetMissing, InputError

A = Asset("net", "net.pth", source="a paper", licence="MIT", url="http://127.0.0.1:9/net.pth", instructions="ask nicely")
B = Asset("body", "BODY.pkl", source="a website", licence="non-commercial", instructions="register at the website")


def test_missing_assets_are_listed_with_instructions(tmp_path):
    reg = AssetRegistry([A, B], models_dir=tmp_path)
    with pytest.raises(AssetMissing) as e:
        reg.check(["net", "body", "net"])
    msg = str(e.value)
    assert "net, body" in msg and str(tmp_path / "net.pth") in msg and "register at the website" in msg
    assert "v2m models fetch net" in msg and "cannot be downloaded automatically" in msg


def test_override_and_present(tmp_path):
    f = tmp_path / "elsewhere.pth"
    f.write_bytes(b"x")
    reg = AssetRegistry([A, B], models_dir=tmp_path / "models", overrides={"net": f})
    assert reg.resolve("net") == f
    with pytest.raises(InputError, match="unknown asset"):
        AssetRegistry([A], models_dir=tmp_path, overrides={"nett": f})


def test_fetch_offline_fails_fast_and_saves_nothing(tmp_path):
    reg = AssetRegistry([A, B], models_dir=tmp_path)
    with pytest.raises(AssetMissing, match="could not download net"):
        reg.fetch("net", timeout_s=2)
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(AssetMissing, match="no download URL"):
        reg.fetch("body")
