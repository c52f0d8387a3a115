"""The report's media and verdicts: H.264 video decoded back, stride, timeline spans, low-confidence
marks, mocap bands (rescaling, and the shipped file against the documented command), verdicts, viewer data."""
from __future__ import annotations

import json

import cv2
import numpy as np
import pandas as pd
import pytest

from video2mesh.models.metrics import motion as mm
from video2mesh.models.writers.video import H264Writer, h264_encoder
from video2mesh.benchmarks import report_bands as rbc
from video2mesh.stages import _report_bands as rb
from video2mesh.stages import _report_media as rmedia
from video2mesh.stages import _viewer

needs_h264 = pytest.mark.skipif(h264_encoder() is None, reason="no H.264 encoder (pip install av)")


def bars(i: int, w: int = 160, h: int = 96) -> np.ndarray:
    """A frame with a red bar moving 8 px a frame over grey."""
    img = np.full((h, w, 3), 90, np.uint8)
    img[:, (8 * i) % w:(8 * i) % w + 16] = (0, 0, 255)
    return img


@needs_h264
def test_h264_writer_round_trips_through_an_independent_decoder(tmp_path):
    import av

    path = tmp_path / "v.mp4"
    with H264Writer(path, 160, 96, 12.5) as w:
        for i in range(30):
            w.write(bars(i))
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        assert s.codec_context.name == "h264" and s.codec_context.pix_fmt == "yuv420p"
        assert float(s.average_rate) == pytest.approx(12.5)
    cap = cv2.VideoCapture(str(path))                       # OpenCV's own FFmpeg decodes it
    frames = []
    while True:
        ok, img = cap.read()
        if not ok:
            break
        frames.append(img)
    assert len(frames) == 30
    for i in (0, 13, 29):
        assert np.abs(frames[i].astype(int) - bars(i)).mean() < 4.0       # lossy, but the same picture


def test_writer_refuses_odd_sizes(tmp_path):
    if h264_encoder() is None:
        pytest.skip("no H.264 encoder (pip install av)")
    with pytest.raises(ValueError, match="even"):
        H264Writer(tmp_path / "v.mp4", 161, 96, 25)


def test_stride_spans_and_timeline():
    assert [rmedia.video_stride(n, 900) for n in (1, 900, 901, 2700, 2701)] == [1, 1, 2, 3, 4]
    assert rmedia.video_stride(5000, 0) == 1
    assert rmedia.spans(np.array([0, 1, 2, 5, 6, 9])) == [(0, 2), (5, 6), (9, 9)]
    trk = pd.DataFrame({"frame": np.r_[0:10, 0:10], "track_id": [0] * 10 + [1] * 10, "score": 0.9,
                        "interpolated": [False] * 4 + [True] * 2 + [False] * 14})
    svg = rmedia.timeline_svg(trk, {0: np.r_[0:10], 1: np.r_[0:3, 6:10]}, 10, 25.0, {(2, 1)})
    assert svg.count("<title>track 0: frames 1–10</title>") == 1
    assert "track 1: frames 1–3" in svg and "track 1: frames 7–10" in svg
    assert svg.count('class="interp"') == 1 and "interpolated 5–6" in svg


def fake_draw(f, img):
    cv2.rectangle(img, (40, 20), (80, 70), (0, 200, 0), -1)
    return [(7, (40.0, 20.0, 80.0, 70.0))]


@needs_h264
def test_overlay_streams_every_kth_frame_marks_low_confidence_and_crops_thumbnails(tmp_path):
    n = 50
    frames = ((i, np.full((96, 160, 3), 90, np.uint8)) for i in range(n))
    data, meta, thumbs = rmedia.render_overlay(frames, fake_draw, n, 25.0, {(3, 7)}, {7: 4}, 160, max_frames=20)
    assert meta["stride"] == 3 and meta["frames"] == 17 and meta["fps"] == pytest.approx(25 / 3)
    path = tmp_path / "o.mp4"
    path.write_bytes(data)
    cap = cv2.VideoCapture(str(path))
    got = [cap.read()[1] for _ in range(3)]                       # video frames 0, 3, 6 of the clip
    red = lambda img: ((img[..., 2] > 150) & (img[..., 1] < 90) & (img[..., 0] < 90))   # noqa: E731
    box = (slice(16, 74), slice(36, 84))
    on_edge = lambda img: red(img)[box].sum() - red(img)[22:68, 42:78].sum()   # noqa: E731  (frame of the box only)
    assert on_edge(got[1]) > 20                                   # frame 3 is low confidence: red dashed box
    assert on_edge(got[0]) < 5 and on_edge(got[2]) < 5
    thumb = cv2.imdecode(np.frombuffer(thumbs[7], np.uint8), cv2.IMREAD_COLOR)
    assert max(thumb.shape[:2]) == 160 and (thumb[..., 1] > 150).mean() > 0.3     # mostly the drawn green box


def test_overlay_without_video_still_gives_thumbnails():
    data, meta, thumbs = rmedia.render_overlay(((i, bars(i)) for i in range(5)), fake_draw, 5, 25.0, set(), {7: 2}, 160, 0)
    assert data is None and "video_max_frames = 0" in meta["reason"] and 7 in thumbs


def test_bands_rescale_with_the_square_of_the_frame_time():
    table = json.loads(rb.BANDS_FILE.read_text())["joint_sets"][mm.COCO_17.name]
    at24 = rb.load_bands(mm.COCO_17.name, 24.0)
    at20 = rb.load_bands(mm.COCO_17.name, 20.0)                   # nearest tabulated: 24
    assert at20["fps_band"] == 24.0
    for part in table["24"]["accel_mm"]:
        assert at24["accel_mm"][part]["p95"] == pytest.approx(table["24"]["accel_mm"][part]["p95"])
        assert at20["accel_mm"][part]["p95"] == pytest.approx(table["24"]["accel_mm"][part]["p95"] * (24 / 20) ** 2)
    assert at20["sliding_mm"]["p95"] == pytest.approx(table["24"]["sliding_mm"]["p95"] * 24 / 20)
    assert "CMU" in at20["source"]


def test_shipped_bands_are_what_the_documented_command_computes(shared_data):
    files = [shared_data / "mocap" / "131_02.bvh", shared_data / "mocap" / "scaled_131_01.bvh"]
    shipped = json.loads(rb.BANDS_FILE.read_text())
    fresh = rbc.compute_bands([str(f) for f in files], fps_list=(12, 30))
    for js in fresh["joint_sets"]:
        for fps in ("12", "30"):
            a, b = fresh["joint_sets"][js][fps], shipped["joint_sets"][js][fps]
            assert a["n_windows"] == b["n_windows"]
            for part, band in a["accel_mm"].items():
                assert band == pytest.approx(b["accel_mm"][part], abs=1e-3)


def test_mocap_walk_accelerations_are_physically_plausible(shared_data):
    """Independent of our metric code: walking legs accelerate ~1-3 g peak; a window's mean leg
    acceleration at 30 fps is then a few mm/frame^2 (1 g = 9.81 m/s^2 = 10.9 mm/frame^2 at 30 fps)."""
    b = rb.load_bands(mm.COCO_17.name, 30.0)
    g_mm = 9810 / 30 ** 2
    for part in ("leg_left", "leg_right"):
        assert 0.1 * g_mm < b["accel_mm"][part]["p50"] < 3 * g_mm


def summary(accel: float, interp: float = 0.0, n: int = 100) -> dict:
    parts = list(mm.COCO_17.parts) + ["root"]
    return {"accel_mm": {p: {"mean": accel} for p in parts}, "jitter_mm": {p: 0.0 for p in parts},
            "foot": {"ankle_left": {"sliding_mm": 0.0}}, "interpolated_share": interp, "low_score_share": 0.0,
            "n_frames": n, "uncertainty": {"mean": 0.1}}


def test_verdicts_compare_with_the_bands_and_say_what_to_try():
    bands = rb.load_bands(mm.COCO_17.name, 30.0)
    p95 = min(b["p95"] for b in bands["accel_mm"].values())
    assert rb.verdict(summary(0.5 * p95), bands, 30.0, {})["verdict"] == "usable"
    v = rb.verdict(summary(1e3), bands, 30.0, {"accel": "--set fit.w_smooth=1.0"})
    assert v["verdict"] == "redo" and any("--set fit.w_smooth" in r["try"] and "arm_left acceleration" in r["why"] for r in v["reasons"])
    v = rb.verdict(summary(0.5 * p95, interp=0.3), bands, 30.0, {"gaps": "--set tracks.track_buffer=60"})
    assert v["verdict"] == "check" and v["reasons"][0]["try"] == "--set tracks.track_buffer=60"
    assert rb.verdict(summary(0.5 * p95, n=30), bands, 30.0, {})["verdict"] == "check"      # 1 s < 2 s


def test_viewer_data_is_absolute_yup_with_the_feet_on_the_floor():
    rng = np.random.default_rng(1)
    j = rng.normal(0, 0.3, (6, 17, 3)) + [0, 0, 4]
    trans = rng.normal(0, 0.1, (6, 3)) + [0, 0, 4]
    motion = pd.DataFrame({"frame": np.arange(6) * 2, "track_id": 3, "joints3d": list(j.reshape(6, -1)),
                           "trans": list(trans), "uncertainty": 0.0})
    d = _viewer.viewer_data(motion, mm.COCO_17, 25.0, 12, stride=2)
    want = (j - j[:, [11, 12]].mean(1, keepdims=True) + trans[:, None]) * [1, -1, -1]
    floor = np.percentile(want[:, [15, 16], 1], 2)
    want[..., 1] -= floor
    got = np.asarray(d["tracks"][0]["joints_mm"]).reshape(6, 17, 3) / 1000
    np.testing.assert_allclose(got, want, atol=6e-4)
    assert d["tracks"][0]["frames"] == [0, 2, 4, 6, 8, 10] and d["floor_shift_m"] == pytest.approx(-floor, abs=1e-4)
    assert len(d["edges"]) == 16


def test_without_the_viewer_library_the_page_says_how_to_get_it():
    html = _viewer.viewer_section({"tracks": []}, has_bundle=False)
    assert "v2m models setup-viewer" in html and "<script" not in html


def test_viewer_bundle_is_used_only_when_it_matches_its_recorded_sha256(tmp_path):
    import hashlib

    from video2mesh.pipeline import viewer_lib

    assert viewer_lib.viewer_bundle(tmp_path) is None and viewer_lib.viewer_id(tmp_path) == ""
    data = b"window.V2M_THREE = {};"
    (tmp_path / viewer_lib.BUNDLE).write_bytes(data)
    (tmp_path / viewer_lib.INFO).write_text(json.dumps({"three": "0.0.1", "sha256": hashlib.sha256(data).hexdigest()}))
    assert viewer_lib.viewer_bundle(tmp_path)[0] == data
    assert viewer_lib.viewer_id(tmp_path).startswith("three 0.0.1 ")
    (tmp_path / viewer_lib.BUNDLE).write_bytes(data + b" ")                 # changed after set-up: not trusted
    assert viewer_lib.viewer_bundle(tmp_path) is None


def test_video_settings_are_checked():
    from video2mesh.pipeline.errors import ConfigError
    from video2mesh.stages._report_core import MotionReportConfig

    assert MotionReportConfig().video_max_frames == 900
    for bad in ({"video_max_frames": -1}, {"video_width": 8}):
        with pytest.raises(ConfigError, match="video"):
            MotionReportConfig(**bad)


def _overlap(a, b) -> bool:
    return a[0] < b[0] + b[2] and b[0] < a[0] + a[2] and a[1] < b[1] + b[3] and b[1] < a[1] + a[3]


def test_labels_of_people_side_by_side_do_not_cover_each_other():
    """The street clip's two walkers 30 px apart had their plates drawn over each other ("#0#1 v c" in the
    overlay). Plates keep their wanted spot when free, never overlap otherwise, and stay in the frame."""
    from video2mesh.stages._report_media import place_labels

    sizes = [(120, 30), (120, 30), (60, 30), (200, 30)]
    anchors = [(300, 80), (330, 82), (700, 300), (0, 0)]       # 0 and 1 collide; 2 is alone; 3 at the top corner
    spots = place_labels(anchors, sizes, 640, 360)
    rects = [(*xy, *wh) for xy, wh in zip(spots, sizes)]
    assert all(not _overlap(rects[i], rects[j]) for i in range(4) for j in range(i + 1, 4))
    assert all(0 <= x <= 640 - w and 0 <= y <= 360 - h for x, y, w, h in rects)
    assert spots[0] == (300, 80) and spots[2] == (580, 300) and spots[3] == (0, 0)   # free spots kept (2 clamped)
    assert spots[1][0] == 330 and spots[1][1] == 80 - 30                              # the second moved up one row
    # no room above (the top row): the colliding plate goes below instead
    spots = place_labels([(10, 0), (40, 0)], [(100, 30), (100, 30)], 640, 360)
    assert spots == [(10, 0), (40, 30)]
