"""Keep torch on one thread in the modules whose tests run big networks (see one_torch_thread)."""
from __future__ import annotations


def one_torch_thread():
    """Generator body of a fixture: torch on one thread for the module, then restored.

    On the shared 2-core test machine, with other suites running, a 2-thread HRNet forward took
    14-23 s against 0.6 s on one thread (OpenMP workers spin-waiting for each other).
    """
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
