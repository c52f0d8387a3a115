import numpy as np
import pandas as pd
import pytest

from video2mesh.stages.tracks import TrackConfig, associate


@pytest.mark.parametrize("tracker", ["bytetrack", "botsort"])
def test_two_crossing_free_people_keep_their_ids(tracker):
    rows = []
    for f in range(40):
        if f == 20:
            continue  # a missed detection: the tracker bridges it
        rows.append((f, 10 + 2 * f, 20, 60 + 2 * f, 120, 0.9))
        rows.append((f, 300 - 2 * f, 30, 350 - 2 * f, 130, 0.8))
    det = pd.DataFrame(rows, columns=["frame", "x1", "y1", "x2", "y2", "score"])
    out = associate(det, 40, TrackConfig(tracker=tracker), fps=30.0)
    assert out.track_id.nunique() == 2
    left = out[out.x1 < 150].track_id.unique()
    right = out[out.x1 >= 150].track_id.unique()
    assert len(left) == 1 and len(right) == 1 and left[0] != right[0]
    # boxes are the detector's, unchanged
    r = out[(out.frame == 5) & (out.track_id == left[0])].iloc[0]
    np.testing.assert_allclose([r.x1, r.y1, r.x2, r.y2], [20, 20, 70, 120])


def _crossing_with_a_drifted_follower(n: int = 45, k: int = 30) -> pd.DataFrame:
    """Two look-alikes: A in front, slow (follower 0); B behind, walking left onto A (follower 1). From frame
    k B is hidden; B's follower has slid onto A (its first box there mixes both people, `drifted` = 1) and
    A's own follower is lost, as on the 2-person crowd clip at frame 85. Then that new follower (2) moves
    with A."""
    rows = []
    for f in range(n):
        ax, bx = 240 + 0.5 * (f - k), 266 + 3.0 * (k - f)
        if f < k:
            rows += [(f, ax, 107, ax + 70, 290, 1.0, 0, -1), (f, bx, 67, bx + 76, 259, 1.0, 1, -1)]
        elif f == k:
            rows.append((f, 250, 95, 340, 285, 1.0, 2, 1))
        else:
            rows.append((f, ax, 105, ax + 80, 290, 1.0, 2, -1))
    return pd.DataFrame(rows, columns=["frame", "x1", "y1", "x2", "y2", "score", "follower", "drifted"])


def test_a_box_from_a_follower_that_slid_off_a_person_never_goes_to_their_track():
    det = _crossing_with_a_drifted_follower()
    a_track = lambda out: out[(out.frame < 30) & (out.y1 > 100)].track_id.unique()  # noqa: E731
    plain = associate(det.drop(columns=["follower", "drifted"]), 45, TrackConfig(), fps=30.0)
    # IoU alone gives the mixed box to B's track (its Kalman prediction overlaps it more): A's box on B's id
    assert plain[plain.frame == 30].track_id.item() != a_track(plain).item()
    out = associate(det, 45, TrackConfig(), fps=30.0)
    assert len(a_track(out)) == 1
    assert set(out[out.frame >= 30].track_id) == set(a_track(out))   # A keeps their id through B's occlusion
    off = associate(det, 45, TrackConfig(drifted=False, follower_cost=1.0), fps=30.0)
    pd.testing.assert_frame_equal(off, plain)                         # both cues off: plain ByteTrack


class _Box:
    def __init__(self, track_id=None, idx=None):
        self.track_id, self.idx = track_id, idx


def test_follower_cue_costs():
    from video2mesh.stages.tracks import FollowerCue

    class Tracker:
        get_dists = None

    t = Tracker()
    cue = FollowerCue(t, same_cost=0.5)
    cue.chains, cue.drifted = np.array([7, 8, -1]), np.array([-1, 9, -1])
    cue.fed = {1: 7, 2: 9, 3: 5}
    tracks = [_Box(track_id=i) for i in (1, 2, 3)]
    dets = [_Box(idx=i) for i in range(3)]
    iou = np.array([[0.8, 0.3, 0.6], [0.2, 0.4, 1.0], [0.9, 0.7, 0.1]])
    got = cue.adjust(iou, tracks, dets)
    want = np.array([[0.5, 0.3, 0.6],   # follower 7 fed track 1: capped at 0.5
                     [1.0, 1.0, 1.0],   # det 0's follower is track 1's; det 1 slid off follower 9 (track 2's)
                     [1.0, 0.7, 0.1]])  # det 0 is track 1's follower's box
    np.testing.assert_allclose(got, want)
    cue.fed = {1: 7}
    np.testing.assert_allclose(cue.adjust(np.ones((1, 3)), tracks[:1], dets), np.ones((1, 3)))  # no overlap: no cue
