"""Float64 numpy references of the `wpk` ops for the tests: a thin adapter over the op semantics.

The numpy semantics of every op live in one place, `woodpecker.ops` (written from the ONNX
operator definitions: explicit taps and windows, nothing shared with the lowering the tests
check); these functions only give them the argument lists the tests use.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from woodpecker.dialect import wpk
from woodpecker.ops import OpArgs, semantics_of


def evaluate(op: wpk.OpClass, operands: dict[str, np.ndarray | None], **attrs: Any) -> np.ndarray:
    """The float64 result of the op class on named operands and Python attribute values."""
    arrays = {name: None if a is None else np.asarray(a, dtype=np.float64) for name, a in operands.items()}
    return semantics_of(op).run(OpArgs(arrays, attrs))


def conv2d(
    x: np.ndarray,
    w: np.ndarray,
    b: np.ndarray | None,
    strides: Sequence[int],
    pads: Sequence[int],
    dilations: Sequence[int],
    groups: int,
) -> np.ndarray:
    """ONNX Conv, NCHW / FCHW; pads = [top, left, bottom, right]."""
    operands = {"input": x, "filter": w, "bias": b}
    return evaluate(wpk.Conv2DOp, operands, strides=strides, pads=pads, dilations=dilations, groups=groups)


def pool2d(
    x: np.ndarray,
    kind: str,
    kernel: Sequence[int],
    strides: Sequence[int],
    pads: Sequence[int],
    dilations: Sequence[int],
    ceil_mode: bool,
    count_include_pad: bool = False,
) -> np.ndarray:
    """ONNX MaxPool (kind='max') / AveragePool (kind='avg'), window by window."""
    attrs = {"kernel_shape": kernel, "strides": strides, "pads": pads, "dilations": dilations, "ceil_mode": ceil_mode}
    if kind == "max":
        return evaluate(wpk.MaxPoolOp, {"input": x}, **attrs)
    return evaluate(wpk.AvgPoolOp, {"input": x}, **attrs, count_include_pad=count_include_pad)


def gemm(
    a: np.ndarray,
    b: np.ndarray,
    c: np.ndarray | None,
    alpha: float,
    beta: float,
    trans_a: bool,
    trans_b: bool,
) -> np.ndarray:
    return evaluate(
        wpk.GemmOp, {"a": a, "b": b, "c": c}, alpha=alpha, beta=beta, trans_a=trans_a, trans_b=trans_b
    )


def batch_norm(
    x: np.ndarray, scale: np.ndarray, bias: np.ndarray, mean: np.ndarray, var: np.ndarray, eps: float
) -> np.ndarray:
    operands = {"input": x, "scale": scale, "bias": bias, "mean": mean, "variance": var}
    return evaluate(wpk.BatchNormOp, operands, epsilon=eps)


def sigmoid(x: np.ndarray) -> np.ndarray:
    return evaluate(wpk.SigmoidOp, {"input": x})


def leaky_relu(x: np.ndarray, alpha: float) -> np.ndarray:
    return evaluate(wpk.LeakyReluOp, {"input": x}, alpha=alpha)


def softmax(x: np.ndarray, axis: int) -> np.ndarray:
    return evaluate(wpk.SoftmaxOp, {"input": x}, axis=axis)


def reduce_mean(x: np.ndarray, axes: Sequence[int], keepdims: bool) -> np.ndarray:
    return evaluate(wpk.ReduceMeanOp, {"input": x}, axes=list(axes), keepdims=keepdims)


def flatten(x: np.ndarray, axis: int) -> np.ndarray:
    return evaluate(wpk.FlattenOp, {"input": x}, axis=axis)


def pad(x: np.ndarray, pads: Sequence[int], mode: str, value: float = 0.0) -> np.ndarray:
    """ONNX Pad: all begins then all ends; negative amounts crop (before padding)."""
    return evaluate(wpk.PadOp, {"input": x}, pads=list(pads), mode=mode, value=value)
