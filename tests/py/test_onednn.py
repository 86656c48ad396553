"""oneDNN bindings (woodpecker.runtime.cpu.onednn) against float64 numpy references."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from woodpecker.runtime.cpu import onednn
from woodpecker.runtime.cpu.onednn import Convolution, MatMul, OneDnnError, Pooling, PostOp

_REASON = onednn.availability()


@pytest.fixture(autouse=True)
def _needs_onednn() -> None:
    if _REASON is not None:
        pytest.skip(_REASON)


RNG = np.random.default_rng(1234)


def _random(*shape: int) -> np.ndarray:
    return RNG.standard_normal(shape).astype(np.float32)


def _assert_close(actual: np.ndarray, reference: np.ndarray) -> None:
    # float32 kernels against a float64 reference: rtol=1e-4 and atol=1e-4 * max|reference| (accumulation order).
    atol = 1e-4 * max(float(np.abs(reference).max()), 1e-30)
    np.testing.assert_allclose(actual, reference, rtol=1e-4, atol=atol)


# -- float64 references -----------------------------------------------------------------------------------------


def _windows(padded: np.ndarray, kernel: tuple[int, int], strides, dilations, out_hw):
    """Yield (i, j, window) for each kernel tap: window[n, c, oh, ow] = padded[n, c, oh*s + i*d, ow*s + j*d]."""
    for i in range(kernel[0]):
        for j in range(kernel[1]):
            h0, w0 = i * dilations[0], j * dilations[1]
            yield (
                i,
                j,
                padded[
                    :,
                    :,
                    h0 : h0 + strides[0] * (out_hw[0] - 1) + 1 : strides[0],
                    w0 : w0 + strides[1] * (out_hw[1] - 1) + 1 : strides[1],
                ],
            )


def conv_reference(x, w, b, strides=(1, 1), pads_begin=(0, 0), pads_end=(0, 0), dilations=(1, 1), groups=1):
    x, w = x.astype(np.float64), w.astype(np.float64)
    n, _, h, wd = x.shape
    o, c_per_group, kh, kw = w.shape
    out_hw = tuple(
        (size + pb + pe - d * (k - 1) - 1) // s + 1
        for size, pb, pe, d, k, s in zip((h, wd), pads_begin, pads_end, dilations, (kh, kw), strides, strict=True)
    )
    padded = np.pad(x, ((0, 0), (0, 0), (pads_begin[0], pads_end[0]), (pads_begin[1], pads_end[1])))
    out = np.zeros((n, o, *out_hw))
    o_per_group = o // groups
    for g in range(groups):
        group_in = padded[:, g * c_per_group : (g + 1) * c_per_group]
        group_w = w[g * o_per_group : (g + 1) * o_per_group]
        for i, j, window in _windows(group_in, (kh, kw), strides, dilations, out_hw):
            out[:, g * o_per_group : (g + 1) * o_per_group] += np.einsum("nchw,oc->nohw", window, group_w[:, :, i, j])
    if b is not None:
        out += b.astype(np.float64)[None, :, None, None]
    return out


def eltwise_reference(alg: str, x, alpha: float, beta: float):
    if alg == "relu":
        return np.where(x > 0, x, alpha * x)
    if alg == "clip":
        return np.clip(x, alpha, beta)
    if alg == "logistic":
        return 1 / (1 + np.exp(-x))
    if alg == "tanh":
        return np.tanh(x)
    if alg == "swish":
        return x / (1 + np.exp(-alpha * x))
    if alg == "linear":
        return alpha * x + beta
    raise AssertionError(alg)


def apply_post_ops(x, post_ops, operands):
    operands = iter(operands)
    for op in post_ops:
        if op.kind == "eltwise":
            x = eltwise_reference(op.alg, x, op.alpha, op.beta)
        else:
            other = next(operands).astype(np.float64)
            x = {"add": np.add, "sub": np.subtract, "mul": np.multiply, "div": np.divide}[op.alg](x, other)
    return x


def pool_reference(x, kind, kernel, strides, pads_begin, pads_end):
    x = x.astype(np.float64)
    _, _, h, w = x.shape
    out_hw = tuple(
        (size + pb + pe - k) // s + 1
        for size, pb, pe, k, s in zip((h, w), pads_begin, pads_end, kernel, strides, strict=True)
    )
    pads = ((0, 0), (0, 0), (pads_begin[0], pads_end[0]), (pads_begin[1], pads_end[1]))
    if kind == "max":
        padded = np.pad(x, pads, constant_values=-np.inf)
        return np.max([win for _, _, win in _windows(padded, kernel, strides, (1, 1), out_hw)], axis=0)
    total = sum(win for _, _, win in _windows(np.pad(x, pads), kernel, strides, (1, 1), out_hw))
    if kind == "avg_include_pad":
        return total / (kernel[0] * kernel[1])
    ones = np.pad(np.ones_like(x), pads)
    return total / sum(win for _, _, win in _windows(ones, kernel, strides, (1, 1), out_hw))


def run_conv(x, w, b, strides, pads_begin, pads_end, dilations=(1, 1), groups=1, post_ops=(), operands=(), **kw):
    conv = Convolution(x.shape, w, b, strides, pads_begin, pads_end, dilations, groups, post_ops, **kw)
    y = np.full(conv.output_shape, np.nan, np.float32)
    conv(x, *operands, y)
    reference = conv_reference(x, w, b, strides, pads_begin, pads_end, dilations, groups)
    _assert_close(y, apply_post_ops(reference, post_ops, operands))
    return conv


# -- convolution ----------------------------------------------------------------------------------------------

CONV_CASES = {
    "3x3_pad1": ((1, 8, 10, 10), (16, 8, 3, 3), (1, 1), (1, 1), (1, 1), (1, 1), 1, True),
    "1x1": ((1, 16, 7, 7), (8, 16, 1, 1), (1, 1), (0, 0), (0, 0), (1, 1), 1, True),
    "stride2": ((2, 8, 11, 11), (8, 8, 3, 3), (2, 2), (1, 1), (1, 1), (1, 1), 1, True),
    "asymmetric_pads": ((1, 4, 8, 9), (8, 4, 3, 3), (1, 1), (0, 0), (1, 1), (1, 1), 1, True),
    "dilation2": ((1, 4, 12, 12), (8, 4, 3, 3), (1, 1), (2, 2), (2, 2), (2, 2), 1, True),
    "groups2": ((1, 8, 9, 9), (12, 4, 3, 3), (1, 1), (1, 1), (1, 1), (1, 1), 2, True),
    "depthwise": ((1, 16, 10, 10), (16, 1, 3, 3), (1, 1), (1, 1), (1, 1), (1, 1), 16, True),
    "depthwise_stride2": ((1, 8, 11, 11), (8, 1, 3, 3), (2, 2), (1, 1), (1, 1), (1, 1), 8, True),
    "no_bias": ((1, 8, 6, 6), (8, 8, 3, 3), (1, 1), (1, 1), (1, 1), (1, 1), 1, False),
    "7x7_stride2_3ch": ((1, 3, 20, 20), (8, 3, 7, 7), (2, 2), (3, 3), (3, 3), (1, 1), 1, True),
}


@pytest.mark.parametrize("layout", ["plain", "blocked", "auto"])
@pytest.mark.parametrize("case", sorted(CONV_CASES))
def test_convolution(case: str, layout: str) -> None:
    src_shape, w_shape, strides, pads_begin, pads_end, dilations, groups, has_bias = CONV_CASES[case]
    bias = _random(w_shape[0]) if has_bias else None
    conv = run_conv(
        _random(*src_shape), _random(*w_shape), bias, strides, pads_begin, pads_end, dilations, groups, layout=layout
    )
    assert conv.name and conv.name in conv.description
    assert conv.layout == layout or layout == "auto"
    assert len(conv.runtime_memories) == 2 and len(conv.executions) >= 1
    assert all(execution.primitive and execution.args and execution.nargs >= 2 for execution in conv.executions)


ELTWISE_POST_OPS = [
    PostOp("eltwise", "relu"),
    PostOp("eltwise", "relu", alpha=0.1),
    PostOp("eltwise", "clip", alpha=0.0, beta=6.0),
    PostOp("eltwise", "logistic"),
    PostOp("eltwise", "tanh"),
    PostOp("eltwise", "swish", alpha=1.0),
    PostOp("eltwise", "linear", alpha=0.5, beta=-0.25),
]


@pytest.mark.parametrize("op", ELTWISE_POST_OPS, ids=lambda op: f"{op.alg}_{op.alpha}_{op.beta}")
def test_convolution_eltwise_post_op(op: PostOp) -> None:
    x = _random(1, 8, 9, 9) * 2
    run_conv(x, _random(16, 8, 3, 3), _random(16), (1, 1), (1, 1), (1, 1), post_ops=[op])


BINARY_CASES = {
    "add_residual": ([PostOp("binary", "add", shape=(1, 16, 9, 9))], False),
    "mul_per_channel": ([PostOp("binary", "mul", shape=(1, 16, 1, 1))], False),
    "sub_per_channel": ([PostOp("binary", "sub", shape=(1, 16, 1, 1))], False),
    "div_residual": ([PostOp("binary", "div", shape=(1, 16, 9, 9))], True),
    "add_spatial_broadcast": ([PostOp("binary", "add", shape=(1, 1, 9, 9))], False),
    "chain_add_relu": ([PostOp("binary", "add", shape=(1, 16, 9, 9)), PostOp("eltwise", "relu")], False),
    "chain_relu_mul_add": (
        [
            PostOp("eltwise", "relu"),
            PostOp("binary", "mul", shape=(1, 16, 1, 1)),
            PostOp("binary", "add", shape=(1, 16, 9, 9)),
        ],
        False,
    ),
}


@pytest.mark.parametrize("layout", ["plain", "blocked", "auto"])
@pytest.mark.parametrize("case", sorted(BINARY_CASES))
def test_convolution_binary_post_ops(case: str, layout: str) -> None:
    post_ops, positive = BINARY_CASES[case]
    operands = [_random(*op.shape) for op in post_ops if op.kind == "binary"]
    if positive:
        operands = [np.abs(a) + 0.5 for a in operands]
    conv = run_conv(
        _random(1, 8, 9, 9),
        _random(16, 8, 3, 3),
        _random(16),
        (1, 1),
        (1, 1),
        (1, 1),
        post_ops=post_ops,
        operands=operands,
        layout=layout,
    )
    assert len(conv.runtime_memories) == 2 + len(operands)


def test_weights_are_copied() -> None:
    x, w, b = _random(1, 4, 6, 6), _random(8, 4, 3, 3), _random(8)
    conv = Convolution(x.shape, w, b, (1, 1), (1, 1), (1, 1))
    reference = conv_reference(x, w, b, (1, 1), (1, 1), (1, 1))
    w[...] = 0
    b[...] = 0
    del w, b
    y = np.empty(conv.output_shape, np.float32)
    conv(x, y)
    _assert_close(y, reference)


def test_convolution_accepts_non_contiguous_float64_weights() -> None:
    x = _random(1, 4, 6, 6)
    w = np.asfortranarray(_random(8, 4, 3, 3).astype(np.float64))
    run_conv(x, w, None, (1, 1), (1, 1), (1, 1))


def test_blocked_layout_adds_reorders() -> None:
    conv = Convolution((1, 16, 8, 8), _random(16, 16, 3, 3), None, (1, 1), (1, 1), (1, 1), layout="blocked")
    assert conv.layout == "blocked"
    assert len(conv.executions) == 3  # plain -> blocked, convolution, blocked -> plain
    plain = Convolution((1, 16, 8, 8), _random(16, 16, 3, 3), None, (1, 1), (1, 1), (1, 1), layout="plain")
    assert len(plain.executions) == 1


# -- matmul ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("m", [1, 7])
@pytest.mark.parametrize(
    "post_ops",
    [
        (),
        (PostOp("eltwise", "relu"),),
        (PostOp("binary", "add", shape=(-1, 24)),),
        (PostOp("binary", "mul", shape=(1, 24)),),
    ],
    ids=["none", "relu", "add_full", "mul_row"],
)
@pytest.mark.parametrize("with_bias", [True, False])
def test_matmul(m: int, post_ops: tuple[PostOp, ...], with_bias: bool) -> None:
    k, n = 40, 24
    post_ops = tuple(
        PostOp(op.kind, op.alg, op.alpha, op.beta, (m, n) if op.shape == (-1, n) else op.shape) for op in post_ops
    )
    weights = _random(n, k).T  # a transposed view, as for ONNX Gemm with transB
    bias = _random(n) if with_bias else None
    matmul = MatMul(m, k, weights, bias, post_ops)
    x = _random(m, k)
    operands = [_random(*op.shape) for op in post_ops if op.kind == "binary"]
    y = np.full((m, n), np.nan, np.float32)
    matmul(x, *operands, y)
    reference = x.astype(np.float64) @ weights.astype(np.float64)
    if bias is not None:
        reference = reference + bias
    _assert_close(y, apply_post_ops(reference, post_ops, operands))
    assert matmul.output_shape == (m, n) and matmul.name


# -- pooling --------------------------------------------------------------------------------------------------

POOL_CASES = {
    "3x3_s2_p1": ((1, 4, 11, 11), (3, 3), (2, 2), (1, 1), (1, 1)),
    "asymmetric_pads": ((2, 3, 8, 9), (3, 3), (2, 2), (0, 1), (1, 2)),
    "2x2_s2": ((1, 5, 8, 8), (2, 2), (2, 2), (0, 0), (0, 0)),
    "ceil_mode_like": ((1, 2, 7, 7), (2, 2), (2, 2), (0, 0), (1, 1)),
}


@pytest.mark.parametrize("kind", ["max", "avg_include_pad", "avg_exclude_pad"])
@pytest.mark.parametrize("case", sorted(POOL_CASES))
def test_pooling(case: str, kind: str) -> None:
    src_shape, kernel, strides, pads_begin, pads_end = POOL_CASES[case]
    x = _random(*src_shape)
    pool = Pooling(src_shape, kind, kernel, strides, pads_begin, pads_end)
    y = np.full(pool.output_shape, np.nan, np.float32)
    pool(x, y)
    _assert_close(y, pool_reference(x, kind, kernel, strides, pads_begin, pads_end))


# -- errors ---------------------------------------------------------------------------------------------------


def test_errors() -> None:
    w = _random(8, 4, 3, 3)
    with pytest.raises(ValueError, match="groups=2"):
        Convolution((1, 4, 6, 6), w, None, (1, 1), (1, 1), (1, 1), groups=2)
    with pytest.raises(ValueError, match="does not broadcast"):
        Convolution(
            (1, 4, 6, 6), w, None, (1, 1), (1, 1), (1, 1), post_ops=[PostOp("binary", "add", shape=(1, 4, 6, 6))]
        )
    with pytest.raises(ValueError, match="does not broadcast"):
        Convolution((1, 4, 6, 6), w, None, (1, 1), (1, 1), (1, 1), post_ops=[PostOp("binary", "add", shape=(8, 6, 6))])
    with pytest.raises(ValueError, match="bias"):
        Convolution((1, 4, 6, 6), w, _random(4), (1, 1), (1, 1), (1, 1))
    with pytest.raises(ValueError, match="layout"):
        Convolution((1, 4, 6, 6), w, None, (1, 1), (1, 1), (1, 1), layout="nhwc")
    with pytest.raises(ValueError, match="strides"):
        Convolution((1, 4, 6, 6), w, None, (0, 1), (1, 1), (1, 1))
    with pytest.raises(ValueError, match="empty"):
        Convolution((1, 4, 2, 2), w, None, (1, 1), (0, 0), (0, 0))
    with pytest.raises(ValueError, match="unsupported eltwise post-op 'gelu'"):
        PostOp("eltwise", "gelu")
    with pytest.raises(ValueError, match="kind"):
        PostOp("sum", "add")
    with pytest.raises(ValueError, match=r"\(K=5, N\)"):
        MatMul(2, 5, _random(4, 3), None)
    with pytest.raises(ValueError, match="pooling kind"):
        Pooling((1, 1, 4, 4), "lp", (2, 2), (2, 2), (0, 0), (0, 0))
    with pytest.raises(ValueError, match="thread count"):
        onednn.set_threads(0)


def test_unimplemented_is_a_clear_onednn_error() -> None:
    # A padding as large as the kernel leaves windows entirely in the padding: oneDNN refuses such a pooling.
    with pytest.raises(OneDnnError, match=r"oneDNN has no .*pooling.*: dnnl_"):
        Pooling((1, 1, 4, 4), "avg_exclude_pad", (2, 2), (1, 1), (2, 2), (2, 2))


def test_call_checks_operands() -> None:
    pool = Pooling((1, 2, 4, 4), "max", (2, 2), (2, 2), (0, 0), (0, 0))
    x, y = _random(1, 2, 4, 4), np.empty((1, 2, 2, 2), np.float32)
    with pytest.raises(ValueError, match="expected 2 arrays"):
        pool(x)
    with pytest.raises(ValueError, match="shape"):
        pool(x, np.empty((1, 2, 3, 3), np.float32))
    with pytest.raises(ValueError, match="float32"):
        pool(x.astype(np.float64), y)
    with pytest.raises(ValueError, match="C-contiguous"):
        pool(np.asfortranarray(x), y)


def test_library_info() -> None:
    lib = onednn.load()
    assert lib.version[:2] == (3, 2)
    assert lib.engine and lib.stream
    assert onednn.library_path() is not None


# -- threads --------------------------------------------------------------------------------------------------

_THREADS_SCRIPT = textwrap.dedent(
    """
    import ctypes, json, os
    import numpy as np
    from woodpecker.runtime.cpu import onednn

    def threads():
        return len(os.listdir("/proc/self/task"))

    lib = onednn.load()
    cores = len(os.sched_getaffinity(0))
    onednn.set_threads(cores)
    baseline = threads()
    # Start the libiomp5 pool the way generated code does (a GOMP_parallel region), then run oneDNN.
    iomp = ctypes.CDLL(os.environ["WPK_IOMP"])
    region = ctypes.CFUNCTYPE(None, ctypes.c_void_p)(lambda data: None)
    iomp.GOMP_parallel(region, None, ctypes.c_uint(cores), ctypes.c_uint(0))
    after_openmp = threads()
    rng = np.random.default_rng(0)
    conv = onednn.Convolution((1, 32, 32, 32), rng.standard_normal((32, 32, 3, 3)).astype(np.float32), None,
                              (1, 1), (1, 1), (1, 1), layout="blocked")
    x = rng.standard_normal((1, 32, 32, 32)).astype(np.float32)
    y = np.empty(conv.output_shape, np.float32)
    for _ in range(3):
        conv(x, y)
    print(json.dumps(dict(cores=cores, baseline=baseline, after_openmp=after_openmp, after_onednn=threads(),
                          openmp_library=lib.openmp_library)))
    """
)


def test_one_openmp_thread_pool() -> None:
    from woodpecker.runtime.shared_libs import openmp_runtime

    iomp = openmp_runtime()
    if iomp is None:
        pytest.skip("intel-openmp is not installed: oneDNN uses its own libgomp")
    if len(os.sched_getaffinity(0)) < 2:
        pytest.skip("needs 2 cores to tell the thread pools apart")
    env = {**os.environ, "WPK_IOMP": str(iomp), "OMP_NUM_THREADS": "", "KMP_AFFINITY": "disabled"}
    env.pop("OMP_NUM_THREADS")
    done = subprocess.run([sys.executable, "-c", _THREADS_SCRIPT], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    counts = json.loads(done.stdout.strip().splitlines()[-1])
    assert counts["openmp_library"] == str(iomp), counts
    # libiomp5's pool has cores - 1 workers (one more thread allowed for a runtime helper); it is started by the
    # GOMP_parallel region. oneDNN bound to libgomp would start a second pool of cores - 1 >= 1 more threads.
    assert counts["after_openmp"] - counts["baseline"] <= counts["cores"], counts
    assert counts["after_onednn"] == counts["after_openmp"], counts
