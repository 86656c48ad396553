"""Kernels of a lowered module: which linalg ops are scheduled together, and their loops.

After fusion at the graph level, a kernel on the CPU is:

* a *main* op: a contraction (matmul, batch matmul), a convolution, a pooling, a reduction,
  or an elementwise op (the generic form of every linalg op is used);
* the `linalg.fill` that initializes the main op's accumulator, if any;
* an *epilogue*: the single elementwise consumer of the main op's result over the same
  iteration space (bias, residual add, activation), which then is the kernel's *root*.

`find_kernels` generalizes the named ops of `@main`, groups them into these scheduling units
and tags each op (`wpk.kernel = <unit>`, `wpk.role = "main" | "fill" | "root"`) so a transform
script can match them. A unit's kind picks its schedule template.

A *model kernel* is what users see and configure: the units lowered from one `wpk` op of the
optimized graph (the lowering tags each op with `wpk.group`, the position of that op), e.g. a
convolution's padding copies and the convolution with its epilogue. Its name `k<i>_<kind>` is
its identity from cutting to code generation: `find_kernels` writes it on every op of the
kernel (`wpk.model_kernel`) and reads it back from there when the module is cut again (after
library calls replaced some kernels), so a kernel is never found again by its position. The
kernel's configuration is that of its *main* unit (the first unit of the kernel's kind); its
other units keep their default schedules. A unit's epilogue may come from another `wpk` op
(at opt levels below 2, where the graph is not fused): that op then belongs to the kernel.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from mlir import ir
from mlir.passmanager import PassManager

from woodpecker.errors import CompilationError
from woodpecker.kernels.naming import GROUP_ATTR, MODEL_KERNEL_ATTR, assign_names, kernel_kind
from woodpecker.lowering.common import extract_slice, fill, generic, identity_map, insert_slice
from woodpecker.lowering.layout import BLOCKED_CONV, NAMED_OP_ATTR
from woodpecker.schedule.blocked_kinds import blocked_conv_kind

KERNEL_ATTR = "wpk.kernel"
ROLE_ATTR = "wpk.role"
# The named op a linalg.generic was generalized from: a kernel cut out of a model for tuning
# (woodpecker.schedule.tasks) is then found again with the same kind and template.
# (defined with the lowering, which tags the generic of a blocked convolution with it)
SCHED_PREFIX = "wpk.sched."  # marks a schedule leaves on loops between its phases

KINDS = (
    "matmul",
    "conv",
    "depthwise_conv",
    "blocked_conv",
    "blocked_depthwise_conv",
    "pool",
    "reduction",
    "elementwise",
)

_KIND_BY_NAMED_OP = {
    "linalg.matmul": "matmul",
    "linalg.batch_matmul": "matmul",
    "linalg.matmul_transpose_b": "matmul",
    "linalg.conv_2d_nchw_fchw": "conv",
    "linalg.depthwise_conv_2d_nchw_chw": "depthwise_conv",
    "linalg.pooling_nchw_max": "pool",
    "linalg.pooling_nchw_sum": "pool",
    # The linalg.generic of a blocked convolution is tagged with its wpk op (lowering/layout.py).
    BLOCKED_CONV: "blocked_conv",
}


@dataclass(frozen=True)
class Loops:
    """The loop nest of one linalg.generic: extents, parallel flags and indexing maps."""

    extents: tuple[int, ...]
    parallel: tuple[bool, ...]
    maps: tuple[ir.AffineMap, ...]

    @property
    def iterations(self) -> int:
        return math.prod(self.extents)


def loops_of(op: ir.Operation) -> Loops | None:
    """Loop structure of a linalg.generic, or None when an extent is not static."""
    maps = tuple(ir.AffineMapAttr(a).value for a in ir.ArrayAttr(op.attributes["indexing_maps"]))
    parallel = tuple("parallel" in str(a) for a in ir.ArrayAttr(op.attributes["iterator_types"]))
    extents: list[int | None] = [None] * len(parallel)
    for operand, amap in zip(op.operands, maps, strict=True):
        if not isinstance(operand.type, ir.ShapedType):
            continue
        shape = ir.ShapedType(operand.type).shape
        for pos, expr in enumerate(amap.results):
            if isinstance(expr, ir.AffineDimExpr) and extents[expr.position] is None:
                extents[expr.position] = shape[pos]
    if any(e is None or e < 0 for e in extents):
        return None
    return Loops(tuple(int(e) for e in extents), parallel, maps)


def is_projected_permutation(amap: ir.AffineMap) -> bool:
    seen: set[int] = set()
    for expr in amap.results:
        if isinstance(expr, ir.AffineDimExpr):
            if expr.position in seen:
                return False
            seen.add(expr.position)
        elif not (isinstance(expr, ir.AffineConstantExpr) and ir.AffineConstantExpr(expr).value == 0):
            return False
    return True


@dataclass
class Kernel:
    """One scheduled unit: main op, optional fill and epilogue (root), and its loop nest."""

    index: int  # unique among the units of the module (the `wpk.kernel` tag scripts match)
    kind: str
    named_op: str  # the main op's name before generalization
    main: ir.Operation
    loops: Loops
    fill: ir.Operation | None = None
    epilogue: ir.Operation | None = None
    model_kernel: str = ""  # the name of the model kernel the unit belongs to
    is_main: bool = True  # the unit whose configuration is the model kernel's
    position: int = 0  # among the units of its model kernel

    @property
    def name(self) -> str:
        """The model kernel's name for its main unit, `<kernel>.<position>` for the others."""
        base = self.model_kernel or f"k{self.index}_{self.kind}"
        return base if self.is_main else f"{base}.{self.position}"

    @property
    def root(self) -> ir.Operation:
        return self.epilogue if self.epilogue is not None else self.main

    @property
    def ops(self) -> list[ir.Operation]:
        return [op for op in (self.fill, self.main, self.epilogue) if op is not None]

    def __post_init__(self) -> None:
        # Read once: the ops are rewritten (packed, tiled, vectorized) while kernels are scheduled.
        self.output_shape: tuple[int, ...] = tuple(ir.RankedTensorType(self.root.results[0].type).shape)


@dataclass
class ModelKernel:
    """The units of one model kernel, in program order; `main` carries its configuration."""

    name: str  # "k3_conv"
    kind: str
    units: list[Kernel]

    @property
    def main(self) -> Kernel:
        return next(unit for unit in self.units if unit.is_main)

    @property
    def output(self) -> ir.Operation:
        """The op computing the kernel's result (the root of its last unit)."""
        return self.units[-1].root


def owner_of(value: ir.Value) -> ir.Operation | None:
    """The operation that defines `value`, or None for a block argument."""
    owner = value.owner
    if isinstance(owner, ir.Block):
        return None
    return owner.operation if isinstance(owner, ir.OpView) else owner


_owner = owner_of

# Ops of @main on tensors that have no effect but their results.
_PURE_PREFIXES = ("linalg.", "tensor.", "arith.")


def erase_unused(block: ir.Block) -> None:
    """Erases the linalg, tensor and arith ops of `block` whose results are unused (walking
    backwards, so chains go at once)."""
    changed = True
    while changed:
        changed = False
        for op in reversed(list(block.operations)):
            op = op.operation
            if op.name.startswith(_PURE_PREFIXES) and all(not list(r.uses) for r in op.results):
                op.erase()
                changed = True


def _kind_of_generic(loops: Loops) -> str:
    blocked = blocked_conv_kind(loops.maps, loops.parallel)  # NCHW[x]c convolutions (lowering/blocked_conv.py)
    if blocked is not None:
        return blocked
    return "elementwise" if all(loops.parallel) else "reduction"


def _single_use(value: ir.Value) -> bool:
    return len(list(value.uses)) == 1


def _epilogue_of(main: ir.Operation, main_loops: Loops, claimed: OpSet) -> ir.Operation | None:
    """The elementwise consumer that can be computed tile by tile with `main`'s output."""
    result = main.results[0]
    if not _single_use(result):
        return None
    use = next(iter(result.uses))
    consumer = use.owner.operation if isinstance(use.owner, ir.OpView) else use.owner
    if consumer.name != "linalg.generic" or consumer in claimed:
        return None
    loops = loops_of(consumer)
    if loops is None or not all(loops.parallel) or len(consumer.results) != 1:
        return None
    n_inputs = len(consumer.operands) - len(consumer.results)
    if use.operand_number >= n_inputs:
        return None
    out_shape = tuple(ir.RankedTensorType(consumer.results[0].type).shape)
    if out_shape != tuple(ir.RankedTensorType(result.type).shape):
        return None
    rank = len(out_shape)
    identity = ir.AffineMap.get_identity(rank)
    if loops.maps[use.operand_number] != identity or loops.maps[-1] != identity:
        return None
    if not all(is_projected_permutation(m) for m in loops.maps):
        return None
    return consumer


class OpSet:
    """A set of operations compared by identity (binding wrappers may differ per access)."""

    def __init__(self) -> None:
        self._ops: list[ir.Operation] = []

    def __contains__(self, op: ir.Operation) -> bool:
        return any(op == other for other in self._ops)

    def add(self, op: ir.Operation) -> None:
        if op not in self:
            self._ops.append(op)


def _named_ops(block: ir.Block) -> list[str]:
    names = []
    for op in block.operations:
        op = op.operation
        if op.name.startswith("linalg."):
            named = op.attributes.get(NAMED_OP_ATTR, None)
            names.append(ir.StringAttr(named).value if named is not None else op.name)
    return names


def _separate_accumulator(fill: ir.Operation, epilogue: ir.Operation) -> None:
    """Gives the accumulator its own `tensor.empty` when CSE merged it with the epilogue's output:
    sharing one makes bufferization copy the accumulator tile before the epilogue overwrites it
    (measured: 0.75x on a fused conv on 2 cores)."""
    init = fill.operands[len(fill.operands) - 1]
    owner = _owner(init)
    if owner is None or owner.name != "tensor.empty":
        return
    if init != epilogue.operands[len(epilogue.operands) - 1]:
        return
    with ir.InsertionPoint(fill), fill.location:
        fresh = owner.clone()
    fill.operands[len(fill.operands) - 1] = fresh.results[0]


def _private_fill(fill: ir.Operation, user: ir.Operation) -> ir.Operation:
    """A copy of a shared accumulator fill (CSE merges identical ones) for `user` alone, so the
    fill is computed in `user`'s tiles instead of being a kernel whose result is copied."""
    with ir.InsertionPoint(user), user.location:
        init = _owner(fill.operands[len(fill.operands) - 1])
        fresh = init.clone() if init is not None and init.name == "tensor.empty" else None
        clone = fill.clone()
        if fresh is not None:
            clone.operands[len(clone.operands) - 1] = fresh.results[0]
    user.operands[len(user.operands) - 1] = clone.results[0]
    return clone


def _pad_constant(pad: ir.Operation) -> float | None:
    """The value a `tensor.pad` fills with, when it is a constant."""
    yielded = pad.regions[0].blocks[0].operations[-1].operands[0]
    owner = _owner(yielded)
    if owner is None or owner.name != "arith.constant":
        return None
    return float(ir.FloatAttr(owner.attributes["value"]).value)


def materialize_pads(block: ir.Block) -> int:
    """Rewrites each constant `tensor.pad` as a fill of the padded tensor and an elementwise
    copy into its interior (kernels of their own, vectorized and split across cores), instead of
    the element-by-element `memref.copy` that bufferizing a pad produces."""
    count = 0
    for op in list(block.operations):
        op = op.operation
        if op.name != "tensor.pad":
            continue
        value = _pad_constant(op)
        low = list(ir.DenseI64ArrayAttr(op.attributes["static_low"]))
        if value is None or any(d < 0 for d in low):
            continue
        source = op.operands[0]
        shape = list(ir.RankedTensorType(source.type).shape)
        padded_shape = list(ir.RankedTensorType(op.results[0].type).shape)
        with ir.InsertionPoint(op), op.location:
            padded = fill(value, padded_shape)
            interior = extract_slice(padded, low, shape)
            rank = len(shape)
            copied = generic([source], [identity_map(rank), identity_map(rank)], interior, lambda args: args[0])
            result = insert_slice(copied, padded, low)
        group = op.attributes.get(GROUP_ATTR, None)
        if group is not None:  # the pad's copies belong to the pad's kernel
            for value in (padded, interior, copied, result):
                value.owner.attributes[GROUP_ATTR] = group
        op.results[0].replace_all_uses_with(result)
        op.erase()
        count += 1
    return count


def find_kernels(module: ir.Module) -> list[Kernel]:
    """Generalizes @main's linalg ops, groups them into units and model kernels, and tags them
    (`wpk.kernel`, `wpk.role`; `wpk.model_kernel` on every op of a model kernel)."""
    from woodpecker.graph.outline_weights import main_func  # backend imports schedule

    block = main_func(module).regions[0].blocks[0]
    with ir.Location.unknown(module.context):
        materialize_pads(block)
    names = _named_ops(block)
    before = [op.operation for op in block.operations if op.operation.name.startswith("linalg.")]
    identity = [(_int_attr(op, GROUP_ATTR), _str_attr(op, MODEL_KERNEL_ATTR)) for op in before]
    try:
        PassManager.parse("builtin.module(func.func(linalg-generalize-named-ops))", context=module.context).run(
            module.operation
        )
    except ir.MLIRError as err:
        raise CompilationError(f"generalizing linalg ops failed: {err}") from None
    ops = [op.operation for op in block.operations if op.operation.name.startswith("linalg.")]
    if len(ops) != len(names):
        raise CompilationError("linalg op count changed during generalization")
    for op, name, (group, model_kernel) in zip(ops, names, identity, strict=True):
        if name != "linalg.generic":
            op.attributes[NAMED_OP_ATTR] = ir.StringAttr.get(name)
        if group is not None:  # generalization keeps no discardable attributes
            op.attributes[GROUP_ATTR] = _i64(group)
        if model_kernel is not None:
            op.attributes[MODEL_KERNEL_ATTR] = ir.StringAttr.get(model_kernel)
    claimed = OpSet()
    found: list[tuple[int, Kernel]] = []
    loops_by_position = []
    for op, name in zip(ops, names, strict=True):
        loops = loops_of(op) if op.name == "linalg.generic" else None
        if op.name == "linalg.generic" and loops is None:
            raise CompilationError(f"'{name}' at {op.location} has dynamic loop extents")
        loops_by_position.append(loops)
    is_fill = {i for i, name in enumerate(names) if name == "linalg.fill"}
    # Pass 1: contractions, convolutions, pooling, reductions claim their fill and epilogue;
    # pass 2: every op left is an elementwise kernel of its own.
    for elementwise_pass in (False, True):
        for position, (op, name) in enumerate(zip(ops, names, strict=True)):
            loops = loops_by_position[position]
            if op in claimed or loops is None or len(op.results) != 1:
                continue
            if elementwise_pass and not list(op.results[0].uses):
                op.erase()  # a fill every user now has a private copy of
                continue
            kind = _KIND_BY_NAMED_OP.get(name) or _kind_of_generic(loops)
            if name == BLOCKED_CONV:  # the depthwise form of lowering/blocked_conv.py has a kind of its own
                kind = blocked_conv_kind(loops.maps, loops.parallel) or kind
            if (kind == "elementwise") != elementwise_pass:
                continue
            fill = None
            epilogue = None
            if kind != "elementwise":
                producer = _owner(op.operands[len(op.operands) - 1])
                index = None if producer is None else next((i for i, o in enumerate(ops) if o == producer), None)
                if index in is_fill and not _single_use(producer.results[0]):
                    producer = _private_fill(producer, op)
                if index in is_fill and producer not in claimed:
                    fill = producer
                epilogue = _epilogue_of(op, loops, claimed)
            if fill is not None and epilogue is not None:
                _separate_accumulator(fill, epilogue)
            found.append((position, Kernel(0, kind, name, op, loops, fill, epilogue)))
            for member in (op, fill, epilogue):
                if member is not None:
                    claimed.add(member)
    kernels = [kernel for _, kernel in sorted(found, key=lambda item: item[0])]
    for index, kernel in enumerate(kernels):
        kernel.index = index
    _group(kernels)
    _tag(kernels)
    _tag_kernel_ops(block, kernels)
    return kernels


def model_kernels(units: list[Kernel]) -> list[ModelKernel]:
    """The model kernels of `units` (what `find_kernels` returned), in program order."""
    grouped: dict[str, list[Kernel]] = {}
    for unit in units:
        grouped.setdefault(unit.model_kernel, []).append(unit)
    return [ModelKernel(name, kernel_kind(u.kind for u in members), members) for name, members in grouped.items()]


def _int_attr(op: ir.Operation, name: str) -> int | None:
    return ir.IntegerAttr(op.attributes[name]).value if name in op.attributes else None


def _str_attr(op: ir.Operation, name: str) -> str | None:
    return ir.StringAttr(op.attributes[name]).value if name in op.attributes else None


def _i64(value: int) -> ir.IntegerAttr:
    return ir.IntegerAttr.get(ir.IntegerType.get_signless(64), value)


def _op_group(op: ir.Operation | None) -> int | str | None:
    """An op's group: its model kernel's name when the module was cut before, else the
    position of the `wpk` op it was lowered from; None for an op a rewrite created."""
    if op is None:
        return None
    name = _str_attr(op, MODEL_KERNEL_ATTR)
    return name if name is not None else _int_attr(op, GROUP_ATTR)


def _group(units: list[Kernel]) -> None:
    """Sets each unit's model kernel. Units of one group are one kernel; a unit whose epilogue
    or fill came from another group joins those groups; a unit of no group (ops a rewrite
    created) joins the group of the unit reading its result. Kernels cut before keep their
    names; the others are numbered in program order after the names already taken."""
    parent: dict[object, object] = {}

    def find(key: object) -> object:
        parent.setdefault(key, key)
        while parent[key] != key:
            key = parent[key]
        return key

    def union(a: object, b: object) -> None:
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[rb] = ra

    keys: list[object] = []
    for unit in units:
        groups = [g for g in (_op_group(op) for op in (unit.main, unit.epilogue, unit.fill)) if g is not None]
        key: object = groups[0] if groups else ("unit", unit.index)
        keys.append(key)
        find(key)
        for other in groups[1:]:
            union(key, other)
    position_of = {id(unit): position for position, unit in enumerate(units)}
    tagged = any(not isinstance(key, tuple) for key in keys)  # else (IR written by hand): a unit is a kernel
    for position, unit in enumerate(units):
        if tagged and isinstance(keys[position], tuple):
            reader = _reading_unit(unit, units)
            if reader is not None and reader is not unit:
                union(keys[position_of[id(reader)]], keys[position])
    grouped: dict[object, list[Kernel]] = {}
    for position, unit in enumerate(units):
        grouped.setdefault(find(keys[position]), []).append(unit)
    cut_names: dict[object, str] = {}  # a group's name from an earlier cut
    for key in sorted((k for k in parent if isinstance(k, str)), reverse=True):
        cut_names[find(key)] = key
    kinds = {root: kernel_kind(unit.kind for unit in group) for root, group in grouped.items()}
    names = assign_names([(cut_names.get(root), kinds[root]) for root in grouped])
    for (root, group), name in zip(grouped.items(), names, strict=True):
        main = next(unit for unit in group if unit.kind == kinds[root])
        for position, unit in enumerate(group):
            unit.model_kernel = name
            unit.is_main = unit is main
            unit.position = position


def _reading_unit(unit: Kernel, units: list[Kernel]) -> Kernel | None:
    """The unit whose ops read `unit`'s result (through tensor views and slices; a bounded walk:
    a result that only reaches other units through a long chain of tensor ops has none)."""
    pending = [unit.root.results[0]]
    seen = 0
    while pending and seen < 64:
        value = pending.pop()
        seen += 1
        for use in value.uses:
            owner = use.owner.operation if isinstance(use.owner, ir.OpView) else use.owner
            for other in units:
                if any(owner == op for op in other.ops):
                    return other
            if owner.name.startswith("tensor.") and len(owner.results) == 1:
                pending.append(owner.results[0])
    return None


def _tag_kernel_ops(block: ir.Block, units: list[Kernel]) -> None:
    """Tags every op of @main lowered from the same `wpk` op as a kernel's units (the slices of
    a materialized pad, reshapes, empty tensors) with the kernel's name: they are part of it."""
    names: dict[int, str] = {}
    for unit in units:
        for op in unit.ops:
            group = _int_attr(op, GROUP_ATTR)
            if group is not None:
                names.setdefault(group, unit.model_kernel)
    for op in block.operations:
        op = op.operation
        group = _int_attr(op, GROUP_ATTR)
        if group in names and MODEL_KERNEL_ATTR not in op.attributes:
            op.attributes[MODEL_KERNEL_ATTR] = ir.StringAttr.get(names[group])


def _tag(kernels: list[Kernel]) -> None:
    i64 = ir.IntegerType.get_signless(64)
    for kernel in kernels:
        for role, op in (("main", kernel.main), ("fill", kernel.fill), ("root", kernel.epilogue)):
            if op is None:
                continue
            op.attributes[KERNEL_ATTR] = ir.IntegerAttr.get(i64, kernel.index)
            op.attributes[ROLE_ATTR] = ir.StringAttr.get(role)
            op.attributes[MODEL_KERNEL_ATTR] = ir.StringAttr.get(kernel.model_kernel)


def untag(module: ir.Module) -> None:
    """Removes the kernel tags and schedule marks (`wpk.sched.*`) after scheduling."""

    def visit(op: ir.Operation) -> ir.WalkResult:
        names = [a if isinstance(a, str) else a.name for a in op.attributes]
        for attr in names:
            if attr in (KERNEL_ATTR, ROLE_ATTR, NAMED_OP_ATTR, MODEL_KERNEL_ATTR, GROUP_ATTR) or attr.startswith(
                SCHED_PREFIX
            ):
                del op.attributes[attr]
        return ir.WalkResult.ADVANCE

    module.operation.walk(visit)
