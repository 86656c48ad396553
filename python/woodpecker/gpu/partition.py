"""Cutting a prepared @main into kernels, and the buffer plan between them.

Every linalg op of @main belongs to exactly one kernel, except the *rematerialized* values
(`tensor.empty`, `arith.constant`, `linalg.fill` of those, and reshapes of those), which are
cloned into each kernel that uses them. A kernel is a *chain*: a root op plus the ops that
write the root's destination before it (a `linalg.fill`, the conv whose result an in-place
epilogue updates, ...): an op joins its consumer's kernel when its result is only used as
that consumer's init. Reshapes (`tensor.collapse_shape`/`expand_shape`) are views: they alias
their source buffer.

The chains are the GPU *launches*; a *model kernel* is the launches of one `wpk` op of the
optimized graph (the lowering tags its ops with `wpk.group`; a kernel cut before keeps its
name, `wpk.model_kernel`): a convolution's padding gather and the convolution, the reductions
and elementwise steps of a softmax. It is named `k<i>_<kind>` as on the CPU (its identity in
configs, records, reports and the plan); its *main* launch (the first of the kernel's kind)
has the kernel's name, the others `<kernel>_<j>`.

Each launch becomes a `func.func @<name>(%inputs..., %out) -> tensor` in a device module,
whose linalg ops carry `wpk.gpu.op = <position>` and the root `wpk.gpu.root`, the main op
`wpk.gpu.main`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

from mlir import ir
from mlir.dialects import func
from mlir.passmanager import PassManager

from woodpecker.errors import CompilationError
from woodpecker.gpu.config import KernelProblem, OperandAccess
from woodpecker.gpu.prepare import GATHER_TAG, clone_module, clone_with_mapping
from woodpecker.gpu.program import BufferRef
from woodpecker.graph.outline_weights import main_func
from woodpecker.kernels.naming import GROUP_ATTR, MODEL_KERNEL_ATTR, assign_names, kernel_kind
from woodpecker.lowering.outputs import VIEW_OPS, distinct_results, is_constant_op, producer

OP_TAG = "wpk.gpu.op"
ROOT_TAG = "wpk.gpu.root"
MAIN_TAG = "wpk.gpu.main"

_KIND_BY_NAME = {
    "linalg.matmul": "matmul",
    "linalg.matmul_transpose_a": "matmul",
    "linalg.matmul_transpose_b": "matmul",
    "linalg.batch_matmul": "batch_matmul",
    "linalg.fill": "fill",
    "linalg.transpose": "elementwise",
    "linalg.copy": "elementwise",
    "linalg.broadcast": "elementwise",
    "linalg.map": "elementwise",
    "linalg.reduce": "reduction",
}


def kind_of(op: ir.Operation, generic_form: ir.Operation) -> str:
    name = op.name
    if name in _KIND_BY_NAME:
        return _KIND_BY_NAME[name]
    if name.startswith("linalg.depthwise_conv"):
        return "depthwise_conv"
    if name.startswith("linalg.conv"):
        return "conv"
    if name.startswith("linalg.pooling"):
        return "pool"
    if name == "linalg.generic":
        if GATHER_TAG in op.attributes:
            return "gather"
        kinds = [str(a) for a in ir.ArrayAttr(generic_form.attributes["iterator_types"])]
        return "reduction" if any("reduction" in k for k in kinds) else "elementwise"
    raise CompilationError(f"'{name}' at {op.location} has no GPU kernel kind")


@dataclass(frozen=True)
class BufferArg:
    buffer: BufferRef
    shape: tuple[int, ...]


@dataclass
class KernelPlan:
    """One launch before scheduling: its ops, problem and buffers (function argument order)."""

    index: int
    name: str  # the launch's function: the model kernel's name for its main launch
    kind: str
    problem: KernelProblem
    inputs: list[BufferArg]
    output: BufferArg
    ops: list[str]
    op_loops: dict[int, tuple[int, tuple[int, ...]]]  # op position -> (loop count, output loops)
    root_position: int
    main_position: int
    model_kernel: str = ""  # the model kernel it is a launch of ("k3_conv")
    is_main: bool = True  # the launch the model kernel's configuration is for


@dataclass
class Partition:
    """The device module of kernel functions (tensors), their plans and the buffer plan."""

    device: ir.Module
    kernels: list[KernelPlan]
    inputs: list[tuple[int, ...]]
    weights: list[tuple[int, ...]]
    outputs: list[tuple[int, ...]]
    intermediates: list[tuple[int, tuple[int, ...]]] = field(default_factory=list)

    def model_kernels(self) -> dict[str, list[KernelPlan]]:
        """Model kernel name -> its launches, in launch order."""
        found: dict[str, list[KernelPlan]] = {}
        for plan in self.kernels:
            found.setdefault(plan.model_kernel, []).append(plan)
        return found


# -- op classification -------------------------------------------------------------------------


def _op(value_owner: ir.Operation | ir.OpView) -> ir.Operation:
    return value_owner.operation if isinstance(value_owner, ir.OpView) else value_owner


def _is_compute(op: ir.Operation) -> bool:
    return op.name.startswith("linalg.")


def _init_index(op: ir.Operation) -> int:
    """Operand index of the (single) DPS init of a linalg op."""
    if len(op.results) != 1:
        raise CompilationError(f"'{op.name}' at {op.location} has {len(op.results)} results; kernels need one")
    return len(op.operands) - 1


def _shape(value: ir.Value) -> tuple[int, ...]:
    return tuple(ir.RankedTensorType(value.type).shape)


def _nested_operands(op: ir.Operation) -> list[ir.Value]:
    values: list[ir.Value] = []

    def visit(nested: ir.Operation) -> ir.WalkResult:
        values.extend(nested.operands)
        return ir.WalkResult.ADVANCE

    op.walk(visit, ir.WalkOrder.PRE_ORDER)
    return values


# -- loop structure (from the generalized form) -----------------------------------------------


def _terms(expr: ir.AffineExpr) -> list[tuple[int, int]] | None:
    """expr as sum of coefficient * loop, if it is such a (non-negative) affine form."""
    if isinstance(expr, ir.AffineDimExpr):
        return [(ir.AffineDimExpr(expr).position, 1)]
    if isinstance(expr, ir.AffineConstantExpr):
        return []
    if isinstance(expr, ir.AffineAddExpr):
        add = ir.AffineAddExpr(expr)
        lhs, rhs = _terms(add.lhs), _terms(add.rhs)
        return None if lhs is None or rhs is None else lhs + rhs
    if isinstance(expr, ir.AffineMulExpr):
        mul = ir.AffineMulExpr(expr)
        for dim, const in ((mul.lhs, mul.rhs), (mul.rhs, mul.lhs)):
            if isinstance(const, ir.AffineConstantExpr):
                inner = _terms(dim)
                c = ir.AffineConstantExpr(const).value
                if inner is not None and c >= 0:
                    return [(loop, coef * c) for loop, coef in inner]
    return None


@dataclass
class _Loops:
    extents: list[int]
    reduction: list[int]
    maps: list[ir.AffineMap]
    output_loops: list[int]


def _loops(generic: ir.Operation) -> _Loops:
    maps = [ir.AffineMapAttr(a).value for a in ir.ArrayAttr(generic.attributes["indexing_maps"])]
    kinds = [str(a) for a in ir.ArrayAttr(generic.attributes["iterator_types"])]
    extents: list[int | None] = [None] * len(kinds)
    for operand, amap in zip(generic.operands, maps, strict=True):
        if not isinstance(operand.type, ir.ShapedType):
            continue
        shape = ir.ShapedType(operand.type).shape
        for pos, expr in enumerate(amap.results):
            if isinstance(expr, ir.AffineDimExpr) and extents[ir.AffineDimExpr(expr).position] is None:
                extents[ir.AffineDimExpr(expr).position] = shape[pos]
    if any(e is None or e < 0 for e in extents):
        raise CompilationError(f"'{generic.name}' at {generic.location} has loops of unknown extent")
    out_map = maps[-1]
    output_loops = []
    for expr in out_map.results:
        if not isinstance(expr, ir.AffineDimExpr):
            raise CompilationError(f"'{generic.name}' at {generic.location} writes its output at {out_map}")
        output_loops.append(ir.AffineDimExpr(expr).position)
    reduction = [i for i, k in enumerate(kinds) if "reduction" in k]
    return _Loops([int(e) for e in extents], reduction, maps, output_loops)


def _problem(kind: str, main_generic: ir.Operation, output_shape: tuple[int, ...]) -> KernelProblem:
    loops = _loops(main_generic)
    n_in = len(main_generic.operands) - 1
    body = main_generic.regions[0].blocks[0]
    operands = []
    for i in range(n_in):
        value = main_generic.operands[i]
        if not isinstance(value.type, ir.RankedTensorType):
            continue
        shape = _shape(value)
        terms = [_terms(e) for e in loops.maps[i].results]
        read = bool(list(body.arguments[i].uses))
        if any(t is None for t in terms):
            terms = [[] for _ in shape]  # unknown: promotion is refused below
            read = False
        operands.append(OperandAccess(shape, tuple(tuple(t) for t in terms), read, i))
    return KernelProblem(
        kind=kind,
        output_shape=output_shape,
        loop_extents=tuple(loops.extents),
        output_loops=tuple(loops.output_loops),
        reduction_loops=tuple(loops.reduction),
        operands=tuple(operands),
    )


# -- partition ---------------------------------------------------------------------------------


def _top_level_ops(fn: ir.Operation) -> list[ir.Operation]:
    return [op.operation for op in fn.regions[0].blocks[0].operations]


def _generalized(module: ir.Module) -> tuple[ir.Module, dict[int, ir.Operation]]:
    """Generalized copies of the top-level linalg ops of @main, by `_key` of the original
    (and the copy that owns them: keep it alive while they are used).

    Generalization replaces each linalg op by one linalg.generic in place, so the linalg ops
    of the copy match the originals in order (constants may move: they are skipped)."""
    originals = [op for op in _top_level_ops(main_func(module)) if op.name.startswith("linalg.")]
    copy = clone_module(module)
    PassManager.parse("builtin.module(func.func(linalg-generalize-named-ops))", context=module.context).run(
        copy.operation
    )
    generics = [op for op in _top_level_ops(main_func(copy)) if op.name.startswith("linalg.")]
    if len(generics) != len(originals) or any(g.name != "linalg.generic" for g in generics):
        raise CompilationError("generalizing the linalg ops of @main did not give one linalg.generic per op")
    return copy, {_key(op): g for op, g in zip(originals, generics, strict=True)}


def _num_inputs(fn: ir.Operation, n_args: int, num_inputs: int | None) -> int:
    if num_inputs is not None:
        return num_inputs
    if "wpk.input_names" in fn.attributes:
        return len(ir.ArrayAttr(fn.attributes["wpk.input_names"]))
    return n_args


def partition(module: ir.Module, num_inputs: int | None = None) -> Partition:
    """Splits the prepared `module` into kernels (see the module docstring)."""
    fn = main_func(module)
    ops = _top_level_ops(fn)
    block = fn.regions[0].blocks[0]
    n_args = len(block.arguments)
    n_inputs = _num_inputs(fn, n_args, num_inputs)
    ret = ops[-1]
    if ret.name != "func.return":
        raise CompilationError("@main does not end with func.return")

    distinct_results(fn)  # lower_model made them distinct; the canonicalizations since may not have kept it
    PassManager.parse("builtin.module(canonicalize)", context=module.context).run(module.operation)
    ops = _top_level_ops(fn)
    _owner, generic_of = _generalized(module)

    # Group compute ops into chains, consumers first.
    group_of: dict[int, int] = {}
    groups: list[list[ir.Operation]] = []
    for op in reversed(ops):
        if op.name == "func.return" or is_constant_op(op) or op.name in VIEW_OPS:
            continue
        if not _is_compute(op):
            raise CompilationError(f"'{op.name}' at {op.location} is not supported by the GPU backend yet")
        uses = list(op.results[0].uses) if len(op.results) == 1 else []
        consumer = _op(uses[0].owner) if len(uses) == 1 else None
        if (
            consumer is not None
            and _key(consumer) in group_of
            and _is_compute(consumer)
            and uses[0].operand_number == _init_index(consumer)
        ):
            gid = group_of[_key(consumer)]
            groups[gid].insert(0, op)
        else:
            gid = len(groups)
            groups.append([op])
        group_of[_key(op)] = gid
    groups.reverse()  # program order of roots

    # Buffers.
    def base(value: ir.Value) -> ir.Value:
        p = producer(value)
        while p is not None and p.name in VIEW_OPS:
            value = p.operands[0]
            p = producer(value)
        return value

    buffers: dict[ir.Value, BufferRef] = {}
    for i, arg in enumerate(block.arguments):
        buffers[arg] = BufferRef("input", i) if i < n_inputs else BufferRef("weight", i - n_inputs)
    outputs = []
    for k, value in enumerate(ret.operands):
        buffers[base(value)] = BufferRef("output", k)
        outputs.append(_shape(base(value)))
    intermediates: list[tuple[int, tuple[int, ...]]] = []
    for chain in groups:
        result = chain[-1].results[0]
        if result not in buffers:
            buffers[result] = BufferRef("intermediate", len(intermediates))
            intermediates.append((len(intermediates), _shape(result)))

    device = ir.Module.create(loc=ir.Location.unknown(module.context))
    plans = []
    names = _launch_names(groups, generic_of)
    for index, chain in enumerate(groups):
        name, model_kernel, is_main = names[index]
        plan = _extract(device, index, chain, generic_of, base, buffers, block, name)
        plan.model_kernel, plan.is_main = model_kernel, is_main
        plans.append(plan)
    return Partition(
        device=device,
        kernels=plans,
        inputs=[_shape(a) for a in list(block.arguments)[:n_inputs]],
        weights=[_shape(a) for a in list(block.arguments)[n_inputs:]],
        outputs=outputs,
        intermediates=intermediates,
    )


def _key(op: ir.Operation) -> int:
    return hash(op)


def _chain_group(chain: list[ir.Operation]) -> int | str | None:
    """The model kernel a chain belongs to: the name a cut gave its ops, else the `wpk` op
    (`wpk.group`) of its root, else of another op of it; None for untagged IR."""
    for attr in (MODEL_KERNEL_ATTR, GROUP_ATTR):
        for op in reversed(chain):
            if attr in op.attributes:
                value = op.attributes[attr]
                return ir.StringAttr(value).value if attr == MODEL_KERNEL_ATTR else ir.IntegerAttr(value).value
    return None


def _launch_names(
    chains: list[list[ir.Operation]], generic_of: Mapping[int, ir.Operation]
) -> list[tuple[str, str, bool]]:
    """Per chain: (launch name, model kernel name, whether it is the kernel's main launch).
    Chains of no group (IR written by hand) are kernels of their own; a group's kernel keeps
    the name it was cut with, else is numbered in launch order after the names taken."""
    kinds = []
    for chain in chains:
        main = next((op for op in chain if op.name != "linalg.fill"), chain[-1])
        kinds.append(kind_of(main, generic_of[_key(main)]))
    keys: list[object] = []
    for index, chain in enumerate(chains):
        group = _chain_group(chain)
        keys.append(group if group is not None else ("launch", index))
    members: dict[object, list[int]] = {}
    for index, key in enumerate(keys):
        members.setdefault(key, []).append(index)
    group_kinds = {key: kernel_kind(kinds[i] for i in indices) for key, indices in members.items()}
    names = assign_names([(key if isinstance(key, str) else None, group_kinds[key]) for key in members])
    result: list[tuple[str, str, bool] | None] = [None] * len(chains)
    for (key, indices), name in zip(members.items(), names, strict=True):
        main = next(i for i in indices if kinds[i] == group_kinds[key])
        for position, index in enumerate(indices):
            launch = name if index == main else f"{name}_{position}"
            result[index] = (launch, name, index == main)
    return [r for r in result if r is not None]


def _extract(
    device: ir.Module,
    index: int,
    chain: list[ir.Operation],
    generic_of: Mapping[int, ir.Operation],
    base,
    buffers: Mapping[ir.Value, BufferRef],
    main_block: ir.Block,
    name: str,
) -> KernelPlan:
    """Builds the kernel function `name` of `chain` in `device` and returns its plan."""
    in_chain = {_key(op) for op in chain}
    root = chain[-1]
    main = next((op for op in chain if op.name != "linalg.fill"), root)
    kind = kind_of(main, generic_of[_key(main)])

    # Values the kernel reads from outside (in first-use order) and remat ops to clone.
    external: list[ir.Value] = []
    remat: list[ir.Operation] = []
    remat_keys: set[int] = set()

    def need(value: ir.Value) -> None:
        p = producer(value)
        if p is None:
            if value.owner == main_block and value not in external:
                external.append(value)
            return
        if _key(p) in in_chain or _key(p) in remat_keys:
            return
        if p.parent is None or _op(p.parent) != _op(main_block.owner):
            return  # defined inside one of the kernel's own regions
        if is_constant_op(p):
            for operand in p.operands:
                need(operand)
            remat_keys.add(_key(p))
            remat.append(p)
            return
        if value not in external:
            external.append(value)

    for op in chain:
        for value in _nested_operands(op):
            need(value)
    order = {_key(op): i for i, op in enumerate(_top_level_ops(_op(main_block.owner)))}
    body_ops = sorted(remat + chain, key=lambda op: order[_key(op)])

    out_type = root.results[0].type
    with ir.InsertionPoint(device.body), ir.Location.unknown():
        fn = func.FuncOp(name, ([v.type for v in external] + [out_type], [out_type]))
        entry = fn.add_entry_block()
    writable = [ir.DictAttr.get({"bufferization.writable": ir.BoolAttr.get(False)}) for _ in external]
    writable.append(ir.DictAttr.get({"bufferization.writable": ir.BoolAttr.get(True)}))
    fn.attributes["arg_attrs"] = ir.ArrayAttr.get(writable)
    mapping: dict[ir.Value, ir.Value] = dict(zip(external, list(entry.arguments)[:-1], strict=True))
    clones: dict[int, ir.Operation] = {}
    with ir.InsertionPoint(entry):
        for op in body_ops:
            clones[_key(op)] = clone_with_mapping(op, mapping)
        func.ReturnOp([mapping[root.results[0]]])

    # The chain's first destination (through a cloned linalg.fill) becomes %out.
    writer = clones[_key(chain[0])]
    dest = producer(writer.operands[_init_index(writer)])
    while dest is not None and dest.name == "linalg.fill":
        writer, dest = dest, producer(dest.operands[_init_index(dest)])
    if dest is None or dest.name != "tensor.empty":
        raise CompilationError(
            f"kernel {name}: '{chain[0].name}' at {chain[0].location} does not write into a fresh tensor"
        )
    writer.operands[_init_index(writer)] = entry.arguments[len(external)]

    # Tags and loop structure.
    i64 = ir.IntegerType.get_signless(64, device.context)
    op_loops: dict[int, tuple[int, tuple[int, ...]]] = {}
    positions: dict[int, int] = {}
    linalg_ops = [op for op in body_ops if op.name.startswith("linalg.")]
    for position, op in enumerate(linalg_ops):
        clone = clones[_key(op)]
        clone.attributes[OP_TAG] = ir.IntegerAttr.get(i64, position)
        loops = _loops(generic_of[_key(op)])
        op_loops[position] = (len(loops.extents), tuple(loops.output_loops))
        positions[_key(op)] = position
    clones[_key(root)].attributes[ROOT_TAG] = ir.UnitAttr.get(device.context)
    clones[_key(main)].attributes[MAIN_TAG] = ir.UnitAttr.get(device.context)

    output_shape = _shape(root.results[0])
    problem = _problem(kind, generic_of[_key(main)], output_shape)
    if math.prod(problem.output_shape) != math.prod(_shape(main.results[0])):
        raise CompilationError(f"kernel {name}: main op '{main.name}' does not write the kernel output")
    return KernelPlan(
        index=index,
        name=name,
        kind=kind,
        problem=problem,
        inputs=[BufferArg(buffers[base(v)], _shape(v)) for v in external],
        output=BufferArg(buffers[root.results[0]], output_shape),
        ops=[op.name for op in chain],
        op_loops=op_loops,
        root_position=positions[_key(root)],
        main_position=positions[_key(main)],
    )
