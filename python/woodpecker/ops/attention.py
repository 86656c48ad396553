"""Attention-family ops: matmul_transposed (a matmul reading its right operand transposed)."""

from __future__ import annotations

import numpy as np

from woodpecker.dialect import wpk
from woodpecker.ops.args import OpArgs, Shape
from woodpecker.ops.matmul import matmul_shape
from woodpecker.ops.registry import OpSemantics, register
from woodpecker.ops.rules import fail, fmt


def swap_last_two(shape: Shape) -> Shape:
    return [*shape[:-2], shape[-1], shape[-2]]


def matmul_transposed_shape(args: OpArgs[Shape]) -> Shape:
    a, b = list(args["lhs"]), list(args["rhs"])
    if len(a) < 2 or len(b) < 2:
        fail(f"operands must have rank >= 2, got {fmt(a)} and {fmt(b)}")
    return matmul_shape(OpArgs({"lhs": a, "rhs": swap_last_two(b)}, {}))


def evaluate_matmul_transposed(args: OpArgs[np.ndarray]) -> np.ndarray:
    return np.matmul(args["lhs"], np.swapaxes(args["rhs"], -1, -2))


register(OpSemantics(wpk.MatMulTransposedOp, shape=matmul_transposed_shape, evaluate=evaluate_matmul_transposed))
