"""TensorFlow ops for models/runners/tfjs_graph.py, each `op(attr, *inputs) -> tensor or tuple of tensors`.

TF semantics on torch tensors: images NHWC (convolutions run on an NCHW *view* of the NHWC tensor, which
torch treats as channels-last memory: no copies), TF int32 as int64, padding SAME as TF computes it
(total = max((ceil(in / s) - 1) * s + (k - 1) * d + 1 - in, 0), the smaller half before). Only what
MoveNet MultiPose and NanoDet use; `OPS` lists them.
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F


class UnsupportedOp(NotImplementedError):
    """A TF op (or an attribute value of one) this executor does not implement."""


_TYPES = {"DT_FLOAT": torch.float32, "DT_HALF": torch.float32, "DT_INT32": torch.int64, "DT_INT64": torch.int64,
          "DT_BOOL": torch.bool}


def _ints(t: torch.Tensor) -> list[int]:
    return [int(v) for v in t.reshape(-1).tolist()]


def _same_pad(size: int, k: int, s: int, d: int) -> tuple[int, int]:
    total = max((math.ceil(size / s) - 1) * s + (k - 1) * d + 1 - size, 0)
    return total // 2, total - total // 2


def _pad_nchw(x: torch.Tensor, attr: dict, kh: int, kw: int, value: float = 0.0) -> torch.Tensor:
    """x (N, C, H, W) padded as attr['padding'] says for a kh x kw window."""
    pad = attr.get("padding", "VALID")
    s, d = attr.get("strides", [1] * 4), attr.get("dilations", [1] * 4)
    if pad == "VALID":
        return x
    if pad == "SAME":
        t, b = _same_pad(x.shape[2], kh, s[1], d[1])
        left, r = _same_pad(x.shape[3], kw, s[2], d[2])
    elif pad == "EXPLICIT":
        e = attr["explicit_paddings"]          # NHWC pairs: (before, after) per dim
        t, b, left, r = e[2], e[3], e[4], e[5]
    else:
        raise UnsupportedOp(f"padding {pad}")
    return F.pad(x, (left, r, t, b), value=value) if t or b or left or r else x


def _check_nhwc(attr: dict) -> None:
    if attr.get("data_format", "NHWC") != "NHWC":
        raise UnsupportedOp(f"data_format {attr['data_format']}")


def conv2d(attr, x, w, *args, depthwise=False):
    """Conv2D / DepthwiseConv2dNative (and their fused forms: args = bias, then fused_ops applied in order).
    w: (kh, kw, Cin, Cout) or, depthwise, (kh, kw, Cin, M) giving output channel c * M + m."""
    _check_nhwc(attr)
    kh, kw, cin, cout = w.shape
    s, d = attr.get("strides", [1] * 4), attr.get("dilations", [1] * 4)
    xc = _pad_nchw(x.permute(0, 3, 1, 2), attr, kh, kw)
    if depthwise:
        weight, groups = w.permute(2, 3, 0, 1).reshape(cin * cout, 1, kh, kw), cin
    else:
        weight, groups = w.permute(3, 2, 0, 1), 1
    y = F.conv2d(xc, weight, None, (s[1], s[2]), 0, (d[1], d[2]), groups).permute(0, 2, 3, 1)
    for i, op in enumerate(attr.get("fused_ops", [])):
        if op == "BiasAdd":
            y = y + args[i]
        elif op in ("Relu", "Relu6", "LeakyRelu", "Elu", "Sigmoid"):
            y = _ACT[op](attr | {"alpha": attr.get("leakyrelu_alpha", 0.2)}, y)
        else:
            raise UnsupportedOp(f"fused op {op}")
    return y


def max_pool(attr, x):
    _check_nhwc(attr)
    k, s = attr["ksize"], attr["strides"]
    xc = _pad_nchw(x.permute(0, 3, 1, 2), attr, k[1], k[2], value=-math.inf)
    return F.max_pool2d(xc, (k[1], k[2]), (s[1], s[2])).permute(0, 2, 3, 1)


def resize_bilinear(attr, x, size):
    """NHWC bilinear resize. half_pixel_centers: source = (dst + 0.5) * in / out - 0.5 (torch's
    align_corners=False, OpenCV's INTER_LINEAR); align_corners: the corner pixels' centres coincide."""
    h, w = _ints(size)
    ac, hp = attr.get("align_corners", False), attr.get("half_pixel_centers", False)
    if ac == hp:
        raise UnsupportedOp(f"ResizeBilinear align_corners={ac} half_pixel_centers={hp}")
    y = F.interpolate(x.permute(0, 3, 1, 2).float(), size=(h, w), mode="bilinear", align_corners=ac)
    return y.permute(0, 2, 3, 1)


def strided_slice(attr, x, begin, end, strides):
    """TF StridedSlice as a Python index: each spec entry a slice, an int (shrink), None (new axis) or ..."""
    b, e, st = _ints(begin), _ints(end), _ints(strides)
    bit = lambda m, i: bool((attr.get(m, 0) >> i) & 1)  # noqa: E731
    index: list = []
    for i in range(len(b)):
        if bit("ellipsis_mask", i):
            index.append(Ellipsis)
        elif bit("new_axis_mask", i):
            index.append(None)
        elif bit("shrink_axis_mask", i):
            index.append(b[i])
        else:
            index.append(slice(None if bit("begin_mask", i) else b[i], None if bit("end_mask", i) else e[i], st[i]))
    if any(isinstance(s, slice) and s.step < 0 for s in index):    # torch has no negative steps
        return torch.from_numpy(np.ascontiguousarray(x.numpy()[tuple(index)]))
    return x[tuple(index)]


def gather_nd(attr, params, indices):
    idx = indices.long()
    return params[tuple(idx[..., i] for i in range(idx.shape[-1]))]


def select(attr, cond, a, b):
    if cond.dim() == 1 and a.dim() > 1:          # TF Select: a vector condition picks rows
        cond = cond.reshape(-1, *[1] * (a.dim() - 1))
    return torch.where(cond, a, b)


def reduce(fn):
    def op(attr, x, axes):
        dims = [a % x.dim() for a in _ints(axes)] if x.dim() else []
        if not dims:
            return x
        return fn(x, dims, attr.get("keep_dims", False))
    return op


def split(attr, dim, x):
    d, n = int(dim) % x.dim(), attr["num_split"]
    if x.shape[d] % n:
        raise UnsupportedOp(f"Split of {x.shape[d]} into {n} equal parts")
    return torch.chunk(x, n, d)


def split_v(attr, x, sizes, dim):
    s, d = _ints(sizes), int(dim) % x.dim()
    if -1 in s:
        s[s.index(-1)] = x.shape[d] - (sum(s) + 1)
    return torch.split(x, s, d)


def sparse_to_dense(attr, indices, shape, values, default):
    out = torch.full(_ints(shape), default.item(), dtype=values.dtype)
    idx = indices.long()
    idx = idx.reshape(-1, 1) if idx.dim() < 2 else idx     # (N, rank) indices; a vector for a 1-D output
    if idx.numel():
        out[tuple(idx.T)] = values
    return out


def _bad(text):
    raise UnsupportedOp(text)


def _range(attr, start, limit, delta):
    dtype = _TYPES.get(attr.get("Tidx", "DT_INT32"), torch.int64)
    return torch.arange(start.item(), limit.item(), delta.item(), dtype=dtype)


def _squeeze(attr, x):
    dims = attr.get("squeeze_dims", [])
    return x.squeeze() if not dims else x.squeeze(tuple(d % x.dim() for d in dims))


def _reshape(attr, x, shape):
    return x.reshape(_ints(shape))


def _floordiv(attr, a, b):
    return torch.div(a, b, rounding_mode="floor")


def _topk(attr, x, k):
    v, i = torch.topk(x, int(k), dim=-1, largest=True, sorted=True)
    return v, i


_ACT = {"Relu": lambda a, x: torch.relu(x), "Relu6": lambda a, x: x.clamp(0, 6),
        "LeakyRelu": lambda a, x: F.leaky_relu(x, a.get("alpha", 0.2)), "Elu": lambda a, x: F.elu(x),
        "Sigmoid": lambda a, x: torch.sigmoid(x)}

_binary = {"Add": torch.add, "AddV2": torch.add, "Sub": torch.sub, "Mul": torch.mul, "RealDiv": torch.div,
           "Maximum": torch.maximum, "Minimum": torch.minimum, "Less": torch.lt, "Greater": torch.gt,
           "GreaterEqual": torch.ge, "LessEqual": torch.le, "Equal": torch.eq, "LogicalAnd": torch.logical_and,
           "SquaredDifference": lambda a, b: (a - b) ** 2}

OPS = {
    **{k: (lambda f: lambda attr, a, b: f(a, b))(f) for k, f in _binary.items()},
    **_ACT,
    "FloorDiv": _floordiv,
    "Abs": lambda attr, x: x.abs(), "Exp": lambda attr, x: x.exp(), "Reciprocal": lambda attr, x: 1 / x,
    "Identity": lambda attr, x: x,
    "AddN": lambda attr, *xs: sum(xs[1:], xs[0]),
    "Cast": lambda attr, x: x.to(_TYPES[attr["DstT"]]) if attr["DstT"] in _TYPES else _bad(f"Cast to {attr['DstT']}"),
    "_FusedConv2D": conv2d, "Conv2D": conv2d,
    "FusedDepthwiseConv2dNative": lambda attr, x, w, *a: conv2d(attr, x, w, *a, depthwise=True),
    "DepthwiseConv2dNative": lambda attr, x, w: conv2d(attr, x, w, depthwise=True),
    "MaxPool": max_pool, "ResizeBilinear": resize_bilinear,
    "Pad": lambda attr, x, p: _pad_nd(x, p, 0.0), "PadV2": lambda attr, x, p, v: _pad_nd(x, p, v.item()),
    "Transpose": lambda attr, x, perm: x.permute(_ints(perm)),
    "Shape": lambda attr, x: torch.tensor(x.shape, dtype=torch.int64),
    "Size": lambda attr, x: torch.tensor(x.numel(), dtype=torch.int64),
    "Reshape": _reshape, "Squeeze": _squeeze,
    "ExpandDims": lambda attr, x, d: x.unsqueeze(int(d) if int(d) >= 0 else x.dim() + 1 + int(d)),
    "StridedSlice": strided_slice, "GatherNd": gather_nd,
    "Pack": lambda attr, *xs: torch.stack(xs, attr.get("axis", 0)),
    "Unpack": lambda attr, x: torch.unbind(x, attr.get("axis", 0)),
    "ConcatV2": lambda attr, *xs: torch.cat(xs[:-1], int(xs[-1])),
    "Tile": lambda attr, x, m: x.repeat(_ints(m)),
    "Fill": lambda attr, dims, v: torch.full(_ints(dims), v.item(), dtype=v.dtype),
    "Range": _range, "Select": select, "TopKV2": _topk,
    "ArgMax": lambda attr, x, d: x.argmax(int(d)),
    "Sum": reduce(lambda x, d, k: x.sum(d, keepdim=k)), "Max": reduce(lambda x, d, k: x.amax(d, keepdim=k)),
    "Split": split, "SplitV": split_v, "SparseToDense": sparse_to_dense,
}


def _pad_nd(x: torch.Tensor, paddings: torch.Tensor, value: float) -> torch.Tensor:
    """TF Pad: paddings (rank, 2) of (before, after) per dim, first dim first (F.pad wants last first)."""
    p = paddings.reshape(-1, 2).tolist()
    flat = [int(v) for pair in reversed(p) for v in pair]
    return F.pad(x, flat, value=value) if any(flat) else x
