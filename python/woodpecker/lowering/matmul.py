"""Lowering of `wpk.matmul` (ONNX MatMul) and `wpk.gemm` to named linalg matmuls."""

from __future__ import annotations

from collections.abc import Sequence

from mlir import ir
from mlir.dialects import arith, linalg

from woodpecker.dialect import attr_bool, attr_float, shape_of, wpk
from woodpecker.lowering.common import (
    LoweringError,
    broadcast_shape,
    broadcast_to,
    collapse,
    elementwise,
    expand,
    fill,
    reshape,
    scalar,
    transpose,
)
from woodpecker.lowering.registry import lowers


def matmul_2d(lhs: ir.Value, rhs: ir.Value) -> ir.Value:
    """[M, K] x [K, N] -> [M, N] as `linalg.matmul` into a zero-filled tensor."""
    (m, k), (k2, n) = shape_of(lhs), shape_of(rhs)
    if k != k2:
        raise LoweringError(f"matmul contraction sizes differ: {shape_of(lhs)} x {shape_of(rhs)}")
    return linalg.matmul(lhs, rhs, outs=[fill(0.0, [m, n])])


def _batch_matmul_3d(lhs: ir.Value, rhs: ir.Value) -> ir.Value:
    (b, m, _), (_, _, n) = shape_of(lhs), shape_of(rhs)
    return linalg.batch_matmul(lhs, rhs, outs=[fill(0.0, [b, m, n])])


def _collapse_batch(value: ir.Value, batch_rank: int) -> ir.Value:
    """[b0, ..., bk, X, Y] -> [b0 * ... * bk, X, Y]."""
    if batch_rank == 1:
        return value
    return collapse(value, [list(range(batch_rank)), [batch_rank], [batch_rank + 1]])


def _batched(lhs: ir.Value, rhs: ir.Value, batch: Sequence[int]) -> ir.Value:
    """Matrix product of [*, M, K] and [*, K, N] operands whose batch dims broadcast to `batch`."""
    (m, k), (k2, n) = shape_of(lhs)[-2:], shape_of(rhs)[-2:]
    if k != k2:
        raise LoweringError(f"matmul contraction sizes differ: {shape_of(lhs)} x {shape_of(rhs)}")
    rank = len(batch)
    if not batch:
        return matmul_2d(lhs, rhs)
    if len(shape_of(rhs)) == 2:
        # A shared right operand: fold the batch into the rows of one plain matmul.
        lhs = broadcast_to(lhs, [*batch, m, k])
        rows = collapse(lhs, [list(range(rank + 1)), [rank + 1]])
        product = matmul_2d(rows, rhs)
        return expand(product, [list(range(rank + 1)), [rank + 1]], [*batch, m, n])
    lhs = _collapse_batch(broadcast_to(lhs, [*batch, m, k]), rank)
    rhs = _collapse_batch(broadcast_to(rhs, [*batch, k, n]), rank)
    product = _batch_matmul_3d(lhs, rhs)
    if rank == 1:
        return product
    return expand(product, [list(range(rank)), [rank], [rank + 1]], [*batch, m, n])


@lowers(wpk.MatMulOp)
def lower_matmul(op: ir.Operation) -> ir.Value:
    return matmul(op.operands[0], op.operands[1], shape_of(op.results[0]))


def matmul(lhs: ir.Value, rhs: ir.Value, out: list[int]) -> ir.Value:
    """ONNX MatMul: numpy broadcasting of batch dims; a 1-D operand gains then loses a unit dim."""
    a, b = shape_of(lhs), shape_of(rhs)
    if not a or not b:
        raise LoweringError("matmul operands must have rank >= 1")
    a2 = [1, *a] if len(a) == 1 else a
    b2 = [*b, 1] if len(b) == 1 else b
    batch = broadcast_shape(a2[:-2], b2[:-2])
    expected = list(batch)
    if len(a) > 1:
        expected.append(a2[-2])
    if len(b) > 1:
        expected.append(b2[-1])
    if expected != out:
        raise LoweringError(f"matmul of {a} and {b} gives {expected}, not the result shape {out}")
    product = _batched(reshape(lhs, a2), reshape(rhs, b2), batch)
    return reshape(product, out)


def gemm_product(a: ir.Value, b: ir.Value, op: ir.Operation) -> ir.Value:
    """op(A) @ op(B) with the trans_a/trans_b and result type of `op` (gemm or fused_gemm)."""
    if len(shape_of(a)) != 2 or len(shape_of(b)) != 2:
        raise LoweringError(f"gemm operands must be 2-D, got {shape_of(a)} and {shape_of(b)}")
    if attr_bool(op, "trans_a"):
        a = transpose(a, [1, 0])
    if attr_bool(op, "trans_b"):
        b = transpose(b, [1, 0])
    product = matmul_2d(a, b)
    out = shape_of(op.results[0])
    if shape_of(product) != out:
        raise LoweringError(f"gemm product shape {shape_of(product)} is not the result shape {out}")
    return product


def gemm_scale(op: ir.Operation, c: ir.Value | None) -> tuple[float, float, ir.Value | None]:
    """(alpha, beta, c) of a gemm, with c None when it is absent or beta is 0."""
    alpha, beta = attr_float(op, "alpha"), attr_float(op, "beta")
    return alpha, beta, (c if c is not None and beta != 0.0 else None)


def gemm_epilogue(acc: ir.Value, c: ir.Value | None, alpha: float, beta: float) -> ir.Value:
    """alpha * acc + beta * c on scalars (c None: no C term)."""
    if alpha != 1.0:
        acc = arith.MulFOp(acc, scalar(alpha)).result
    if c is None:
        return acc
    if beta != 1.0:
        c = arith.MulFOp(c, scalar(beta)).result
    return arith.AddFOp(acc, c).result


@lowers(wpk.GemmOp)
def lower_gemm(op: ir.Operation) -> ir.Value:
    """alpha * op(A) @ op(B) + beta * C, C broadcast to [M, N]."""
    product = gemm_product(op.operands[0], op.operands[1], op)
    alpha, beta, c = gemm_scale(op, op.operands[2] if len(op.operands) > 2 else None)
    out = shape_of(op.results[0])
    if c is not None:
        return elementwise([product, c], out, lambda args: gemm_epilogue(args[0], args[1], alpha, beta))
    if alpha != 1.0:
        return elementwise([product], out, lambda args: gemm_epilogue(args[0], None, alpha, beta))
    return product
