"""Building blocks shared by the `wpk` -> linalg lowerings.

Every helper creates ops at the current insertion point and location (the
driver sets both to those of the `wpk` op being lowered) and returns the
resulting `ir.Value`. Shapes are static; element type is f32 unless stated.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from mlir import ir
from mlir.dialects import arith, linalg, tensor

from woodpecker.dialect import shape_of

Body = Callable[[Sequence[ir.Value]], ir.Value]
"""Region builder of a linalg.generic: block arguments (inputs..., output) -> yielded value."""


class LoweringError(Exception):
    """Raised by a lowering when an op cannot be lowered; the driver adds the op and location."""


# ----------------------------------------------------------------------------
# Types and constants.


def f32() -> ir.Type:
    return ir.F32Type.get()


def storage_element(element: ir.Type) -> ir.Type:
    """The element type a tensor of `element` has after lowering: i8 (0 or 1) for i1, which
    LLVM would store bit-packed from vector code and byte-wise from scalar code; else itself."""
    if isinstance(element, ir.IntegerType) and element.width == 1:
        return ir.IntegerType.get_signless(8, element.context)
    return element


def storage_type(t: ir.Type) -> ir.Type:
    """`t` with its element type stored as after lowering (a tensor of i1 becomes one of i8)."""
    if isinstance(t, ir.RankedTensorType):
        element = storage_element(t.element_type)
        if element != t.element_type:
            return ir.RankedTensorType.get(list(t.shape), element, loc=ir.Location.unknown(t.context))
    return t


def tensor_of(shape: Sequence[int], element: ir.Type | None = None) -> ir.RankedTensorType:
    return ir.RankedTensorType.get([int(d) for d in shape], element or f32())


def scalar(value: float) -> ir.Value:
    """An `arith.constant` f32 scalar."""
    return arith.ConstantOp(f32(), float(value)).result


def index(value: int) -> ir.Value:
    """An `arith.constant` of index type."""
    return arith.ConstantOp(ir.IndexType.get(), int(value)).result


def dense_constant(array: np.ndarray) -> ir.Value:
    """An `arith.constant` holding `array` (cast to f32) inline as a DenseElementsAttr."""
    array = np.ascontiguousarray(array, dtype=np.float32)
    attr = ir.DenseElementsAttr.get(array, type=f32())
    return arith.ConstantOp(tensor_of(array.shape), attr).result


def empty(shape: Sequence[int], element: ir.Type | None = None) -> ir.Value:
    return tensor.EmptyOp([int(d) for d in shape], element or f32()).result


def fill(value: float, shape: Sequence[int]) -> ir.Value:
    """`linalg.fill` of a fresh `tensor.empty` with the scalar `value`."""
    return linalg.fill(scalar(value), outs=[empty(shape)])


# ----------------------------------------------------------------------------
# Indexing maps and linalg.generic.


def identity_map(rank: int) -> ir.AffineMap:
    return ir.AffineMap.get_identity(rank)


def projection_map(rank: int, dims: Sequence[int]) -> ir.AffineMap:
    """(d0, ..., d{rank-1}) -> (d{dims[0]}, d{dims[1]}, ...)."""
    return ir.AffineMap.get(rank, 0, [ir.AffineDimExpr.get(d) for d in dims])


def broadcast_map(in_shape: Sequence[int], out_shape: Sequence[int]) -> ir.AffineMap:
    """Numpy (right-aligned) broadcasting of `in_shape` to `out_shape` as an indexing map.

    Missing leading dims are dropped from the map; a size-1 input dim against a
    larger output dim reads index 0.
    """
    rank, in_rank = len(out_shape), len(in_shape)
    if in_rank > rank:
        raise LoweringError(f"cannot broadcast shape {list(in_shape)} to {list(out_shape)}")
    exprs: list[ir.AffineExpr] = []
    for k, size in enumerate(in_shape):
        out_dim = rank - in_rank + k
        if size == out_shape[out_dim]:
            exprs.append(ir.AffineDimExpr.get(out_dim))
        elif size == 1:
            exprs.append(ir.AffineConstantExpr.get(0))
        else:
            raise LoweringError(f"cannot broadcast shape {list(in_shape)} to {list(out_shape)}")
    return ir.AffineMap.get(rank, 0, exprs)


def broadcast_shape(*shapes: Sequence[int]) -> list[int]:
    """The numpy broadcast of several shapes."""
    try:
        return [int(d) for d in np.broadcast_shapes(*[tuple(s) for s in shapes])]
    except ValueError as err:
        raise LoweringError(f"shapes {[list(s) for s in shapes]} do not broadcast") from err


def iterator_types(kinds: Sequence[str]) -> ir.ArrayAttr:
    return ir.ArrayAttr.get([ir.Attribute.parse(f"#linalg.iterator_type<{k}>") for k in kinds])


def generic(
    inputs: Sequence[ir.Value],
    maps: Sequence[ir.AffineMap],
    init: ir.Value,
    body: Body,
    iterators: Sequence[str] | None = None,
) -> ir.Value:
    """A one-output `linalg.generic`; `maps` holds one map per input then the output's.

    Iterators default to all parallel.
    """
    loops = maps[-1].n_dims
    kinds = list(iterators) if iterators is not None else ["parallel"] * loops
    op = linalg.GenericOp(
        [init.type],
        list(inputs),
        [init],
        ir.ArrayAttr.get([ir.AffineMapAttr.get(m) for m in maps]),
        iterator_types(kinds),
    )
    element_types = [ir.RankedTensorType(v.type).element_type for v in [*inputs, init]]
    block = op.regions[0].blocks.append(*element_types)
    with ir.InsertionPoint(block):
        linalg.YieldOp([body(list(block.arguments))])
    return op.result


def elementwise(inputs: Sequence[ir.Value], out_shape: Sequence[int], body: Body) -> ir.Value:
    """All-parallel `linalg.generic` over `out_shape` with numpy-broadcast inputs.

    `body` receives the scalar inputs followed by the (unused) output element.
    """
    maps = [broadcast_map(shape_of(v), out_shape) for v in inputs]
    maps.append(identity_map(len(out_shape)))
    return generic(inputs, maps, empty(out_shape), body)


def reduce(
    value: ir.Value, axes: Sequence[int], init_value: float, combine: Callable[[ir.Value, ir.Value], ir.Value]
) -> ir.Value:
    """Reduces `value` over `axes` (dropped from the result) with `combine(element, acc)`."""
    shape = shape_of(value)
    rank = len(shape)
    kept = [d for d in range(rank) if d not in set(axes)]
    init = fill(init_value, [shape[d] for d in kept])
    kinds = ["reduction" if d in set(axes) else "parallel" for d in range(rank)]
    return generic(
        [value],
        [identity_map(rank), projection_map(rank, kept)],
        init,
        lambda args: combine(args[0], args[1]),
        kinds,
    )


# ----------------------------------------------------------------------------
# Shape manipulation.


def _grouping(long: Sequence[int], short: Sequence[int]) -> list[list[int]] | None:
    """Groups consecutive dims of `long` whose products are the dims of `short`, if possible."""
    if any(d <= 0 for d in long) or any(d <= 0 for d in short):
        return None
    if not short:
        return [] if all(d == 1 for d in long) else None
    groups: list[list[int]] = []
    i = 0
    for size in short:
        if i >= len(long):
            return None
        group, product = [i], long[i]
        i += 1
        while product < size and i < len(long):
            group.append(i)
            product *= long[i]
            i += 1
        if product != size:
            return None
        groups.append(group)
    rest = list(range(i, len(long)))
    if any(long[d] != 1 for d in rest):
        return None
    groups[-1].extend(rest)
    return groups


def collapse(value: ir.Value, groups: Sequence[Sequence[int]]) -> ir.Value:
    shape = shape_of(value)
    result_shape = [int(np.prod([shape[d] for d in g], dtype=np.int64)) for g in groups]
    element = ir.RankedTensorType(value.type).element_type
    return tensor.CollapseShapeOp(tensor_of(result_shape, element), value, [list(g) for g in groups]).result


def expand(value: ir.Value, groups: Sequence[Sequence[int]], shape: Sequence[int]) -> ir.Value:
    element = ir.RankedTensorType(value.type).element_type
    return tensor.ExpandShapeOp(
        tensor_of(shape, element), value, [list(g) for g in groups], [], [int(d) for d in shape]
    ).result


def reshape(value: ir.Value, shape: Sequence[int]) -> ir.Value:
    """Same elements in `shape`: one collapse_shape or expand_shape when possible, else via 1-D."""
    src = shape_of(value)
    shape = [int(d) for d in shape]
    if src == shape:
        return value
    if int(np.prod(src, dtype=np.int64)) != int(np.prod(shape, dtype=np.int64)):
        raise LoweringError(f"cannot reshape {src} to {shape}: element counts differ")
    if len(src) > len(shape):
        groups = _grouping(src, shape)
        if groups is not None:
            return collapse(value, groups)
    elif len(src) < len(shape):
        groups = _grouping(shape, src)
        if groups is not None:
            return expand(value, groups, shape)
    flat = collapse(value, [list(range(len(src)))]) if len(src) != 1 else value
    if len(shape) == 1:
        return flat
    return expand(flat, [list(range(len(shape)))], shape)


def extract_slice(value: ir.Value, offsets: Sequence[int], sizes: Sequence[int]) -> ir.Value:
    """A unit-stride `tensor.extract_slice` of the same rank."""
    if list(offsets) == [0] * len(offsets) and list(sizes) == shape_of(value):
        return value
    return tensor.ExtractSliceOp(
        tensor_of(sizes), value, [], [], [], list(offsets), list(sizes), [1] * len(sizes)
    ).result


def insert_slice(source: ir.Value, dest: ir.Value, offsets: Sequence[int]) -> ir.Value:
    """A unit-stride `tensor.insert_slice` of all of `source` into `dest` at `offsets`."""
    sizes = shape_of(source)
    return tensor.InsertSliceOp(source, dest, [], [], [], list(offsets), sizes, [1] * len(sizes)).result


def pad(value: ir.Value, low: Sequence[int], high: Sequence[int], pad_value: float) -> ir.Value:
    """`tensor.pad` with a constant; negative amounts crop with `tensor.extract_slice` first."""
    shape = shape_of(value)
    if any(p < 0 for p in [*low, *high]):
        offsets = [max(0, -p) for p in low]
        sizes = [s - max(0, -lo) - max(0, -hi) for s, lo, hi in zip(shape, low, high, strict=True)]
        if any(s < 0 for s in sizes):
            raise LoweringError(f"negative pads {list(low)}/{list(high)} crop more than shape {shape}")
        value = extract_slice(value, offsets, sizes)
        shape = sizes
        low = [max(0, p) for p in low]
        high = [max(0, p) for p in high]
    if not any(low) and not any(high):
        return value
    result_shape = [s + lo + hi for s, lo, hi in zip(shape, low, high, strict=True)]
    op = tensor.PadOp(tensor_of(result_shape), value, [], [], list(low), list(high))
    block = op.regions[0].blocks.append(*[ir.IndexType.get()] * len(shape))
    with ir.InsertionPoint(block):
        tensor.YieldOp(scalar(pad_value))
    return op.result


def transpose(value: ir.Value, perm: Sequence[int]) -> ir.Value:
    """`linalg.transpose`: result dim i is input dim perm[i]."""
    shape = shape_of(value)
    if list(perm) == list(range(len(shape))):
        return value
    init = empty([shape[p] for p in perm])
    return linalg.transpose(value, outs=[init], permutation=list(perm)).results[0]


def broadcast_to(value: ir.Value, shape: Sequence[int]) -> ir.Value:
    """Materializes numpy broadcasting of `value` to `shape` (linalg.generic copy)."""
    if shape_of(value) == list(shape):
        return value
    return elementwise([value], shape, lambda args: args[0])
