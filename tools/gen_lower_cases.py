#!/usr/bin/env python3
"""gen_lower_cases.py: writes the small ONNX models (and reference .npy files) that the
lowering tests (test/cpu/lower_test.cc, suite Lower*) read from test/data/lower/.

Regenerate (needs onnx, numpy and torch; CPU only, a few seconds):
    python3 tools/gen_lower_cases.py            # writes into test/data/lower/
    python3 tools/gen_lower_cases.py OUT_DIR    # or somewhere else

Every model is tiny (< 20 KB) and deterministic (fixed seeds). Reference outputs are
computed here with torch / numpy, independently of egcam:
  autopad_{same_upper,same_lower,valid}.onnx  Conv + MaxPool with auto_pad; *_in.npy/*_out.npy
  bn_fold.onnx        Conv->BN->Relu->Conv->BN(+Add: second Conv has two users, BN stays);
                      bn_fold_w.npy / bn_fold_b.npy: the expected folded weights of conv1;
                      bn_fold_in.npy / bn_fold_out.npy: input and reference output
  shape_subgraph.onnx torch.onnx.export of the CIFAR ResNet option-A shortcut
                      (x[:, :, ::2, ::2] padded with zero channels: Constant, ConstantOfShape,
                      Concat, Reshape, Slice, Transpose, Cast feed Pad's pads) followed by
                      x.view(x.size(0), -1) (Shape, Gather, Unsqueeze, Concat, Reshape) with a
                      symbolic batch; shape_subgraph_in.npy / _out.npy
  dropout_identity.onnx   Identity / Dropout around a Conv (removed at lowering)
  dropout_mask.onnx   a Dropout whose mask output is used (an error)
  unsupported_op.onnx, unsupported_attr.onnx, cycle.onnx, unsorted.onnx,
  two_inputs.onnx (second float input: bind it or fail), runtime_weight.onnx (Conv W computed
  at run time), legacy_opset9.onnx (Pad/Slice/Clip attributes, legacy Softmax),
  misc_opset13.onnx (GAP, Flatten, Gemm transB, Clip with constant inputs, Softmax),
  fold_ops.onnx (Range, Where, Equal, Expand, Gather, Unsqueeze, Squeeze, Neg, Pow, Floor,
  Sqrt feeding a Reshape target and an Add constant), fold_runtime.onnx (Gemm and Clip on
  constants only, evaluated at load time by the CPU reference ops), composite_opset14.onnx
  (Conv, HardSwish, HardSigmoid alpha 0.3 beta 0.4, Mul, ReduceMean over axes [-1,-2] without
  keepdims, Gemm), reduce_mean_opset18.onnx (ReduceMean with the axes [3,2] as an input, then
  Flatten), reduce_mean_channels.onnx (ReduceMean over axis 1), reduce_mean_two_axes.onnx
  (ReduceMean over axes 1 and 2, and ReduceMax over them without keepdims),
  reduce_mean_three_axes.onnx (a mean over axes 1, 2 and 3, sums over 1 and 3), leaky_prelu.onnx
  (Conv, LeakyRelu alpha 0.1, PRelu with a slope per channel, GAP, Flatten, Gemm),
  unknown_ops.onnx (a refused ReduceMax, then Erf twice and LpNormalization),
  reduce_mean_batch.onnx (a mean over the batch axis: refused), global_max.onnx
  (Conv, Relu, GlobalMaxPool and Flatten beside ReduceMax over axes [3,2] without keepdims),
  squeeze_unsqueeze.onnx (Unsqueeze twice and Squeeze of values computed at run time),
  fold_too_costly.onnx and fold_too_large.onnx (constants too costly or too large to fold),
  fold_budget.onnx (constants that together pass the load's folding budget), pow_fraction.onnx
  (a Pow refused), convnext_block.onnx and convnext_block_opset17.onnx (a small ConvNeXt:
  channels-last LayerNorm, GELU), gelu_opset20.onnx and pow_exponents.onnx; gather_*.onnx,
  vit_tiny.onnx, deit_tiny.onnx, batch_conv.onnx, dropout_training*.onnx and swin_tiny.onnx
  (torchvision's Swin transformer, small: shifted windows, a channels-last stage),
  inception_concat.onnx (two branches joined by a Concat), keras_nhwc.onnx, nhwc_direct.onnx and
  keras_head.onnx (channels-last inputs [N,H,W,3], as Keras and TensorFlow exports take them),
  keras_softmax.onnx (a final Softmax), group_norm*.onnx (GroupNorm and InstanceNorm),
  layer_norm_chw.onnx (LayerNormalization over three axes),
  tanh_gelu.onnx and gelu_tanh_opset20.onnx (Tanh, the tanh GELU, Pow 3), gray_cnn.onnx (a
  model of gray images, with three shared CIFAR-10 images made gray by PIL and torchvision),
  cbam.onnx (CBAM's spatial attention: a maximum over the channels), upsample_fuse.onnx (an
  HRNet-style fusion with a nearest-neighbour Resize), resize_policy.onnx (a Resize refused),
  exp_units.onnx and mish_opset18.onnx (ELU, Mish, CELU, SELU, Softplus, Softsign, Exp, Log),
  mnist_logsoftmax.onnx (a final LogSoftmax), resize_modes.onnx (bilinear, bicubic and
  nearest Resizes by factors that are not whole; resize_fraction.onnx: factors 1.4 and 0.7),
  dynamic_hw.onnx (dynamic H and W axes),
  qdq_*.onnx (quantized models: QuantizeLinear and DequantizeLinear pairs), resize_grid_*.onnx
  (every form of Resize egcam takes, against ONNX's reference).
Models with a reference output have NAME_in.npy / NAME_out.npy next to them.
"""
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OUT = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", "test", "data", "lower")


def save(model, name, max_bytes=20000):
    path = os.path.join(OUT, name)
    onnx.save(model, path)
    assert os.path.getsize(path) < max_bytes, name


def npy(name, a):
    np.save(os.path.join(OUT, name), np.ascontiguousarray(a, dtype=np.float32))


def init(name, a):
    return numpy_helper.from_array(np.asarray(a), name)


def model(nodes, inputs, outputs, inits=(), opset=13):
    g = helper.make_graph(nodes, "g", inputs, outputs, list(inits))
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)],
                          producer_name="gen_lower_cases")
    m.ir_version = 7
    return m


def fin(name, shape):
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)


def autopad_cases(rng):
    import torch
    import torch.nn.functional as F
    x = rng.standard_normal((1, 2, 7, 6)).astype(np.float32)
    w = rng.standard_normal((3, 2, 4, 3)).astype(np.float32)
    b = rng.standard_normal((3,)).astype(np.float32)
    for mode in ("SAME_UPPER", "SAME_LOWER", "VALID"):
        nodes = [
            helper.make_node("Conv", ["x", "w", "b"], ["c"], name="conv", auto_pad=mode,
                             strides=[2, 1]),
            helper.make_node("MaxPool", ["c"], ["y"], name="pool", auto_pad=mode,
                             kernel_shape=[2, 3], strides=[1, 2]),
        ]
        m = model(nodes, [fin("x", [1, 2, 7, 6])], [fin("y", None)], [init("w", w), init("b", b)])
        save(m, "autopad_%s.onnx" % mode.lower())

        # Reference: ONNX's SAME rule (output ceil(in / stride), the odd pad at the end for
        # SAME_UPPER and at the beginning for SAME_LOWER), written out with explicit pads.
        def same(n, k, s):
            out = -(-n // s)
            tot = max(0, (out - 1) * s + k - n)
            small, big = tot // 2, tot - tot // 2
            return (small, big) if mode == "SAME_UPPER" else (big, small)
        t = torch.from_numpy(x)
        if mode == "VALID":
            c = F.conv2d(t, torch.from_numpy(w), torch.from_numpy(b), stride=(2, 1))
            y = F.max_pool2d(c, (2, 3), (1, 2))
        else:
            ph, pw = same(7, 4, 2), same(6, 3, 1)
            c = F.conv2d(F.pad(t, (pw[0], pw[1], ph[0], ph[1])), torch.from_numpy(w),
                         torch.from_numpy(b), stride=(2, 1))
            qh, qw = same(c.shape[2], 2, 1), same(c.shape[3], 3, 2)
            y = F.max_pool2d(F.pad(c, (qw[0], qw[1], qh[0], qh[1]), value=-np.inf), (2, 3), (1, 2))
        npy("autopad_%s_in.npy" % mode.lower(), x)
        npy("autopad_%s_out.npy" % mode.lower(), y.numpy())


def bn_fold_case(rng):
    C, M = 3, 4
    x = rng.standard_normal((1, C, 6, 6)).astype(np.float32)
    w1 = rng.standard_normal((M, C, 3, 3)).astype(np.float32)
    b1 = rng.standard_normal((M,)).astype(np.float32)
    w2 = rng.standard_normal((M, M, 1, 1)).astype(np.float32)

    def bn_params():
        f32 = np.float32
        return (rng.uniform(0.5, 1.5, M).astype(f32), rng.standard_normal(M).astype(f32),
                rng.standard_normal(M).astype(f32), rng.uniform(0.5, 2.0, M).astype(f32))
    s1, be1, mu1, v1 = bn_params()
    s2, be2, mu2, v2 = bn_params()
    eps1, eps2 = 1e-3, 1e-5
    nodes = [
        helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], name="conv1", pads=[1, 1, 1, 1]),
        helper.make_node("BatchNormalization", ["c1", "s1", "be1", "mu1", "v1"], ["n1"], name="bn1",
                         epsilon=eps1),
        helper.make_node("Relu", ["n1"], ["r1"], name="relu1"),
        helper.make_node("Conv", ["r1", "w2"], ["c2"], name="conv2"),
        helper.make_node("BatchNormalization", ["c2", "s2", "be2", "mu2", "v2"], ["n2"], name="bn2",
                         epsilon=eps2),
        helper.make_node("Add", ["n2", "c2"], ["y"], name="add"),
    ]
    inits = [init(k, v) for k, v in dict(w1=w1, b1=b1, w2=w2, s1=s1, be1=be1, mu1=mu1, v1=v1,
                                         s2=s2, be2=be2, mu2=mu2, v2=v2).items()]
    save(model(nodes, [fin("x", [1, C, 6, 6])], [fin("y", None)], inits), "bn_fold.onnx")
    k = s1.astype(np.float64) / np.sqrt(v1.astype(np.float64) + eps1)
    npy("bn_fold_w.npy", w1 * k[:, None, None, None])
    npy("bn_fold_b.npy", (b1 - mu1) * k + be1)
    import torch
    import torch.nn.functional as F
    t = torch.from_numpy(x).double()
    c1 = F.conv2d(t, torch.from_numpy(w1).double(), torch.from_numpy(b1).double(), padding=1)
    n1 = F.batch_norm(c1, torch.from_numpy(mu1).double(), torch.from_numpy(v1).double(),
                      torch.from_numpy(s1).double(), torch.from_numpy(be1).double(), eps=eps1)
    c2 = F.conv2d(torch.relu(n1), torch.from_numpy(w2).double())
    n2 = F.batch_norm(c2, torch.from_numpy(mu2).double(), torch.from_numpy(v2).double(),
                      torch.from_numpy(s2).double(), torch.from_numpy(be2).double(), eps=eps2)
    npy("bn_fold_in.npy", x)
    npy("bn_fold_out.npy", (n2 + c2).numpy())


def shape_subgraph_case(rng):
    import io

    import torch
    import torch.nn.functional as F

    class Shortcut(torch.nn.Module):
        def forward(self, x):
            y = F.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, 2, 2), "constant", 0)
            y = torch.relu(y)
            return y.view(y.size(0), -1)

    x = rng.standard_normal((1, 4, 6, 6)).astype(np.float32)
    buf = io.BytesIO()
    torch.onnx.export(Shortcut(), torch.from_numpy(x), buf, opset_version=13,
                      input_names=["input"], output_names=["out"], do_constant_folding=False,
                      dynamic_axes={"input": {0: "N"}, "out": {0: "N"}})
    m = onnx.load_from_string(buf.getvalue())
    ops = {n.op_type for n in m.graph.node}
    for need in ("Constant", "ConstantOfShape", "Concat", "Reshape", "Transpose", "Slice",
                 "Cast", "Pad", "Shape", "Gather", "Unsqueeze"):
        assert need in ops, (need, ops)
    save(m, "shape_subgraph.onnx")
    npy("shape_subgraph_in.npy", x)
    npy("shape_subgraph_out.npy", Shortcut()(torch.from_numpy(x)).numpy())


def dropout_cases(rng):
    w = rng.standard_normal((2, 1, 3, 3)).astype(np.float32)
    nodes = [
        helper.make_node("Identity", ["x"], ["x1"], name="id0"),
        helper.make_node("Conv", ["x1", "w"], ["c"], name="conv"),
        helper.make_node("Dropout", ["c", "ratio"], ["d", "mask"], name="drop"),
        helper.make_node("Identity", ["d"], ["d1"], name="id1"),
        helper.make_node("Relu", ["d1"], ["y"], name="relu"),
    ]
    save(model(nodes, [fin("x", [1, 1, 5, 5])], [fin("y", None)],
               [init("w", w), init("ratio", np.array(0.5, np.float32))]), "dropout_identity.onnx")
    nodes = [
        helper.make_node("Dropout", ["x"], ["d", "mask"], name="drop"),
        helper.make_node("Cast", ["mask"], ["maskf"], name="cast", to=TensorProto.FLOAT),
        helper.make_node("Add", ["d", "maskf"], ["y"], name="add"),
    ]
    save(model(nodes, [fin("x", [1, 4])], [fin("y", None)]), "dropout_mask.onnx")


def dropout_training_cases():
    """Dropout with training_mode true (opset 12 inputs), as torch exports attention dropout
    of probability 0: the input itself with a ratio of 0; refused with a ratio of 0.5."""
    for ratio, name in ((0.0, "dropout_training_zero.onnx"), (0.5, "dropout_training.onnx")):
        nodes = [helper.make_node("Dropout", ["x", "ratio", "train"], ["d"], name="drop"),
                 helper.make_node("Relu", ["d"], ["y"], name="relu")]
        save(model(nodes, [fin("x", [1, 4])], [fin("y", None)],
                   [init("ratio", np.array(ratio, np.float32)),
                    init("train", np.array(True))]), name)


def error_cases(rng):
    w = rng.standard_normal((2, 1, 3, 3)).astype(np.float32)
    nodes = [helper.make_node("Relu", ["x"], ["r"], name="relu"),
             helper.make_node("LpNormalization", ["r"], ["y"], name="weird")]
    save(model(nodes, [fin("x", [1, 4])], [fin("y", None)]), "unsupported_op.onnx")
    nodes = [helper.make_node("Conv", ["x", "w"], ["y"], name="conv3", auto_pad="FOO")]
    save(model(nodes, [fin("x", [1, 1, 5, 5])], [fin("y", None)], [init("w", w)]),
         "unsupported_attr.onnx")
    nodes = [helper.make_node("Add", ["x", "c"], ["a"], name="n1"),
             helper.make_node("Relu", ["a"], ["b"], name="n2"),
             helper.make_node("Relu", ["b"], ["c"], name="n3"),
             helper.make_node("Relu", ["b"], ["y"], name="n4")]
    save(model(nodes, [fin("x", [1, 4])], [fin("y", None)]), "cycle.onnx")
    # Conv weights computed at run time from the input.
    nodes = [helper.make_node("Relu", ["x"], ["wr"], name="relu"),
             helper.make_node("Conv", ["x", "wr"], ["y"], name="conv")]
    save(model(nodes, [fin("x", [1, 1, 3, 3])], [fin("y", None)]), "runtime_weight.onnx")
    # Two float graph inputs: the second must be bound to a constant.
    nodes = [helper.make_node("Conv", ["x", "w"], ["y"], name="conv")]
    save(model(nodes, [fin("x", [1, 1, 5, 5]), fin("w", [2, 1, 3, 3])], [fin("y", None)]),
         "two_inputs.onnx")


def unsorted_case(rng):
    w = rng.standard_normal((2, 1, 3, 3)).astype(np.float32)
    nodes = [helper.make_node("Relu", ["c"], ["y"], name="relu"),
             helper.make_node("Conv", ["x1", "w"], ["c"], name="conv", pads=[1, 1, 1, 1]),
             helper.make_node("Identity", ["x"], ["x1"], name="id")]
    save(model(nodes, [fin("x", [1, 1, 4, 4])], [fin("y", None)], [init("w", w)]), "unsorted.onnx")


def legacy_case(rng):
    nodes = [
        helper.make_node("Pad", ["x"], ["p"], name="pad", mode="reflect",
                         pads=[0, 0, 1, 2, 0, 0, 2, 1]),
        helper.make_node("Slice", ["p"], ["s"], name="slice", starts=[1, -4], ends=[100, 1000],
                         axes=[2, 3]),
        helper.make_node("Clip", ["s"], ["c"], name="clip", min=-0.5, max=0.75),
        helper.make_node("Softmax", ["c"], ["y"], name="softmax"),
    ]
    save(model(nodes, [fin("x", [2, 3, 4, 5])], [fin("y", None)], opset=9), "legacy_opset9.onnx")
    x = rng.standard_normal((2, 3, 4, 5)).astype(np.float32)
    p = np.pad(x, ((0, 0), (0, 0), (1, 2), (2, 1)), mode="reflect")
    s = np.clip(p[:, :, 1:, -4:], -0.5, 0.75)
    f = s.reshape(2, -1).astype(np.float64)  # legacy Softmax: 2-D at axis 1
    e = np.exp(f - f.max(axis=1, keepdims=True))
    npy("legacy_opset9_in.npy", x)
    npy("legacy_opset9_out.npy", (e / e.sum(axis=1, keepdims=True)).reshape(s.shape))


def misc_case(rng):
    w = rng.standard_normal((5, 3)).astype(np.float32)
    b = rng.standard_normal((5,)).astype(np.float32)
    nodes = [
        helper.make_node("GlobalAveragePool", ["x"], ["g"], name="gap"),
        helper.make_node("Flatten", ["g"], ["f"], name="flat"),
        helper.make_node("Gemm", ["f", "w", "b"], ["m"], name="fc", transB=1, alpha=0.5, beta=2.0),
        helper.make_node("Clip", ["m", "lo", ""], ["c"], name="clip"),
        helper.make_node("Softmax", ["c"], ["y"], name="softmax", axis=1),
    ]
    save(model(nodes, [fin("x", [1, 3, 4, 4])], [fin("y", None)],
               [init("w", w), init("b", b), init("lo", np.array(-1.0, np.float32))]),
         "misc_opset13.onnx")
    x = rng.standard_normal((1, 3, 4, 4)).astype(np.float32)
    f = x.astype(np.float64).mean(axis=(2, 3))
    m = np.maximum(0.5 * f @ w.T.astype(np.float64) + 2.0 * b, -1.0)
    e = np.exp(m - m.max(axis=1, keepdims=True))
    npy("misc_opset13_in.npy", x)
    npy("misc_opset13_out.npy", e / e.sum(axis=1, keepdims=True))


def fold_ops_case(rng):
    """A Reshape target and an Add constant computed by a chain of folded ops."""
    i64 = lambda name, v: init(name, np.array(v, np.int64))
    nodes = [
        # r = Range(0, 6, 1) -> [0..5]; e = Equal(r, 2); sel = Where(e, 100, r)
        helper.make_node("Range", ["zero", "six", "one"], ["r"], name="range"),
        helper.make_node("Equal", ["r", "two"], ["e"], name="eq"),
        helper.make_node("Where", ["e", "hundred", "r"], ["sel"], name="where"),
        # g = Gather(sel, [1, 2]) = [1, 100]; h = Neg(g) -> [-1, -100]
        helper.make_node("Gather", ["sel", "idx"], ["g"], name="gather", axis=0),
        helper.make_node("Neg", ["g"], ["h"], name="neg"),
        # target = Concat(Unsqueeze(Squeeze(sh)), [-1]) = [2, -1] with sh=[[2]]
        helper.make_node("Squeeze", ["sh"], ["sq"], name="squeeze"),
        helper.make_node("Unsqueeze", ["sq", "ax0"], ["us"], name="unsqueeze"),
        helper.make_node("Concat", ["us", "minus1"], ["target"], name="cat", axis=0),
        helper.make_node("Reshape", ["x", "target"], ["xr"], name="reshape"),
        # k = Expand(Floor(Sqrt(Pow(base, 2))), [2, 6]) ; base = [[1.5, ...]] -> floor(1.5) = 1
        helper.make_node("Pow", ["base", "twof"], ["pw"], name="pow"),
        helper.make_node("Sqrt", ["pw"], ["sqrt"], name="sqrt"),
        helper.make_node("Floor", ["sqrt"], ["fl"], name="floor"),
        helper.make_node("Cast", ["h"], ["hf"], name="cast", to=TensorProto.FLOAT),
        helper.make_node("Slice", ["hf", "s0", "s1"], ["hs"], name="slice"),
        helper.make_node("Mul", ["fl", "hs"], ["k0"], name="mul"),
        helper.make_node("Expand", ["k0", "eshape"], ["k"], name="expand"),
        helper.make_node("Add", ["xr", "k"], ["y"], name="add"),
    ]
    inits = [i64("zero", 0), i64("six", 6), i64("one", 1), i64("two", 2), i64("hundred", 100),
             i64("idx", [1, 2]), i64("sh", [[2]]), i64("ax0", [0]), i64("minus1", [-1]),
             init("base", np.array([[1.5, -2.5, 3.7, 0.2, 4.0, 2.2]], np.float32)),
             init("twof", np.array(2.0, np.float32)), i64("s0", [1]), i64("s1", [2]),
             i64("eshape", [2, 6])]
    save(model(nodes, [fin("x", [1, 3, 2, 2])], [fin("y", None)], inits), "fold_ops.onnx")
    x = rng.standard_normal((1, 3, 2, 2)).astype(np.float32)
    base = np.array([[1.5, -2.5, 3.7, 0.2, 4.0, 2.2]], np.float32)
    k = np.floor(np.sqrt(base ** 2)) * np.float32(-100)  # Where/Gather/Neg/Slice give -100
    npy("fold_ops_in.npy", x)
    npy("fold_ops_out.npy", x.reshape(2, 6) + np.broadcast_to(k, (2, 6)))


def fold_runtime_case(rng):
    """Runtime ops (Gemm, Clip) on constants only: evaluated once at load time."""
    a = rng.standard_normal((1, 3)).astype(np.float32)
    b = rng.standard_normal((3, 4)).astype(np.float32)
    nodes = [
        helper.make_node("Gemm", ["a", "b"], ["ab"], name="gemm", alpha=2.0),
        helper.make_node("Clip", ["ab", "lo"], ["k"], name="clip"),
        helper.make_node("Add", ["x", "k"], ["y"], name="add"),
    ]
    save(model(nodes, [fin("x", [1, 4])], [fin("y", None)],
               [init("a", a), init("b", b), init("lo", np.array(0.0, np.float32))]),
         "fold_runtime.onnx")
    x = rng.standard_normal((1, 4)).astype(np.float32)
    npy("fold_runtime_in.npy", x)
    npy("fold_runtime_out.npy", x + np.maximum(2.0 * a.astype(np.float64) @ b, 0.0))


def conv3x3_pad1(x, w):
    """A 3x3 convolution with padding 1 and no bias, in float64: x (N,C,H,W), w (M,C,3,3)."""
    n, _, h, wd = x.shape
    xd = np.pad(x.astype(np.float64), ((0, 0), (0, 0), (1, 1), (1, 1)))
    c = np.zeros((n, w.shape[0], h, wd))
    for i in range(h):
        for j in range(wd):
            c[:, :, i, j] = np.einsum("nckl,ockl->no", xd[:, :, i:i + 3, j:j + 3], w)
    return c


def composite_cases(rng):
    """HardSwish, HardSigmoid and ReduceMean (composite lowerings) in a small conv head."""
    w = (0.5 * rng.standard_normal((4, 3, 3, 3))).astype(np.float32)
    b = (0.5 * rng.standard_normal((4,))).astype(np.float32)
    w2 = rng.standard_normal((3, 4)).astype(np.float32)
    b2 = rng.standard_normal((3,)).astype(np.float32)
    nodes = [
        helper.make_node("Conv", ["x", "w", "b"], ["c"], name="conv", pads=[1, 1, 1, 1]),
        helper.make_node("HardSwish", ["c"], ["hs"], name="hswish"),
        helper.make_node("HardSigmoid", ["hs"], ["hg"], name="hsig", alpha=0.3, beta=0.4),
        helper.make_node("Mul", ["hs", "hg"], ["m"], name="gate"),
        helper.make_node("ReduceMean", ["m"], ["r"], name="mean", axes=[-1, -2], keepdims=0),
        helper.make_node("Gemm", ["r", "w2", "b2"], ["y"], name="fc", transB=1),
    ]
    save(model(nodes, [fin("x", ["N", 3, 6, 7])], [fin("y", None)],
               [init("w", w), init("b", b), init("w2", w2), init("b2", b2)], opset=14),
         "composite_opset14.onnx")
    x = (2.0 * rng.standard_normal((2, 3, 6, 7))).astype(np.float32)
    c = conv3x3_pad1(x, w)
    c += b[None, :, None, None]
    hs = c * np.clip(c / 6.0 + 0.5, 0.0, 1.0)
    hg = np.clip(0.3 * hs + 0.4, 0.0, 1.0)
    r = (hs * hg).mean(axis=(2, 3))
    npy("composite_opset14_in.npy", x)
    npy("composite_opset14_out.npy", r @ w2.T.astype(np.float64) + b2)
    # opset 18: the axes as an input, keepdims=1
    nodes = [
        helper.make_node("ReduceMean", ["x", "axes"], ["r"], name="mean18", keepdims=1),
        helper.make_node("Flatten", ["r"], ["y"], name="flat"),
    ]
    save(model(nodes, [fin("x", ["N", 4, 3, 5])], [fin("y", None)],
               [init("axes", np.array([3, 2], np.int64))], opset=18),
         "reduce_mean_opset18.onnx")
    x = rng.standard_normal((2, 4, 3, 5)).astype(np.float32)
    npy("reduce_mean_opset18_in.npy", x)
    npy("reduce_mean_opset18_out.npy", x.astype(np.float64).mean(axis=(2, 3)))
    # LeakyRelu (alpha 0.1) and PRelu (a slope per channel) after a Conv
    w = (0.5 * rng.standard_normal((4, 3, 3, 3))).astype(np.float32)
    slope = np.array([0.25, -0.5, 0.0, 2.0], np.float32).reshape(4, 1, 1)
    w2 = rng.standard_normal((3, 4)).astype(np.float32)
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"], name="conv", pads=[1, 1, 1, 1]),
        helper.make_node("LeakyRelu", ["c"], ["lr"], name="leaky", alpha=0.1),
        helper.make_node("PRelu", ["lr", "slope"], ["pr"], name="prelu"),
        helper.make_node("GlobalAveragePool", ["pr"], ["g"], name="gap"),
        helper.make_node("Flatten", ["g"], ["f"], name="flat"),
        helper.make_node("Gemm", ["f", "w2"], ["y"], name="fc", transB=1),
    ]
    save(model(nodes, [fin("x", ["N", 3, 6, 7])], [fin("y", None)],
               [init("w", w), init("slope", slope), init("w2", w2)]), "leaky_prelu.onnx")
    x = (2.0 * rng.standard_normal((2, 3, 6, 7))).astype(np.float32)
    c = conv3x3_pad1(x, w)
    lr = np.where(c > 0, c, 0.1 * c)
    pr = np.where(lr > 0, lr, slope * lr)
    npy("leaky_prelu_in.npy", x)
    npy("leaky_prelu_out.npy", pr.mean(axis=(2, 3)) @ w2.T.astype(np.float64))
    # GlobalMaxPool and ReduceMax over the spatial axes
    w = (0.5 * rng.standard_normal((4, 3, 3, 3))).astype(np.float32)
    w2 = rng.standard_normal((3, 4)).astype(np.float32)
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"], name="conv", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c"], ["r"], name="relu"),
        helper.make_node("GlobalMaxPool", ["r"], ["g"], name="gmax"),
        helper.make_node("Flatten", ["g"], ["f1"], name="flat"),
        helper.make_node("ReduceMax", ["c"], ["f2"], name="rmax", axes=[3, 2], keepdims=0),
        helper.make_node("Add", ["f1", "f2"], ["s"], name="sum"),
        helper.make_node("Gemm", ["s", "w2"], ["y"], name="fc", transB=1),
    ]
    save(model(nodes, [fin("x", ["N", 3, 6, 7])], [fin("y", None)],
               [init("w", w), init("w2", w2)]), "global_max.onnx")
    x = (2.0 * rng.standard_normal((2, 3, 6, 7))).astype(np.float32)
    c = conv3x3_pad1(x, w)
    s = np.maximum(c, 0).max(axis=(2, 3)) + c.max(axis=(2, 3))
    npy("global_max_in.npy", x)
    npy("global_max_out.npy", s @ w2.T.astype(np.float64))
    # Squeeze and Unsqueeze of values computed at run time (a gate made from the channel means)
    w2 = rng.standard_normal((3, 4)).astype(np.float32)
    nodes = [
        helper.make_node("ReduceMean", ["x"], ["m"], name="mean", axes=[2, 3], keepdims=0),
        helper.make_node("Unsqueeze", ["m", "ax_last"], ["u1"], name="unsq1"),
        helper.make_node("Unsqueeze", ["u1", "ax3"], ["u2"], name="unsq2"),
        helper.make_node("Mul", ["x", "u2"], ["g"], name="gate"),
        helper.make_node("GlobalAveragePool", ["g"], ["p"], name="gap"),
        helper.make_node("Squeeze", ["p", "ax32"], ["s"], name="sq"),
        helper.make_node("Gemm", ["s", "w2"], ["y"], name="fc", transB=1),
    ]
    save(model(nodes, [fin("x", ["N", 4, 3, 5])], [fin("y", None)],
               [init("w2", w2), init("ax_last", np.array([-1], np.int64)),
                init("ax3", np.array([3], np.int64)), init("ax32", np.array([3, 2], np.int64))]),
         "squeeze_unsqueeze.onnx")
    x = rng.standard_normal((2, 4, 3, 5)).astype(np.float32)
    m = x.astype(np.float64).mean(axis=(2, 3))
    g = (x * m[:, :, None, None]).mean(axis=(2, 3))
    npy("squeeze_unsqueeze_in.npy", x)
    npy("squeeze_unsqueeze_out.npy", g @ w2.T.astype(np.float64))
    # folding bounds: a product of two 2048 x 2048 constants (8.6 G multiply-adds) and a
    # Range of 2^25 integers are refused at once
    one = helper.make_tensor("one", TensorProto.FLOAT, [1], [1.0])
    nodes = [
        helper.make_node("ConstantOfShape", ["sz"], ["a"], name="ca", value=one),
        helper.make_node("MatMul", ["a", "a"], ["p"], name="costly"),
        helper.make_node("Slice", ["p", "s0", "s1"], ["k"], name="take"),
        helper.make_node("Add", ["x", "k"], ["y"], name="add"),
    ]
    save(model(nodes, [fin("x", [1, 4])], [fin("y", None)],
               [init("sz", np.array([2048, 2048], np.int64)), init("s0", np.array([0, 0], np.int64)),
                init("s1", np.array([1, 4], np.int64))]), "fold_too_costly.onnx")
    nodes = [
        helper.make_node("Range", ["r0", "r1", "r2"], ["r"], name="huge"),
        helper.make_node("Cast", ["r"], ["rf"], name="cast", to=TensorProto.FLOAT),
        helper.make_node("Slice", ["rf", "t0", "t1"], ["k"], name="take"),
        helper.make_node("Add", ["x", "k"], ["y"], name="add"),
    ]
    save(model(nodes, [fin("x", [1, 4])], [fin("y", None)],
               [init("r0", np.array(0, np.int64)), init("r1", np.array(1 << 25, np.int64)),
                init("r2", np.array(1, np.int64)), init("t0", np.array([0], np.int64)),
                init("t1", np.array([4], np.int64))]), "fold_too_large.onnx")
    # three constants of 2^25 elements each, each within the per-tensor cap, from a file of a
    # few hundred bytes: the third passes the load's total folding budget
    nodes = []
    for i in (1, 2, 3):
        nodes += [helper.make_node("ConstantOfShape", ["sz"], [f"c{i}"], name=f"big{i}",
                                   value=helper.make_tensor("v", TensorProto.FLOAT, [1], [1.0])),
                  helper.make_node("Slice", [f"c{i}", "t0", "t1"], [f"k{i}"], name=f"take{i}")]
    nodes += [helper.make_node("Add", ["x", "k1"], ["s1"], name="add1"),
              helper.make_node("Add", ["s1", "k2"], ["s2"], name="add2"),
              helper.make_node("Add", ["s2", "k3"], ["y"], name="add3")]
    save(model(nodes, [fin("x", [1, 4])], [fin("y", None)],
               [init("sz", np.array([1 << 25], np.int64)), init("t0", np.array([0], np.int64)),
                init("t1", np.array([4], np.int64))]), "fold_budget.onnx")
    # a mean over the channels (a Transpose, a mean over the last axis, a Reshape back)
    nodes = [helper.make_node("ReduceMean", ["x"], ["y"], name="chanmean", axes=[1])]
    save(model(nodes, [fin("x", [1, 4, 3, 5])], [fin("y", None)]), "reduce_mean_channels.onnx")
    xc = rng.standard_normal((2, 4, 3, 5)).astype(np.float32)
    npy("reduce_mean_channels_in.npy", xc)
    npy("reduce_mean_channels_out.npy", xc.astype(np.float64).mean(axis=1, keepdims=True))
    # a mean over two axes that are not the spatial ones (a Transpose, GlobalAveragePool, a
    # Reshape), beside a max over them without keepdims, added
    nodes = [helper.make_node("ReduceMean", ["x"], ["m"], name="chanrowmean", axes=[1, 2]),
             helper.make_node("ReduceMax", ["x"], ["x2"], name="chanrowmax", axes=[2, -3],
                              keepdims=0),
             helper.make_node("Flatten", ["m"], ["m2"], name="flat"),
             helper.make_node("Add", ["m2", "x2"], ["y"], name="add")]
    save(model(nodes, [fin("x", ["N", 4, 3, 5])], [fin("y", None)]), "reduce_mean_two_axes.onnx")
    xt = np.random.default_rng(47).standard_normal((2, 4, 3, 5)).astype(np.float32)
    npy("reduce_mean_two_axes_in.npy", xt)
    npy("reduce_mean_two_axes_out.npy",
        xt.astype(np.float64).mean(axis=(1, 2)) + xt.astype(np.float64).max(axis=(1, 2)))
    # a mean over three axes (a Reshape merging them, the 1/L MatMul), a sum over axes 1 and 3
    # (a Transpose puts them last) and a sum of squares over 3 and 1, without keepdims
    nodes = [helper.make_node("ReduceMean", ["x"], ["m"], name="allmean", axes=[1, 2, 3]),
             helper.make_node("Flatten", ["m"], ["m2"], name="flat"),
             helper.make_node("ReduceSum", ["x", "a13"], ["s"], name="sum13", keepdims=0),
             helper.make_node("ReduceSumSquare", ["x"], ["q"], name="sq31", axes=[3, 1],
                              keepdims=0),
             helper.make_node("Concat", ["m2", "s", "q"], ["y"], name="cat", axis=1)]
    save(model(nodes, [fin("x", ["N", 4, 3, 5])], [fin("y", None)],
               [init("a13", np.array([1, 3], np.int64))]), "reduce_mean_three_axes.onnx")
    xr = np.random.default_rng(53).standard_normal((2, 4, 3, 5)).astype(np.float32)
    xd = xr.astype(np.float64)
    npy("reduce_mean_three_axes_in.npy", xr)
    npy("reduce_mean_three_axes_out.npy", np.concatenate(
        [xd.mean(axis=(1, 2, 3))[:, None], xd.sum(axis=(1, 3)), (xd * xd).sum(axis=(1, 3))], 1))
    # a mean over the batch axis: refused
    nodes = [helper.make_node("ReduceMean", ["x"], ["y"], name="batchmean", axes=[0, 1])]
    save(model(nodes, [fin("x", ["N", 4, 3, 5])], [fin("y", None)]), "reduce_mean_batch.onnx")
    # operators egcam does not know: all of them are named with the first refusal
    nodes = [helper.make_node("ReduceMax", ["x"], ["m"], name="chanmax", axes=[1, 2, 3]),
             helper.make_node("Erf", ["m"], ["e1"], name="erf1"),
             helper.make_node("LpNormalization", ["e1"], ["l"], name="lp"),
             helper.make_node("Erf", ["l"], ["y"], name="erf2")]
    save(model(nodes, [fin("x", [1, 4, 3, 5])], [fin("y", None)]), "unknown_ops.onnx")
    # a power other than an integer 1..8 and 0.5 of a value computed at run time: refused
    nodes = [helper.make_node("Pow", ["x", "p"], ["y"], name="pow")]
    save(model(nodes, [fin("x", [1, 4])], [fin("y", None)], [init("p", np.array(2.5, np.float32))]),
         "pow_fraction.onnx")


def top1_grad(net, module, x):
    """The output of module for x, and the gradient there of the sum of each image's top-1
    logit (what egcam's tests seed a backward with)."""
    acts = {}
    hook = module.register_forward_hook(lambda mod, i, o: acts.__setitem__("a", o))
    y = net(x)
    hook.remove()
    acts["a"].retain_grad()
    y.gather(1, y.argmax(1, keepdim=True)).sum().backward()
    return acts["a"].detach(), acts["a"].grad


def export_symbolic(net, x, y, name, max_bytes):
    """net traced with x[:1] and exported as NAME.onnx (opset 13) with a symbolic batch, and
    NAME_in.npy / NAME_out.npy: x and its logits y."""
    import torch
    path = os.path.join(OUT, name + ".onnx")
    torch.onnx.export(net, x[:1], path, opset_version=13, input_names=["x"], output_names=["y"],
                      dynamic_axes={"x": {0: "n"}, "y": {0: "n"}})
    assert os.path.getsize(path) < max_bytes, name
    npy(name + "_in.npy", x.numpy())
    npy(name + "_out.npy", y)


def export_with_layer(net, x, name, max_bytes, module, what):
    """net's logits for x exported with it (export_symbolic), and NAME_WHAT_act.npy /
    NAME_WHAT_grad.npy: the activation of module and the gradient there of the top-1 logits."""
    import torch
    with torch.no_grad():
        y = net(x).numpy()
    export_symbolic(net, x, y, name, max_bytes)
    act, grad = top1_grad(net, module, x)
    npy("%s_%s_act.npy" % (name, what), act.numpy())
    npy("%s_%s_grad.npy" % (name, what), grad.numpy())


def convnext_cases(rng):
    """A small ConvNeXt as torchvision builds it: a stem with a channels-last LayerNorm, one
    block (depthwise 7x7 Conv, Transpose to [N,H,W,C], LayerNorm, Linear, GELU, Linear,
    Transpose back, layer scale, residual Add) and a head (GlobalAveragePool, LayerNorm,
    Linear), exported with opset 13 (LayerNorm as ReduceMean, Sub, Pow, Sqrt, Div; GELU with
    Erf) and opset 17 (LayerNormalization). Then Gelu (opset 20) and Pow with exponents 2, 1
    and 0.5, built by hand."""
    import torch
    import torch.nn as nn
    torch.manual_seed(5)

    class LN2d(nn.LayerNorm):
        def forward(self, x):
            return super().forward(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)

    class Block(nn.Module):
        def __init__(self, c):
            super().__init__()
            self.dw = nn.Conv2d(c, c, 7, padding=3, groups=c)
            self.ln = nn.LayerNorm(c, eps=1e-6)
            self.pw1 = nn.Linear(c, 4 * c)
            self.act = nn.GELU()
            self.pw2 = nn.Linear(4 * c, c)
            self.gamma = nn.Parameter(torch.rand(c, 1, 1) + 0.5)

        def forward(self, x):
            y = self.dw(x).permute(0, 2, 3, 1)
            y = self.pw2(self.act(self.pw1(self.ln(y)))).permute(0, 3, 1, 2)
            return x + self.gamma * y

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.stem = nn.Sequential(nn.Conv2d(3, 8, 2, stride=2), LN2d(8, eps=1e-6))
            self.blk = Block(8)
            self.pool = nn.AdaptiveAvgPool2d(1)
            self.norm = LN2d(8, eps=1e-6)
            self.fc = nn.Linear(8, 5)

        def forward(self, x):
            return self.fc(torch.flatten(self.norm(self.pool(self.blk(self.stem(x)))), 1))

    net = Net().eval()
    with torch.no_grad():  # LayerNorm affine parameters away from 1 and 0
        for ln in (net.stem[1], net.blk.ln, net.norm):
            ln.weight.uniform_(0.5, 1.5)
            ln.bias.uniform_(-0.5, 0.5)
    x = torch.from_numpy(rng.standard_normal((2, 3, 12, 12)).astype(np.float32))
    with torch.no_grad():
        y = net(x).numpy()
    # the gradient of the top-1 logits at the block's output (module "blk", [2,8,6,6])
    npy("convnext_block_grad.npy", top1_grad(net, net.blk, x)[1].numpy())
    for opset, name in ((13, "convnext_block"), (17, "convnext_block_opset17")):
        path = os.path.join(OUT, name + ".onnx")
        torch.onnx.export(net, x, path, opset_version=opset, input_names=["x"],
                          output_names=["y"], dynamic_axes={"x": {0: "n"}, "y": {0: "n"}})
        assert os.path.getsize(path) < 20000, name
        npy(name + "_in.npy", x.numpy())
        npy(name + "_out.npy", y)

    import math
    erf = np.vectorize(math.erf)
    xg = rng.standard_normal((2, 6)).astype(np.float32) * 2
    m = model([helper.make_node("Relu", ["x"], ["r"], name="relu"),
               helper.make_node("Gelu", ["x"], ["g"], name="gelu"),
               helper.make_node("Add", ["r", "g"], ["y"], name="add")],
              [fin("x", [None, 6])], [fin("y", None)], opset=20)
    save(m, "gelu_opset20.onnx")
    xd = xg.astype(np.float64)
    npy("gelu_opset20_in.npy", xg)
    npy("gelu_opset20_out.npy", np.maximum(xd, 0) + 0.5 * xd * (1 + erf(xd / math.sqrt(2))))
    m = model([helper.make_node("Relu", ["x"], ["r"], name="relu"),
               helper.make_node("Add", ["r", "one"], ["r1"], name="shift"),
               helper.make_node("Pow", ["r1", "half"], ["s"], name="sqrt"),
               helper.make_node("Pow", ["x", "two"], ["q"], name="square"),
               helper.make_node("Pow", ["s", "one_i"], ["s1"], name="same"),
               helper.make_node("Add", ["s1", "q"], ["y"], name="add")],
              [fin("x", [None, 6])], [fin("y", None)],
              [init("one", np.array(1.0, np.float32)), init("half", np.array(0.5, np.float32)),
               init("two", np.array([2.0], np.float32)), init("one_i", np.array(1, np.int64))])
    save(m, "pow_exponents.onnx")
    npy("pow_exponents_in.npy", xg)
    npy("pow_exponents_out.npy", np.sqrt(np.maximum(xd, 0) + 1) + xd * xd)


def gather_cases(rng):
    """Gather with constant indices on a value computed at run time, along an axis other than
    the batch: a scalar index (a class token taken as x[:, 0]), an uneven index list, and a
    2-D list that steps evenly; then Gather on the batch axis of a model exported for a batch
    of 2, which is refused (for a batch of 1, axis 0 is that image's own)."""
    nodes = [
        helper.make_node("Gather", ["x", "i0"], ["tok"], name="cls_token", axis=1),
        helper.make_node("Gather", ["x", "iu"], ["gu"], name="uneven", axis=2),
        helper.make_node("Gather", ["x", "i2"], ["g2"], name="even2d", axis=-1),
        helper.make_node("Flatten", ["gu"], ["fu"], name="flat_u"),
        helper.make_node("Flatten", ["g2"], ["f2"], name="flat_2"),
        helper.make_node("Concat", ["tok", "fu", "f2"], ["cat"], name="cat", axis=1),
        helper.make_node("Relu", ["cat"], ["y"], name="relu"),
    ]
    save(model(nodes, [fin("x", ["N", 4, 6])], [fin("y", None)],
               [init("i0", np.array(0, np.int64)), init("iu", np.array([5, 0, -4], np.int64)),
                init("i2", np.array([[0, 1], [-4, 3]], np.int64))]), "gather_runtime.onnx")
    x = rng.standard_normal((3, 4, 6)).astype(np.float32)
    tok = x[:, 0]
    gu = x[:, :, [5, 0, 2]].reshape(3, -1)
    g2 = x[:, :, [[0, 1], [2, 3]]].reshape(3, -1)
    npy("gather_runtime_in.npy", x)
    npy("gather_runtime_out.npy", np.maximum(np.concatenate([tok, gu, g2], axis=1), 0))
    nodes = [helper.make_node("Gather", ["x", "i0"], ["y"], name="rows", axis=0)]
    save(model(nodes, [fin("x", [2, 4])], [fin("y", None)], [init("i0", np.array([0], np.int64))]),
         "gather_batch_axis.onnx")


def vit_case(rng):
    """A small vision transformer as torchvision builds one (patch Conv, class token, position
    embedding, one encoder layer with nn.MultiheadAttention and a GELU MLP, the class token to
    a Linear head), exported with a symbolic batch: its attention reshapes to [tokens,
    batch x heads, ...], so egcam runs it one image per pass. The logits and the gradient of
    the top-1 logits at the patch Conv (module "patch") for 3 images."""
    import torch
    import torch.nn as nn
    torch.manual_seed(9)

    class Layer(nn.Module):
        def __init__(self, d, heads):
            super().__init__()
            self.ln_1 = nn.LayerNorm(d, eps=1e-6)
            self.attn = nn.MultiheadAttention(d, heads, batch_first=True)
            self.ln_2 = nn.LayerNorm(d, eps=1e-6)
            self.mlp = nn.Sequential(nn.Linear(d, 2 * d), nn.GELU(), nn.Linear(2 * d, d))

        def forward(self, x):
            y = self.ln_1(x)
            y, _ = self.attn(y, y, y, need_weights=False)
            x = x + y
            return x + self.mlp(self.ln_2(x))

    class Net(nn.Module):
        def __init__(self, d=8, heads=2, grid=3, patch=4):
            super().__init__()
            self.patch = nn.Conv2d(3, d, patch, stride=patch)
            self.cls = nn.Parameter(0.5 * torch.randn(1, 1, d))
            self.pos = nn.Parameter(0.5 * torch.randn(1, grid * grid + 1, d))
            self.layer = Layer(d, heads)
            self.ln = nn.LayerNorm(d, eps=1e-6)
            self.head = nn.Linear(d, 5)

        def forward(self, x):
            n = x.shape[0]
            t = self.patch(x).reshape(n, self.cls.shape[2], -1).permute(0, 2, 1)
            t = torch.cat([self.cls.expand(n, -1, -1), t], dim=1) + self.pos
            return self.head(self.ln(self.layer(t))[:, 0])

    net = Net().eval()
    x = torch.from_numpy(rng.standard_normal((3, 3, 12, 12)).astype(np.float32))
    with torch.no_grad():
        y = net(x).numpy()
    patch_grad = top1_grad(net, net.patch, x)[1]
    export_symbolic(net, x, y, "vit_tiny", 40000)
    npy("vit_tiny_grad.npy", patch_grad.numpy())
    # the token layer pytorch-grad-cam targets (the block's first LayerNorm), its patch tokens
    # laid out as a 3x3 image (reshape_transform): activation and gradient, [3,8,3,3]
    act, grad = top1_grad(net, net.layer.ln_1, x)

    def grid(t):
        return t[:, 1:, :].reshape(t.shape[0], 3, 3, t.shape[2]).permute(0, 3, 1, 2)
    npy("vit_tiny_tokens_act.npy", grid(act).numpy())
    npy("vit_tiny_tokens_grad.npy", grid(grad).numpy())


def deit_case(rng):
    """A small DeiT-style transformer with timm's attention (one qkv Linear, a Reshape and
    Permute to [3, batch, heads, tokens, dims], unbind(0): Split and Squeeze), a class and a
    distillation token (2 prefix tokens) and two blocks, exported with a symbolic batch. The
    logits of 3 images, and the activation and gradient of the top-1 logits at the last
    block's norm1, with its patch tokens laid out as a 3x3 image and as the layer is."""
    import torch
    import torch.nn as nn
    torch.manual_seed(11)

    class Attn(nn.Module):
        def __init__(self, d, h):
            super().__init__()
            self.qkv = nn.Linear(d, 3 * d)
            self.proj = nn.Linear(d, d)
            self.h = h
            self.scale = (d // h) ** -0.5

        def forward(self, x):
            b, n, c = x.shape
            qkv = self.qkv(x).reshape(b, n, 3, self.h, c // self.h).permute(2, 0, 3, 1, 4)
            q, k, v = qkv.unbind(0)
            a = ((q @ k.transpose(-2, -1)) * self.scale).softmax(dim=-1)
            return self.proj((a @ v).transpose(1, 2).reshape(b, n, c))

    class Block(nn.Module):
        def __init__(self, d, h):
            super().__init__()
            self.norm1 = nn.LayerNorm(d)
            self.attn = Attn(d, h)
            self.norm2 = nn.LayerNorm(d)
            self.mlp = nn.Sequential(nn.Linear(d, 2 * d), nn.GELU(), nn.Linear(2 * d, d))

        def forward(self, x):
            x = x + self.attn(self.norm1(x))
            return x + self.mlp(self.norm2(x))

    class Net(nn.Module):
        def __init__(self, d=8, h=2):
            super().__init__()
            self.patch_embed = nn.Conv2d(3, d, 4, stride=4)
            self.cls_token = nn.Parameter(0.5 * torch.randn(1, 1, d))
            self.dist_token = nn.Parameter(0.5 * torch.randn(1, 1, d))
            self.pos = nn.Parameter(0.5 * torch.randn(1, 11, d))
            self.blocks = nn.Sequential(Block(d, h), Block(d, h))
            self.norm = nn.LayerNorm(d)
            self.head = nn.Linear(d, 5)
            self.head_dist = nn.Linear(d, 5)

        def forward(self, x):
            t = self.patch_embed(x).flatten(2).transpose(1, 2)
            n = t.shape[0]
            t = torch.cat([self.cls_token.expand(n, -1, -1), self.dist_token.expand(n, -1, -1),
                           t], dim=1) + self.pos
            t = self.norm(self.blocks(t))
            return (self.head(t[:, 0]) + self.head_dist(t[:, 1])) / 2

    net = Net().eval()
    x = torch.from_numpy(rng.standard_normal((3, 3, 12, 12)).astype(np.float32))
    with torch.no_grad():
        y = net(x).numpy()
    act, grad = top1_grad(net, net.blocks[1].norm1, x)

    def grid(t):
        return t[:, 2:, :].reshape(t.shape[0], 3, 3, t.shape[2]).permute(0, 3, 1, 2)
    export_symbolic(net, x, y, "deit_tiny", 60000)
    npy("deit_tiny_tokens_act.npy", grid(act).numpy())
    npy("deit_tiny_tokens_grad.npy", grid(grad).numpy())
    # the whole layer, prefix tokens too ([3,11,8]: a session with whole_target)
    npy("deit_tiny_layer_act.npy", act.numpy())
    npy("deit_tiny_layer_grad.npy", grad.numpy())


def swin_case(rng):
    """A small Swin transformer, torchvision's SwinTransformer (patch 2, 8 channels, one stage
    of 2 blocks with 4x4 windows, shifted in the second block), exported with a symbolic batch:
    its stage is channels last, [N,H,W,C]. The logits of 3 images, and the activation and
    gradient of the top-1 logits, transposed to [N,C,H,W] (as pytorch-grad-cam's
    reshape_transform for Swin does), at the final norm ("norm") and at the first block's
    output ("features.1.0")."""
    import torch
    from torchvision.models.swin_transformer import SwinTransformer
    torch.manual_seed(23)
    net = SwinTransformer(patch_size=[2, 2], embed_dim=8, depths=[2], num_heads=[2],
                          window_size=[4, 4], stochastic_depth_prob=0.0, num_classes=5).eval()
    with torch.no_grad():  # norms away from 1 and 0, and a head that is not near zero
        for mod in net.modules():
            if isinstance(mod, torch.nn.LayerNorm):
                mod.weight.uniform_(0.5, 1.5)
                mod.bias.uniform_(-0.5, 0.5)
        net.head.weight.normal_(0, 0.5)
    x = torch.from_numpy(rng.standard_normal((3, 3, 16, 16)).astype(np.float32))
    with torch.no_grad():
        y = net(x).numpy()
    export_symbolic(net, x, y, "swin_tiny", 260000)
    for module, name in ((net.norm, "norm"), (net.features[1][0], "block0")):
        act, grad = top1_grad(net, module, x)
        npy("swin_tiny_%s_act.npy" % name, act.permute(0, 3, 1, 2).numpy())
        npy("swin_tiny_%s_grad.npy" % name, grad.permute(0, 3, 1, 2).numpy())


def inception_case(rng):
    """An Inception-style module: a 1x1 and a 3x3 branch (Conv, Relu) joined by a Concat, then
    GlobalAveragePool, Flatten and Gemm. `auto` is the Concat (every path passes it), not the
    last branch's Relu (the other branch goes around it). Also exported for a fixed batch of 2."""
    w1 = (0.5 * rng.standard_normal((4, 3, 1, 1))).astype(np.float32)
    w3 = (0.2 * rng.standard_normal((4, 3, 3, 3))).astype(np.float32)
    wf = (0.5 * rng.standard_normal((5, 8))).astype(np.float32)
    nodes = [
        helper.make_node("Conv", ["x", "w1"], ["c1"], name="/mix/b1/conv/Conv"),
        helper.make_node("Relu", ["c1"], ["r1"], name="/mix/b1/relu/Relu"),
        helper.make_node("Conv", ["x", "w3"], ["c3"], name="/mix/b3/conv/Conv", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c3"], ["r3"], name="/mix/b3/relu/Relu"),
        helper.make_node("Concat", ["r1", "r3"], ["cat"], name="/mix/Concat", axis=1),
        helper.make_node("GlobalAveragePool", ["cat"], ["g"], name="/pool/GlobalAveragePool"),
        helper.make_node("Flatten", ["g"], ["f"], name="/flat/Flatten"),
        helper.make_node("Gemm", ["f", "wf"], ["y"], name="/fc/Gemm", transB=1),
    ]
    save(model(nodes, [fin("x", ["N", 3, 6, 6])], [fin("y", None)],
               [init("w1", w1), init("w3", w3), init("wf", wf)]), "inception_concat.onnx")
    # the same, exported for a fixed batch of 2: shapes per row are not the file's shapes
    save(model(nodes, [fin("x", [2, 3, 6, 6])], [fin("y", None)],
               [init("w1", w1), init("w3", w3), init("wf", wf)]), "inception_concat_b2.onnx")


def batch_conv_case(rng):
    """A model exported at batch 1 that convolves along its batch axis: the image's 3 channels
    are moved to the batch axis (Transpose (1,0,2,3): [3,1,6,6]) and each is convolved as a
    one-channel image, then moved back and classified. Valid for one image only, so egcam runs
    it one image per pass; the logits of 3 images, one by one in numpy."""
    w = (0.5 * rng.standard_normal((2, 1, 3, 3))).astype(np.float32)
    wf = (0.2 * rng.standard_normal((4, 2 * 3 * 36))).astype(np.float32)
    nodes = [
        helper.make_node("Transpose", ["x"], ["t"], name="to_batch", perm=[1, 0, 2, 3]),
        helper.make_node("Conv", ["t", "w"], ["c"], name="conv", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c"], ["r"], name="relu"),
        helper.make_node("Transpose", ["r"], ["b"], name="back", perm=[1, 0, 2, 3]),
        helper.make_node("Reshape", ["b", "shape"], ["f"], name="flat"),
        helper.make_node("Gemm", ["f", "wf"], ["y"], name="fc", transB=1),
    ]
    save(model(nodes, [fin("x", ["N", 3, 6, 6])], [fin("y", None)],
               [init("w", w), init("wf", wf), init("shape", np.array([1, -1], np.int64))]),
         "batch_conv.onnx")
    x = rng.standard_normal((3, 3, 6, 6)).astype(np.float32)
    out = []
    for img in x.astype(np.float64):
        c = conv3x3_pad1(img[:, None], w)           # [3,2,6,6]: each channel an image
        b = np.maximum(c, 0).transpose(1, 0, 2, 3)  # [2,3,6,6]
        out.append(b.reshape(-1) @ wf.T.astype(np.float64))
    npy("batch_conv_in.npy", x)
    npy("batch_conv_out.npy", np.array(out))


def channels_last_input_cases(rng):
    """Models whose input is [N,H,W,3], as Keras, TensorFlow and TFLite exports take it:
    keras_nhwc.onnx rescales on the channels-last input (Mul and Add with [3] constants, as
    Keras' Rescaling and Normalization layers) before its Transpose to [N,C,H,W];
    nhwc_direct.onnx transposes at once. Then Conv, Relu, Conv, Relu ("relu2"), global average
    pool and Linear, exported with a symbolic batch; keras_head.onnx transposes back to
    channels last before its pool (a ReduceMean over axes 1 and 2), keras_softmax.onnx is
    keras_head with a final Softmax (its logits in keras_softmax_logits.npy). NAME_in.npy holds the 3
    images as egcam takes them, [N,3,H,W]; NAME_out.npy PyTorch's logits for them channels
    last; for keras_nhwc and keras_head, the activation and gradient of the top-1 logits at
    relu2; keras_nhwc_in_last.npy the images channels last."""
    import torch

    class Net(torch.nn.Module):
        def __init__(self, rescale):
            super().__init__()
            self.rescale = rescale
            self.scale = torch.nn.Parameter(torch.tensor([0.5, 1.5, -1.0]))
            self.offset = torch.nn.Parameter(torch.tensor([0.1, -0.2, 0.3]))
            self.conv1 = torch.nn.Conv2d(3, 6, 3, padding=1)
            self.relu1 = torch.nn.ReLU()
            self.conv2 = torch.nn.Conv2d(6, 6, 3, padding=1)
            self.relu2 = torch.nn.ReLU()
            self.fc = torch.nn.Linear(6, 4)

        def forward(self, x):  # x: [N,H,W,3]
            if self.rescale:
                x = x * self.scale + self.offset
            x = x.permute(0, 3, 1, 2)
            x = self.relu2(self.conv2(self.relu1(self.conv1(x))))
            return self.fc(x.mean((2, 3)))

    class Head(Net):
        """Channels last again before the pooling, as Keras exports keep it: a ReduceMean over
        axes 1 and 2 of [N,H,W,C] (GlobalAveragePooling2D)."""

        def forward(self, x):
            x = x.permute(0, 3, 1, 2)
            x = self.relu2(self.conv2(self.relu1(self.conv1(x))))
            return self.fc(x.permute(0, 2, 3, 1).mean((1, 2)))

    class Probs(Head):
        """Keras' classifiers end in a Softmax (Dense(activation="softmax"))."""

        def forward(self, x):
            return torch.softmax(super().forward(x), dim=-1)

    for name, rescale, seed in (("keras_nhwc", True, 37), ("nhwc_direct", False, 41),
                                ("keras_head", False, 53), ("keras_softmax", False, 59)):
        torch.manual_seed(seed)
        net = {"keras_head": Head, "keras_softmax": Probs}.get(name, Net)(rescale).eval()
        x = torch.from_numpy(rng.standard_normal((3, 8, 8, 3)).astype(np.float32))
        with torch.no_grad():
            y = net(x).numpy()
        path = os.path.join(OUT, name + ".onnx")
        torch.onnx.export(net, x[:1], path, opset_version=13, input_names=["input_1"],
                          output_names=["y"], dynamic_axes={"input_1": {0: "n"}, "y": {0: "n"}})
        assert os.path.getsize(path) < 8000, name
        npy(name + "_in.npy", x.permute(0, 3, 1, 2).numpy())
        npy(name + "_out.npy", y)
        if rescale:
            npy(name + "_in_last.npy", x.numpy())  # the same images channels last
        if name == "keras_softmax":  # the logits before the Softmax
            with torch.no_grad():
                npy(name + "_logits.npy", Head.forward(net, x).numpy())
        if rescale or name == "keras_head":
            act, grad = top1_grad(net, net.relu2, x)
            npy(name + "_relu2_act.npy", act.numpy())
            npy(name + "_relu2_grad.npy", grad.numpy())


def group_norm_cases(rng):
    """group_norm.onnx: Conv, GroupNorm (3 groups of 2 channels; exported as Reshape,
    InstanceNormalization, Reshape, Mul, Add), Relu ("relu1"), Conv, InstanceNorm2d with affine
    parameters (InstanceNormalization), Relu ("relu2"), global average pool, Linear, with a
    symbolic batch: PyTorch's logits of 3 images and the activation and gradient of the top-1
    logits at relu1 (the head runs backward through the InstanceNormalization).
    group_norm_opset18.onnx and group_norm_opset21.onnx: one GroupNormalization of [N,4,3,5]
    in 2 groups, epsilon 1e-3, with scale and bias per group (opset 18) or per channel (21),
    and float64 references. layer_norm_chw.onnx: a LayerNorm over [C,H,W] (opset 17,
    LayerNormalization over the last three axes), PyTorch's logits."""
    import torch

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = torch.nn.Conv2d(3, 6, 3, padding=1)
            self.gn = torch.nn.GroupNorm(3, 6)
            self.relu1 = torch.nn.ReLU()
            self.conv2 = torch.nn.Conv2d(6, 4, 3, padding=1)
            self.inorm = torch.nn.InstanceNorm2d(4, affine=True)
            self.relu2 = torch.nn.ReLU()
            self.fc = torch.nn.Linear(4, 5)

        def forward(self, x):
            x = self.relu1(self.gn(self.conv1(x)))
            x = self.relu2(self.inorm(self.conv2(x)))
            return self.fc(x.mean((2, 3)))

    torch.manual_seed(61)
    net = Net().eval()
    with torch.no_grad():  # affine parameters away from 1 and 0
        for mod in (net.gn, net.inorm):
            mod.weight.uniform_(0.5, 1.5)
            mod.bias.uniform_(-0.5, 0.5)
    x = torch.from_numpy(rng.standard_normal((3, 3, 6, 6)).astype(np.float32))
    export_with_layer(net, x, "group_norm", 12000, net.relu1, "relu1")

    # LayerNorm over [C,H,W] (opset 17: LayerNormalization with axis -3)
    torch.manual_seed(62)
    ln = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.LayerNorm([4, 6, 6]),
                             torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(),
                             torch.nn.Linear(4, 5)).eval()
    with torch.no_grad():
        ln[1].weight.uniform_(0.5, 1.5)
        ln[1].bias.uniform_(-0.5, 0.5)
        yl = ln(x).numpy()
    path = os.path.join(OUT, "layer_norm_chw.onnx")
    torch.onnx.export(ln, x[:1], path, opset_version=17, input_names=["x"], output_names=["y"],
                      dynamic_axes={"x": {0: "n"}, "y": {0: "n"}})
    assert os.path.getsize(path) < 12000
    npy("layer_norm_chw_in.npy", x.numpy())
    npy("layer_norm_chw_out.npy", yl)

    xg = rng.standard_normal((2, 4, 3, 5)).astype(np.float32)
    npy("group_norm_opset18_in.npy", xg)
    npy("group_norm_opset21_in.npy", xg)
    g = xg.astype(np.float64).reshape(2, 2, -1)
    norm = ((g - g.mean(-1, keepdims=True)) / np.sqrt(g.var(-1, keepdims=True) + 1e-3))
    for opset, k in ((18, 2), (21, 4)):
        scale = rng.uniform(0.5, 1.5, k).astype(np.float32)
        bias = rng.uniform(-0.5, 0.5, k).astype(np.float32)
        if k == 2:
            out = (norm * scale[None, :, None] + bias[None, :, None]).reshape(2, 4, 3, 5)
        else:
            out = norm.reshape(2, 4, 3, 5) * scale[None, :, None, None] + bias[None, :, None, None]
        nodes = [helper.make_node("GroupNormalization", ["x", "s", "b"], ["y"], name="gn",
                                  num_groups=2, epsilon=1e-3)]
        save(model(nodes, [fin("x", ["N", 4, 3, 5])], [fin("y", None)],
                   [init("s", scale), init("b", bias)], opset=opset),
             "group_norm_opset%d.onnx" % opset)
        npy("group_norm_opset%d_out.npy" % opset, out)


def tanh_cases(rng):
    """tanh_gelu.onnx: Conv, GELU with the tanh approximation (as PyTorch exports it: Pow 3,
    Tanh), Conv, Tanh ("act2"), global average pool, Linear, with a symbolic batch: PyTorch's
    logits of 3 images, and the activation and gradient of the top-1 logits at the first GELU
    ("act1"; the head runs backward through the Tanh). gelu_tanh_opset20.onnx: Gelu with
    approximate="tanh" beside x ** 3 (Pow) and a float64 reference."""
    import math
    import torch

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = torch.nn.Conv2d(3, 6, 3, padding=1)
            self.act1 = torch.nn.GELU(approximate="tanh")
            self.conv2 = torch.nn.Conv2d(6, 4, 3, padding=1)
            self.act2 = torch.nn.Tanh()
            self.fc = torch.nn.Linear(4, 5)

        def forward(self, x):
            x = self.act2(self.conv2(self.act1(self.conv1(x))))
            return self.fc(x.mean((2, 3)))

    torch.manual_seed(71)
    net = Net().eval()
    x = torch.from_numpy(rng.standard_normal((3, 3, 6, 6)).astype(np.float32))
    export_with_layer(net, x, "tanh_gelu", 12000, net.act1, "act1")

    xg = rng.standard_normal((2, 6)).astype(np.float32) * 2
    m = model([helper.make_node("Gelu", ["x"], ["g"], name="gelu", approximate="tanh"),
               helper.make_node("Pow", ["x", "three"], ["c"], name="cube"),
               helper.make_node("Add", ["c", "g"], ["y"], name="add")],
              [fin("x", [None, 6])], [fin("y", None)],
              [init("three", np.array(3, np.int64))], opset=20)
    save(m, "gelu_tanh_opset20.onnx")
    xd = xg.astype(np.float64)
    gelu = 0.5 * xd * (1 + np.tanh(math.sqrt(2 / math.pi) * (xd + 0.044715 * xd ** 3)))
    npy("gelu_tanh_opset20_in.npy", xg)
    npy("gelu_tanh_opset20_out.npy", xd ** 3 + gelu)


def gray_case(rng):
    """gray_cnn.onnx: a model of gray 28x28 images (MNIST's geometry): Conv, Relu, Conv, Relu
    ("relu2"), global average pool, Linear, with a symbolic batch. gray_cnn_in.npy: three
    CIFAR-10 test images of the shared data (data/cifar10-test/cat/0000..0002.jpg) as
    torchvision makes them gray: PIL bilinear resize to 28x28, convert("L"), ToTensor,
    Normalize(0.1307, 0.3081); gray_cnn_out.npy: PyTorch's logits for them."""
    import torch
    from PIL import Image
    shared = os.environ.get("EGC_SHARED_DIR", os.path.join(os.path.dirname(
        os.path.abspath(__file__)), "..", "..", "shared"))
    torch.manual_seed(79)
    net = torch.nn.Sequential()
    net.add_module("conv1", torch.nn.Conv2d(1, 4, 3, padding=1))
    net.add_module("relu1", torch.nn.ReLU())
    net.add_module("conv2", torch.nn.Conv2d(4, 6, 3, padding=1))
    net.add_module("relu2", torch.nn.ReLU())
    net.add_module("pool", torch.nn.AdaptiveAvgPool2d(1))
    net.add_module("flat", torch.nn.Flatten())
    net.add_module("fc", torch.nn.Linear(6, 10))
    net.eval()
    xs = []
    for k in range(3):
        img = Image.open(os.path.join(shared, "data", "cifar10-test", "cat", "%04d.jpg" % k))
        g = img.convert("RGB").resize((28, 28), Image.BILINEAR).convert("L")
        t = torch.from_numpy(np.asarray(g, dtype=np.uint8).copy()).float().div(255)
        xs.append(((t - 0.1307) / 0.3081)[None])
    x = torch.stack(xs)
    with torch.no_grad():
        y = net(x).numpy()
    export_symbolic(net, x, y, "gray_cnn", 8000)


def cbam_case(rng):
    """cbam.onnx: CBAM's spatial attention: Conv, Relu ("relu1"), the mean and the maximum
    over the channels (ReduceMean and ReduceMax over axis 1, keepdims), Concat, Conv, Sigmoid,
    Mul with the features, global average pool, Linear, with a symbolic batch: PyTorch's logits
    of 3 images and the activation and gradient of the top-1 logits at relu1 (the head runs
    backward through the maximum)."""
    import torch

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = torch.nn.Conv2d(3, 6, 3, padding=1)
            self.relu1 = torch.nn.ReLU()
            self.att = torch.nn.Conv2d(2, 1, 3, padding=1)
            self.fc = torch.nn.Linear(6, 5)

        def forward(self, x):
            f = self.relu1(self.conv1(x))
            s = torch.cat([f.mean(1, keepdim=True), f.max(1, keepdim=True)[0]], 1)
            f = f * torch.sigmoid(self.att(s))
            return self.fc(f.mean((2, 3)))

    torch.manual_seed(89)
    net = Net().eval()
    x = torch.from_numpy(rng.standard_normal((3, 3, 6, 6)).astype(np.float32))
    export_with_layer(net, x, "cbam", 12000, net.relu1, "relu1")


def upsample_case(rng):
    """upsample_fuse.onnx: an HRNet-style fusion: a full-resolution branch and a branch at half
    resolution (Conv stride 2, Relu "low"), upsampled by 2 (nn.Upsample, nearest: Resize) and
    added, Relu, global average pool, Linear, with a symbolic batch: PyTorch's logits of 3
    images and the activation and gradient of the top-1 logits at "low" (the head runs
    backward through the Resize)."""
    import torch

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.high = torch.nn.Conv2d(3, 4, 3, padding=1)
            self.down = torch.nn.Conv2d(3, 4, 3, stride=2, padding=1)
            self.low = torch.nn.ReLU()
            self.up = torch.nn.Upsample(scale_factor=2, mode="nearest")
            self.fc = torch.nn.Linear(4, 5)

        def forward(self, x):
            f = torch.relu(self.high(x) + self.up(self.low(self.down(x))))
            return self.fc(f.mean((2, 3)))

    torch.manual_seed(101)
    net = Net().eval()
    x = torch.from_numpy(rng.standard_normal((3, 3, 8, 8)).astype(np.float32))
    export_with_layer(net, x, "upsample_fuse", 12000, net.low, "low")
    # sizes with keep_aspect_ratio_policy other than stretch (opset 18): refused
    nodes = [helper.make_node("Resize", ["x", "", "", "sizes"], ["y"], name="resize",
                              mode="nearest", keep_aspect_ratio_policy="not_larger")]
    save(model(nodes, [fin("x", [1, 2, 4, 4])], [fin("y", None)],
               [init("sizes", np.array([1, 2, 8, 12], np.int64))], opset=18),
         "resize_policy.onnx")


def exp_units_case(rng):
    """exp_units.onnx: Conv, ELU (alpha 0.9, "act1"), Conv, Mish (as PyTorch exports it:
    Softplus, Tanh, Mul), Conv, CELU (alpha 0.7), SELU, Softplus, Softsign, global average
    pool, Linear, with a symbolic batch: PyTorch's logits of 3 images and the activation and
    gradient of the top-1 logits at act1 (the head runs backward through every unit).
    mish_opset18.onnx: the Mish operator beside Softsign and Log(Exp), with a float64
    reference, and elu_inf.onnx (an Elu alone). mnist_logsoftmax.onnx: PyTorch's MNIST example network, smaller (gray 28x28,
    Conv, Relu, Conv, Relu ("relu2"), MaxPool, Dropout, Flatten, Linear, Relu, Dropout,
    Linear, log_softmax), with a symbolic batch: its output (log-probabilities) for 3 images
    (_out.npy), the logits before the LogSoftmax (_logits.npy) and the probabilities
    (_probs.npy)."""
    import torch

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = torch.nn.Conv2d(3, 6, 3, padding=1)
            self.act1 = torch.nn.ELU(alpha=0.9)
            self.conv2 = torch.nn.Conv2d(6, 6, 3, padding=1)
            self.act2 = torch.nn.Mish()
            self.conv3 = torch.nn.Conv2d(6, 4, 3, padding=1)
            self.fc = torch.nn.Linear(4, 5)

        def forward(self, x):
            x = self.act2(self.conv2(self.act1(self.conv1(x))))
            x = torch.nn.functional.celu(self.conv3(x), alpha=0.7)
            x = torch.nn.functional.softsign(torch.nn.functional.softplus(
                torch.nn.functional.selu(x)))
            return self.fc(x.mean((2, 3)))

    torch.manual_seed(107)
    net = Net().eval()
    x = torch.from_numpy(rng.standard_normal((3, 3, 6, 6)).astype(np.float32) * 2)
    export_with_layer(net, x, "exp_units", 16000, net.act1, "act1")

    xm = rng.standard_normal((2, 7)).astype(np.float32) * 4
    xm[0, 0], xm[0, 1] = 30.0, -30.0
    m = model([helper.make_node("Mish", ["x"], ["m"], name="mish"),
               helper.make_node("Softsign", ["x"], ["s"], name="softsign"),
               helper.make_node("Exp", ["s"], ["e"], name="exp"),
               helper.make_node("Log", ["e"], ["l"], name="log"),
               helper.make_node("Add", ["m", "l"], ["y"], name="add")],
              [fin("x", [None, 7])], [fin("y", None)], opset=18)
    save(m, "mish_opset18.onnx")
    save(model([helper.make_node("Elu", ["x"], ["y"], name="elu", alpha=0.5)],
               [fin("x", ["N", 6])], [fin("y", None)]), "elu_inf.onnx")
    xd = xm.astype(np.float64)
    npy("mish_opset18_in.npy", xm)
    npy("mish_opset18_out.npy", xd * np.tanh(np.log1p(np.exp(xd))) + xd / (1 + np.abs(xd)))

    class Mnist(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = torch.nn.Conv2d(1, 4, 3)
            self.relu1 = torch.nn.ReLU()
            self.conv2 = torch.nn.Conv2d(4, 2, 3)
            self.relu2 = torch.nn.ReLU()
            self.drop1 = torch.nn.Dropout(0.25)
            self.fc1 = torch.nn.Linear(2 * 12 * 12, 8)
            self.drop2 = torch.nn.Dropout(0.5)
            self.fc2 = torch.nn.Linear(8, 10)

        def logits(self, x):
            x = self.relu2(self.conv2(self.relu1(self.conv1(x))))
            x = torch.flatten(self.drop1(torch.nn.functional.max_pool2d(x, 2)), 1)
            return self.fc2(self.drop2(torch.relu(self.fc1(x))))

        def forward(self, x):
            return torch.nn.functional.log_softmax(self.logits(x), dim=1)

    torch.manual_seed(109)
    net = Mnist().eval()
    x = torch.from_numpy(rng.standard_normal((3, 1, 28, 28)).astype(np.float32))
    with torch.no_grad():
        y = net(x).numpy()
        logits = net.logits(x).numpy()
    export_symbolic(net, x, y, "mnist_logsoftmax", 20000)
    npy("mnist_logsoftmax_logits.npy", logits)
    npy("mnist_logsoftmax_probs.npy", np.exp(y.astype(np.float64)))


def resize_modes_case(rng):
    """resize_modes.onnx: PyTorch's F.interpolate in its modes, as a Keras-style model resizes
    its input and a segmentation-style head its features: the input 12x12 down to 8x8
    (bilinear), Conv, Relu ("relu1"), up by 2 (bilinear, scale_factor), Conv stride 2, to 12x12
    (bicubic, align_corners=True), to 9x7 (nearest, factors that are not whole), global
    average pool, Linear, with a symbolic batch: PyTorch's logits of 3 images and the
    activation and gradient of the top-1 logits at relu1 (the head runs backward through three
    Resizes)."""
    import torch
    F = torch.nn.functional

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = torch.nn.Conv2d(3, 6, 3, padding=1)
            self.relu1 = torch.nn.ReLU()
            self.conv2 = torch.nn.Conv2d(6, 5, 3, stride=2, padding=1)
            self.fc = torch.nn.Linear(5, 4)

        def forward(self, x):
            x = F.interpolate(x, size=(8, 8), mode="bilinear", align_corners=False)
            f = self.relu1(self.conv1(x))
            f = F.interpolate(f, scale_factor=2, mode="bilinear", align_corners=False)
            f = self.conv2(f)
            f = F.interpolate(f, size=(12, 12), mode="bicubic", align_corners=True)
            f = F.interpolate(f, size=(9, 7), mode="nearest")
            return self.fc(f.mean((2, 3)))

    torch.manual_seed(127)
    net = Net().eval()
    x = torch.from_numpy(rng.standard_normal((3, 3, 12, 12)).astype(np.float32))
    export_with_layer(net, x, "resize_modes", 12000, net.relu1, "relu1")

    # scale factors that are not whole (1.4 and 0.7: the export writes the scales, and the
    # output sizes are floor(10 x 1.4f) = 14 and floor(14 x 0.7f) = 9 in float32), and an
    # ELU whose input is 0 at the image's padded border (its gradient there is PyTorch's)
    class Frac(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(3, 4, 3, padding=1, bias=False)
            self.act = torch.nn.ELU(alpha=0.5)
            self.fc = torch.nn.Linear(4, 3)

        def forward(self, x):
            f = F.interpolate(x, scale_factor=1.4, mode="bilinear", align_corners=False)
            f = self.act(self.conv(F.pad(f, (2, 2, 2, 2))))
            f = F.interpolate(f, scale_factor=0.7, mode="bilinear", align_corners=False)
            return self.fc(f.mean((2, 3)))

    torch.manual_seed(139)
    net = Frac().eval()
    x = torch.from_numpy(rng.standard_normal((2, 3, 10, 10)).astype(np.float32))
    export_with_layer(net, x, "resize_fraction", 12000, net.conv, "conv")


def dynamic_hw_case(rng):
    """dynamic_hw.onnx: a model exported with dynamic H and W axes (dynamic_axes {0: n, 2: h,
    3: w}): Conv, Relu ("relu1"), a bilinear Resize to half of the activation's own size
    (F.interpolate(size=(h // 2, w // 2)): Shape, Gather, Div and Concat of the input's shape
    that fold only once H and W are known), Conv, Relu, global average pool, Linear:
    PyTorch's logits of 3 images at 20x20 (dynamic_hw_in/_out.npy) and of 2 at 24x16
    (dynamic_hw_b_in/_b_out.npy)."""
    import torch
    F = torch.nn.functional

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = torch.nn.Conv2d(3, 6, 3, padding=1)
            self.relu1 = torch.nn.ReLU()
            self.conv2 = torch.nn.Conv2d(6, 5, 3, padding=1)
            self.fc = torch.nn.Linear(5, 4)

        def forward(self, x):
            f = self.relu1(self.conv1(x))
            f = F.interpolate(f, size=(f.shape[2] // 2, f.shape[3] // 2), mode="bilinear",
                              align_corners=False)
            f = torch.relu(self.conv2(f))
            return self.fc(f.mean((2, 3)))

    torch.manual_seed(131)
    net = Net().eval()
    x = torch.from_numpy(rng.standard_normal((3, 3, 20, 20)).astype(np.float32))
    xb = torch.from_numpy(rng.standard_normal((2, 3, 24, 16)).astype(np.float32))
    path = os.path.join(OUT, "dynamic_hw.onnx")
    torch.onnx.export(net, x[:1], path, opset_version=13, input_names=["x"], output_names=["y"],
                      dynamic_axes={"x": {0: "n", 2: "h", 3: "w"}, "y": {0: "n"}})
    assert os.path.getsize(path) < 12000
    with torch.no_grad():
        npy("dynamic_hw_in.npy", x.numpy())
        npy("dynamic_hw_out.npy", net(x).numpy())
        npy("dynamic_hw_b_in.npy", xb.numpy())
        npy("dynamic_hw_b_out.npy", net(xb).numpy())


def qdq_cases(rng):
    """qdq_cnn.onnx: a quantization-aware model as PyTorch exports it (QuantizeLinear and
    DequantizeLinear pairs): the input fake-quantized (uint8, zero point 128), Conv with
    weights fake-quantized per output channel (int8), Relu ("relu1"), its output fake-quantized
    (uint8), Conv (int8 weights per tensor), Relu, fake-quantized, global average pool, Linear,
    with a symbolic batch: PyTorch's logits of 3 images, and the activation and gradient of the
    top-1 logits at relu1 (the head runs backward through the fake quantization, straight
    through where not clamped). qdq_ort.onnx: a model as ONNX Runtime's quantizer writes it,
    int8 weights and int32 biases stored quantized (DequantizeLinear of initializers, per
    channel with axis 0), uint8 activations: Q/DQ, Conv 1x1, Relu, Q/DQ, global average pool,
    Flatten, Gemm, with a float64 reference. qdq_int_op.onnx (a Relu reads a QuantizeLinear's
    integers), qdq_rescale.onnx (a DequantizeLinear with other parameters than its
    QuantizeLinear), qdq_axis.onnx (per-channel scales on an activation) and
    qdq_int_output.onnx (the integers as the output): refused. qdq_ort_head.onnx: ONNX
    Runtime's layout without Relus (a uint8 pair with zero point 0 is the activation), an int8
    DequantizeLinear without a zero point, a quantized final Softmax; the logits before it as
    float64 reference (_logits.npy)."""
    import torch
    fq = torch.fake_quantize_per_tensor_affine

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = torch.nn.Conv2d(3, 6, 3, padding=1)
            self.relu1 = torch.nn.ReLU()
            self.conv2 = torch.nn.Conv2d(6, 5, 3, padding=1)
            self.fc = torch.nn.Linear(5, 4)
            self.register_buffer("s1", self.conv1.weight.detach().abs().amax((1, 2, 3)) / 127)
            self.register_buffer("z1", torch.zeros(6, dtype=torch.int32))

        def forward(self, x):
            x = fq(x, 0.03, 128, 0, 255)
            w1 = torch.fake_quantize_per_channel_affine(self.conv1.weight, self.s1, self.z1, 0,
                                                        -128, 127)
            f = self.relu1(torch.nn.functional.conv2d(x, w1, self.conv1.bias, padding=1))
            f = fq(f, 0.02, 0, 0, 255)
            w2 = fq(self.conv2.weight, 0.004, 0, -128, 127)
            f = torch.relu(torch.nn.functional.conv2d(f, w2, self.conv2.bias, padding=1))
            f = fq(f, 0.01, 0, 0, 255)
            return self.fc(f.mean((2, 3)))

    torch.manual_seed(137)
    net = Net().eval()
    x = torch.from_numpy(rng.standard_normal((3, 3, 6, 6)).astype(np.float32))
    export_with_layer(net, x, "qdq_cnn", 16000, net.relu1, "relu1")

    # ONNX Runtime's QDQ format: quantized initializers, DequantizeLinear nodes
    f32 = np.float32
    xs, xz = f32(0.04), np.uint8(120)
    w = rng.integers(-127, 128, (4, 3, 1, 1)).astype(np.int8)
    ws = (rng.uniform(0.005, 0.02, 4)).astype(f32)
    b = rng.integers(-500, 500, 4).astype(np.int32)
    bs = (xs * ws).astype(f32)
    a_s, a_z = f32(0.05), np.uint8(0)
    g = rng.integers(-127, 128, (5, 4)).astype(np.int8)
    gs = f32(0.01)
    nodes = [helper.make_node("QuantizeLinear", ["x", "xs", "xz"], ["xq"], name="q_in"),
             helper.make_node("DequantizeLinear", ["xq", "xs", "xz"], ["xd"], name="dq_in"),
             helper.make_node("DequantizeLinear", ["w", "ws", "wz"], ["wd"], name="dq_w", axis=0),
             helper.make_node("DequantizeLinear", ["b", "bs"], ["bd"], name="dq_b", axis=0),
             helper.make_node("Conv", ["xd", "wd", "bd"], ["c"], name="conv"),
             helper.make_node("Relu", ["c"], ["r"], name="relu"),
             helper.make_node("QuantizeLinear", ["r", "as", "az"], ["rq"], name="q_r"),
             helper.make_node("DequantizeLinear", ["rq", "as", "az"], ["rd"], name="dq_r"),
             helper.make_node("GlobalAveragePool", ["rd"], ["p"], name="gap"),
             helper.make_node("Flatten", ["p"], ["pf"], name="flat"),
             helper.make_node("DequantizeLinear", ["g", "gs"], ["gd"], name="dq_g"),
             helper.make_node("Gemm", ["pf", "gd"], ["y"], name="fc", transB=1)]
    inits = [init("xs", np.array(xs)), init("xz", np.array(xz)), init("w", w),
             init("ws", ws), init("wz", np.zeros(4, np.int8)), init("b", b), init("bs", bs),
             init("as", np.array(a_s)), init("az", np.array(a_z)), init("g", g),
             init("gs", np.array(gs))]
    save(model(nodes, [fin("x", ["N", 3, 4, 4])], [fin("y", None)], inits), "qdq_ort.onnx")
    xi = (rng.standard_normal((2, 3, 4, 4)) * 2).astype(f32)

    def qdq(v, s, z, lo, hi):
        q = np.clip(np.rint(v.astype(f32) / f32(s)) + float(z), lo, hi)
        return (q - float(z)) * float(s)

    xd = qdq(xi, xs, xz, 0, 255)
    wd = (w.astype(np.float64) * ws.astype(np.float64)[:, None, None, None])[:, :, 0, 0]
    c = np.einsum("nchw,oc->nohw", xd, wd) + (b * bs.astype(np.float64))[None, :, None, None]
    r = qdq(np.maximum(c, 0).astype(f32), a_s, a_z, 0, 255)
    y = r.mean(axis=(2, 3)) @ (g.astype(np.float64) * float(gs)).T
    npy("qdq_ort_in.npy", xi)
    npy("qdq_ort_out.npy", y)
    # refused: integers read by another operator; a rescaling; scales per channel
    nodes = [helper.make_node("QuantizeLinear", ["x", "s", "z"], ["q"], name="quant"),
             helper.make_node("Relu", ["q"], ["y"], name="int_relu")]
    save(model(nodes, [fin("x", [1, 2, 3, 3])], [fin("y", None)],
               [init("s", np.array(f32(0.1))), init("z", np.array(np.uint8(0)))]),
         "qdq_int_op.onnx")
    nodes = [helper.make_node("QuantizeLinear", ["x", "s", "z"], ["q"], name="quant"),
             helper.make_node("DequantizeLinear", ["q", "s2", "z"], ["y"], name="dequant")]
    save(model(nodes, [fin("x", [1, 2, 3, 3])], [fin("y", None)],
               [init("s", np.array(f32(0.1))), init("s2", np.array(f32(0.2))),
                init("z", np.array(np.uint8(0)))]), "qdq_rescale.onnx")
    nodes = [helper.make_node("QuantizeLinear", ["x", "s", "z"], ["q"], name="quant", axis=1),
             helper.make_node("DequantizeLinear", ["q", "s", "z"], ["y"], name="dequant",
                              axis=1)]
    save(model(nodes, [fin("x", [1, 2, 3, 3])], [fin("y", None)],
               [init("s", np.array([0.1, 0.2], f32)), init("z", np.zeros(2, np.uint8))]),
         "qdq_axis.onnx")
    # refused: the integers as the model's output
    nodes = [helper.make_node("Flatten", ["x"], ["f"], name="flat"),
             helper.make_node("QuantizeLinear", ["f", "s", "z"], ["y"], name="quant_out")]
    save(model(nodes, [fin("x", [1, 2, 3, 3])], [fin("y", None)],
               [init("s", np.array(f32(0.1))), init("z", np.array(np.uint8(128)))]),
         "qdq_int_output.onnx")
    # ONNX Runtime's layout without the Relus (the uint8 pair with zero point 0 clamps), an
    # int8 pair whose DequantizeLinear has no zero point (0 of the integers' type), and a
    # quantized final Softmax (scale 1/256): Conv, Q/DQ int8 ("cq"/"cd"), Conv, Q/DQ uint8
    # ("dd": the activation), global average pool, Flatten, Gemm, Softmax, Q/DQ; the logits
    # before the Softmax as reference
    w1 = (rng.standard_normal((4, 3, 3, 3)) * 0.3).astype(f32)
    w2 = (rng.standard_normal((5, 4, 1, 1)) * 0.3).astype(f32)
    g2 = (rng.standard_normal((3, 5)) * 0.5).astype(f32)
    c_s, c_z, d_s = f32(0.03), np.uint8(0), f32(0.02)
    nodes = [helper.make_node("Conv", ["x", "w1"], ["c"], name="conv1", pads=[1, 1, 1, 1]),
             helper.make_node("QuantizeLinear", ["c", "cs", "cz"], ["cq"], name="q1"),
             helper.make_node("DequantizeLinear", ["cq", "cs"], ["cd"], name="dq1"),
             helper.make_node("Conv", ["cd", "w2"], ["d"], name="conv2"),
             helper.make_node("QuantizeLinear", ["d", "ds", "dz"], ["dq"], name="q2"),
             helper.make_node("DequantizeLinear", ["dq", "ds", "dz"], ["dd"], name="dq2"),
             helper.make_node("GlobalAveragePool", ["dd"], ["p"], name="gap"),
             helper.make_node("Flatten", ["p"], ["pf"], name="flat"),
             helper.make_node("Gemm", ["pf", "g2"], ["l"], name="fc", transB=1),
             helper.make_node("Softmax", ["l"], ["sm"], name="softmax", axis=1),
             helper.make_node("QuantizeLinear", ["sm", "ss", "sz"], ["smq"], name="q3"),
             helper.make_node("DequantizeLinear", ["smq", "ss", "sz"], ["y"], name="dq3")]
    inits = [init("w1", w1), init("w2", w2), init("g2", g2), init("cs", np.array(c_s)),
             init("cz", np.array(np.int8(0))), init("ds", np.array(d_s)),
             init("dz", np.array(c_z)), init("ss", np.array(f32(1 / 256))),
             init("sz", np.array(np.uint8(0)))]
    save(model(nodes, [fin("x", ["N", 3, 5, 5])], [fin("y", None)], inits), "qdq_ort_head.onnx")
    xh = rng.standard_normal((2, 3, 5, 5)).astype(f32)

    def conv(v, wt, pad):
        v = np.pad(v.astype(np.float64), ((0, 0), (0, 0), (pad, pad), (pad, pad)))
        k = wt.shape[2]
        o = np.zeros((v.shape[0], wt.shape[0], v.shape[2] - k + 1, v.shape[3] - k + 1))
        for i in range(k):
            for j in range(k):
                o += np.einsum("nchw,oc->nohw", v[:, :, i:i + o.shape[2], j:j + o.shape[3]],
                               wt[:, :, i, j].astype(np.float64))
        return o

    c = qdq(conv(xh, w1, 1).astype(f32), c_s, 0, -128, 127)
    d = qdq(conv(c, w2, 0).astype(f32), d_s, 0, 0, 255)
    npy("qdq_ort_head_in.npy", xh)
    npy("qdq_ort_head_logits.npy", d.mean(axis=(2, 3)) @ g2.astype(np.float64).T)


def resize_reference(x, scales, outs, mode, ct, nr, a, ex):
    """ONNX's reference Resize (onnx/reference/ops/op_resize.py) on the last two axes of x, in
    float64, one axis after the other (its kernels are separable), with one change: the n
    input positions nearest to a coordinate are chosen from the coordinate itself, where the
    reference adds the edge padding to it first and can round it onto a tie (x = 1 + 2e-16
    then picks the positions of 1 but weighs them as those of 1 and 2)."""
    def coeffs(r):
        if mode == "cubic":
            s = 1 - r
            return np.array([((a * (r + 1) - 5 * a) * (r + 1) + 8 * a) * (r + 1) - 4 * a,
                             ((a + 2) * r - (a + 3)) * r * r + 1,
                             ((a + 2) * s - (a + 3)) * s * s + 1,
                             ((a * (s + 1) - 5 * a) * (s + 1) + 8 * a) * (s + 1) - 4 * a])
        if mode == "linear":
            return np.array([1 - r, r])
        if r == 1.0:
            return np.array([0.0, 1.0])
        up = {"round_prefer_floor": r > 0.5, "round_prefer_ceil": r >= 0.5, "floor": False,
              "ceil": True}[nr]
        return np.array([0.0, 1.0]) if up else np.array([1.0, 0.0])

    def axis(v, scale, out):
        n_in = len(v)
        ow = scale * n_in
        res = np.zeros(out)
        for o in range(out):
            if ct == "align_corners":
                xo = 0.0 if ow == 1 else o * (n_in - 1) / (ow - 1)
            elif ct == "asymmetric":
                xo = o / scale
            elif ct == "pytorch_half_pixel":
                xo = -0.5 if ow == 1 else (o + 0.5) / scale - 0.5
            elif ct == "half_pixel":
                xo = (o + 0.5) / scale - 0.5
            elif ct == "half_pixel_symmetric":
                xo = n_in / 2 * (1 - out / ow) + (o + 0.5) / scale - 0.5
            else:  # tf_half_pixel_for_nn
                xo = (o + 0.5) / scale
            fl = np.floor(xo)
            r = 1.0 if xo == fl else xo - fl
            c = coeffs(r).astype(np.float64)
            k = len(c)
            pad = (k + 1) // 2
            idx = sorted(sorted(range(n_in + 2 * pad), key=lambda i: (abs(xo - (i - pad)), i))[:k])
            orig = np.array(idx) - pad
            if ex:
                c = np.where((orig < 0) | (orig >= n_in), 0.0, c)
                c = c / c.sum()
            res[o] = np.dot(c, v[np.clip(orig, 0, n_in - 1)])
        return res

    y = np.apply_along_axis(axis, 2, x.astype(np.float64), scales[0], outs[0])
    return np.apply_along_axis(axis, 3, y, scales[1], outs[1])


def resize_grid_cases(rng):
    """resize_grid_a.onnx (an input [N,3,4,5]) and resize_grid_b.onnx ([N,3,7,2]): every
    Resize egcam takes (modes nearest, linear and cubic; the six coordinate transformations;
    the four nearest roundings; cubic with A = -0.75, and -0.5 with exclude_outside; factors
    0.6, 1.4 and 2.5 given as scales, and as sizes), each node's output flattened, all of them
    concatenated: the float64 reference of resize_reference (ONNX's reference)."""
    for tag, (h, w) in (("a", (4, 5)), ("b", (7, 2))):
        nodes, inits, outs_flat, refs = [], [], [], []
        x = rng.standard_normal((1, 3, h, w)).astype(np.float32)
        k = 0
        for sc in (0.6, 1.4, 2.5):
            for mode in ("nearest", "linear", "cubic"):
                for ct in ("half_pixel", "pytorch_half_pixel", "align_corners", "asymmetric",
                           "half_pixel_symmetric", "tf_half_pixel_for_nn"):
                    nrs = ("round_prefer_floor", "round_prefer_ceil", "floor", "ceil") \
                        if mode == "nearest" else ("round_prefer_floor",)
                    cubics = ((-0.75, 0), (-0.5, 1)) if mode == "cubic" else ((-0.75, 0),)
                    for nr in nrs:
                        for a, ex in cubics:
                            for sizes in (0, 1):
                                if sizes:
                                    oh = max(1, int(np.floor(h * sc)))
                                    ow = max(1, int(np.floor(w * sc + 1)))
                                    scales = (oh / h, ow / w)
                                    inits.append(init("s%d" % k, np.array([1, 3, oh, ow], np.int64)))
                                    ins = ["x", "", "", "s%d" % k]
                                else:
                                    f = np.float32(sc)
                                    oh = int(np.floor(np.float32(h) * f))
                                    ow = int(np.floor(np.float32(w) * f))
                                    if oh < 1 or ow < 1:
                                        continue
                                    scales = (float(f), float(f))
                                    inits.append(init("s%d" % k, np.array([1, 1, sc, sc], np.float32)))
                                    ins = ["x", "", "s%d" % k]
                                nodes.append(helper.make_node(
                                    "Resize", ins, ["r%d" % k], name="resize%d" % k, mode=mode,
                                    coordinate_transformation_mode=ct, nearest_mode=nr,
                                    cubic_coeff_a=a, exclude_outside=ex))
                                nodes.append(helper.make_node("Flatten", ["r%d" % k], ["f%d" % k],
                                                              name="flat%d" % k, axis=1))
                                outs_flat.append("f%d" % k)
                                refs.append(resize_reference(x, scales, (oh, ow), mode, ct, nr,
                                                             a, ex).reshape(1, -1))
                                k += 1
        parts = []  # Concat in groups (egcam takes at most 64 inputs per node)
        for g in range(0, len(outs_flat), 60):
            parts.append("cat%d" % g)
            nodes.append(helper.make_node("Concat", outs_flat[g:g + 60], [parts[-1]],
                                          name=parts[-1], axis=1))
        nodes.append(helper.make_node("Concat", parts, ["y"], name="cat", axis=1))
        name = "resize_grid_" + tag
        save(model(nodes, [fin("x", ["N", 3, h, w])], [fin("y", None)], inits, opset=19),
             name + ".onnx", 80000)
        npy(name + "_in.npy", x)
        npy(name + "_out.npy", np.concatenate(refs, 1).astype(np.float32))


def main():
    os.makedirs(OUT, exist_ok=True)
    rng = np.random.default_rng(1234)
    autopad_cases(rng)
    bn_fold_case(rng)
    shape_subgraph_case(rng)
    dropout_cases(rng)
    error_cases(rng)
    unsorted_case(rng)
    legacy_case(rng)
    misc_case(rng)
    fold_ops_case(rng)
    fold_runtime_case(rng)
    composite_cases(np.random.default_rng(99))
    convnext_cases(np.random.default_rng(7))
    gather_cases(np.random.default_rng(11))
    vit_case(np.random.default_rng(13))
    batch_conv_case(np.random.default_rng(17))
    dropout_training_cases()
    deit_case(np.random.default_rng(19))
    swin_case(np.random.default_rng(29))
    inception_case(np.random.default_rng(31))
    channels_last_input_cases(np.random.default_rng(43))
    group_norm_cases(np.random.default_rng(67))
    tanh_cases(np.random.default_rng(73))
    gray_case(np.random.default_rng(83))
    cbam_case(np.random.default_rng(97))
    upsample_case(np.random.default_rng(103))
    exp_units_case(np.random.default_rng(113))
    resize_modes_case(np.random.default_rng(127))
    dynamic_hw_case(np.random.default_rng(131))
    qdq_cases(np.random.default_rng(137))
    resize_grid_cases(np.random.default_rng(149))


if __name__ == "__main__":
    main()
