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
