"""`wpk` -> upstream MLIR on tensors (linalg, tensor, arith, math).

`lower_to_linalg` is a Python pass: it replaces every `wpk.*` op inside the
`func.func` ops under the given operation by upstream ops producing the same
result type. Use it directly or as
`PassManager.add(lower_to_linalg, name="wpk-lower-to-linalg")`.

Each lowering module registers its lowerings by op class (`@lowers(wpk.Conv2DOp)`,
lowering/registry.py); every elementwise op lowers through its step's scalar builder
(lowering/elementwise.py).
"""

from __future__ import annotations

from mlir import ir
from mlir.passmanager import ExternalPass

from woodpecker.errors import CompilationError
from woodpecker.kernels.naming import GROUP_ATTR

# The lowering modules register their lowerings (`@lowers(wpk.XOp)`) when imported.
from woodpecker.lowering import (  # noqa: F401
    attention,
    blocked_conv,
    constants,
    conv,
    conv_transpose,
    elementwise,
    fused,
    index,
    layout,
    matmul,
    movement,
    normalization,
    pointwise,
    pooling,
    reduction,
    resize,
    shape,
    typed,
)
from woodpecker.lowering.common import LoweringError, storage_type
from woodpecker.lowering.registry import LOWERINGS, Lowering, lowering_of, lowers

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
    """The error for `op`; run as a pass, it is reported as a diagnostic at the op's location."""
    return CompilationError(
        f"cannot lower '{op.name}' at {op.location}: {reason}",
        location=op.location,
        reason=f"cannot lower '{op.name}': {reason}",
    )


def lower_op(op: ir.Operation, group: int | None = None) -> None:
    """Replaces one `wpk` op by its lowering and erases it; with `group`, every op of the
    replacement gets `wpk.group = group`."""
    lowering = lowering_of(op)
    if lowering is None:
        lowered = sorted(cls.OPERATION_NAME for cls in LOWERINGS)
        raise _fail(op, f"no lowering for this op (lowered ops: {', '.join(lowered)})")
    if len(op.results) != 1:
        raise _fail(op, f"expected one result, got {len(op.results)}")
    try:
        with op.location, ir.InsertionPoint(op):
            value = lowering(op)
    except LoweringError as err:
        raise _fail(op, str(err)) from err
    except (ValueError, TypeError, IndexError, KeyError, ir.MLIRError) as err:
        raise _fail(op, f"building the replacement failed: {err}") from err
    if value.type != storage_type(op.results[0].type):
        raise _fail(op, f"lowering produced {value.type}, expected {storage_type(op.results[0].type)}")
    if group is not None:
        _tag_replacement(value, op, group)
    op.results[0].replace_all_uses_with(value)
    op.erase()


def _tag_replacement(value: ir.Value, op: ir.Operation, group: int) -> None:
    """Tags the ops that compute `value` from `op`'s operands (those its lowering built, and
    the values their bodies capture from the function)."""
    attr = ir.IntegerAttr.get(ir.IntegerType.get_signless(64), group)
    inputs = list(op.operands)
    function = op.parent
    pending = [value]
    while pending:
        current = pending.pop()
        owner = current.owner
        if isinstance(owner, ir.Block) or any(current == known for known in inputs):
            continue
        producer = owner.operation if isinstance(owner, ir.OpView) else owner
        if producer.parent != function or GROUP_ATTR in producer.attributes or producer.name.startswith("wpk."):
            continue
        producer.attributes[GROUP_ATTR] = attr
        pending.extend(producer.operands)
        for region in producer.regions:
            for block in region.blocks:
                for nested in block.operations:
                    pending.extend(nested.operation.operands)


def _store_arguments(func: ir.Operation) -> None:
    """Bool (i1) tensor arguments become i8 tensors (`storage_type`) before the ops that read
    them are lowered."""
    for block in func.regions[0].blocks:
        for argument in block.arguments:
            argument.set_type(storage_type(argument.type))


def _update_function_type(func: ir.Operation) -> None:
    """The function type from the (stored) argument and returned types, after lowering."""
    blocks = list(func.regions[0].blocks)
    if not blocks:
        return
    results: list[ir.Type] = []
    for block in blocks:
        terminator = list(block.operations)[-1].operation if len(block.operations) else None
        if terminator is not None and terminator.name == "func.return":
            results = [v.type for v in terminator.operands]
    arguments = [a.type for a in blocks[0].arguments]
    func.attributes["function_type"] = ir.TypeAttr.get(ir.FunctionType.get(arguments, results))


def lower_to_linalg(op: ir.Operation, pass_: ExternalPass | None = None, *, kernel_groups: bool = False) -> None:
    """Lowers every `wpk` op in the func.func ops at or below `op` (a Python pass callable).

    `kernel_groups`: tag the ops of each op's replacement with its position (`wpk.group`)."""
    op = op.operation
    try:
        for func in _functions(op):
            _store_arguments(func)
            for position, wpk_op in enumerate(_wpk_ops(func)):
                lower_op(wpk_op, position if kernel_groups else None)
            _update_function_type(func)
    except CompilationError:
        if pass_ is not None:
            pass_.signal_pass_failure()
        raise


__all__ = [
    "LOWERINGS",
    "PASS_NAME",
    "CompilationError",
    "Lowering",
    "lower_op",
    "lower_to_linalg",
    "lowers",
]
