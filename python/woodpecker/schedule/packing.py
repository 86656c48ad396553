"""Packing B of a matmul kernel into panels, and prepacking weights once.

A register tile `reg_m x reg_n` walks B one row of `reg_n` values per k step. In B's row-major
layout those rows are `N` floats apart: every k step touches a new cache line and, for large
`N`, a new page. `pack_b` lays B out as panels `[N / reg_n][K][reg_n]`, so a tile streams its
panel contiguously.

`pack_matmul_b` rewrites the kernel's ops in place: the output dim n of the fill, the matmul
and the epilogue is split into (n0, n1) with n1 = reg_n (`tensor.expand_shape` views of
their operands; the kernel's result is collapsed back), and B becomes
`transpose(expand_shape(B))`, tagged `wpk.pack_b`. A B read transposed (map (batch..., n, k),
`wpk.matmul_transposed`) packs into the same panels, its transpose moving k in front of the
panel columns. When B is a weight in the (batch..., k, n) layout (a function argument used
only there), `prepack_weights` replaces that chain by an argument of the packed type
and records the numpy layout change that `CpuExecutable.bind_weights` applies once.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from mlir import ir
from mlir.dialects import func

from woodpecker.lowering.common import collapse, expand, transpose
from woodpecker.schedule.kernels import Kernel, loops_of

PACK_ATTR = "wpk.pack_b"


def can_pack_b(kernel: Kernel, reg_n: int) -> bool:
    """B's map is (batch..., k, n) or (batch..., n, k), n splits evenly, and every map is a plain
    projection."""
    loops = kernel.loops
    nb = len(loops.extents) - 3
    n_dim, k_dim = nb + 1, nb + 2
    b_map = loops.maps[1]
    layouts = ([*range(nb), k_dim, n_dim], [*range(nb), n_dim, k_dim])
    results = [e.position if isinstance(e, ir.AffineDimExpr) else None for e in b_map.results]
    if results not in layouts or loops.extents[n_dim] % reg_n or reg_n == loops.extents[n_dim]:
        return False
    ops = [op for op in (kernel.fill, kernel.epilogue) if op is not None]
    return all(_plain(m) for op in ops for m in _maps(op)) and all(_plain(m) for m in loops.maps)


def _maps(op: ir.Operation) -> list[ir.AffineMap]:
    return [ir.AffineMapAttr(a).value for a in ir.ArrayAttr(op.attributes["indexing_maps"])]


def _plain(amap: ir.AffineMap) -> bool:
    return all(isinstance(e, ir.AffineDimExpr | ir.AffineConstantExpr) for e in amap.results)


def _split_map(amap: ir.AffineMap, dim: int) -> tuple[ir.AffineMap, int | None]:
    """`amap` over loops with `dim` split in two; and the result position that reads `dim`."""
    exprs: list[ir.AffineExpr] = []
    position = None
    for i, expr in enumerate(amap.results):
        if isinstance(expr, ir.AffineDimExpr):
            d = expr.position
            if d == dim:
                position = i
                exprs += [ir.AffineDimExpr.get(dim), ir.AffineDimExpr.get(dim + 1)]
                continue
            exprs.append(ir.AffineDimExpr.get(d + 1 if d > dim else d))
        else:
            exprs.append(expr)
    return ir.AffineMap.get(amap.n_dims + 1, 0, exprs), position


def _shape(value: ir.Value) -> list[int]:
    return list(ir.RankedTensorType(value.type).shape)


def _expand_at(value: ir.Value, position: int, inner: int) -> ir.Value:
    shape = _shape(value)
    new_shape = [*shape[:position], shape[position] // inner, inner, *shape[position + 1 :]]
    groups: list[list[int]] = []
    for d in range(len(shape)):
        offset = d + (1 if d > position else 0)
        groups.append([offset, offset + 1] if d == position else [offset])
    return expand(value, groups, new_shape)


def _split_op(op: ir.Operation, dim: int, inner: int, split: list[ir.Value], b_operand: int | None) -> None:
    """Splits loop `dim` of the generic `op` in place (operands expanded, maps and types updated)."""
    maps = _maps(op)
    new_maps = []
    with ir.InsertionPoint(op):
        for index, (operand, amap) in enumerate(zip(op.operands, maps, strict=True)):
            new_map, position = _split_map(amap, dim)
            if any(operand == value for value in split):
                pass  # already split: the result of the previous op of the chain
            elif position is not None:
                expanded = _expand_at(operand, position, inner)
                if index == b_operand:
                    rank = len(_shape(expanded))
                    results = list(new_map.results)
                    if position == rank - 2:
                        # [batch..., K, N/inner, inner] -> [batch..., N/inner, K, inner]
                        perm = [*list(range(rank - 3)), rank - 2, rank - 3, rank - 1]
                        results[-3], results[-2] = results[-2], results[-3]
                    else:
                        # read transposed: [batch..., N/inner, inner, K] -> [batch..., N/inner, K, inner]
                        perm = [*list(range(rank - 3)), rank - 3, rank - 1, rank - 2]
                        results[-2], results[-1] = results[-1], results[-2]
                    expanded = transpose(expanded, perm)
                    expanded.owner.attributes[PACK_ATTR] = ir.UnitAttr.get()
                    new_map = ir.AffineMap.get(new_map.n_dims, 0, results)
                op.operands[index] = expanded
            new_maps.append(new_map)
    op.attributes["indexing_maps"] = ir.ArrayAttr.get([ir.AffineMapAttr.get(m) for m in new_maps])
    kinds = list(ir.ArrayAttr(op.attributes["iterator_types"]))
    kinds.insert(dim + 1, kinds[dim])
    op.attributes["iterator_types"] = ir.ArrayAttr.get(kinds)
    init = op.operands[len(op.operands) - 1]
    op.results[0].set_type(init.type)


def pack_matmul_b(kernel: Kernel, reg_n: int) -> None:
    """Rewrites `kernel` so that its matmul reads B as panels of `reg_n` columns."""
    nb = len(kernel.loops.extents) - 3
    old_result = kernel.root.results[0]
    old_type = old_result.type
    users_outside = [(use.owner, use.operand_number) for use in old_result.uses]
    split: list[ir.Value] = []
    chain = [(kernel.fill, None), (kernel.main, 1), (kernel.epilogue, None)]
    for op, b_operand in chain:
        if op is None:
            continue
        rank = len(_shape(op.results[0]))
        dim = nb + 1 if op == kernel.main else rank - 1
        _split_op(op, dim, reg_n, split, b_operand)
        split.append(op.results[0])
    root = kernel.root
    with ir.InsertionPoint.after(root):
        rank = len(ir.RankedTensorType(old_type).shape)
        groups = [[d] for d in range(rank - 1)] + [[rank - 1, rank]]
        collapsed = collapse(root.results[0], groups)
    for owner, number in users_outside:
        operation = owner.operation if isinstance(owner, ir.OpView) else owner
        operation.operands[number] = collapsed
    kernel.loops = loops_of(kernel.main)  # type: ignore[assignment]


@dataclass(frozen=True)
class PackedWeight:
    """A weight argument whose array is laid out differently before binding: B panels of
    `panel` columns, or a plain transpose by `perm`."""

    arg_index: int
    panel: int = 0
    perm: tuple[int, ...] = ()

    def apply(self, array: np.ndarray) -> np.ndarray:
        if self.perm:
            return np.ascontiguousarray(np.transpose(array, self.perm))
        *batch, k, n = array.shape
        panels = array.reshape(*batch, k, n // self.panel, self.panel)
        return np.ascontiguousarray(np.swapaxes(panels, -3, -2))


def _permutation(op: ir.Operation) -> list[int]:
    return [int(p) for p in ir.DenseI64ArrayAttr(op.attributes["permutation"])]


def transpose_weight(op: ir.Operation, operand: int, perm: list[int]) -> None:
    """Makes `op` read operand `operand` through `linalg.transpose(perm)` (tagged for prepacking):
    the operand's indexing map is permuted to match."""
    value = op.operands[operand]
    with ir.InsertionPoint(op):
        transposed = transpose(value, perm)
    transposed.owner.attributes[PACK_ATTR] = ir.UnitAttr.get()
    op.operands[operand] = transposed
    maps = _maps(op)
    results = list(maps[operand].results)
    maps[operand] = ir.AffineMap.get(maps[operand].n_dims, 0, [results[p] for p in perm])
    op.attributes["indexing_maps"] = ir.ArrayAttr.get([ir.AffineMapAttr.get(m) for m in maps])


def prepack_weights(fn: func.FuncOp, first_weight: int) -> list[PackedWeight]:
    """Turns `transpose(expand_shape(%weight))` chains tagged by `pack_matmul_b` into arguments
    of the packed type; returns the layout changes to apply to those weights."""
    block = fn.regions[0].blocks[0]
    packed: list[PackedWeight] = []
    for op in list(block.operations):
        op = op.operation
        if PACK_ATTR not in op.attributes:
            continue
        source = op.operands[0]
        if isinstance(source.owner, ir.Block):  # a plain transpose of an argument
            index = ir.BlockArgument(source).arg_number
            if index < first_weight or len(list(source.uses)) != 1:
                continue
            perm = tuple(_permutation(op))
            source.set_type(op.results[0].type)
            op.results[0].replace_all_uses_with(source)
            op.erase()
            packed.append(PackedWeight(index, perm=perm))
            continue
        expand_op = source.owner
        rank = len(_shape(source))
        panels_perm = [*range(rank - 3), rank - 2, rank - 3, rank - 1]
        if expand_op.name != "tensor.expand_shape" or _permutation(op) != panels_perm:
            continue  # (a transposed B, [N/inner, inner, K], is packed at every call)
        arg = expand_op.operands[0]
        if not isinstance(arg.owner, ir.Block):
            continue
        index = ir.BlockArgument(arg).arg_number
        if index < first_weight or len(list(arg.uses)) != 1 or len(list(source.uses)) != 1:
            continue
        panel = _shape(source)[-1]
        arg.set_type(op.results[0].type)
        op.results[0].replace_all_uses_with(arg)
        op.erase()
        expand_op.operation.erase()
        packed.append(PackedWeight(index, panel=panel))
    if packed:
        fn_type = ir.FunctionType(ir.TypeAttr(fn.attributes["function_type"]).value)
        fn.attributes["function_type"] = ir.TypeAttr.get(
            ir.FunctionType.get([a.type for a in block.arguments], list(fn_type.results))
        )
    return packed
