"""Rewrites of the linalg-on-tensors module that make it easy to cut into GPU kernels.

1. Chains of elementwise `linalg.generic` ops are merged (upstream
   `linalg-fuse-elementwise-ops`), so a conv's bias, batch norm and ReLU become one op.
2. `tensor.pad`, `tensor.extract_slice` and chains of `tensor.insert_slice` (Concat) become
   gather `linalg.generic` ops over their result (`tensor.extract` of the sources at clamped
   indices, `arith.select` of the pad value or of the slice that covers the element):
   ordinary parallel kernels.
3. *In-place epilogues*: an all-parallel generic that reads the result of a linalg op P
   elementwise (identity map, P's only use) and ignores its own init is rewritten to take
   P's result as its init. P and its epilogue then update one buffer, so a kernel can tile the
   epilogue and fuse P (and P's `linalg.fill`) into the same loop nest without temporaries.
"""

from __future__ import annotations

from collections.abc import Sequence

from mlir import ir
from mlir.dialects import arith, linalg, tensor
from mlir.passmanager import PassManager

from woodpecker.errors import CompilationError
from woodpecker.graph.outline_weights import main_func
from woodpecker.kernels.naming import GROUP_ATTR, MODEL_KERNEL_ATTR
from woodpecker.lowering.common import empty, generic, identity_map, index


def keep_kernel(old: ir.Operation, new: ir.Value) -> ir.Value:
    """Copies the kernel tags (`wpk.group`, `wpk.model_kernel`) of `old` onto `new`'s op: a
    rewrite keeps the op in its kernel."""
    for name in (GROUP_ATTR, MODEL_KERNEL_ATTR):
        if name in old.attributes:
            new.owner.attributes[name] = old.attributes[name]
    return new

PREPARE_PIPELINE = "builtin.module(canonicalize,cse,func.func(linalg-fuse-elementwise-ops),canonicalize,cse)"


def clone_module(module: ir.Module) -> ir.Module:
    """A deep copy of `module` in the same context."""
    return ir.Module.parse(module.operation.get_asm(binary=True), context=module.context)


def prepare(module: ir.Module) -> None:
    """Runs the rewrites above on @main of `module`, in place."""
    try:
        PassManager.parse(PREPARE_PIPELINE, context=module.context).run(module.operation)
    except ir.MLIRError as err:
        raise CompilationError(f"GPU preparation failed: {err}") from None
    block = main_func(module).regions[0].blocks[0]
    for op in list(block.operations):
        op = op.operation
        if op.name == "tensor.pad":
            _replace(op, _pad_as_gather(op))
        elif op.name == "tensor.extract_slice":
            _replace(op, _slice_as_gather(op))
        elif op.name == "tensor.insert_slice" and not _continues_chain(op):
            _replace_chain(op)
    for op in list(block.operations):
        op = op.operation
        if op.name.startswith("linalg.") and GROUP_ATTR not in op.attributes:
            _group_from_destination(op)
    for op in list(block.operations):
        if op.operation.name == "linalg.generic":
            make_epilogue_in_place(op.operation)


def _replace(op: ir.Operation, value: ir.Value) -> None:
    keep_kernel(op, value)
    op.results[0].replace_all_uses_with(value)
    op.erase()


def _group_from_destination(op: ir.Operation) -> None:
    """An op a rewrite made without kernel tags (elementwise fusion merges a producer into its
    consumer) belongs to the kernel of the tensor it writes into, which the consumer made."""
    if not op.operands:
        return
    init = op.operands[len(op.operands) - 1]
    producer = _producer(init)
    while producer is not None and producer.name == "linalg.fill" and GROUP_ATTR not in producer.attributes:
        producer = _producer(producer.operands[len(producer.operands) - 1])
    if producer is not None and GROUP_ATTR in producer.attributes:
        op.attributes[GROUP_ATTR] = producer.attributes[GROUP_ATTR]


# -- gathers -----------------------------------------------------------------------------------


GATHER_TAG = "wpk.gpu.gather"
# On the gather a `tensor.pad` became: {low, high, value}, so that a library call that pads
# itself (cuDNN) can take the unpadded tensor instead (woodpecker.gpu.library_match).
PAD_TAG = "wpk.gpu.pad"


def _tagged(value: ir.Value) -> ir.Value:
    value.owner.attributes[GATHER_TAG] = ir.UnitAttr.get()
    return value


def _shape(value: ir.Value) -> list[int]:
    return list(ir.RankedTensorType(value.type).shape)


def _constant_yield(op: ir.Operation) -> ir.Attribute:
    """The constant a `tensor.pad` region yields."""
    yielded = op.regions[0].blocks[0].operations[len(op.regions[0].blocks[0].operations) - 1].operands[0]
    owner = yielded.owner
    if isinstance(owner, ir.Block) or owner.name != "arith.constant":
        raise CompilationError(f"tensor.pad at {op.location} yields a non-constant value: not supported on GPU")
    return owner.attributes["value"]


def _pad_as_gather(op: ir.Operation) -> ir.Value:
    source = op.operands[0]
    src_shape, out_shape = _shape(source), _shape(op.results[0])
    low = [int(v) for v in ir.DenseI64ArrayAttr(op.attributes["static_low"])]
    if any(v < 0 for v in low) or len(op.operands) > 1:
        raise CompilationError(f"tensor.pad at {op.location} has dynamic padding: not supported on GPU")
    pad_value = _constant_yield(op)
    rank = len(out_shape)

    def body(args: Sequence[ir.Value]) -> ir.Value:
        indices, inside = [], None
        for d in range(rank):
            i = linalg.IndexOp(d).result
            if out_shape[d] == src_shape[d]:
                indices.append(i)
                continue
            shifted = arith.SubIOp(i, index(low[d])).result if low[d] else i
            lo_ok = arith.CmpIOp(arith.CmpIPredicate.sge, shifted, index(0)).result
            hi_ok = arith.CmpIOp(arith.CmpIPredicate.slt, shifted, index(src_shape[d])).result
            ok = arith.AndIOp(lo_ok, hi_ok).result
            inside = ok if inside is None else arith.AndIOp(inside, ok).result
            clamped = arith.MinSIOp(arith.MaxSIOp(shifted, index(0)).result, index(src_shape[d] - 1)).result
            indices.append(clamped)
        value = tensor.ExtractOp(source, indices).result
        if inside is None:
            return value
        return arith.SelectOp(inside, value, arith.ConstantOp(value.type, pad_value).result).result

    with op.location, ir.InsertionPoint(op):
        result = _tagged(generic([], [identity_map(rank)], empty(out_shape), body))
        high = [o - s - lo for o, s, lo in zip(out_shape, src_shape, low, strict=True)]
        result.owner.attributes[PAD_TAG] = ir.DictAttr.get(
            {"low": ir.DenseI64ArrayAttr.get(low), "high": ir.DenseI64ArrayAttr.get(high), "value": pad_value}
        )
        return keep_kernel(op, result)


def _slice_as_gather(op: ir.Operation) -> ir.Value:
    source = op.operands[0]
    if len(op.operands) > 1:
        raise CompilationError(f"tensor.extract_slice at {op.location} has dynamic offsets: not supported on GPU")
    offsets = [int(v) for v in ir.DenseI64ArrayAttr(op.attributes["static_offsets"])]
    strides = [int(v) for v in ir.DenseI64ArrayAttr(op.attributes["static_strides"])]
    sizes = [int(v) for v in ir.DenseI64ArrayAttr(op.attributes["static_sizes"])]
    out_shape = _shape(op.results[0])
    if len(out_shape) != len(sizes):
        raise CompilationError(f"rank-reducing tensor.extract_slice at {op.location} is not supported on GPU")
    rank = len(out_shape)

    def body(args: Sequence[ir.Value]) -> ir.Value:
        indices = []
        for d in range(rank):
            i = linalg.IndexOp(d).result
            if strides[d] != 1:
                i = arith.MulIOp(i, index(strides[d])).result
            if offsets[d]:
                i = arith.AddIOp(i, index(offsets[d])).result
            indices.append(i)
        return tensor.ExtractOp(source, indices).result

    with op.location, ir.InsertionPoint(op):
        return keep_kernel(op, _tagged(generic([], [identity_map(rank)], empty(out_shape), body)))


def _static(op: ir.Operation, name: str) -> list[int]:
    return [int(v) for v in ir.DenseI64ArrayAttr(op.attributes[name])]


def _continues_chain(op: ir.Operation) -> bool:
    """Whether this insert_slice's result is only the destination of another insert_slice."""
    uses = list(op.results[0].uses)
    return len(uses) == 1 and uses[0].owner.name == "tensor.insert_slice" and uses[0].operand_number == 1


def _replace_chain(last: ir.Operation) -> None:
    """A chain of `tensor.insert_slice`s (a Concat) -> one gather generic over the result:
    each element comes from the last slice that covers it, else from the chain's base."""
    chain = [last]
    while True:
        dest = chain[-1].operands[1].owner
        if isinstance(dest, ir.Block) or dest.name != "tensor.insert_slice" or len(list(dest.results[0].uses)) != 1:
            break
        chain.append(dest.operation if isinstance(dest, ir.OpView) else dest)
    base = chain[-1].operands[1]
    base_owner = base.owner
    base_is_empty = not isinstance(base_owner, ir.Block) and base_owner.name == "tensor.empty"
    pieces = []
    for op in chain:  # last insert first: it wins where slices overlap
        if len(op.operands) != 2 or any(v != 1 for v in _static(op, "static_strides")):
            raise CompilationError(f"tensor.insert_slice at {op.location} is dynamic or strided: not supported on GPU")
        source = op.operands[0]
        if _shape(source) != _static(op, "static_sizes"):
            raise CompilationError(f"rank-reducing tensor.insert_slice at {op.location} is not supported on GPU")
        pieces.append((source, _static(op, "static_offsets")))
    out_shape = _shape(last.results[0])
    rank = len(out_shape)
    element = ir.RankedTensorType(last.results[0].type).element_type

    def body(args: Sequence[ir.Value]) -> ir.Value:
        ivs = [linalg.IndexOp(d).result for d in range(rank)]
        result = arith.ConstantOp(element, 0.0).result if base_is_empty else tensor.ExtractOp(base, ivs).result
        for source, offsets in reversed(pieces):
            sizes = _shape(source)
            indices, inside = [], None
            for d in range(rank):
                if sizes[d] == out_shape[d]:
                    indices.append(ivs[d])
                    continue
                shifted = arith.SubIOp(ivs[d], index(offsets[d])).result if offsets[d] else ivs[d]
                ok = arith.AndIOp(
                    arith.CmpIOp(arith.CmpIPredicate.sge, shifted, index(0)).result,
                    arith.CmpIOp(arith.CmpIPredicate.slt, shifted, index(sizes[d])).result,
                ).result
                inside = ok if inside is None else arith.AndIOp(inside, ok).result
                indices.append(arith.MinSIOp(arith.MaxSIOp(shifted, index(0)).result, index(sizes[d] - 1)).result)
            value = tensor.ExtractOp(source, indices).result
            result = value if inside is None else arith.SelectOp(inside, value, result).result
        return result

    with last.location, ir.InsertionPoint(last):
        gather = _tagged(generic([], [identity_map(rank)], empty(out_shape), body))
    _replace(last, gather)
    for op in chain[1:]:
        op.erase()


# -- in-place epilogues ------------------------------------------------------------------------

_REDUCTION = "reduction"


def _is_parallel_elementwise(op: ir.Operation) -> bool:
    if op.name != "linalg.generic" or len(op.results) != 1:
        return False
    kinds = [str(a) for a in ir.ArrayAttr(op.attributes["iterator_types"])]
    return all("parallel" in k for k in kinds)


def _producer(value: ir.Value) -> ir.Operation | None:
    owner = value.owner
    if isinstance(owner, ir.Block):
        return None
    return owner.operation if isinstance(owner, ir.OpView) else owner


def _weight(op: ir.Operation) -> int:
    """Preference of a producer to absorb an epilogue: contractions first."""
    if op.name == "linalg.generic":
        kinds = [str(a) for a in ir.ArrayAttr(op.attributes["iterator_types"])]
        return 2 if any(_REDUCTION in k for k in kinds) else 1
    return 3


def make_epilogue_in_place(op: ir.Operation) -> bool:
    """Rewrites generic `op` to update its best producer's result in place; True if it did."""
    if not _is_parallel_elementwise(op):
        return False
    n_in = len(op.operands) - 1
    block = op.regions[0].blocks[0]
    if list(block.arguments[n_in].uses):
        return False  # the init is read
    maps = [ir.AffineMapAttr(a).value for a in ir.ArrayAttr(op.attributes["indexing_maps"])]
    rank = maps[-1].n_dims
    if maps[-1] != identity_map(rank):
        return False
    result_type = op.results[0].type
    candidates = []
    for i in range(n_in):
        value = op.operands[i]
        producer = _producer(value)
        if producer is None or not producer.name.startswith("linalg.") or producer.name == "linalg.fill":
            continue
        if value.type != result_type or maps[i] != identity_map(rank) or len(list(value.uses)) != 1:
            continue
        candidates.append((_weight(producer), -i, i))
    if not candidates:
        return False
    _, _, chosen = max(candidates)
    _rebuild(op, chosen, maps)
    return True


def _rebuild(op: ir.Operation, chosen: int, maps: list[ir.AffineMap]) -> None:
    n_in = len(op.operands) - 1
    inputs = [op.operands[i] for i in range(n_in) if i != chosen]
    init = op.operands[chosen]
    new_maps = [maps[i] for i in range(n_in) if i != chosen] + [maps[-1]]
    old_block = op.regions[0].blocks[0]
    with op.location, ir.InsertionPoint(op):
        new = linalg.GenericOp(
            [op.results[0].type],
            inputs,
            [init],
            ir.ArrayAttr.get([ir.AffineMapAttr.get(m) for m in new_maps]),
            op.attributes["iterator_types"],
        )
        element_types = [ir.RankedTensorType(v.type).element_type for v in [*inputs, init]]
        new_block = new.regions[0].blocks.append(*element_types)
    mapping: dict[ir.Value, ir.Value] = {}
    args = list(new_block.arguments)
    position = 0
    for i in range(n_in):
        if i == chosen:
            mapping[old_block.arguments[i]] = args[-1]
        else:
            mapping[old_block.arguments[i]] = args[position]
            position += 1
    with ir.InsertionPoint(new_block):
        for body_op in old_block.operations:
            clone_with_mapping(body_op.operation, mapping)
    _replace(op, new.results[0])


def clone_with_mapping(op: ir.Operation, mapping: dict[ir.Value, ir.Value]) -> ir.Operation:
    """Clones `op` at the current insertion point, renaming operands (also nested) by `mapping`;
    records its results in `mapping`."""
    new = op.clone()
    remap_operands(new, mapping)
    for old, fresh in zip(op.results, new.results, strict=True):
        mapping[old] = fresh
    return new


def remap_operands(op: ir.Operation, mapping: dict[ir.Value, ir.Value]) -> None:
    def visit(nested: ir.Operation) -> ir.WalkResult:
        for i, operand in enumerate(nested.operands):
            if operand in mapping:
                nested.operands[i] = mapping[operand]
        return ir.WalkResult.ADVANCE

    op.walk(visit, ir.WalkOrder.PRE_ORDER)
