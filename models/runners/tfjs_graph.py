"""Our own executor for a TensorFlow.js "graph-model" (model.json + weight shards) in torch, on the CPU.

A graph model is a frozen TensorFlow GraphDef written as JSON: `modelTopology.node` is a list of
{name, op, input, attr}; an input names another node ("node", "node:k" for its k-th output, "^node" a
control dependency, which carries no data and is ignored here). Every `Const`'s value lies in the
weight shards: `weightsManifest` lists groups of {paths, weights}; the shards of all groups are one
byte string, the weights packed in manifest order, each `dtype` (float32 / int32 / bool) or, with
`quantization`, stored as float16 or as uint8 / uint16 codes q giving q * scale + min.

The graph keeps TensorFlow's semantics: images are NHWC, integer tensors int32 in TF are int64 here
(one integer type: indices, shapes and FloorDiv stay exact), bool is bool, float is float32. The ops are
in models/runners/tfjs_ops.py: exactly those MoveNet MultiPose and NanoDet use; any other is a clear
error naming it (`UnsupportedOp`) when the model loads, not half-way through a run.
"""
from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .tfjs_ops import OPS, UnsupportedOp

_DTYPES = {"float32": (np.float32, torch.float32), "int32": (np.int32, torch.int64), "bool": (np.bool_, torch.bool)}
_QUANT = {"float16": np.float16, "uint8": np.uint8, "uint16": np.uint16}


def decode_weights(manifest: list[dict], data: bytes) -> dict[str, torch.Tensor]:
    """name -> tensor of every weight in `manifest` (its groups in order), read from the concatenated shards
    `data`; quantised weights are dequantised (float16 exactly, uint8/uint16 as q * scale + min)."""
    out, offset = {}, 0
    for group in manifest:
        for w in group["weights"]:
            shape, n = w["shape"], int(np.prod(w["shape"], dtype=np.int64))
            if w["dtype"] not in _DTYPES:
                raise ValueError(f"tfjs weight {w['name']}: dtype {w['dtype']} is not supported")
            q = w.get("quantization")
            stored = _QUANT[q["dtype"]] if q else _DTYPES[w["dtype"]][0]
            size = n * np.dtype(stored).itemsize
            if offset + size > len(data):
                raise ValueError(f"tfjs weights end at byte {len(data)}, {w['name']} needs {offset + size}: shards incomplete?")
            arr = np.frombuffer(data, stored, n, offset).reshape(shape)
            offset += size
            if q and q["dtype"] != "float16":
                arr = arr.astype(np.float32) * np.float32(q["scale"]) + np.float32(q["min"])
            out[w["name"]] = torch.from_numpy(arr.astype(_DTYPES[w["dtype"]][0])).to(_DTYPES[w["dtype"]][1])
    if offset != len(data):
        raise ValueError(f"tfjs weights: manifest covers {offset} bytes of {len(data)}")
    return out


def parse_attr(value: dict):
    """One GraphDef AttrValue as JSON -> a Python value (strings are base64 in the JSON)."""
    if "list" in value:
        lst = value["list"]
        if "s" in lst:
            return [base64.b64decode(s).decode() for s in lst["s"]]
        if "i" in lst:
            return [int(i) for i in lst["i"]]
        if "f" in lst:
            return [float(f) for f in lst["f"]]
        return []
    if "s" in value:
        return base64.b64decode(value["s"]).decode()
    if "i" in value:
        return int(value["i"])
    if "f" in value:
        return float(value["f"])
    if "b" in value:
        return bool(value["b"])
    if "type" in value:
        return value["type"]
    return value


@dataclass(frozen=True)
class Node:
    name: str
    op: str
    inputs: tuple[tuple[str, int], ...]   # (node name, output index); control inputs dropped
    attr: dict


def _ref(text: str) -> tuple[str, int]:
    name, _, k = text.partition(":")
    return name, int(k) if k else 0


class GraphModel:
    """A loaded TF.js graph model: `model(x)` or `model(input_name=x, ...)` -> list of output tensors
    (the signature's outputs, in its order; `self.outputs` names them)."""

    def __init__(self, path_json: str | Path):
        path = Path(path_json)
        if not path.is_file():
            raise FileNotFoundError(f"TF.js model {path} not found")
        doc = json.loads(path.read_text())
        if doc.get("format") not in (None, "graph-model"):
            raise ValueError(f"{path}: format {doc.get('format')!r}, expected a TF.js graph-model")
        data = b"".join((path.parent / p).read_bytes() for g in doc["weightsManifest"] for p in g["paths"])
        self.consts = decode_weights(doc["weightsManifest"], data)
        self.nodes = {n["name"]: Node(n["name"], n["op"], tuple(_ref(i) for i in n.get("input", []) if not i.startswith("^")),
                                      {k: parse_attr(v) for k, v in n.get("attr", {}).items()})
                      for n in doc["modelTopology"]["node"]}
        sig = doc.get("signature", {})
        self.inputs = [_ref(v["name"])[0] for v in sig.get("inputs", {}).values()] or \
            [n.name for n in self.nodes.values() if n.op == "Placeholder"]
        self.outputs = [_ref(v["name"]) for v in sig.get("outputs", {}).values()]
        if not self.outputs:
            raise ValueError(f"{path}: no signature outputs")
        self.order = self._topological([n for n, _ in self.outputs])
        missing = sorted({self.nodes[n].op for n in self.order} - set(OPS) - {"Const", "Placeholder"})
        if missing:
            raise UnsupportedOp(f"{path.name}: TF op(s) {', '.join(missing)} not implemented in models/runners/tfjs_ops.py")
        for n in self.order:
            if self.nodes[n].op == "Const" and n not in self.consts:
                raise ValueError(f"{path}: Const {n} has no weight in the manifest")

    def _topological(self, targets: list[str]) -> list[str]:
        """The nodes the targets need, each after its inputs (iterative DFS: graphs are deep)."""
        order, state, stack = [], {}, [(t, False) for t in reversed(targets)]
        while stack:
            name, done = stack.pop()
            if done:
                state[name] = 2
                order.append(name)
                continue
            if state.get(name):
                if state[name] == 1:
                    raise ValueError(f"tfjs graph: cycle through {name}")
                continue
            if name not in self.nodes:
                raise ValueError(f"tfjs graph: input {name} is not a node")
            state[name] = 1
            stack.append((name, True))
            stack += [(i, False) for i, _ in reversed(self.nodes[name].inputs) if not state.get(i)]
        return order

    @torch.no_grad()
    def __call__(self, *args: torch.Tensor | np.ndarray, **kwargs) -> list[torch.Tensor]:
        feeds = dict(zip(self.inputs, args)) | kwargs
        if set(feeds) != set(self.inputs):
            raise ValueError(f"tfjs graph wants inputs {self.inputs}, got {sorted(feeds)}")
        values: dict[str, tuple] = {}
        for name in self.order:
            node = self.nodes[name]
            if node.op == "Const":
                values[name] = (self.consts[name],)
            elif node.op == "Placeholder":
                values[name] = (_feed(feeds[name], node.attr.get("dtype")),)
            else:
                out = OPS[node.op](node.attr, *[values[i][k] for i, k in node.inputs])
                values[name] = tuple(out) if isinstance(out, (list, tuple)) else (out,)
        return [values[n][k] for n, k in self.outputs]


def _feed(x, dtype: str | None) -> torch.Tensor:
    t = torch.as_tensor(np.ascontiguousarray(x)) if isinstance(x, np.ndarray) else torch.as_tensor(x)
    if dtype in ("DT_INT32", "DT_INT64"):
        return t.to(torch.int64)
    if dtype == "DT_BOOL":
        return t.to(torch.bool)
    return t.to(torch.float32)
