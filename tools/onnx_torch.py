#!/usr/bin/env python3
"""Independent PyTorch reference for ONNX classifiers: an ONNX -> torch interpreter.

egcam's golden files are computed with this module, not with egcam's own importer, so the two share
no code. It walks the ONNX graph node by node (the file's order, which ONNX requires to be
topological) and evaluates each node with torch / torch.nn.functional. Floating-point tensors are
kept in one compute dtype (float64 by default: the reference then carries no float32 rounding of its
own); integer tensors are int64, booleans bool. Weights are plain tensors that never require grad.

Operators: Conv (groups, dilations, asymmetric and auto_pad padding), Clip, Relu, Add, Sub, Mul, Div,
GlobalAveragePool, AveragePool, MaxPool, Flatten, Gemm, MatMul, Slice (negative and >1 steps), Pad
(constant/reflect/edge), Reshape, Concat, Transpose, Cast, Constant, ConstantOfShape,
BatchNormalization (inference), Dropout (inference), Identity, Sigmoid, Softmax, Shape, Gather,
Unsqueeze, Squeeze.

API:
    model = OnnxTorch("mobilenet_v2_imagenet.onnx", dtype=torch.float64)
    logits = model(x)                                  # x: [B,3,H,W] tensor or ndarray
    logits, cap = model(x, capture=["t168"])           # cap["t168"]: [B,K,h,w], requires_grad
    g = torch.autograd.grad(logits[i, c], cap["t168"])[0]   # d logits[i,c] / d A

A captured tensor that does not already require grad (the usual case: x does not) is replaced in
the graph by a detached leaf that requires grad, so the rest of the graph (the head) is recorded by
autograd and gradients with respect to it are exact; nothing before it is recorded.

Self-test (exports small PyTorch modules and hand-built graphs to ONNX, runs them here, compares):
    /usr/bin/python3 tools/onnx_torch.py --selftest
Run one model on one preprocessed image and print the top-5:
    /usr/bin/python3 tools/onnx_torch.py MODEL.onnx --image IMG --preset tf --size 224
"""

import math
import sys

import numpy as np
import onnx
import torch
import torch.nn.functional as F
from onnx import numpy_helper

# ONNX TensorProto data types grouped by how this interpreter stores them.
_FLOAT_TYPES = {onnx.TensorProto.FLOAT, onnx.TensorProto.DOUBLE, onnx.TensorProto.FLOAT16,
                onnx.TensorProto.BFLOAT16}
_INT_TYPES = {onnx.TensorProto.INT8, onnx.TensorProto.INT16, onnx.TensorProto.INT32,
              onnx.TensorProto.INT64, onnx.TensorProto.UINT8, onnx.TensorProto.UINT16,
              onnx.TensorProto.UINT32, onnx.TensorProto.UINT64}
_INT64_MAX = 2 ** 63 - 1


class OnnxTorch(torch.nn.Module):
    """Evaluates an ONNX model with torch operations.

    path: .onnx file (or an onnx.ModelProto). dtype: the floating compute dtype (float64 or
    float32). device: torch device for weights and activations.
    """

    def __init__(self, path, dtype=torch.float64, device="cpu"):
        super().__init__()
        self.proto = path if isinstance(path, onnx.ModelProto) else onnx.load(path)
        self.dtype = dtype
        self.device = torch.device(device)
        graph = self.proto.graph
        self.opset = 1
        for imp in self.proto.opset_import:
            if imp.domain in ("", "ai.onnx"):
                self.opset = imp.version
        self.weights = {}
        for init in graph.initializer:
            self.weights[init.name] = self._from_numpy(numpy_helper.to_array(init), init.name)
        self.input_names = [i.name for i in graph.input if i.name not in self.weights]
        self.output_names = [o.name for o in graph.output]
        self.nodes = list(graph.node)
        for n in self.nodes:
            if n.domain not in ("", "ai.onnx"):
                raise NotImplementedError(f"node '{n.name}': operator domain '{n.domain}' "
                                          f"is not supported")
            if not hasattr(self, "_op_" + n.op_type):
                raise NotImplementedError(f"node '{n.name}' ({n.op_type}): operator not supported")
        # Index of the last node reading each value, so intermediates can be dropped early.
        self._last_use = {}
        for i, n in enumerate(self.nodes):
            for name in n.input:
                if name:
                    self._last_use[name] = i
        self.value_names = set(self.input_names) | {o for n in self.nodes for o in n.output if o}

    # ---- conversions --------------------------------------------------------------------------
    def _from_numpy(self, a, what):
        """ndarray -> torch tensor: floats in the compute dtype, integers int64, bool bool."""
        if a.dtype == np.bool_:
            return torch.from_numpy(a.copy()).to(self.device)
        if np.issubdtype(a.dtype, np.floating):
            return torch.from_numpy(a.astype(np.float64)).to(self.device, self.dtype)
        if np.issubdtype(a.dtype, np.integer):
            if a.dtype == np.uint64 and a.size and a.max() > _INT64_MAX:
                raise ValueError(f"'{what}': uint64 value does not fit int64")
            return torch.from_numpy(a.astype(np.int64)).to(self.device)
        raise NotImplementedError(f"'{what}': tensor element type {a.dtype} is not supported")

    def _as_input(self, x, name):
        if isinstance(x, np.ndarray):
            x = torch.from_numpy(x)
        if not torch.is_tensor(x):
            raise TypeError(f"input '{name}': expected a tensor or ndarray, got {type(x)}")
        if x.is_floating_point():
            return x.to(self.device, self.dtype)
        return x.to(self.device)

    # ---- evaluation ---------------------------------------------------------------------------
    def forward(self, *inputs, capture=None):
        """Runs the graph.

        inputs: one tensor per graph input (in graph order, initializers excluded).
        capture: optional list of value names to return (any node output or graph input).
        Returns the graph output (a tuple when the graph has several outputs); with capture, returns
        (output, {name: tensor}) where each captured tensor can be passed to torch.autograd.grad.
        """
        if len(inputs) != len(self.input_names):
            raise ValueError(f"model takes {len(self.input_names)} input(s) "
                             f"{self.input_names}, got {len(inputs)}")
        capture = list(capture or [])
        for name in capture:
            if name not in self.value_names:
                raise KeyError(f"capture: '{name}' is not a value of the graph")
        keep = set(capture) | set(self.output_names)
        env = {}
        captured = {}

        def store(name, t):
            if name in capture:
                if torch.is_tensor(t) and t.is_floating_point() and not t.requires_grad:
                    t = t.detach().requires_grad_(True)
                captured[name] = t
            env[name] = t

        for name, x in zip(self.input_names, inputs):
            store(name, self._as_input(x, name))
        for i, node in enumerate(self.nodes):
            args = []
            for name in node.input:
                if not name:
                    args.append(None)
                elif name in env:
                    args.append(env[name])
                elif name in self.weights:
                    args.append(self.weights[name])
                else:
                    raise KeyError(f"node '{node.name}' ({node.op_type}): input '{name}' "
                                   f"is not defined before it")
            attrs = {a.name: _attr_value(a) for a in node.attribute}
            try:
                outs = getattr(self, "_op_" + node.op_type)(node, args, attrs)
            except (NotImplementedError, ValueError, KeyError):
                raise
            except Exception as e:  # add the node to torch's message
                raise RuntimeError(f"node '{node.name}' ({node.op_type}): {e}") from e
            if not isinstance(outs, (list, tuple)):
                outs = [outs]
            for name, t in zip(node.output, outs):
                if name:
                    store(name, t)
            for name in node.input:
                if name and self._last_use.get(name) == i and name not in keep:
                    env.pop(name, None)
        outs = tuple(env[n] for n in self.output_names)
        out = outs[0] if len(outs) == 1 else outs
        return (out, captured) if capture else out

    # ---- helpers ------------------------------------------------------------------------------
    def _ints(self, t):
        """1-D int tensor (or None) -> list of Python ints."""
        return None if t is None else [int(v) for v in t.reshape(-1).tolist()]

    def _scalar(self, t):
        return None if t is None else t.reshape(-1)[0].item()

    # ---- operators: each takes (node, inputs, attrs) and returns the output(s) ----------------
    def _op_Identity(self, node, x, a):
        return x[0]

    def _op_Dropout(self, node, x, a):
        # Inference: identity; the optional mask output is all true.
        return [x[0], torch.ones(x[0].shape, dtype=torch.bool, device=x[0].device)]

    def _op_Relu(self, node, x, a):
        return torch.relu(x[0])

    def _op_Sigmoid(self, node, x, a):
        return torch.sigmoid(x[0])

    def _op_Clip(self, node, x, a):
        if self.opset >= 11:
            lo = self._scalar(x[1]) if len(x) > 1 else None
            hi = self._scalar(x[2]) if len(x) > 2 else None
        else:
            lo, hi = a.get("min", -math.inf), a.get("max", math.inf)
        return torch.clamp(x[0], min=lo, max=hi)

    def _op_Add(self, node, x, a):
        return x[0] + x[1]

    def _op_Sub(self, node, x, a):
        return x[0] - x[1]

    def _op_Mul(self, node, x, a):
        return x[0] * x[1]

    def _op_Div(self, node, x, a):
        if not x[0].is_floating_point():  # ONNX integer division truncates toward zero
            return torch.div(x[0], x[1], rounding_mode="trunc")
        return x[0] / x[1]

    def _op_MatMul(self, node, x, a):
        return torch.matmul(x[0], x[1])

    def _op_Gemm(self, node, x, a):
        A = x[0].t() if a.get("transA", 0) else x[0]
        B = x[1].t() if a.get("transB", 0) else x[1]
        y = a.get("alpha", 1.0) * (A @ B)
        if len(x) > 2 and x[2] is not None:
            y = y + a.get("beta", 1.0) * x[2]
        return y

    def _op_Softmax(self, node, x, a):
        if self.opset >= 13:
            return torch.softmax(x[0], dim=a.get("axis", -1))
        axis = a.get("axis", 1) % x[0].dim()  # older opsets: softmax of the 2-D coercion
        shape = x[0].shape
        flat = x[0].reshape(int(np.prod(shape[:axis], dtype=np.int64)), -1)
        return torch.softmax(flat, dim=1).reshape(shape)

    def _op_Flatten(self, node, x, a):
        axis = a.get("axis", 1)
        if axis < 0:
            axis += x[0].dim()
        outer = int(np.prod(x[0].shape[:axis], dtype=np.int64))
        return x[0].reshape(outer, -1)

    def _op_Reshape(self, node, x, a):
        shape = self._ints(x[1])
        if not a.get("allowzero", 0):
            shape = [x[0].shape[i] if s == 0 else s for i, s in enumerate(shape)]
        return x[0].reshape(shape)

    def _op_Transpose(self, node, x, a):
        perm = a.get("perm", list(range(x[0].dim() - 1, -1, -1)))
        return x[0].permute(*perm)

    def _op_Concat(self, node, x, a):
        return torch.cat([t for t in x if t is not None], dim=a["axis"])

    def _op_Cast(self, node, x, a):
        to = a["to"]
        if to in _FLOAT_TYPES:
            return x[0].to(self.dtype)
        if to in _INT_TYPES:
            return x[0].to(torch.int64)  # float -> int truncates toward zero, as ONNX does
        if to == onnx.TensorProto.BOOL:
            return x[0].to(torch.bool)
        raise NotImplementedError(f"node '{node.name}' (Cast): target type {to} not supported")

    def _op_Constant(self, node, x, a):
        if "value" in a:
            return self._from_numpy(numpy_helper.to_array(a["value"]), node.output[0])
        if "value_float" in a:
            return torch.tensor(a["value_float"], dtype=self.dtype, device=self.device)
        if "value_floats" in a:
            return torch.tensor(list(a["value_floats"]), dtype=self.dtype, device=self.device)
        if "value_int" in a:
            return torch.tensor(a["value_int"], dtype=torch.int64, device=self.device)
        if "value_ints" in a:
            return torch.tensor(list(a["value_ints"]), dtype=torch.int64, device=self.device)
        raise NotImplementedError(f"node '{node.name}' (Constant): attribute "
                                  f"{sorted(a)} not supported")

    def _op_ConstantOfShape(self, node, x, a):
        shape = self._ints(x[0])
        if "value" in a:
            v = self._from_numpy(numpy_helper.to_array(a["value"]).reshape(-1), node.output[0])
        else:
            v = torch.zeros(1, dtype=self.dtype, device=self.device)
        return v.reshape(()).expand(shape).clone() if shape else v.reshape(()).clone()

    def _op_Shape(self, node, x, a):
        shape = list(x[0].shape)
        start, end = a.get("start", 0), a.get("end", None)
        return torch.tensor(shape[start:end], dtype=torch.int64, device=self.device)

    def _op_Gather(self, node, x, a):
        data, idx = x[0], x[1]
        axis = a.get("axis", 0) % data.dim()
        idx = torch.where(idx < 0, idx + data.shape[axis], idx)
        out = data.index_select(axis, idx.reshape(-1))
        return out.reshape(tuple(data.shape[:axis]) + tuple(idx.shape) + tuple(data.shape[axis + 1:]))

    def _op_Unsqueeze(self, node, x, a):
        axes = self._ints(x[1]) if self.opset >= 13 else list(a["axes"])
        rank = x[0].dim() + len(axes)
        y = x[0]
        for ax in sorted(ax % rank for ax in axes):
            y = y.unsqueeze(ax)
        return y

    def _op_Squeeze(self, node, x, a):
        axes = (self._ints(x[1]) if len(x) > 1 else None) if self.opset >= 13 else a.get("axes")
        if axes is None:
            return x[0].squeeze()
        y = x[0]
        for ax in sorted((ax % x[0].dim() for ax in axes), reverse=True):
            y = y.squeeze(ax)
        return y

    def _op_Slice(self, node, x, a):
        data = x[0]
        if self.opset >= 10:
            starts, ends = self._ints(x[1]), self._ints(x[2])
            axes = self._ints(x[3]) if len(x) > 3 and x[3] is not None else None
            steps = self._ints(x[4]) if len(x) > 4 and x[4] is not None else None
        else:
            starts, ends, axes, steps = list(a["starts"]), list(a["ends"]), a.get("axes"), None
        if axes is None:
            axes = list(range(len(starts)))
        if steps is None:
            steps = [1] * len(starts)
        y = data
        for st, en, ax, sp in zip(starts, ends, axes, steps):
            ax %= data.dim()
            dim = data.shape[ax]
            if sp == 0:
                raise ValueError(f"node '{node.name}' (Slice): step 0")
            st = st + dim if st < 0 else st
            en = en + dim if en < 0 else en
            if sp > 0:
                st, en = min(max(st, 0), dim), min(max(en, 0), dim)
            else:
                st, en = min(max(st, 0), dim - 1), min(max(en, -1), dim - 1)
            idx = torch.arange(st, en, sp, dtype=torch.int64, device=data.device)
            y = y.index_select(ax, idx)
        return y

    def _op_Pad(self, node, x, a):
        data = x[0]
        if self.opset >= 11:
            pads = self._ints(x[1])
            value = self._scalar(x[2]) if len(x) > 2 and x[2] is not None else 0
            axes = self._ints(x[3]) if len(x) > 3 and x[3] is not None else None
        else:
            pads, value, axes = list(a["pads"]), a.get("value", 0.0), None
        mode = a.get("mode", "constant")
        r = data.dim()
        axes = list(range(r)) if axes is None else [ax % r for ax in axes]
        n = len(axes)
        full_b, full_e = [0] * r, [0] * r
        for k, ax in enumerate(axes):
            full_b[ax], full_e[ax] = pads[k], pads[n + k]
        tp = []
        for ax in range(r - 1, -1, -1):  # F.pad: last dimension first
            tp += [full_b[ax], full_e[ax]]
        while len(tp) > 2 and tp[-1] == 0 and tp[-2] == 0:
            tp = tp[:-2]
        if mode == "constant":
            return F.pad(data, tp, mode="constant", value=value)
        tmode = {"reflect": "reflect", "edge": "replicate"}.get(mode)
        if tmode is None:
            raise NotImplementedError(f"node '{node.name}' (Pad): mode '{mode}' not supported")
        if any(p < 0 for p in tp):
            raise NotImplementedError(f"node '{node.name}' (Pad): negative pads with mode '{mode}'")
        return F.pad(data, tp, mode=tmode)

    def _op_BatchNormalization(self, node, x, a):
        if len([o for o in node.output if o]) > 1:
            raise NotImplementedError(f"node '{node.name}' (BatchNormalization): training outputs")
        return F.batch_norm(x[0], x[3], x[4], weight=x[1], bias=x[2], training=False,
                            eps=a.get("epsilon", 1e-5))

    def _op_GlobalAveragePool(self, node, x, a):
        return x[0].mean(dim=tuple(range(2, x[0].dim())), keepdim=True)

    def _op_ReduceMean(self, node, x, a):
        axes = a.get("axes") if self.opset < 18 else (self._ints(x[1]) if len(x) > 1 else None)
        if not axes:
            if a.get("noop_with_empty_axes", 0):
                return x[0]
            axes = list(range(x[0].dim()))
        return x[0].mean(dim=tuple(axes), keepdim=bool(a.get("keepdims", 1)))

    def _op_GlobalMaxPool(self, node, x, a):
        return x[0].amax(dim=tuple(range(2, x[0].dim())), keepdim=True)

    # Convolution and pooling share the spatial padding logic.
    def _spatial_pads(self, node, a, in_sizes, kernel, strides, dilations):
        """Returns ONNX-layout pads [x1_b, x2_b, ..., x1_e, x2_e] after resolving auto_pad."""
        nd = len(in_sizes)
        auto = a.get("auto_pad", "NOTSET")
        if auto in ("NOTSET", ""):
            return list(a.get("pads", [0] * (2 * nd)))
        if auto == "VALID":
            return [0] * (2 * nd)
        if auto not in ("SAME_UPPER", "SAME_LOWER"):
            raise NotImplementedError(f"node '{node.name}': auto_pad '{auto}'")
        b, e = [], []
        for n, k, s, d in zip(in_sizes, kernel, strides, dilations):
            out = -(-n // s)
            total = max((out - 1) * s + (k - 1) * d + 1 - n, 0)
            small = total // 2
            b.append(small if auto == "SAME_UPPER" else total - small)
            e.append(total - b[-1])
        return b + e

    @staticmethod
    def _torch_pad_list(pads, nd):
        """ONNX pads [x1_b..xn_b, x1_e..xn_e] -> F.pad order (last dimension first)."""
        out = []
        for i in range(nd - 1, -1, -1):
            out += [pads[i], pads[nd + i]]
        return out

    def _op_Conv(self, node, x, a):
        X, W = x[0], x[1]
        B = x[2] if len(x) > 2 else None
        nd = X.dim() - 2
        conv = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}.get(nd)
        if conv is None:
            raise NotImplementedError(f"node '{node.name}' (Conv): {nd}-d input")
        kernel = list(a.get("kernel_shape", W.shape[2:]))
        strides = list(a.get("strides", [1] * nd))
        dil = list(a.get("dilations", [1] * nd))
        pads = self._spatial_pads(node, a, list(X.shape[2:]), kernel, strides, dil)
        if pads[:nd] == pads[nd:]:
            pad_arg = pads[:nd]
        else:
            X = F.pad(X, self._torch_pad_list(pads, nd))
            pad_arg = [0] * nd
        return conv(X, W, B, stride=strides, padding=pad_arg, dilation=dil,
                    groups=a.get("group", 1))

    def _op_MaxPool(self, node, x, a):
        X = x[0]
        nd = X.dim() - 2
        pool = {1: F.max_pool1d, 2: F.max_pool2d, 3: F.max_pool3d}.get(nd)
        if pool is None:
            raise NotImplementedError(f"node '{node.name}' (MaxPool): {nd}-d input")
        if len([o for o in node.output if o]) > 1:
            raise NotImplementedError(f"node '{node.name}' (MaxPool): Indices output")
        kernel = list(a["kernel_shape"])
        strides = list(a.get("strides", [1] * nd))
        dil = list(a.get("dilations", [1] * nd))
        pads = self._spatial_pads(node, a, list(X.shape[2:]), kernel, strides, dil)
        if any(pads):
            X = F.pad(X, self._torch_pad_list(pads, nd), value=-math.inf)
        return pool(X, kernel, strides, 0, dil, ceil_mode=bool(a.get("ceil_mode", 0)))

    def _op_AveragePool(self, node, x, a):
        X = x[0]
        nd = X.dim() - 2
        if nd != 2:
            raise NotImplementedError(f"node '{node.name}' (AveragePool): {nd}-d input")
        kernel = list(a["kernel_shape"])
        strides = list(a.get("strides", [1] * nd))
        pads = self._spatial_pads(node, a, list(X.shape[2:]), kernel, strides, [1] * nd)
        ceil = bool(a.get("ceil_mode", 0))
        include = bool(a.get("count_include_pad", 0))
        tp = self._torch_pad_list(pads, nd)
        # Window sums over the zero-padded input, divided by the number of counted elements.
        Xp = F.pad(X, tp) if any(pads) else X
        sums = F.avg_pool2d(Xp, kernel, strides, 0, ceil_mode=ceil, divisor_override=1)
        ones = torch.ones((1, 1) + tuple(X.shape[2:]), dtype=X.dtype, device=X.device)
        mask = F.pad(ones, tp, value=1.0 if include else 0.0) if any(pads) else ones
        counts = F.avg_pool2d(mask, kernel, strides, 0, ceil_mode=ceil, divisor_override=1)
        return sums / counts


def _attr_value(attr):
    v = onnx.helper.get_attribute_value(attr)
    if isinstance(v, bytes):
        return v.decode("utf-8")
    return v


def find_target_layer(proto):
    """Name of the CAM target layer: the last Relu/Clip before the global pooling.

    Walks back from the (Global)AveragePool that feeds the classifier through its first input,
    skipping data-preserving nodes (Pad, Identity, Dropout, Reshape, Flatten), until a Relu or Clip.
    Returns (tensor_name, op_type of its producer).
    """
    nodes = list(proto.graph.node)
    producer = {o: n for n in nodes for o in n.output}
    pools = [n for n in nodes if n.op_type in ("GlobalAveragePool", "AveragePool")]
    if not pools:
        raise ValueError("no GlobalAveragePool/AveragePool in the graph")
    name = pools[-1].input[0]
    while name in producer:
        n = producer[name]
        if n.op_type in ("Relu", "Clip"):
            return name, n.op_type
        if n.op_type not in ("Pad", "Identity", "Dropout", "Reshape", "Flatten"):
            raise ValueError(f"target search stopped at node '{n.name}' ({n.op_type})")
        name = n.input[0]
    raise ValueError("no Relu/Clip before the pooling")


# ---- self-test ---------------------------------------------------------------------------------
def _selftest():
    """Compares this interpreter with PyTorch on exported modules and hand-built graphs."""
    import io
    import warnings
    from onnx import helper, TensorProto

    warnings.filterwarnings("ignore")

    torch.manual_seed(0)
    failures = 0

    def check(label, ref, got, tol=1e-5):
        nonlocal failures
        ref = ref.detach().double()
        got = got.detach().double()
        err = (ref - got).abs().max().item() if ref.shape == got.shape else math.inf
        ok = err <= tol * max(1.0, ref.abs().max().item())
        failures += not ok
        print(f"{'ok  ' if ok else 'FAIL'} {label}: max abs err {err:.3g} shape {tuple(got.shape)}")

    def export(mod, x, opset=13):
        mod.eval()
        f = io.BytesIO()
        torch.onnx.export(mod, x, f, opset_version=opset, input_names=["x"],
                          output_names=["y"], do_constant_folding=False)
        return onnx.load_from_string(f.getvalue())

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.c1 = torch.nn.Conv2d(3, 8, 3, stride=2, padding=1)
            self.dw = torch.nn.Conv2d(8, 8, 3, padding=2, dilation=2, groups=8)
            self.mp = torch.nn.MaxPool2d(3, 2, padding=1, ceil_mode=True)
            self.bn = torch.nn.BatchNorm2d(8)
            self.ap = torch.nn.AvgPool2d(3, 2, padding=1, count_include_pad=False)
            self.fc = torch.nn.Linear(8 * 5 * 5, 5)
            self.mix = torch.nn.Parameter(torch.randn(5, 3))

        def forward(self, x):
            y = torch.relu(self.c1(x))
            y = F.pad(y, (0, 1, 0, 1))                   # asymmetric Pad
            y = torch.clamp(self.dw(y), 0, 6)
            y = self.bn(self.mp(y)) * torch.sigmoid(F.adaptive_avg_pool2d(y, 1))
            y = self.ap(y)
            y = y.view(y.size(0), -1)                   # Shape, Gather, Unsqueeze, Concat, Reshape
            y = torch.softmax(self.fc(y), dim=1) @ self.mix  # MatMul
            return torch.cat([y, y[:, 1:3] * 2], dim=1)

    net = Net()
    with torch.no_grad():
        net.bn.running_mean.uniform_(-1, 1)
        net.bn.running_var.uniform_(0.5, 2)
    x = torch.randn(2, 3, 30, 30)
    proto = export(net, x)
    ops = sorted({n.op_type for n in proto.graph.node})
    print("exported ops:", ", ".join(ops))
    with torch.no_grad():
        ref = net(x)
    check("exported net fp64", ref, OnnxTorch(proto, torch.float64)(x), 1e-5)
    check("exported net fp32", ref, OnnxTorch(proto, torch.float32)(x), 1e-5)

    # Hand-built graphs: Slice with negative steps, Dropout, Identity, Gemm with transA, Cast,
    # ConstantOfShape, Transpose, Pad with edge mode, Conv with auto_pad SAME_UPPER.
    X = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3, 7, 6])
    Y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    inits = [numpy_helper.from_array(np.array(v, dtype=np.int64), n) for n, v in [
        ("st", [-1, 5]), ("en", [-_INT64_MAX, 0]), ("ax", [2, 3]), ("sp", [-2, -3]),
        ("shp", [2]), ("pads", [0, 0, 1, 0, 0, 0, 2, 1])]]
    w = np.random.RandomState(1).randn(4, 3, 3, 2).astype(np.float32)
    inits.append(numpy_helper.from_array(w, "w"))
    nodes = [
        helper.make_node("Slice", ["x", "st", "en", "ax", "sp"], ["s"]),
        helper.make_node("Dropout", ["s"], ["d"]),
        helper.make_node("Identity", ["d"], ["i"]),
        helper.make_node("Pad", ["x", "pads"], ["p"], mode="edge"),
        helper.make_node("Conv", ["x", "w"], ["c"], auto_pad="SAME_UPPER", strides=[2, 2]),
        helper.make_node("ConstantOfShape", ["shp"], ["z"],
                         value=numpy_helper.from_array(np.array([3.0], np.float32))),
        helper.make_node("Transpose", ["i"], ["t"], perm=[0, 1, 3, 2]),
        helper.make_node("Cast", ["shp"], ["cf"], to=TensorProto.FLOAT),
        helper.make_node("Flatten", ["t"], ["f"], axis=1),
        helper.make_node("Gemm", ["f", "f", "z"], ["y"], transB=1, alpha=0.5, beta=2.0),
        helper.make_node("Flatten", ["p"], ["pf"], axis=2),
        helper.make_node("Flatten", ["c"], ["cf2"], axis=0),
    ]
    graph = helper.make_graph(nodes, "g", [X], [Y,
                              helper.make_tensor_value_info("pf", TensorProto.FLOAT, None),
                              helper.make_tensor_value_info("cf2", TensorProto.FLOAT, None),
                              helper.make_tensor_value_info("cf", TensorProto.FLOAT, None)],
                              inits)
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    xs = torch.randn(2, 3, 7, 6)
    y, pf, cf2, cf = OnnxTorch(proto, torch.float64)(xs)
    xn = xs.numpy().astype(np.float64)
    s = xn[:, :, ::-2, 5::-3]
    f = np.transpose(s, (0, 1, 3, 2)).reshape(2, -1)
    check("Slice/Transpose/Gemm", torch.from_numpy(0.5 * f @ f.T + 6.0), y, 1e-9)
    pn = np.pad(xn, ((0, 0), (0, 0), (1, 2), (0, 1)), mode="edge").reshape(6, -1)
    check("Pad edge", torch.from_numpy(pn), pf, 1e-12)
    ref_c = F.conv2d(F.pad(xs.double(), (0, 1, 1, 1)), torch.from_numpy(w).double(), stride=2)
    check("Conv SAME_UPPER", ref_c.reshape(1, -1), cf2, 1e-9)
    check("Cast", torch.tensor([2.0]), cf, 0)

    # Capture and autograd: gradient through the head equals the analytic one of a linear head.
    lin = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.ReLU(),
                              torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(),
                              torch.nn.Linear(4, 2))
    proto = export(lin, torch.randn(1, 3, 8, 8))
    m = OnnxTorch(proto)
    name, _ = find_target_layer(proto)
    out, cap = m(torch.randn(3, 3, 8, 8), capture=[name])
    g = torch.autograd.grad(out[1, 0], cap[name])[0]
    want = torch.zeros_like(g)
    want[1] = lin[4].weight[0].double().view(4, 1, 1) / 64
    check(f"capture grad ('{name}')", want, g, 1e-12)

    print("selftest:", "FAILED" if failures else "passed")
    return 1 if failures else 0


def _main(argv):
    import argparse
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("model", nargs="?")
    ap.add_argument("--selftest", action="store_true")
    ap.add_argument("--image")
    ap.add_argument("--preset", default="tf")
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--classes", help="class names file, one per line")
    args = ap.parse_args(argv)
    if args.selftest:
        return _selftest()
    if not args.model or not args.image:
        ap.error("give MODEL and --image, or --selftest")
    sys.path.insert(0, __import__("os").path.dirname(__import__("os").path.abspath(__file__)))
    from preprocess_ref import preprocess
    m = OnnxTorch(args.model)
    x = torch.from_numpy(preprocess(args.image, args.preset, args.size))[None]
    with torch.no_grad():
        y = m(x)[0]
    names = open(args.classes).read().splitlines() if args.classes else None
    print("target layer:", *find_target_layer(m.proto))
    for v, i in zip(*torch.topk(y, 5)):
        print(f"{int(i):5d} {float(v):10.4f} {names[int(i)] if names else ''}")
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
