"""One .tflite network on the CPU through LiteRT (`ai-edge-litert`): how the runners (BlazePose, hands)
load a network from a local path and call it. Nothing is downloaded; the path is the caller's."""
from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

LITERT_BANNER = b"INFO: Created TensorFlow Lite XNNPACK delegate for CPU."


@contextlib.contextmanager
def without_litert_banner():
    """LiteRT's C++ prints LITERT_BANNER to file descriptor 2 (TF_CPP_MIN_LOG_LEVEL does not reach it):
    send fd 2 to a temporary file while interpreters are made, then pass on every other line."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as tmp:
        os.dup2(tmp.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            tmp.seek(0)
            rest = [line for line in tmp.read().splitlines(keepends=True) if line.strip() != LITERT_BANNER]
            if rest:
                os.write(2, b"".join(rest))


class TfliteNet:
    """A network with one input, its tensors allocated once. `net(x)` returns the outputs named in
    `outputs` (the .tflite file's output tensor names), in that order."""

    def __init__(self, path: str | Path, outputs: tuple[str, ...], num_threads: int = 2):
        from ai_edge_litert.interpreter import Interpreter

        with without_litert_banner():
            self._net = Interpreter(model_path=str(path), num_threads=num_threads)
            self._net.allocate_tensors()
        self._in = self._net.get_input_details()[0]["index"]
        index = {d["name"]: d["index"] for d in self._net.get_output_details()}
        self._outs = [index[name] for name in outputs]

    def __call__(self, x: np.ndarray) -> list[np.ndarray]:
        """x: (1, S, S, 3) float32, the network's input -> its named outputs, each with the batch axis."""
        self._net.set_tensor(self._in, x)
        self._net.invoke()
        return [self._net.get_tensor(i) for i in self._outs]
