"""Lowering of the fused kernels: `wpk.elementwise`, `wpk.fused_conv2d`, `wpk.fused_matmul`, `wpk.fused_gemm`.

An anchor lowers to its named linalg op (as the unfused op does) followed by
ONE all-parallel `linalg.generic` that consumes the anchor's result and
computes the whole epilogue (conv bias, gemm alpha/beta/C, then every step)
per element: the backend tiles that generic and fuses the anchor into the same
loop nest, so the epilogue never makes a separate pass over memory.
`wpk.elementwise` is one `linalg.generic` over its result shape.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from mlir import ir
from mlir.dialects import arith

from woodpecker.dialect import shape_of, wpk
from woodpecker.lowering.common import LoweringError, broadcast_map, empty, generic, identity_map, projection_map
from woodpecker.lowering.conv import convolve
from woodpecker.lowering.elementwise import emit_steps
from woodpecker.lowering.matmul import gemm_epilogue, gemm_product, gemm_scale, matmul
from woodpecker.lowering.registry import lowers
from woodpecker.ops.fused_layout import FusedOperands, unpack
from woodpecker.ops.steps import StepError, count_binary

Prologue = Callable[[Sequence[ir.Value]], ir.Value]
"""Builds the epilogue's starting value from the scalars of the leading inputs."""


def fused_operands(op: ir.Operation) -> FusedOperands:
    """A fused op taken apart (LoweringError when malformed or the sides do not fit the steps)."""
    try:
        fused = unpack(op)
    except StepError as err:
        raise LoweringError(str(err)) from err
    if count_binary(fused.steps) != len(fused.sides):
        raise LoweringError(f"{count_binary(fused.steps)} binary steps but {len(fused.sides)} side operands")
    return fused


def epilogue_generic(
    leading: Sequence[tuple[ir.Value, ir.AffineMap]],
    prologue: Prologue,
    fused: FusedOperands,
    out_shape: Sequence[int],
) -> ir.Value:
    """One linalg.generic over `out_shape`: prologue(leading scalars), then the steps.

    `leading` are (value, indexing map) pairs; side operands broadcast like numpy.
    """
    inputs = [value for value, _ in leading] + list(fused.sides)
    maps = [m for _, m in leading] + [broadcast_map(shape_of(s), out_shape) for s in fused.sides]
    maps.append(identity_map(len(out_shape)))
    count = len(leading)

    def body(args: Sequence[ir.Value]) -> ir.Value:
        return emit_steps(fused.steps, prologue(args[:count]), args[count : len(inputs)])

    return generic(inputs, maps, empty(out_shape), body)


@lowers(wpk.ElementwiseOp)
def lower_elementwise(op: ir.Operation) -> ir.Value:
    fused = fused_operands(op)
    out = shape_of(op.results[0])
    x = fused.anchor["input"]
    assert x is not None
    return epilogue_generic([(x, broadcast_map(shape_of(x), out))], lambda args: args[0], fused, out)


@lowers(wpk.FusedConv2DOp)
def lower_fused_conv2d(op: ir.Operation) -> ir.Value:
    fused = fused_operands(op)
    x, w, bias = fused.anchor["input"], fused.anchor["filter"], fused.anchor["bias"]
    assert x is not None and w is not None
    conv = convolve(x, w, op)
    out = shape_of(op.results[0])
    if bias is None and not fused.steps:
        return conv
    rank = len(out)
    leading = [(conv, identity_map(rank))]
    if bias is not None:
        if shape_of(bias) != [out[1]]:
            raise LoweringError(f"bias shape {shape_of(bias)} is not [{out[1]}]")
        leading.append((bias, projection_map(rank, [1])))

    def prologue(args: Sequence[ir.Value]) -> ir.Value:
        return arith.AddFOp(args[0], args[1]).result if len(args) > 1 else args[0]

    return epilogue_generic(leading, prologue, fused, out)


@lowers(wpk.FusedMatMulOp)
def lower_fused_matmul(op: ir.Operation) -> ir.Value:
    fused = fused_operands(op)
    lhs, rhs = fused.anchor["lhs"], fused.anchor["rhs"]
    assert lhs is not None and rhs is not None
    out = shape_of(op.results[0])
    product = matmul(lhs, rhs, out)
    if not fused.steps:
        return product
    return epilogue_generic([(product, identity_map(len(out)))], lambda args: args[0], fused, out)


@lowers(wpk.FusedGemmOp)
def lower_fused_gemm(op: ir.Operation) -> ir.Value:
    fused = fused_operands(op)
    a, b = fused.anchor["a"], fused.anchor["b"]
    assert a is not None and b is not None
    product = gemm_product(a, b, op)
    alpha, beta, c = gemm_scale(op, fused.anchor["c"])
    out = shape_of(op.results[0])
    if c is None and alpha == 1.0 and not fused.steps:
        return product
    leading = [(product, identity_map(2))]
    if c is not None:
        leading.append((c, broadcast_map(shape_of(c), out)))

    def prologue(args: Sequence[ir.Value]) -> ir.Value:
        return gemm_epilogue(args[0], args[1] if len(args) > 1 else None, alpha, beta)

    return epilogue_generic(leading, prologue, fused, out)
