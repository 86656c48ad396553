"""Every graph output its own result: the one place where `@main`'s returned values are made distinct.

ONNX lets a graph return one tensor several times (an output listed twice, or two outputs
that are the same tensor through Identity or Dropout, which the importer maps to one value),
return a graph input or an initializer directly, or return a constant. After lowering such a
`func.return` returns one SSA value twice, a function argument, or a constant. The CPU's
bufferization (`buffer-results-to-out-params{hoist-static-allocs}`) then replaces one buffer
by two out-parameters and the generated code writes freed memory (a segfault); the CUDA plan
needs every output buffer to be written by exactly one kernel.

`distinct_results` makes each returned value one that no other result shares and that a
kernel computes: a value returned before (also through a reshape, which is a view of the same
buffer), a function argument or a constant (`arith.constant`, `tensor.empty`, a `linalg.fill`
of those, and views of those) is replaced by a copy into a fresh tensor (a returned constant
splat by a fresh fill). The copy (or fill) it adds carries `wpk.output_copy = <result position>`, so
that CSE never merges two of them again and the GPU partition does not rematerialize them.
`woodpecker.frontend.lower_model` calls it after the last canonicalization of the lowered
module, so every target cuts a `@main` whose results are distinct; the GPU partition calls it
again after its own canonicalization (it changes nothing on distinct results).
"""

from __future__ import annotations

from mlir import ir
from mlir.dialects import func, linalg, tensor

OUTPUT_COPY_ATTR = "wpk.output_copy"
VIEW_OPS = frozenset({"tensor.collapse_shape", "tensor.expand_shape", "tensor.reshape"})
CONSTANT_LEAVES = frozenset({"tensor.empty", "arith.constant"})


def producer(value: ir.Value) -> ir.Operation | None:
    """The op that defines `value`, None for a block argument."""
    owner = value.owner
    if isinstance(owner, ir.Block):
        return None
    return owner.operation if isinstance(owner, ir.OpView) else owner


def view_base(value: ir.Value) -> ir.Value:
    """`value` with the reshapes it is a view of looked through: the value that owns the buffer."""
    op = producer(value)
    while op is not None and op.name in VIEW_OPS:
        value = op.operands[0]
        op = producer(value)
    return value


def is_constant_op(op: ir.Operation) -> bool:
    """A constant that no kernel computes: a constant, an empty tensor, a fill or view of those."""
    if OUTPUT_COPY_ATTR in op.attributes:
        return False
    if op.name in CONSTANT_LEAVES:
        return True
    if op.name == "linalg.fill" or op.name in VIEW_OPS:
        return all(p is not None and is_constant_op(p) for p in map(producer, op.operands))
    return False


def _return_op(fn: ir.Operation) -> ir.Operation:
    ret = fn.regions[0].blocks[0].operations[len(fn.regions[0].blocks[0].operations) - 1].operation
    if ret.name != "func.return":
        raise ValueError(f"@{ir.StringAttr(fn.attributes['sym_name']).value} does not end with func.return")
    return ret


def needs_copy(value: ir.Value, earlier: set[ir.Value]) -> bool:
    """Whether a returned `value` must become a copy: see the module docstring."""
    base = view_base(value)
    op = producer(base)
    return op is None or is_constant_op(op) or base in earlier


def _tag(op: ir.Operation | ir.OpView, position: int) -> None:
    op = op.operation if isinstance(op, ir.OpView) else op
    op.attributes[OUTPUT_COPY_ATTR] = ir.IntegerAttr.get(ir.IntegerType.get_signless(64), position)


def _copy(value: ir.Value, position: int) -> ir.Value:
    """A copy of `value` into a fresh tensor (a constant splat: a fresh fill), at the insertion point."""
    shaped = ir.RankedTensorType(value.type)
    init = tensor.EmptyOp(list(shaped.shape), shaped.element_type)
    op = producer(value)
    if op is not None and op.name == "linalg.fill" and is_constant_op(op):
        result = linalg.fill(op.operands[0], outs=[init.result])
    else:
        result = linalg.copy(value, outs=[init.result])
    _tag(producer(result), position)
    return result


def distinct_results(fn: ir.Operation | func.FuncOp) -> int:
    """Makes every value `fn` returns distinct and computed by a kernel; returns how many
    results it replaced by a copy."""
    fn = fn.operation if isinstance(fn, ir.OpView) else fn
    ret = _return_op(fn)
    earlier: set[ir.Value] = set()
    copies = 0
    for position, value in enumerate(list(ret.operands)):
        copy = needs_copy(value, earlier)
        earlier.add(view_base(value))
        if not copy:
            continue
        with ret.location, ir.InsertionPoint(ret):
            ret.operands[position] = _copy(value, position)
        copies += 1
    return copies
