"""Lowering of data-movement `wpk` ops: reshape, flatten, transpose, concat and pad."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from mlir import ir
from mlir.dialects import arith, linalg, tensor

from woodpecker.dialect import attr_float, attr_int, attr_ints, attr_str, shape_of, wpk
from woodpecker.lowering.common import (
    LoweringError,
    empty,
    generic,
    identity_map,
    index,
    insert_slice,
    pad,
    reshape,
    transpose,
)
from woodpecker.lowering.registry import lowers


@lowers(wpk.ReshapeOp)
def lower_reshape(op: ir.Operation) -> ir.Value:
    return reshape(op.operands[0], shape_of(op.results[0]))


@lowers(wpk.FlattenOp)
def lower_flatten(op: ir.Operation) -> ir.Value:
    shape, axis = shape_of(op.operands[0]), attr_int(op, "axis")
    if not 0 <= axis <= len(shape):
        raise LoweringError(f"flatten axis {axis} is out of range for shape {shape}")
    return reshape(op.operands[0], shape_of(op.results[0]))


@lowers(wpk.TransposeOp)
def lower_transpose(op: ir.Operation) -> ir.Value:
    perm, shape = attr_ints(op, "perm"), shape_of(op.operands[0])
    if sorted(perm) != list(range(len(shape))):
        raise LoweringError(f"perm {perm} is not a permutation of {len(shape)} dims")
    return transpose(op.operands[0], perm)


@lowers(wpk.ConcatOp)
def lower_concat(op: ir.Operation) -> ir.Value:
    """tensor.empty of the result, then one tensor.insert_slice per input."""
    axis, out = attr_int(op, "axis"), shape_of(op.results[0])
    if not 0 <= axis < len(out):
        raise LoweringError(f"concat axis {axis} is out of range for result shape {out}")
    inputs = list(op.operands)
    if len(inputs) == 1:
        return inputs[0]
    result = empty(out)
    offset = 0
    for value in inputs:
        shape = shape_of(value)
        if len(shape) != len(out) or any(s != o for d, (s, o) in enumerate(zip(shape, out, strict=True)) if d != axis):
            raise LoweringError(f"concat input shape {shape} does not fit result shape {out} on axis {axis}")
        offsets = [0] * len(out)
        offsets[axis] = offset
        result = insert_slice(value, result, offsets)
        offset += shape[axis]
    if offset != out[axis]:
        raise LoweringError(f"concat inputs sum to {offset} along axis {axis}, result has {out[axis]}")
    return result


# ----------------------------------------------------------------------------
# Pad.

IndexFn = Callable[[ir.Value, int], ir.Value]
"""Maps a (possibly out-of-range) source index and the source size to an in-range index."""


def _edge(i: ir.Value, n: int) -> ir.Value:
    return arith.MinSIOp(arith.MaxSIOp(i, index(0)).result, index(n - 1)).result


def _positive_mod(i: ir.Value, m: int) -> ir.Value:
    r = arith.RemSIOp(i, index(m)).result
    negative = arith.CmpIOp(arith.CmpIPredicate.slt, r, index(0)).result
    return arith.SelectOp(negative, arith.AddIOp(r, index(m)).result, r).result


def _wrap(i: ir.Value, n: int) -> ir.Value:
    return _positive_mod(i, n)


def _reflect(i: ir.Value, n: int) -> ir.Value:
    """numpy 'reflect' (edge not repeated), any number of periods: period 2(n-1)."""
    if n == 1:
        return index(0)
    period = 2 * (n - 1)
    j = _positive_mod(i, period)
    past_end = arith.CmpIOp(arith.CmpIPredicate.sge, j, index(n)).result
    return arith.SelectOp(past_end, arith.SubIOp(index(period), j).result, j).result


_INDEX_FNS: dict[str, IndexFn] = {"edge": _edge, "wrap": _wrap, "reflect": _reflect}


def _gather_pad(value: ir.Value, low: Sequence[int], high: Sequence[int], fn: IndexFn) -> ir.Value:
    """A linalg.generic over the result that reads its source element with tensor.extract."""
    shape = shape_of(value)
    if any(s == 0 for s in shape):
        raise LoweringError(f"cannot pad an empty tensor of shape {shape} in a non-constant mode")
    out = [s + lo + hi for s, lo, hi in zip(shape, low, high, strict=True)]
    rank = len(out)

    def body(args: Sequence[ir.Value]) -> ir.Value:
        indices = []
        for d in range(rank):
            i = linalg.IndexOp(d).result
            if low[d] or high[d]:
                if low[d]:
                    i = arith.SubIOp(i, index(low[d])).result
                i = fn(i, shape[d])
            indices.append(i)
        return tensor.ExtractOp(value, indices).result

    return generic([], [identity_map(rank)], empty(out), body)


@lowers(wpk.PadOp)
def lower_pad(op: ir.Operation) -> ir.Value:
    """ONNX Pad; negative pads crop first (tensor.extract_slice), in every mode."""
    x, pads, mode = op.operands[0], attr_ints(op, "pads"), attr_str(op, "mode")
    shape = shape_of(x)
    rank = len(shape)
    if len(pads) != 2 * rank:
        raise LoweringError(f"pad needs {2 * rank} pads for rank {rank}, got {pads}")
    low, high = pads[:rank], pads[rank:]
    if mode == "constant":
        return pad(x, low, high, attr_float(op, "value"))
    if mode not in _INDEX_FNS:
        raise LoweringError(f"pad mode '{mode}' is not one of constant, reflect, edge, wrap")
    cropped = pad(x, [min(0, p) for p in low], [min(0, p) for p in high], 0.0)
    low, high = [max(0, p) for p in low], [max(0, p) for p in high]
    if not any(low) and not any(high):
        return cropped
    return _gather_pad(cropped, low, high, _INDEX_FNS[mode])
