"""woodpecker.runtime.cuda.libraries: static support checks, fake-module bookkeeping with host emulation, GPU runs."""

from __future__ import annotations

import ctypes
import enum
import itertools
import os
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest

from woodpecker.runtime.cuda import libraries as L

FLT_MAX = 3.4028234663852886e38


def conv_spec(x, w, y, pads=(0, 0, 0, 0), strides=(1, 1), dilations=(1, 1), groups=1, bias=False, post_ops=()):
    return {
        "op": "conv",
        "x_shape": list(x),
        "w_shape": list(w),
        "y_shape": list(y),
        "pads_begin": list(pads[:2]),
        "pads_end": list(pads[2:]),
        "strides": list(strides),
        "dilations": list(dilations),
        "groups": groups,
        "bias": bias,
        "post_ops": [dict(p) for p in post_ops],
    }


def eltwise(alg, alpha=0.0, beta=0.0):
    return {"kind": "eltwise", "alg": alg, "alpha": alpha, "beta": beta, "shape": []}


def binary(alg, shape):
    return {"kind": "binary", "alg": alg, "alpha": 0.0, "beta": 0.0, "shape": list(shape)}


def matmul_spec(m, k, n, transposed=False, bias=False, post_ops=()):
    return {
        "op": "matmul",
        "m": m,
        "k": k,
        "n": n,
        "transposed_weights": transposed,
        "bias": bias,
        "post_ops": [dict(p) for p in post_ops],
    }


RESNET_BLOCK = conv_spec(
    [2, 4, 9, 9],
    [6, 4, 3, 3],
    [2, 6, 4, 4],
    pads=(1, 1, 0, 0),
    strides=(2, 2),
    bias=True,
    post_ops=[binary("add", [2, 6, 4, 4]), eltwise("relu")],
)


# ------------------------------------------------------------------------------------------------
# Static support checks
# ------------------------------------------------------------------------------------------------


def test_cudnn_support_accepts_representable_graphs():
    assert L.cudnn_support(RESNET_BLOCK) is None
    depthwise = conv_spec(
        [1, 8, 6, 6], [8, 1, 3, 3], [1, 8, 4, 4], groups=8, bias=True, post_ops=[eltwise("clip", 0, 6)]
    )
    assert L.cudnn_support(depthwise) is None
    every = [
        eltwise("relu", 0.1),
        eltwise("clip", -FLT_MAX, 6.0),
        eltwise("logistic"),
        eltwise("tanh"),
        eltwise("swish", 1.0),
        binary("sub", [1, 6, 1, 1]),
        binary("mul", [2, 6, 4, 4]),
        binary("div", [1, 1, 1, 1]),
    ]
    assert L.cudnn_support(dict(RESNET_BLOCK, post_ops=every)) is None
    dilated = conv_spec([1, 2, 9, 9], [3, 2, 3, 3], [1, 3, 5, 5], dilations=(2, 2))
    assert L.cudnn_support(dilated) is None


@pytest.mark.parametrize(
    ("spec", "needle"),
    [
        (dict(RESNET_BLOCK, post_ops=[eltwise("linear", 2.0, 1.0)]), "'linear' eltwise has no cuDNN pointwise op"),
        (dict(RESNET_BLOCK, post_ops=[eltwise("gelu_erf")]), "'gelu_erf' eltwise has no cuDNN"),
        (dict(RESNET_BLOCK, post_ops=[binary("max", [2, 6, 4, 4])]), "unknown binary alg 'max'"),
        (dict(RESNET_BLOCK, post_ops=[binary("add", [2, 6, 4, 3])]), "does not broadcast"),
        (dict(RESNET_BLOCK, post_ops=[binary("add", [6, 4, 4])]), "does not broadcast"),
        (dict(RESNET_BLOCK, y_shape=[2, 6, 5, 5]), "does not match the convolution's output [2, 6, 4, 4]"),
        (dict(RESNET_BLOCK, groups=3), "groups 3 does not fit"),
        (dict(RESNET_BLOCK, x_shape=[2, 4, 9]), "must be 4-D"),
        (matmul_spec(2, 3, 4), "only convolutions"),
    ],
)
def test_cudnn_support_reasons(spec, needle):
    reason = L.cudnn_support(spec)
    assert reason is not None and needle in reason, reason


def test_cublas_support_accepts_epilogues():
    for transposed, bias in itertools.product((False, True), repeat=2):
        for post in ([], [eltwise("relu")], [binary("add", [5, 7])], [binary("add", [5, 7]), eltwise("relu")]):
            assert L.cublas_support(matmul_spec(5, 3, 7, transposed, bias, post)) is None


@pytest.mark.parametrize(
    ("post_ops", "needle"),
    [
        ([eltwise("relu", 0.2)], "leaky relu"),
        ([eltwise("tanh")], "'tanh' eltwise is not a cuBLASLt epilogue"),
        ([eltwise("clip", 0.0, 6.0)], "'clip' eltwise is not a cuBLASLt epilogue"),
        ([binary("add", [1, 7])], "is broadcast"),
        ([binary("mul", [5, 7])], "binary 'mul' is not a cuBLASLt epilogue"),
        ([eltwise("relu"), binary("add", [5, 7])], "residual add after relu"),
        ([binary("add", [5, 7]), binary("add", [5, 7])], "second residual add"),
        ([binary("add", [5, 7, 1])], "does not broadcast"),
    ],
)
def test_cublas_support_reasons(post_ops, needle):
    reason = L.cublas_support(matmul_spec(5, 3, 7, post_ops=post_ops))
    assert reason is not None and needle in reason, reason


def test_cublas_support_refuses_other_ops_and_bad_sizes():
    assert "only matmuls" in L.cublas_support(RESNET_BLOCK)
    assert "positive ints" in L.cublas_support(matmul_spec(0, 3, 4))


# ------------------------------------------------------------------------------------------------
# Fake modules
# ------------------------------------------------------------------------------------------------


class Guarded:
    """Fails the test when anything but the launch function is called while enqueueing."""

    enqueueing = False

    def guard(self, what):
        if self.enqueueing:
            raise AssertionError(f"{what} called during enqueue (not capture-safe)")


class FakeTensor:
    def __init__(self, name, dim, stride, data_type, virtual):
        self.name, self.dim, self.stride, self.data_type, self.virtual = name, list(dim), stride, data_type, virtual
        self.output = False

    def set_output(self, value):
        self.output = value
        return self

    def set_data_type(self, value):
        self.data_type = value
        return self

    def set_dim(self, dim):
        self.dim = list(dim)
        return self

    def set_stride(self, stride):
        self.stride = list(stride)
        return self


class FakeGraph:
    def __init__(self, module, kwargs):
        self.module, self.kwargs = module, kwargs
        self.inputs, self.nodes, self.stages, self.denied_notes, self.executions = {}, [], [], [], []

    def tensor(self, name, dim, stride, data_type):
        self.module.guard("graph.tensor")
        t = FakeTensor(name, dim, list(stride), data_type, virtual=False)
        self.inputs[name] = t
        return t

    def _node(self, op, inputs, params):
        self.module.guard(f"graph.{op}")
        out = FakeTensor(f"{op}_out", [], None, None, virtual=True)
        self.nodes.append({"op": op, "inputs": inputs, "params": params, "out": out})
        return out

    def conv_fprop(self, image, weight, pre_padding, post_padding, stride, dilation, compute_data_type, name):
        params = dict(pre_padding=pre_padding, post_padding=post_padding, stride=stride, dilation=dilation)
        assert compute_data_type == "FLOAT"
        return self._node("conv_fprop", [image, weight], params)

    def _binary(op):
        def method(self, a, b, compute_data_type, name):
            assert compute_data_type == "FLOAT"
            return self._node(op, [a, b], {})

        return method

    add, sub, mul, div = _binary("add"), _binary("sub"), _binary("mul"), _binary("div")

    def relu(self, input, negative_slope=None, lower_clip=None, upper_clip=None, compute_data_type=None, name=""):
        params = dict(negative_slope=negative_slope, lower_clip=lower_clip, upper_clip=upper_clip)
        return self._node("relu", [input], params)

    def sigmoid(self, input, compute_data_type=None, name=""):
        return self._node("sigmoid", [input], {})

    def tanh(self, input, compute_data_type=None, name=""):
        return self._node("tanh", [input], {})

    def swish(self, input, swish_beta=None, compute_data_type=None, name=""):
        return self._node("swish", [input], {"swish_beta": swish_beta})

    def _stage(name):
        def method(self, *args):
            self.module.guard(f"graph.{name}")
            if self.module.refuse_at == name:
                raise RuntimeError("cudnnGraphNotSupportedError: no engine")
            self.stages.append((name, args))

        return method

    validate, build_operation_graph, check_support, build_plans = (
        _stage("validate"),
        _stage("build_operation_graph"),
        _stage("check_support"),
        _stage("build_plans"),
    )
    create_execution_plans = _stage("create_execution_plans")

    def deselect_numeric_notes(self, notes):
        self.module.guard("deselect_numeric_notes")
        self.stages.append(("deselect_numeric_notes", (list(notes),)))

    def get_workspace_size(self):
        self.module.guard("get_workspace_size")
        return 4096

    def execute(self, pack, workspace, handle=None):
        self.executions.append({"pack": dict(pack), "workspace": workspace, "handle": handle})


class FakeCudnn(types.ModuleType, Guarded):
    def __init__(self):
        super().__init__("cudnn")
        self.data_type = types.SimpleNamespace(FLOAT="FLOAT")
        self.heur_mode = types.SimpleNamespace(A="A", FALLBACK="FALLBACK")
        self.numerical_note = types.SimpleNamespace(
            TENSOR_CORE="TENSOR_CORE",
            DOWN_CONVERT_INPUTS="DOWN_CONVERT_INPUTS",
            REDUCED_PRECISION_REDUCTION="REDUCED_PRECISION_REDUCTION",
            FFT="FFT",
        )
        self.graphs, self.handles, self.streams, self.destroyed = [], [], [], []
        self.refuse_at = None

    def create_handle(self):
        self.guard("create_handle")
        handle = object()
        self.handles.append(handle)
        return handle

    def set_stream(self, handle, stream):
        self.guard("set_stream")
        self.streams.append((handle, stream))

    def destroy_handle(self, handle):
        self.destroyed.append(handle)

    def pygraph(self, **kwargs):
        self.guard("pygraph")
        graph = FakeGraph(self, kwargs)
        self.graphs.append(graph)
        return graph


class DescAttr(enum.IntEnum):
    TRANSA = 3
    TRANSB = 4
    EPILOGUE = 7
    BIAS_POINTER = 8


class PrefAttr(enum.IntEnum):
    MAX_WORKSPACE_BYTES = 1
    MIN_ALIGNMENT_A_BYTES = 5
    MIN_ALIGNMENT_B_BYTES = 6
    MIN_ALIGNMENT_C_BYTES = 7
    MIN_ALIGNMENT_D_BYTES = 8


class Epilogue(enum.IntEnum):
    DEFAULT = 1
    RELU = 2
    BIAS = 4
    RELU_BIAS = 6


_ATTR_CTYPE = {
    DescAttr.TRANSA: ctypes.c_int32,
    DescAttr.TRANSB: ctypes.c_int32,
    DescAttr.EPILOGUE: ctypes.c_uint32,
    DescAttr.BIAS_POINTER: ctypes.c_int64,
}
_PREF_CTYPE = {PrefAttr.MAX_WORKSPACE_BYTES: ctypes.c_uint64}
ALGO_TAG = 0xA160


class FakeCublasLt(types.ModuleType, Guarded):
    MatmulDescAttribute, MatmulPreferenceAttribute, Epilogue = DescAttr, PrefAttr, Epilogue

    def __init__(self, workspace=8192):
        super().__init__("nvmath.bindings.cublasLt")
        self.objects = {}  # id -> record
        self.ids = itertools.count(100)
        self.heuristics, self.matmuls, self.destroyed = [], [], []
        self.workspace = workspace

    def _new(self, record):
        key = next(self.ids)
        self.objects[key] = record
        return key

    def create(self):
        self.guard("create")
        return self._new({"kind": "handle"})

    def destroy(self, handle):
        self.destroyed.append(handle)

    def matmul_desc_create(self, compute_type, scale_type):
        self.guard("matmul_desc_create")
        return self._new({"kind": "desc", "compute": compute_type, "scale": scale_type, "attrs": {}})

    def matmul_desc_set_attribute(self, desc, attr, buf, size):
        self.guard("matmul_desc_set_attribute")
        ctype = _ATTR_CTYPE[DescAttr(attr)]
        assert size == ctypes.sizeof(ctype)
        self.objects[desc]["attrs"][DescAttr(attr).name] = ctype.from_address(buf).value

    def matrix_layout_create(self, dtype, rows, cols, ld):
        self.guard("matrix_layout_create")
        return self._new({"kind": "layout", "dtype": dtype, "rows": rows, "cols": cols, "ld": ld})

    def matmul_preference_create(self):
        self.guard("matmul_preference_create")
        return self._new({"kind": "pref", "attrs": {}})

    def matmul_preference_set_attribute(self, pref, attr, buf, size):
        self.guard("matmul_preference_set_attribute")
        ctype = _PREF_CTYPE.get(PrefAttr(attr), ctypes.c_uint32)
        assert size == ctypes.sizeof(ctype)
        self.objects[pref]["attrs"][PrefAttr(attr).name] = ctype.from_address(buf).value

    def matmul_algo_get_heuristic(self, handle, desc, a, b, c, d, pref, requested, results, count):
        self.guard("matmul_algo_get_heuristic")
        self.heuristics.append({"desc": desc, "layouts": (a, b, c, d), "pref": dict(self.objects[pref]["attrs"])})
        assert requested >= 1
        record = np.zeros(1, dtype=L._HEURISTIC_RESULT_DTYPE)
        record["algo"][0][0] = ALGO_TAG + len(self.heuristics)
        record["workspace_size"] = self.workspace
        ctypes.memmove(results, record.ctypes.data, record.nbytes)
        ctypes.c_int32.from_address(count).value = 1

    def matmul(self, handle, desc, alpha, a, adesc, b, bdesc, beta, c, cdesc, d, ddesc, algo, ws, ws_size, stream):
        self.matmuls.append(
            dict(
                handle=handle,
                desc=desc,
                alpha=ctypes.c_float.from_address(alpha).value,
                a=a,
                adesc=adesc,
                b=b,
                bdesc=bdesc,
                beta=ctypes.c_float.from_address(beta).value,
                c=c,
                cdesc=cdesc,
                d=d,
                ddesc=ddesc,
                algo=ctypes.c_uint64.from_address(algo).value,
                workspace=ws,
                workspace_size=ws_size,
                stream=stream,
            )
        )

    def _destroy(self, obj):
        self.destroyed.append(obj)

    matrix_layout_destroy = matmul_desc_destroy = matmul_preference_destroy = _destroy


class FailingDriver(types.ModuleType):
    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        raise AssertionError(f"cuda driver function {name} called by a library call")


@pytest.fixture
def fakes(monkeypatch):
    cudnn, lt = FakeCudnn(), FakeCublasLt()
    nvmath, bindings = types.ModuleType("nvmath"), types.ModuleType("nvmath.bindings")
    nvmath.bindings, bindings.cublasLt = bindings, lt
    monkeypatch.setitem(sys.modules, "cudnn", cudnn)
    monkeypatch.setitem(sys.modules, "nvmath", nvmath)
    monkeypatch.setitem(sys.modules, "nvmath.bindings", bindings)
    monkeypatch.setitem(sys.modules, "nvmath.bindings.cublasLt", lt)
    for name in ("cuda", "cuda.bindings", "cuda.bindings.driver", "cuda.bindings.runtime"):
        monkeypatch.setitem(sys.modules, name, FailingDriver(name))
    return types.SimpleNamespace(cudnn=cudnn, lt=lt)


def enqueue_guarded(call, *modules):
    for module in modules:
        module.enqueueing = True
    try:
        call.enqueue()
    finally:
        for module in modules:
            module.enqueueing = False


# ------------------------------------------------------------------------------------------------
# availability
# ------------------------------------------------------------------------------------------------


def test_availability_reports_missing_packages(monkeypatch):
    monkeypatch.setitem(sys.modules, "cudnn", None)
    monkeypatch.setitem(sys.modules, "nvmath", None)
    monkeypatch.setitem(sys.modules, "nvmath.bindings", None)
    monkeypatch.setitem(sys.modules, "nvmath.bindings.cublasLt", None)
    assert "nvidia-cudnn-frontend" in L.availability("cudnn")
    assert "nvmath-python" in L.availability("cublas")
    with pytest.raises(L.LibraryUnavailable, match=r"cuDNN cannot run kernel k0_conv: nvidia-cudnn-frontend"):
        L.make_call("cudnn", RESNET_BLOCK, "k0_conv", L.LibraryContext(0))
    with pytest.raises(L.LibraryUnavailable, match=r"cuBLASLt cannot run kernel k1_mm: nvmath-python"):
        L.make_call("cublas", matmul_spec(2, 3, 4), "k1_mm", L.LibraryContext(0))
    with pytest.raises(ValueError, match="unknown library"):
        L.availability("mkl")


def test_availability_with_fakes(fakes):
    assert L.availability("cudnn") is None
    assert L.availability("cublas") is None


def test_module_imports_without_the_packages():
    code = (
        "import sys\n"
        "for name in ('cudnn', 'nvmath', 'cuda', 'cuda.bindings', 'cuda.bindings.driver', 'mlir'):\n"
        "    sys.modules[name] = None\n"
        "import woodpecker.runtime.cuda.libraries as L\n"
        "assert L.availability('cudnn') and L.availability('cublas')\n"
        "assert not any(m.startswith(('cudnn', 'nvmath', 'mlir')) for m in sys.modules if sys.modules[m] is not None)\n"
    )
    env = dict(os.environ, PYTHONPATH=str(Path(L.__file__).resolve().parents[2]))
    subprocess.run([sys.executable, "-c", code], check=True, env=env)


# ------------------------------------------------------------------------------------------------
# cuDNN bookkeeping + host emulation of the recorded graph
# ------------------------------------------------------------------------------------------------


def view(memory, ptr, dim, stride):
    flat = memory[ptr]
    assert sum((d - 1) * s for d, s in zip(dim, stride, strict=True)) < flat.size, "tensor reaches past its buffer"
    return np.lib.stride_tricks.as_strided(flat, shape=dim, strides=[s * flat.itemsize for s in stride])


def emulate_conv_fprop(x, w, pre, post, stride, dilation):
    """Direct (loop over output pixels) f64 conv of the recorded node; groups from the filter's C."""
    n, c, h, wd = x.shape
    k, cg, r, s = w.shape
    groups = c // cg
    xp = np.pad(x, [(0, 0), (0, 0), (pre[0], post[0]), (pre[1], post[1])])
    p = (h + pre[0] + post[0] - (r - 1) * dilation[0] - 1) // stride[0] + 1
    q = (wd + pre[1] + post[1] - (s - 1) * dilation[1] - 1) // stride[1] + 1
    y = np.zeros((n, k, p, q))
    for oc in range(k):
        grp = oc // (k // groups)
        for i in range(p):
            for j in range(q):
                rows = i * stride[0] + dilation[0] * np.arange(r)
                cols = j * stride[1] + dilation[1] * np.arange(s)
                window = xp[:, grp * cg : (grp + 1) * cg][:, :, rows][:, :, :, cols]
                y[:, oc, i, j] = np.tensordot(window, w[oc], axes=3)
    return y


def emulate_cudnn(graph, execution, memory):
    pack = execution["pack"]
    values = {}

    def value(t):
        if t.virtual:
            return values[id(t)]
        return view(memory, pack[t], t.dim, t.stride)

    for node in graph.nodes:
        ins = [value(t) for t in node["inputs"]]
        op, prm = node["op"], node["params"]
        if op == "conv_fprop":
            out = emulate_conv_fprop(*ins, prm["pre_padding"], prm["post_padding"], prm["stride"], prm["dilation"])
        elif op in ("add", "sub", "mul", "div"):
            out = {"add": np.add, "sub": np.subtract, "mul": np.multiply, "div": np.divide}[op](*ins)
        elif op == "relu":  # cuDNN RELU_FWD with lower clip, its slope and upper clip
            lower = prm["lower_clip"] if prm["lower_clip"] is not None else 0.0
            slope = prm["negative_slope"] if prm["negative_slope"] is not None else 0.0
            upper = prm["upper_clip"] if prm["upper_clip"] is not None else np.inf
            out = np.where(ins[0] <= lower, lower + slope * (ins[0] - lower), np.minimum(ins[0], upper))
        elif op == "sigmoid":
            out = 1 / (1 + np.exp(-ins[0]))
        elif op == "tanh":
            out = np.tanh(ins[0])
        elif op == "swish":
            out = ins[0] / (1 + np.exp(-prm["swish_beta"] * ins[0]))
        else:
            raise AssertionError(op)
        values[id(node["out"])] = out
    final = graph.nodes[-1]["out"]
    assert final.output and final.data_type == "FLOAT"
    y = view(memory, pack[final], final.dim, final.stride)
    y[...] = values[id(final)]
    return y


def host_memory(arrays):
    """Fake 256-aligned device addresses for host float64 arrays."""
    memory, pointers = {}, {}
    for i, (role, array) in enumerate(arrays.items()):
        ptr = 0x100000 * (i + 1)
        memory[ptr] = np.ascontiguousarray(array, dtype=np.float64).reshape(-1)
        pointers[role] = ptr
    return memory, pointers


def conv_arrays(spec, rng):
    arrays = {"x": rng.standard_normal(spec["x_shape"]), "w": rng.standard_normal(spec["w_shape"])}
    if spec["bias"]:
        arrays["bias"] = rng.standard_normal(spec["w_shape"][0])
    sides = [op for op in spec["post_ops"] if op["kind"] == "binary"]
    for i, op in enumerate(sides):
        side = rng.standard_normal(op["shape"])
        arrays[f"side{i}"] = np.abs(side) + 0.5 if op["alg"] == "div" else side
    arrays["y"] = np.full(spec["y_shape"], np.nan)
    return arrays


def test_cudnn_conv_graph_bookkeeping(fakes):
    context = L.LibraryContext(stream=0xC0FFEE)
    call = L.make_call("cudnn", RESNET_BLOCK, "k3_conv", context)
    cudnn = fakes.cudnn
    assert call.library == "cudnn" and call.name == "k3_conv" and call.workspace_bytes == 4096
    assert len(cudnn.handles) == 1 and cudnn.streams == [(cudnn.handles[0], 0xC0FFEE)]
    (graph,) = cudnn.graphs
    assert graph.kwargs == {
        "io_data_type": "FLOAT",
        "intermediate_data_type": "FLOAT",
        "compute_data_type": "FLOAT",
        "handle": cudnn.handles[0],
    }
    assert [n["op"] for n in graph.nodes] == ["conv_fprop", "add", "add", "relu"]
    conv, bias_add, residual, relu = graph.nodes
    x, w = conv["inputs"]
    assert (x.name, x.dim, x.stride) == ("x", [2, 4, 9, 9], [324, 81, 9, 1])
    assert (w.name, w.dim, w.stride) == ("w", [6, 4, 3, 3], [36, 9, 3, 1])
    assert conv["params"] == {"pre_padding": [1, 1], "post_padding": [0, 0], "stride": [2, 2], "dilation": [1, 1]}
    assert bias_add["inputs"][0] is conv["out"]
    bias = bias_add["inputs"][1]
    assert (bias.name, bias.dim, bias.stride) == ("bias", [1, 6, 1, 1], [6, 1, 1, 1])
    assert residual["inputs"][0] is bias_add["out"]
    side = residual["inputs"][1]
    assert (side.name, side.dim, side.stride) == ("side0", [2, 6, 4, 4], [96, 16, 4, 1])
    assert relu["inputs"] == [residual["out"]] and relu["params"]["negative_slope"] is None
    out = relu["out"]
    assert out.output and out.dim == [2, 6, 4, 4] and out.stride == [96, 16, 4, 1]
    stages = [name for name, _ in graph.stages]
    assert stages == [
        "validate",
        "build_operation_graph",
        "create_execution_plans",
        "deselect_numeric_notes",
        "check_support",
        "build_plans",
    ]
    assert dict(graph.stages)["create_execution_plans"] == (["A", "FALLBACK"],)
    denied = dict(graph.stages)["deselect_numeric_notes"][0]
    assert {"TENSOR_CORE", "DOWN_CONVERT_INPUTS"} <= set(denied)

    rng = np.random.default_rng(0)
    arrays = conv_arrays(RESNET_BLOCK, rng)
    memory, pointers = host_memory(arrays)
    call.bind(pointers, workspace=0x7000000)
    enqueue_guarded(call, cudnn)
    (execution,) = graph.executions
    assert execution["workspace"] == 0x7000000 and execution["handle"] is cudnn.handles[0]
    pack = {t.name if not t.virtual else "y": ptr for t, ptr in execution["pack"].items()}
    assert pack == pointers
    assert all(type(ptr) is int for ptr in execution["pack"].values())
    y = emulate_cudnn(graph, execution, memory)
    sides = [arrays["side0"]]
    np.testing.assert_allclose(y, L.conv_reference(RESNET_BLOCK, arrays["x"], arrays["w"], arrays["bias"], sides))
    call.enqueue()
    assert len(graph.executions) == 2
    call.close()
    context.close()
    assert cudnn.destroyed == cudnn.handles


CONV_CASES = {
    "pre_padded_3x3": conv_spec([1, 3, 7, 7], [5, 3, 3, 3], [1, 5, 5, 5], bias=True, post_ops=[eltwise("relu")]),
    "stride2_pads": conv_spec([2, 3, 8, 8], [4, 3, 3, 3], [2, 4, 4, 4], pads=(1, 1, 1, 1), strides=(2, 2)),
    "1x1": conv_spec([1, 6, 5, 5], [3, 6, 1, 1], [1, 3, 5, 5], bias=True, post_ops=[binary("add", [1, 3, 5, 5])]),
    "depthwise": conv_spec(
        [1, 4, 6, 6], [4, 1, 3, 3], [1, 4, 4, 4], groups=4, bias=True, post_ops=[eltwise("clip", 0.0, 0.5)]
    ),
    "grouped_dilated": conv_spec([1, 4, 9, 9], [6, 2, 3, 3], [1, 6, 5, 5], dilations=(2, 2), groups=2),
    "asymmetric_pads": conv_spec([1, 2, 5, 6], [3, 2, 2, 3], [1, 3, 6, 5], pads=(1, 0, 1, 1)),
    "everything": conv_spec(
        [2, 2, 5, 5],
        [4, 2, 3, 3],
        [2, 4, 3, 3],
        bias=True,
        post_ops=[
            eltwise("relu", 0.1),
            binary("mul", [1, 4, 1, 1]),
            eltwise("logistic"),
            binary("sub", [2, 4, 3, 3]),
            eltwise("tanh"),
            eltwise("swish", 1.0),
            binary("div", [1, 1, 3, 3]),
            eltwise("clip", -FLT_MAX, 0.3),
        ],
    ),
}


@pytest.mark.parametrize("case", sorted(CONV_CASES))
def test_cudnn_recorded_graph_matches_the_spec(fakes, case):
    spec = CONV_CASES[case]
    call = L.make_call("cudnn", spec, f"k_{case}", L.LibraryContext(0))
    rng = np.random.default_rng(1)
    arrays = conv_arrays(spec, rng)
    memory, pointers = host_memory(arrays)
    call.bind(pointers, workspace=0x9000000)
    enqueue_guarded(call, fakes.cudnn)
    (graph,) = fakes.cudnn.graphs
    y = emulate_cudnn(graph, graph.executions[0], memory)
    sides = [arrays[f"side{i}"] for i in range(sum(op["kind"] == "binary" for op in spec["post_ops"]))]
    ref = L.conv_reference(spec, arrays["x"], arrays["w"], arrays.get("bias"), sides)
    np.testing.assert_allclose(y, ref, rtol=1e-12, atol=1e-12)


def test_conv_reference_against_naive_loops():
    spec = conv_spec([1, 4, 6, 5], [6, 2, 3, 2], [1, 6, 3, 3], pads=(1, 0, 0, 1), strides=(2, 2), groups=2)
    rng = np.random.default_rng(2)
    x, w = rng.standard_normal(spec["x_shape"]), rng.standard_normal(spec["w_shape"])
    y = np.zeros(spec["y_shape"])
    for k, p, q in np.ndindex(6, 3, 3):
        g = k // 3
        for c, r, s in np.ndindex(2, 3, 2):
            h, wi = p * 2 + r - 1, q * 2 + s
            if 0 <= h < 6 and 0 <= wi < 5:
                y[0, k, p, q] += x[0, g * 2 + c, h, wi] * w[k, c, r, s]
    np.testing.assert_allclose(L.conv_reference(spec, x, w, None, []), y, rtol=1e-12, atol=1e-12)


def test_cudnn_refusals(fakes):
    context = L.LibraryContext(0)
    with pytest.raises(L.LibraryUnavailable, match=r"cuDNN cannot run kernel k5: post_op 0: 'linear' eltwise"):
        L.make_call("cudnn", dict(RESNET_BLOCK, post_ops=[eltwise("linear", 2.0)]), "k5", context)
    assert fakes.cudnn.graphs == []  # refused statically, before any build
    fakes.cudnn.refuse_at = "check_support"
    with pytest.raises(L.LibraryUnavailable) as info:
        L.make_call("cudnn", RESNET_BLOCK, "k3_conv", context)
    assert "cuDNN cannot run kernel k3_conv: no engine supports conv+bias+add+relu with NCHW f32" in str(info.value)
    assert "no engine" in str(info.value)


def test_cudnn_bind_validates_roles_and_alignment(fakes):
    call = L.make_call("cudnn", RESNET_BLOCK, "k3_conv", L.LibraryContext(0))
    pointers = {"x": 0x1000, "w": 0x2000, "bias": 0x3000, "y": 0x5000}
    with pytest.raises(ValueError, match=r"kernel k3_conv .*'side0'"):
        call.bind(pointers, 0x9000)
    with pytest.raises(ValueError, match="workspace of 4096 bytes"):
        call.bind(dict(pointers, side0=0x4000), 0)
    with pytest.raises(L.LibraryUnavailable, match="16-byte aligned"):
        call.bind(dict(pointers, side0=0x4008), 0x9000)
    with pytest.raises(RuntimeError, match="before bind"):
        call.enqueue()


# ------------------------------------------------------------------------------------------------
# cuBLASLt bookkeeping + host emulation of the recorded column-major sgemm
# ------------------------------------------------------------------------------------------------


def column_major(memory, ptr, layout):
    rows, cols, ld = layout["rows"], layout["cols"], layout["ld"]
    assert layout["dtype"] == L.CUDA_R_32F and ld >= rows
    flat = memory[ptr]
    assert (rows - 1) + (cols - 1) * ld < flat.size, "matrix reaches past its buffer"
    return np.lib.stride_tricks.as_strided(flat, shape=(rows, cols), strides=(flat.itemsize, ld * flat.itemsize))


def emulate_matmul(lt, record, memory):
    """cublasLtMatmul on host arrays, from nothing but the recorded descriptors and pointers."""
    desc = lt.objects[record["desc"]]
    assert desc["compute"] == 68 and desc["scale"] == L.CUDA_R_32F  # CUBLAS_COMPUTE_32F: no TF32
    attrs = desc["attrs"]
    a = column_major(memory, record["a"], lt.objects[record["adesc"]])
    b = column_major(memory, record["b"], lt.objects[record["bdesc"]])
    op_a = a.T if attrs.get("TRANSA", 0) == 1 else a
    op_b = b.T if attrs.get("TRANSB", 0) == 1 else b
    d = column_major(memory, record["d"], lt.objects[record["ddesc"]])
    m, n = d.shape
    assert op_a.shape[0] == m and op_b.shape[1] == n and op_a.shape[1] == op_b.shape[0]
    value = record["alpha"] * (op_a @ op_b)
    if record["beta"] != 0:
        c = column_major(memory, record["c"], lt.objects[record["cdesc"]])
        value = value + record["beta"] * c
    epilogue = Epilogue(attrs.get("EPILOGUE", 1))
    if epilogue in (Epilogue.BIAS, Epilogue.RELU_BIAS):
        value = value + memory[attrs["BIAS_POINTER"]][:m][:, None]
    if epilogue in (Epilogue.RELU, Epilogue.RELU_BIAS):
        value = np.maximum(value, 0)
    d[...] = value


MATMUL_CASES = {
    "plain": matmul_spec(5, 3, 7),
    "transposed": matmul_spec(4, 6, 3, transposed=True),
    "bias": matmul_spec(3, 4, 5, bias=True),
    "relu": matmul_spec(6, 2, 4, post_ops=[eltwise("relu")]),
    "bias_relu": matmul_spec(6, 5, 4, transposed=True, bias=True, post_ops=[eltwise("relu")]),
    "residual": matmul_spec(3, 5, 6, post_ops=[binary("add", [3, 6])]),
    "bias_residual_relu": matmul_spec(
        4, 3, 5, transposed=True, bias=True, post_ops=[binary("add", [4, 5]), eltwise("relu")]
    ),
    "vector": matmul_spec(1, 8, 3, bias=True),
}


def matmul_arrays(spec, rng):
    m, k, n = spec["m"], spec["k"], spec["n"]
    arrays = {"a": rng.standard_normal((m, k))}
    arrays["b"] = rng.standard_normal((n, k) if spec["transposed_weights"] else (k, n))
    if spec["bias"]:
        arrays["bias"] = rng.standard_normal(n)
    if spec["post_ops"] and spec["post_ops"][0]["kind"] == "binary":
        arrays["side0"] = rng.standard_normal((m, n))
    arrays["y"] = np.full((m, n), np.nan)
    return arrays


def matmul_reference(spec, arrays):
    b = arrays["b"].T if spec["transposed_weights"] else arrays["b"]
    y = arrays["a"] @ b
    if spec["bias"]:
        y = y + arrays["bias"][None, :]
    return L.apply_post_ops(y, spec["post_ops"], [arrays["side0"]] if "side0" in arrays else [])


@pytest.mark.parametrize("case", sorted(MATMUL_CASES))
def test_cublaslt_mapping_is_numerically_right(fakes, case):
    spec, lt = MATMUL_CASES[case], fakes.lt
    context = L.LibraryContext(stream=0x5EED)
    call = L.make_call("cublas", spec, f"k_{case}", context)
    m, k, n = spec["m"], spec["k"], spec["n"]
    assert call.library == "cublas" and call.workspace_bytes == lt.workspace + (
        16 if spec["bias"] or (spec["post_ops"] and spec["post_ops"][-1]["alg"] == "relu") else 0
    )
    rng = np.random.default_rng(3)
    arrays = matmul_arrays(spec, rng)
    memory, pointers = host_memory(arrays)
    call.bind(pointers, workspace=0xABC000)
    enqueue_guarded(call, lt)
    (record,) = lt.matmuls
    # The exact mapping: cuBLAS A = our B, cuBLAS B = our A, D = Y^T (n x m, ld n), (m, n, k)_cublas = (N, M, K).
    layout = {key: lt.objects[record[key]] for key in ("adesc", "bdesc", "cdesc", "ddesc")}
    shape = {key: (v["rows"], v["cols"], v["ld"]) for key, v in layout.items()}
    if spec["transposed_weights"]:
        assert shape["adesc"] == (k, n, k) and lt.objects[record["desc"]]["attrs"]["TRANSA"] == 1
    else:
        assert shape["adesc"] == (n, k, n) and lt.objects[record["desc"]]["attrs"]["TRANSA"] == 0
    assert lt.objects[record["desc"]]["attrs"]["TRANSB"] == 0
    assert shape["bdesc"] == (k, m, k) and shape["cdesc"] == shape["ddesc"] == (n, m, n)
    assert (record["a"], record["b"], record["d"]) == (pointers["b"], pointers["a"], pointers["y"])
    residual = "side0" in pointers
    assert record["c"] == (pointers["side0"] if residual else pointers["y"])
    assert (record["alpha"], record["beta"]) == (1.0, 1.0 if residual else 0.0)
    assert record["stream"] == 0x5EED and record["handle"] == context.cublaslt_handle()
    assert record["workspace"] == 0xABC000 and record["workspace_size"] == call.workspace_bytes
    assert record["algo"] == ALGO_TAG + 1  # the algorithm the heuristic returned
    expected = {(False, False): "DEFAULT", (True, False): "BIAS", (False, True): "RELU", (True, True): "RELU_BIAS"}
    relu = any(op["alg"] == "relu" for op in spec["post_ops"])
    epilogue = lt.objects[record["desc"]]["attrs"]["EPILOGUE"]
    assert Epilogue(epilogue).name == expected[(spec["bias"], relu)]
    if spec["bias"]:
        assert lt.objects[record["desc"]]["attrs"]["BIAS_POINTER"] == pointers["bias"]
    (heuristic,) = lt.heuristics
    assert heuristic["pref"]["MAX_WORKSPACE_BYTES"] == L.CUBLASLT_MAX_WORKSPACE
    emulate_matmul(lt, record, memory)
    y = memory[pointers["y"]].reshape(m, n)
    np.testing.assert_allclose(y, matmul_reference(spec, arrays), rtol=1e-12, atol=1e-12)
    call.close()
    context.close()
    assert set(lt.destroyed) >= {record["adesc"], record["bdesc"], record["ddesc"], record["desc"]}


def test_cublaslt_misaligned_operands_requery_within_the_workspace(fakes):
    lt = fakes.lt
    call = L.make_call("cublas", matmul_spec(4, 4, 4, bias=True), "k7_mm", L.LibraryContext(0))
    reported = call.workspace_bytes
    call.bind({"a": 0x100010, "b": 0x200000, "bias": 0x300000, "y": 0x400040}, workspace=0x900000)
    assert len(lt.heuristics) == 2
    pref = lt.heuristics[1]["pref"]
    assert (pref["MIN_ALIGNMENT_A_BYTES"], pref["MIN_ALIGNMENT_B_BYTES"], pref["MIN_ALIGNMENT_D_BYTES"]) == (
        256,
        16,
        64,
    )
    assert pref["MAX_WORKSPACE_BYTES"] == reported - 16
    assert call.workspace_bytes == reported
    enqueue_guarded(call, lt)
    assert lt.matmuls[0]["algo"] == ALGO_TAG + 2


def test_cublaslt_bind_errors(fakes):
    call = L.make_call("cublas", matmul_spec(2, 3, 4, post_ops=[binary("add", [2, 4])]), "k8_mm", L.LibraryContext(0))
    with pytest.raises(ValueError, match=r"kernel k8_mm .*'side0'"):
        call.bind({"a": 0x1000, "b": 0x2000, "y": 0x3000}, 0x4000)
    with pytest.raises(ValueError, match="f32-aligned"):
        call.bind({"a": 0x1002, "b": 0x2000, "side0": 0x2800, "y": 0x3000}, 0x4000)
    with pytest.raises(RuntimeError, match="before bind"):
        call.enqueue()
    with pytest.raises(L.LibraryUnavailable, match=r"cuBLASLt cannot run kernel k9: post_op 0: 'tanh'"):
        L.make_call("cublas", matmul_spec(2, 3, 4, post_ops=[eltwise("tanh")]), "k9", L.LibraryContext(0))


def test_cublaslt_no_algorithm_is_unavailable(fakes, monkeypatch):
    def none_found(handle, desc, a, b, c, d, pref, requested, results, count):
        ctypes.c_int32.from_address(count).value = 0

    monkeypatch.setattr(fakes.lt, "matmul_algo_get_heuristic", none_found)
    with pytest.raises(L.LibraryUnavailable, match=r"cuBLASLt cannot run kernel k2: no cuBLASLt algorithm"):
        L.make_call("cublas", matmul_spec(2, 3, 4), "k2", L.LibraryContext(0))
    assert fakes.lt.destroyed  # the descriptors were released


# ------------------------------------------------------------------------------------------------
# Real GPU (skipped unless a GPU, cuda-python, the cuDNN frontend and nvmath-python are there)
# ------------------------------------------------------------------------------------------------


def _gpu_reason(library):
    try:
        from woodpecker.runtime.cuda import launch
    except Exception as exc:  # MLIR-less host: load nothing more
        return f"woodpecker.runtime.cuda.launch: {exc}"
    if not launch.cuda_available():
        return "no CUDA GPU"
    return L.availability(library)


class Gpu:
    def __init__(self):
        from woodpecker.runtime.cuda import launch

        self.check = launch.check
        self.cu = cu = launch.driver()
        self.check(cu.cuInit(0), "cuInit")
        self.device = self.check(cu.cuDeviceGet(0), "cuDeviceGet")
        self.context = self.check(cu.cuDevicePrimaryCtxRetain(self.device), "cuDevicePrimaryCtxRetain")
        self.check(cu.cuCtxSetCurrent(self.context), "cuCtxSetCurrent")
        self.stream = self.check(cu.cuStreamCreate(0), "cuStreamCreate")
        self.allocations = []

    def alloc(self, nbytes):
        ptr = int(self.check(self.cu.cuMemAlloc(max(int(nbytes), 256)), "cuMemAlloc"))
        self.allocations.append(ptr)
        return ptr

    def upload(self, array):
        host = np.ascontiguousarray(array, dtype=np.float32)
        ptr = self.alloc(host.nbytes)
        self.check(self.cu.cuMemcpyHtoD(ptr, host.ctypes.data, host.nbytes), "cuMemcpyHtoD")
        return ptr

    def download(self, ptr, shape):
        host = np.empty(shape, dtype=np.float32)
        self.check(self.cu.cuStreamSynchronize(self.stream), "cuStreamSynchronize")
        self.check(self.cu.cuMemcpyDtoH(host.ctypes.data, ptr, host.nbytes), "cuMemcpyDtoH")
        return host

    def close(self):
        for ptr in self.allocations:
            self.cu.cuMemFree(ptr)
        self.cu.cuStreamDestroy(self.stream)
        self.cu.cuDevicePrimaryCtxRelease(self.device)


@pytest.fixture(scope="module")
def gpu():
    reasons = [r for r in (_gpu_reason("cudnn"), _gpu_reason("cublas")) if r]
    if len(reasons) == 2:
        pytest.skip("; ".join(reasons))
    device = Gpu()
    yield device
    device.close()


def _run_on_gpu(gpu, library, spec, arrays, name, capture=False):
    reason = _gpu_reason(library)
    if reason:
        pytest.skip(reason)
    context = L.LibraryContext(int(gpu.stream))
    try:
        call = L.make_call(library, spec, name, context)
        pointers = {role: gpu.upload(a) if role != "y" else gpu.alloc(a.size * 4) for role, a in arrays.items()}
        workspace = gpu.alloc(call.workspace_bytes) if call.workspace_bytes else 0
        call.bind(pointers, workspace)
        if capture:  # the call must be capturable into a CUDA graph (no alloc / sync / copies)
            cu = gpu.cu
            mode = cu.CUstreamCaptureMode.CU_STREAM_CAPTURE_MODE_GLOBAL
            gpu.check(cu.cuStreamBeginCapture(gpu.stream, mode), "cuStreamBeginCapture")
            call.enqueue()
            graph = gpu.check(cu.cuStreamEndCapture(gpu.stream), "cuStreamEndCapture")
            executable = gpu.check(cu.cuGraphInstantiate(graph, 0), "cuGraphInstantiate")
            gpu.check(cu.cuGraphLaunch(executable, gpu.stream), "cuGraphLaunch")
        else:
            call.enqueue()
        y = gpu.download(pointers["y"], arrays["y"].shape)
        call.close()
        return y
    finally:
        context.close()


def _assert_close(y, ref):
    np.testing.assert_allclose(y, ref, rtol=1e-4, atol=1e-4 * float(np.max(np.abs(ref))))


GPU_CONV_CASES = {
    # our compiler pads in a separate kernel: 3x3 "pad 1" arrives pre-padded with pads 0
    "prepadded_3x3_bias_relu": conv_spec(
        [2, 8, 10, 10], [16, 8, 3, 3], [2, 16, 8, 8], bias=True, post_ops=[eltwise("relu")]
    ),
    "stride2": conv_spec([1, 8, 9, 9], [8, 8, 3, 3], [1, 8, 4, 4], strides=(2, 2)),
    "1x1": conv_spec([2, 16, 7, 7], [32, 16, 1, 1], [2, 32, 7, 7], bias=True),
    "depthwise_bias_relu": conv_spec(
        [1, 16, 10, 10], [16, 1, 3, 3], [1, 16, 8, 8], groups=16, bias=True, post_ops=[eltwise("relu")]
    ),
    "residual_relu": conv_spec(
        [2, 8, 10, 10],
        [8, 8, 3, 3],
        [2, 8, 8, 8],
        bias=True,
        post_ops=[binary("add", [2, 8, 8, 8]), eltwise("relu")],
    ),
}


@pytest.mark.gpu
@pytest.mark.parametrize("case", sorted(GPU_CONV_CASES))
def test_gpu_cudnn_conv(gpu, case):
    spec = GPU_CONV_CASES[case]
    arrays = conv_arrays(spec, np.random.default_rng(4))
    arrays = {role: a.astype(np.float32) for role, a in arrays.items()}
    try:
        y = _run_on_gpu(gpu, "cudnn", spec, arrays, f"k_{case}", capture=case == "1x1")
    except L.LibraryUnavailable as exc:
        if not spec["post_ops"]:
            raise  # a plain (bias-only) convolution must be supported
        pytest.skip(f"fused graph not supported on this GPU: {exc}")
    sides = [arrays["side0"]] if "side0" in arrays else []
    _assert_close(y, L.conv_reference(spec, arrays["x"], arrays["w"], arrays.get("bias"), sides))


GPU_MATMUL_CASES = {
    "plain": matmul_spec(64, 96, 80),
    "transposed": matmul_spec(33, 70, 45, transposed=True),
    "bias_relu": matmul_spec(64, 128, 96, bias=True, post_ops=[eltwise("relu")]),
    "residual": matmul_spec(48, 64, 32, post_ops=[binary("add", [48, 32])]),
    "bias_residual_relu": matmul_spec(
        16, 256, 64, transposed=True, bias=True, post_ops=[binary("add", [16, 64]), eltwise("relu")]
    ),
    "gemv": matmul_spec(1, 512, 1000, transposed=True, bias=True),
}


@pytest.mark.gpu
@pytest.mark.parametrize("case", sorted(GPU_MATMUL_CASES))
def test_gpu_cublaslt_matmul(gpu, case):
    spec = GPU_MATMUL_CASES[case]
    arrays = {role: a.astype(np.float32) for role, a in matmul_arrays(spec, np.random.default_rng(5)).items()}
    y = _run_on_gpu(gpu, "cublas", spec, arrays, f"k_{case}", capture=case == "bias_relu")
    ref = matmul_reference(spec, {role: a.astype(np.float64) for role, a in arrays.items()})
    _assert_close(y, ref)
