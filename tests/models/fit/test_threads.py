"""The fit's thread setting: restored after the block, never changed from a worker thread."""
from __future__ import annotations

import threading

import torch

from video2mesh.models.fit.anny_fit import torch_threads


def test_torch_threads_sets_and_restores_on_the_main_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(3)
    try:
        with torch_threads(1):
            assert torch.get_num_threads() == 1
        assert torch.get_num_threads() == 3
    finally:
        torch.set_num_threads(before)


def test_torch_threads_leaves_the_process_setting_alone_on_a_worker_thread():
    """`v2m watch` fits videos on worker threads: a process-wide set/restore there would race."""
    before = torch.get_num_threads()
    torch.set_num_threads(3)
    seen: list[int] = []

    def work():
        with torch_threads(1):
            seen.append(torch.get_num_threads())

    try:
        t = threading.Thread(target=work)
        t.start()
        t.join()
        assert seen == [3] and torch.get_num_threads() == 3
    finally:
        torch.set_num_threads(before)
