"""The shared LiteRT loader: LiteRT's start-up banner is dropped, every other stderr line passes."""
from __future__ import annotations

import os

from video2mesh.models.runners.litert import LITERT_BANNER, without_litert_banner


def test_only_the_banner_is_dropped(capfd):
    with without_litert_banner():
        os.write(2, LITERT_BANNER + b"\n")     # as LiteRT's C++ writes it: straight to file descriptor 2
        os.write(2, b"a real warning\n")
    err = capfd.readouterr().err
    assert err == "a real warning\n", err
