"""models/runners/tfjs_graph.py on hand-written graph models, against numpy loops, OpenCV and closed forms."""
from __future__ import annotations

import base64
import json

import cv2
import numpy as np
import pytest

from video2mesh.models.runners.tfjs_graph import GraphModel
from video2mesh.models.runners.tfjs_ops import UnsupportedOp

RNG = np.random.default_rng(3)


def _attr(v):
    if isinstance(v, bool):
        return {"b": v}
    if isinstance(v, int):
        return {"i": str(v)}
    if isinstance(v, float):
        return {"f": v}
    if isinstance(v, str) and v.startswith("DT_"):
        return {"type": v}
    if isinstance(v, str):
        return {"s": base64.b64encode(v.encode()).decode()}
    if all(isinstance(x, str) for x in v):
        return {"list": {"s": [base64.b64encode(x.encode()).decode() for x in v]}}
    return {"list": {"i": [str(x) for x in v]}}


def write_model(tmp_path, nodes, consts, outputs, quant=None):
    """A graph-model json + bin: nodes (name, op, inputs, attrs); consts name -> array (int arrays as int32,
    float arrays stored as float16 where `quant` names them, as uint8 codes where quant gives (scale, min))."""
    quant, weights, data = quant or {}, [], b""
    topo = [{"name": "x", "op": "Placeholder", "attr": {"dtype": {"type": "DT_FLOAT"}}}]
    for name, arr in consts.items():
        arr = np.asarray(arr)
        dtype = "int32" if arr.dtype.kind in "iu" else "float32"
        w = {"name": name, "shape": list(arr.shape), "dtype": dtype}
        q = quant.get(name)
        if q == "float16":
            w["quantization"] = {"dtype": "float16", "original_dtype": "float32"}
            data += arr.astype(np.float16).tobytes()
        elif q is not None:
            w["quantization"] = {"dtype": "uint8", "scale": q[0], "min": q[1], "original_dtype": "float32"}
            data += arr.astype(np.uint8).tobytes()
        else:
            data += arr.astype(np.int32 if dtype == "int32" else np.float32).tobytes()
        weights.append(w)
        topo.append({"name": name, "op": "Const", "attr": {"dtype": {"type": "DT_INT32" if dtype == "int32" else "DT_FLOAT"}}})
    for name, op, inputs, attrs in nodes:
        topo.append({"name": name, "op": op, "input": inputs, "attr": {k: _attr(v) for k, v in attrs.items()}})
    doc = {"format": "graph-model", "modelTopology": {"node": topo},
           "signature": {"inputs": {"x": {"name": "x:0"}}, "outputs": {o: {"name": o} for o in outputs}},
           "weightsManifest": [{"paths": ["w.bin"], "weights": weights}]}
    (tmp_path / "w.bin").write_bytes(data)
    (tmp_path / "m.json").write_text(json.dumps(doc))
    return GraphModel(tmp_path / "m.json")


def conv_loop(x, w, stride, pads, bias=None, depthwise=False):
    """NHWC convolution by explicit loops; pads (top, bottom, left, right) given by hand."""
    x = np.pad(x, ((0, 0), pads[:2], pads[2:], (0, 0)))
    kh, kw, cin, cout = w.shape
    oh, ow = (x.shape[1] - kh) // stride + 1, (x.shape[2] - kw) // stride + 1
    out = np.zeros((1, oh, ow, cin * cout if depthwise else cout))
    for i in range(oh):
        for j in range(ow):
            patch = x[0, i * stride: i * stride + kh, j * stride: j * stride + kw]      # (kh, kw, cin)
            if depthwise:
                out[0, i, j] = np.einsum("hwc,hwcm->cm", patch, w).reshape(-1)       # channel c * M + m
            else:
                out[0, i, j] = np.einsum("hwc,hwco->o", patch, w)
    return out if bias is None else out + bias


def test_fused_conv_same_stride2_bias_relu6(tmp_path):
    x = RNG.normal(size=(1, 7, 6, 2)).astype(np.float32) * 3
    w, b = RNG.normal(size=(3, 3, 2, 4)).astype(np.float32), RNG.normal(size=4).astype(np.float32)
    m = write_model(tmp_path, [("y", "_FusedConv2D", ["x", "w", "b"], {"strides": [1, 2, 2, 1], "padding": "SAME",
                                                                     "fused_ops": ["BiasAdd", "Relu6"], "num_args": 1})],
                    {"w": w, "b": b}, ["y"])
    # TF SAME, stride 2, k 3: height 7 -> 4 outputs, total pad 2 = 1 + 1; width 6 -> 3 outputs, pad 1 = 0 + 1
    ref = np.clip(conv_loop(x, w, 2, (1, 1, 0, 1), b), 0, 6)
    got = m(x)[0].numpy()
    assert got.shape == (1, 4, 3, 4)
    np.testing.assert_allclose(got, ref, atol=1e-5)
    assert (ref == 6).any() and (ref == 0).any()          # both clamps exercised


def test_depthwise_multiplier_order_and_valid(tmp_path):
    x = RNG.normal(size=(1, 5, 5, 3)).astype(np.float32)
    w = RNG.normal(size=(3, 3, 3, 2)).astype(np.float32)
    m = write_model(tmp_path, [("y", "DepthwiseConv2dNative", ["x", "w"], {"strides": [1, 1, 1, 1], "padding": "SAME"}),
                               ("z", "DepthwiseConv2dNative", ["x", "w"], {"strides": [1, 2, 2, 1], "padding": "VALID"})],
                    {"w": w}, ["y", "z"])
    y, z = (t.numpy() for t in m(x))
    np.testing.assert_allclose(y, conv_loop(x, w, 1, (1, 1, 1, 1), depthwise=True), atol=1e-5)
    np.testing.assert_allclose(z, conv_loop(x, w, 2, (0, 0, 0, 0), depthwise=True), atol=1e-5)


def test_max_pool_same_pads_with_minus_infinity(tmp_path):
    x = -np.abs(RNG.normal(size=(1, 4, 5, 2))).astype(np.float32) - 1      # all negative: a zero pad would show
    m = write_model(tmp_path, [("y", "MaxPool", ["x"], {"ksize": [1, 3, 3, 1], "strides": [1, 1, 1, 1], "padding": "SAME"})],
                    {}, ["y"])
    ref = np.zeros_like(x)
    for i in range(4):
        for j in range(5):
            ref[0, i, j] = x[0, max(i - 1, 0): i + 2, max(j - 1, 0): j + 2].max((0, 1))
    np.testing.assert_array_equal(m(x)[0].numpy(), ref)


@pytest.mark.parametrize("size", [(11, 7), (3, 2)])
def test_resize_bilinear_half_pixel_is_opencv_linear(tmp_path, size):
    x = RNG.uniform(0, 255, size=(1, 5, 4, 3)).astype(np.float32)
    m = write_model(tmp_path, [("y", "ResizeBilinear", ["x", "s"], {"align_corners": False, "half_pixel_centers": True})],
                    {"s": np.array(size, np.int32)}, ["y"])
    ref = cv2.resize(x[0], (size[1], size[0]), interpolation=cv2.INTER_LINEAR)
    np.testing.assert_allclose(m(x)[0].numpy()[0], ref, atol=1e-3)


def test_resize_bilinear_align_corners_closed_form(tmp_path):
    x = np.arange(4, dtype=np.float32).reshape(1, 1, 4, 1) * 10            # a ramp: 0 10 20 30
    m = write_model(tmp_path, [("y", "ResizeBilinear", ["x", "s"], {"align_corners": True, "half_pixel_centers": False})],
                    {"s": np.array([1, 7], np.int32)}, ["y"])
    np.testing.assert_allclose(m(x)[0].numpy().ravel(), np.linspace(0, 30, 7), atol=1e-5)


def test_strided_slice_masks_match_numpy(tmp_path):
    x = RNG.normal(size=(2, 3, 4)).astype(np.float32)
    c = {"b1": np.array([0, 1, 0], np.int32), "e1": np.array([0, 3, 0], np.int32), "s1": np.array([1, 1, 2], np.int32),
         "b2": np.array([1, 0, 0], np.int32), "e2": np.array([2, 0, 0], np.int32), "s2": np.array([1, 1, 1], np.int32),
         "b3": np.array([0, -1], np.int32), "e3": np.array([0, 0], np.int32), "s3": np.array([1, 1], np.int32)}
    m = write_model(tmp_path, [
        ("a", "StridedSlice", ["x", "b1", "e1", "s1"], {"begin_mask": 0b001, "end_mask": 0b101}),      # x[:, 1:3, ::2]
        ("b", "StridedSlice", ["x", "b2", "e2", "s2"], {"shrink_axis_mask": 0b001, "new_axis_mask": 0b010,
                                                         "begin_mask": 0b100, "end_mask": 0b100}),      # x[1, None, :]
        ("c", "StridedSlice", ["x", "b3", "e3", "s3"], {"ellipsis_mask": 0b01, "shrink_axis_mask": 0b10})],  # x[..., -1]
        c, ["a", "b", "c"])
    a, b, cc = (t.numpy() for t in m(x))
    np.testing.assert_array_equal(a, x[:, 1:3, ::2])
    np.testing.assert_array_equal(b, x[1, None, :])
    np.testing.assert_array_equal(cc, x[..., -1])


def test_topk_gathernd_argmax_pack(tmp_path):
    x = RNG.permutation(12).astype(np.float32).reshape(3, 4)
    m = write_model(tmp_path, [("t", "TopKV2", ["x", "k"], {"sorted": True}),
                               ("g", "GatherNd", ["x", "i"], {}),
                               ("a", "ArgMax", ["x", "d"], {}),
                               ("p", "Pack", ["a", "a"], {"axis": 1})],
                    {"k": np.array(2, np.int32), "i": np.array([[2, 1], [0, 3]], np.int32), "d": np.array(1, np.int32)},
                    ["t", "t:1", "g", "p"])
    v, i, g, p = (t.numpy() for t in m(x))
    np.testing.assert_array_equal(v, -np.sort(-x, 1)[:, :2])
    np.testing.assert_array_equal(i, np.argsort(-x, 1)[:, :2])
    np.testing.assert_array_equal(g, [x[2, 1], x[0, 3]])
    np.testing.assert_array_equal(p, np.stack([x.argmax(1)] * 2, 1))


def test_dequantisation_float16_exact_and_uint8_affine(tmp_path):
    w16 = RNG.normal(size=(5,)).astype(np.float32) * 100
    q8 = np.array([0, 1, 7, 255], np.uint8)
    m = write_model(tmp_path, [("a", "Identity", ["w16"], {}), ("b", "Identity", ["q8"], {})],
                    {"w16": w16, "q8": q8.astype(np.float32)}, ["a", "b"], quant={"w16": "float16", "q8": (0.5, -3.0)})
    a, b = (t.numpy() for t in m(np.zeros(1, np.float32)))
    assert a.dtype == np.float32 and a.tobytes() == w16.astype(np.float16).astype(np.float32).tobytes()
    np.testing.assert_array_equal(b, q8 * np.float32(0.5) - 3)


def test_unknown_op_is_named_at_load(tmp_path):
    with pytest.raises(UnsupportedOp, match="NonMaxSuppressionV5"):
        write_model(tmp_path, [("y", "NonMaxSuppressionV5", ["x"], {})], {}, ["y"])


def test_short_weights_file_is_a_clear_error(tmp_path):
    write_model(tmp_path, [("y", "Identity", ["w"], {})], {"w": np.ones(8, np.float32)}, ["y"])
    (tmp_path / "w.bin").write_bytes(b"\0" * 16)
    with pytest.raises(ValueError, match="shards incomplete"):
        GraphModel(tmp_path / "m.json")
