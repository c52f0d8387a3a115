"""benchmarks/movenet_probe.py's pieces that need no model: the boxes union and the every-k seeding schedule."""
from __future__ import annotations

import numpy as np

from video2mesh.benchmarks.movenet_probe import MoveNetSeeded, union


def test_union_keeps_the_search_boxes_and_adds_only_new_people():
    plain = [np.array([[0, 0, 10, 20], [50, 0, 60, 20]], float), np.zeros((0, 4))]
    extra = [np.array([[1, 1, 11, 21, 0.9],          # the first person again (IoU 0.74): dropped
                       [100, 0, 110, 20, 0.2]]),     # nobody there: added
             np.array([[5, 5, 15, 25, 0.3]])]
    out = union(plain, extra)
    np.testing.assert_array_equal(out[0], [[0, 0, 10, 20], [50, 0, 60, 20], [100, 0, 110, 20]])
    np.testing.assert_array_equal(out[1], [[5, 5, 15, 25]])


class _Net:
    def __init__(self):
        self.calls = 0

    def __call__(self, rgb, size, min_score):
        self.calls += 1
        return np.array([[0, 0, 10, 20, 0.5]], np.float32), None


def test_seeds_come_on_every_kth_whole_frame_call():
    net = _Net()
    seeded = MoveNetSeeded(None, net, 256, 0.2, every=3)
    got = [len(seeded.seeds(None)) for _ in range(7)]
    assert got == [1, 0, 0, 1, 0, 0, 1] and net.calls == 3
