"""Settings of a deliverable (`export.*`, `report.*`) reach whichever method runs."""
from __future__ import annotations

from video2mesh.flows.spec import RunSpec, build_runner, shared_deliverable_settings
from video2mesh.stages._methods import METHODS


def test_export_settings_carry_onto_the_licence_free_export_stage():
    user = {"export": {"formats": ["npz", "usd"], "gender": "male", "reference_pose": "t"},
            "fit_export": {"reference_pose": "a"}}
    out = shared_deliverable_settings(METHODS["licence-free"], user)
    assert out["fit_export"] == {"formats": ["npz", "usd"], "reference_pose": "a"}   # own settings win; no gender there
    assert out["export"] == user["export"]                                             # left as given


def test_fit_export_settings_carry_onto_the_smpl_export_stage():
    out = shared_deliverable_settings(METHODS["smpl"], {"fit_export": {"rig": "mixamo", "obj_stride": 3}})
    assert out["export"] == {"rig": "mixamo", "obj_stride": 3}


def test_runner_of_the_licence_free_method_uses_them(tmp_path):
    spec = RunSpec(cache=str(tmp_path / "cache"), method="licence-free", device="cpu",
                   settings={"export": {"formats": ["npz", "bvh"]}, "report": {}})
    cfg = build_runner(spec).config("fit_export")
    assert cfg.formats == ("npz", "bvh")


def test_the_licence_free_path_keeps_people_seen_a_third_of_a_second_the_smpl_path_vibes_25_frames(tmp_path):
    def tracklets(method, settings=None):
        spec = RunSpec(cache=str(tmp_path / method), method=method, device="cpu", settings=settings or {})
        return build_runner(spec).config("tracklets")

    free, smpl = tracklets("licence-free"), tracklets("smpl")
    assert (free.min_len, free.min_len_s) == (10, 1 / 3) and (smpl.min_len, smpl.min_len_s) == (25, 25 / 30)
    assert tracklets("licence-free", {"tracklets": {"min_len": 25}}).min_len == 25    # the user's setting wins
