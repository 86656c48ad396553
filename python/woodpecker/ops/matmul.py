"""Matrix products: matmul (batched, numpy broadcasting; ONNX MatMul) and gemm (ONNX Gemm)."""

from __future__ import annotations

import numpy as np

from woodpecker.dialect import wpk
from woodpecker.ops.args import OpArgs, Shape
from woodpecker.ops.registry import OpSemantics, register
from woodpecker.ops.rules import broadcast_shapes, expect_rank, fail, fmt


def matmul_shape(args: OpArgs[Shape]) -> Shape:
    a, b = list(args["lhs"]), list(args["rhs"])
    if not a or not b:
        fail("operands must have rank >= 1")
    a2 = [1, *a] if len(a) == 1 else a
    b2 = [*b, 1] if len(b) == 1 else b
    if a2[-1] != b2[-2]:
        fail(f"contracting dimensions differ: lhs {fmt(a)}, rhs {fmt(b)}")
    batch = broadcast_shapes(a2[:-2], b2[:-2])
    if batch is None:
        fail(f"batch dimensions of {fmt(a)} and {fmt(b)} are not broadcast-compatible")
    out = [*batch]
    if len(a) > 1:
        out.append(a2[-2])
    if len(b) > 1:
        out.append(b2[-1])
    return out


def evaluate_matmul(args: OpArgs[np.ndarray]) -> np.ndarray:
    return np.matmul(args["lhs"], args["rhs"])


def gemm_shape(args: OpArgs[Shape]) -> Shape:
    a, b, c = list(args["a"]), list(args["b"]), args.get("c")
    expect_rank("operand 'a'", a, 2)
    expect_rank("operand 'b'", b, 2)
    m, k = (a[1], a[0]) if args.attr("trans_a") else (a[0], a[1])
    k2, n = (b[1], b[0]) if args.attr("trans_b") else (b[0], b[1])
    if k != k2:
        fail(f"contracting dimensions differ: {k} vs {k2}")
    if c is not None and (len(c) > 2 or broadcast_shapes(c, [m, n]) != [m, n]):
        fail(f"operand 'c' of shape {fmt(c)} does not broadcast to {fmt([m, n])}")
    return [m, n]


def gemm(
    a: np.ndarray, b: np.ndarray, c: np.ndarray | None, alpha: float, beta: float, trans_a: bool, trans_b: bool
) -> np.ndarray:
    """alpha * op(a) @ op(b) + beta * c, in float64."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    a = a.T if trans_a else a
    b = b.T if trans_b else b
    out = alpha * (a @ b)
    if c is not None:
        out = out + beta * np.asarray(c, dtype=np.float64)
    return out


def evaluate_gemm(args: OpArgs[np.ndarray]) -> np.ndarray:
    at = args.attrs
    return gemm(args["a"], args["b"], args.get("c"), at["alpha"], at["beta"], at["trans_a"], at["trans_b"])


register(OpSemantics(wpk.MatMulOp, shape=matmul_shape, evaluate=evaluate_matmul))
register(OpSemantics(wpk.GemmOp, shape=gemm_shape, evaluate=evaluate_gemm))
