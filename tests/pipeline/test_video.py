import hashlib

import numpy as np
import pytest

from video2mesh.pipeline.errors import InputError
from video2mesh.pipeline.video import FrameReader, iter_frames, probe
from tests.conftest import write_video

REAL = {  # file: (frames, fps, width, height) as documented in ../shared/data/README.md
    "mmhuman3d_single_person_demo.mp4": (40, 12.0, 1080, 1920),
    "mmhuman3d_multi_person_demo.mp4": (40, 12.0, 1080, 1920),
    "mmpose_street_demo.mp4": (5, 5.0, 960, 540),
}


def test_probe_synthetic(tmp_path):
    p = write_video(tmp_path / "v.mp4", n_frames=17, size=(64, 48), fps=10)
    info = probe(p)
    assert (info.n_frames, info.fps, info.width, info.height) == (17, 10.0, 64, 48)
    assert info.digest == hashlib.sha256(p.read_bytes()).hexdigest()


@pytest.mark.parametrize("name", sorted(REAL))
def test_real_videos_decode_with_documented_counts(shared_data, name):
    path = shared_data / "videos" / name
    info = probe(path)
    assert (info.n_frames, info.fps, info.width, info.height) == REAL[name]
    frames = [i for i, _ in iter_frames(info)]
    assert frames == list(range(info.n_frames))


def test_chunked_reading_equals_sequential(tmp_path):
    info = probe(write_video(tmp_path / "v.mp4", n_frames=23, size=(64, 48)))
    seq = [f for _, f in iter_frames(info)]
    r = FrameReader(info)
    chunked = [f for s in (0, 8, 16) for _, f in r.frames(s, s + 8)]
    back = [f for _, f in r.frames(5, 7)]  # a jump back reopens the file
    r.close()
    assert len(chunked) == 23
    assert all(np.array_equal(a, b) for a, b in zip(seq, chunked))
    assert np.array_equal(back[0], seq[5]) and np.array_equal(back[1], seq[6])


def test_bad_inputs_give_clear_errors(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        probe(tmp_path / "missing.mp4")
    (tmp_path / "empty.mp4").write_bytes(b"")
    with pytest.raises(InputError, match="empty"):
        probe(tmp_path / "empty.mp4")
    (tmp_path / "notes.mp4").write_text("this is not a video\n" * 100)
    with pytest.raises(InputError, match="not a readable video|no decodable frames"):
        probe(tmp_path / "notes.mp4")
    with pytest.raises(InputError, match="is a folder"):
        probe(tmp_path)


def test_truncated_video(tmp_path):
    full = write_video(tmp_path / "full.mp4", n_frames=30, size=(64, 48))
    data = full.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) // 2])
    # mp4v in an .mp4 keeps its index at the end: half a file has no index and does not open.
    with pytest.raises(InputError):
        probe(cut)
