"""`wpk` -> upstream MLIR on tensors (linalg, tensor, arith, math).

`lower_to_linalg` is a Python pass: it replaces every `wpk.*` op inside the
`func.func` ops under the given operation by upstream ops producing the same
result type. Use it directly or as
`PassManager.add(lower_to_linalg, name="wpk-lower-to-linalg")`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType

from mlir import ir
from mlir.passmanager import ExternalPass

from woodpecker.errors import CompilationError
from woodpecker.lowering.common import LoweringError
from woodpecker.lowering.constants import lower_constant, lower_weight
from woodpecker.lowering.conv import lower_conv2d
from woodpecker.lowering.elementwise import (
    lower_batch_norm,
    lower_binary,
    lower_clip,
    lower_leaky_relu,
    lower_relu,
    lower_sigmoid,
    lower_tanh,
)
from woodpecker.lowering.fused import lower_elementwise, lower_fused_conv2d, lower_fused_gemm, lower_fused_matmul
from woodpecker.lowering.matmul import lower_gemm, lower_matmul
from woodpecker.lowering.pooling import lower_avg_pool, lower_max_pool
from woodpecker.lowering.reduction import lower_global_avg_pool, lower_reduce_mean, lower_softmax
from woodpecker.lowering.shape import lower_concat, lower_flatten, lower_pad, lower_reshape, lower_transpose

Lowering = Callable[[ir.Operation], ir.Value]

LOWERINGS: Mapping[str, Lowering] = MappingProxyType(
    {
        "wpk.weight": lower_weight,
        "wpk.constant": lower_constant,
        "wpk.conv2d": lower_conv2d,
        "wpk.matmul": lower_matmul,
        "wpk.gemm": lower_gemm,
        "wpk.add": lower_binary,
        "wpk.sub": lower_binary,
        "wpk.mul": lower_binary,
        "wpk.div": lower_binary,
        "wpk.relu": lower_relu,
        "wpk.sigmoid": lower_sigmoid,
        "wpk.tanh": lower_tanh,
        "wpk.leaky_relu": lower_leaky_relu,
        "wpk.clip": lower_clip,
        "wpk.batch_norm": lower_batch_norm,
        "wpk.max_pool": lower_max_pool,
        "wpk.avg_pool": lower_avg_pool,
        "wpk.global_avg_pool": lower_global_avg_pool,
        "wpk.softmax": lower_softmax,
        "wpk.reduce_mean": lower_reduce_mean,
        "wpk.reshape": lower_reshape,
        "wpk.flatten": lower_flatten,
        "wpk.transpose": lower_transpose,
        "wpk.concat": lower_concat,
        "wpk.pad": lower_pad,
        "wpk.elementwise": lower_elementwise,
        "wpk.fused_conv2d": lower_fused_conv2d,
        "wpk.fused_matmul": lower_fused_matmul,
        "wpk.fused_gemm": lower_fused_gemm,
    }
)
"""`wpk` op name -> function building its replacement at the current insertion point."""

PASS_NAME = "wpk-lower-to-linalg"


def _functions(op: ir.Operation) -> list[ir.Operation]:
    """Every func.func at or below `op`."""
    if op.name == "func.func":
        return [op]
    found: list[ir.Operation] = []
    for region in op.regions:
        for block in region.blocks:
            for child in block.operations:
                found.extend(_functions(child.operation))
    return found


def _wpk_ops(op: ir.Operation) -> list[ir.Operation]:
    """Every `wpk.*` op nested in `op`, in program order."""
    found: list[ir.Operation] = []
    for region in op.regions:
        for block in region.blocks:
            for child in block.operations:
                child = child.operation
                if child.name.startswith("wpk."):
                    found.append(child)
                found.extend(_wpk_ops(child))
    return found


def _fail(op: ir.Operation, reason: str) -> CompilationError:
    return CompilationError(f"cannot lower '{op.name}' at {op.location}: {reason}")


def lower_op(op: ir.Operation) -> None:
    """Replaces one `wpk` op by its lowering and erases it."""
    lowering = LOWERINGS.get(op.name)
    if lowering is None:
        raise _fail(op, f"no lowering for this op (lowered ops: {', '.join(sorted(LOWERINGS))})")
    if len(op.results) != 1:
        raise _fail(op, f"expected one result, got {len(op.results)}")
    try:
        with op.location, ir.InsertionPoint(op):
            value = lowering(op)
    except LoweringError as err:
        raise _fail(op, str(err)) from err
    except (ValueError, TypeError, IndexError, KeyError, ir.MLIRError) as err:
        raise _fail(op, f"building the replacement failed: {err}") from err
    if value.type != op.results[0].type:
        raise _fail(op, f"lowering produced {value.type}, expected {op.results[0].type}")
    op.results[0].replace_all_uses_with(value)
    op.erase()


def lower_to_linalg(op: ir.Operation, pass_: ExternalPass | None = None) -> None:
    """Lowers every `wpk` op in the func.func ops at or below `op` (a Python pass callable)."""
    op = op.operation
    try:
        for func in _functions(op):
            for wpk_op in _wpk_ops(func):
                lower_op(wpk_op)
    except CompilationError:
        if pass_ is not None:
            pass_.signal_pass_failure()
        raise


__all__ = ["LOWERINGS", "PASS_NAME", "CompilationError", "lower_op", "lower_to_linalg"]
