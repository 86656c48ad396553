"""Data movement: reshape, flatten, transpose, concat (binary) and pad (ONNX Pad modes)."""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

from woodpecker.dialect import wpk
from woodpecker.ops.args import NotEvaluable, OpArgs, Shape
from woodpecker.ops.registry import OpSemantics, register
from woodpecker.ops.rules import axis_in_range, expect_len, fail, fmt

PAD_MODES = ("constant", "reflect", "edge", "wrap")


def check_reshape(args: OpArgs[Shape]) -> None:
    """Same element count; the result type gives the shape."""
    x, out = list(args["input"]), list(args.result or ())
    if math.prod(x) != math.prod(out):
        fail(f"cannot reshape {fmt(x)} ({math.prod(x)} elements) to {fmt(out)} ({math.prod(out)} elements)")


def evaluate_reshape(args: OpArgs[np.ndarray]) -> np.ndarray:
    return args["input"].reshape(args.result_shape())


def flatten_shape(args: OpArgs[Shape]) -> Shape:
    x = list(args["input"])
    axis = axis_in_range(args.attr("axis"), len(x), inclusive_end=True)
    return [math.prod(x[:axis]), math.prod(x[axis:])]


def evaluate_flatten(args: OpArgs[np.ndarray]) -> np.ndarray:
    x, axis = args["input"], args.attr("axis")
    return x.reshape(math.prod(x.shape[:axis]), math.prod(x.shape[axis:]))


def transpose_shape(args: OpArgs[Shape]) -> Shape:
    x, perm = list(args["input"]), list(args.attr("perm"))
    if sorted(perm) != list(range(len(x))):
        fail(f"attribute 'perm' {fmt(perm)} is not a permutation of the {len(x)} input dimensions")
    return [x[p] for p in perm]


def evaluate_transpose(args: OpArgs[np.ndarray]) -> np.ndarray:
    return np.transpose(args["input"], args.attr("perm"))


def concat_shape(args: OpArgs[Shape]) -> Shape:
    shapes = [list(s) for s in args.values()]
    if not shapes:
        fail("needs at least one input")
    rank = len(shapes[0])
    axis = axis_in_range(args.attr("axis"), rank)
    for i, s in enumerate(shapes):
        if len(s) != rank or any(d != e for j, (d, e) in enumerate(zip(s, shapes[0], strict=True)) if j != axis):
            fail(f"input #{i} shape {fmt(s)} does not match input #0 {fmt(shapes[0])} outside axis {axis}")
    out = list(shapes[0])
    out[axis] = sum(s[axis] for s in shapes)
    return out


def evaluate_concat(args: OpArgs[np.ndarray]) -> np.ndarray:
    return np.concatenate(args.values(), axis=args.attr("axis"))


def pad_shape(args: OpArgs[Shape]) -> Shape:
    """`pads` are all begins then all ends; negative amounts crop."""
    x = list(args["input"])
    pads = expect_len("pads", args.attr("pads"), 2 * len(x))
    mode = args.attr("mode")
    if mode not in PAD_MODES:
        fail(f"attribute 'mode' is '{mode}', expected one of {', '.join(PAD_MODES)}")
    out = [d + pads[i] + pads[i + len(x)] for i, d in enumerate(x)]
    if any(d < 0 for d in out):
        fail(f"pads {fmt(pads)} crop more than the input shape {fmt(x)}")
    return out


def evaluate_pad(args: OpArgs[np.ndarray]) -> np.ndarray:
    """ONNX Pad: crop the negative amounts, then pad (constant value, or numpy's reflect/edge/wrap)."""
    x, pads, mode = args["input"], list(args.attr("pads")), args.attr("mode")
    rank = x.ndim
    low, high = pads[:rank], pads[rank:]
    crop = tuple(slice(max(0, -lo), x.shape[d] - max(0, -hi)) for d, (lo, hi) in enumerate(zip(low, high, strict=True)))
    x = x[crop]
    widths = [(max(0, lo), max(0, hi)) for lo, hi in zip(low, high, strict=True)]
    if mode == "constant":
        return np.pad(x, widths, constant_values=args.attr("value"))
    if mode not in PAD_MODES:
        raise NotEvaluable(f"pad mode '{mode}'")
    return np.pad(x, widths, mode=mode)


def same_element(operands: Mapping[str, str], result: str) -> None:
    """A reshape keeps the element type (any of f32, i64, i32, i1)."""
    if "input" in operands and operands["input"] != result:
        fail(f"the result element type {result} differs from the input's {operands['input']}")


register(OpSemantics(wpk.ReshapeOp, check=check_reshape, evaluate=evaluate_reshape, elements=same_element))
register(OpSemantics(wpk.FlattenOp, shape=flatten_shape, evaluate=evaluate_flatten))
register(OpSemantics(wpk.TransposeOp, shape=transpose_shape, evaluate=evaluate_transpose))
register(OpSemantics(wpk.ConcatOp, shape=concat_shape, evaluate=evaluate_concat))
register(OpSemantics(wpk.PadOp, shape=pad_shape, evaluate=evaluate_pad))
