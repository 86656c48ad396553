"""Coarse-grained parallelism for the CPU: split each large linalg op across the cores.

Every linalg op (generalized, on tensors) whose iteration space is large enough is tiled
with `transform.structured.tile_using_forall` along its outermost parallel loop that has
at least one iteration per thread, into one chunk per thread. Producers that feed the
tiled op elementwise along that loop (a conv feeding its bias/activation epilogue, the
fill that initializes a conv's accumulator, one elementwise op feeding another) are fused
into the same `scf.forall` with `fuse_into_containing_op`, so their tile is computed in the
same loop nest instead of in a separate pass over memory: inside each thread's chunk the
split loop is walked one step at a time (e.g. one output channel), the producers' slice for that
step is computed right before the consumer reads it, while it is still in cache. The foralls become OpenMP
parallel loops; everything inside them stays serial, vectorizable code.

Small ops stay serial: an OpenMP fork/join costs more than they do.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from mlir import ir
from mlir.dialects.transform import interpreter
from mlir.passmanager import PassManager

from woodpecker.backend.outline_weights import main_func
from woodpecker.errors import CompilationError

TILE_ID = "wpk.forall_tile"
FUSE_ID = "wpk.forall_fuse"


@dataclass(frozen=True)
class ParallelOptions:
    """Threads to split across, and the smallest iteration space worth splitting."""

    threads: int
    min_iterations: int = 1 << 15


class _OpSet:
    """A set of operations by identity (binding wrappers are not hashable by the op they wrap)."""

    def __init__(self, ops: list[ir.Operation] | None = None) -> None:
        self._ops: list[ir.Operation] = list(ops or [])

    def __contains__(self, op: ir.Operation) -> bool:
        return any(op == other for other in self._ops)

    def add(self, op: ir.Operation) -> None:
        if op not in self:
            self._ops.append(op)

    def copy(self) -> _OpSet:
        return _OpSet(self._ops)


@dataclass
class _Loops:
    """Loop structure of one linalg.generic: ranges, parallel flags, indexing maps."""

    ranges: list[int]
    parallel: list[bool]
    maps: list[ir.AffineMap]

    @property
    def iterations(self) -> int:
        return math.prod(self.ranges)


@dataclass
class _Tiling:
    op: ir.Operation
    loops: _Loops
    dim: int
    tile: int
    fused: list[ir.Operation] = field(default_factory=list)


def _loops(op: ir.Operation) -> _Loops | None:
    """Loop ranges of a linalg.generic from its operand shapes, or None if not static."""
    maps = [ir.AffineMapAttr(a).value for a in ir.ArrayAttr(op.attributes["indexing_maps"])]
    parallel = ["parallel" in str(a) for a in ir.ArrayAttr(op.attributes["iterator_types"])]
    ranges: list[int | None] = [None] * len(parallel)
    for operand, amap in zip(op.operands, maps, strict=True):
        if not isinstance(operand.type, ir.ShapedType):
            continue
        shape = ir.ShapedType(operand.type).shape
        for pos, expr in enumerate(amap.results):
            if isinstance(expr, ir.AffineDimExpr) and ranges[expr.position] is None:
                ranges[expr.position] = shape[pos]
    if any(r is None or r < 0 for r in ranges):
        return None
    return _Loops([int(r) for r in ranges], parallel, maps)


def _pick_dim(loops: _Loops, threads: int) -> int | None:
    """The outermost parallel loop with at least `threads` iterations."""
    for dim, (extent, is_parallel) in enumerate(zip(loops.ranges, loops.parallel, strict=True)):
        if is_parallel and extent >= threads:
            return dim
    return None


def _dim_in_producer(consumer_map: ir.AffineMap, dim: int, producer: ir.Operation, result_index: int) -> int | None:
    """The producer loop that walks the consumer's tiled loop `dim`, if the operand maps it plainly."""
    positions = [p for p, e in enumerate(consumer_map.results) if isinstance(e, ir.AffineDimExpr) and e.position == dim]
    if len(positions) != 1:
        return None
    loops = _loops(producer)
    if loops is None:
        return None
    out_map = loops.maps[len(producer.operands) - len(producer.results) + result_index]
    expr = out_map.results[positions[0]]
    if not isinstance(expr, ir.AffineDimExpr) or not loops.parallel[expr.position]:
        return None
    return expr.position


def _fusable_producers(op: ir.Operation, dim: int, claimed: _OpSet) -> list[ir.Operation]:
    """Producers of `op` (recursively) that can be computed tile by tile along `dim`."""
    fused: list[ir.Operation] = []
    loops = _loops(op)
    if loops is None:
        return fused
    for operand, amap in zip(op.operands, loops.maps, strict=False):
        owner = operand.owner
        if not isinstance(owner, ir.Operation | ir.OpView):
            continue  # a block argument
        producer = owner.operation if isinstance(owner, ir.OpView) else owner
        if producer.name != "linalg.generic" or producer in claimed:
            continue
        if len(list(producer.results[0].uses)) != 1:
            continue
        index = next(i for i, r in enumerate(producer.results) if r == operand)
        producer_dim = _dim_in_producer(amap, dim, producer, index)
        if producer_dim is None:
            continue
        claimed.add(producer)
        fused.append(producer)
        fused.extend(_fusable_producers(producer, producer_dim, claimed))
    return fused


def plan(module: ir.Module, options: ParallelOptions) -> list[_Tiling]:
    """Chooses which ops to split and which producers to fuse into each split."""
    block = main_func(module).regions[0].blocks[0]
    generics = [op.operation for op in block.operations if op.operation.name == "linalg.generic"]
    claimed = _OpSet()
    tilings: list[_Tiling] = []
    for op in reversed(generics):  # consumers first, so they can absorb their producers
        if op in claimed:
            continue
        loops = _loops(op)
        dim = None if loops is None else _pick_dim(loops, options.threads)
        if loops is None or dim is None:
            continue
        candidate = claimed.copy()
        producers = _fusable_producers(op, dim, candidate)
        work = loops.iterations + sum(_iterations(p) for p in producers)
        if work < options.min_iterations:
            continue
        candidate.add(op)
        claimed = candidate
        tile = -(-loops.ranges[dim] // options.threads)
        tilings.append(_Tiling(op, loops, dim, tile, producers))
    return tilings


def _iterations(op: ir.Operation) -> int:
    loops = _loops(op)
    return 0 if loops is None else loops.iterations


def _transform_script(tilings: list[_Tiling]) -> str:
    any_op = "!transform.any_op"
    lines = [
        "module attributes {transform.with_named_sequence} {",
        f"  transform.named_sequence @__transform_main(%root: {any_op} {{transform.readonly}}) {{",
    ]
    for i, tiling in enumerate(tilings):
        loops = tiling.loops
        sizes = [0] * len(loops.ranges)
        sizes[tiling.dim] = tiling.tile
        lines.append(
            f"    %op{i} = transform.structured.match attributes{{{TILE_ID} = {i} : i64}} in %root"
            f" : ({any_op}) -> {any_op}"
        )
        lines.append(
            f"    %tiled{i}, %forall{i} = transform.structured.tile_using_forall %op{i}"
            f" tile_sizes {sizes} : ({any_op}) -> ({any_op}, {any_op})"
        )
        for j, _ in enumerate(tiling.fused):
            name = f"%p{i}_{j}"
            lines.append(
                f"    {name} = transform.structured.match attributes{{{FUSE_ID} = {i * 10000 + j} : i64}}"
                f" in %root : ({any_op}) -> {any_op}"
            )
            lines.append(
                f"    %f{i}_{j}, %c{i}_{j} = transform.structured.fuse_into_containing_op {name}"
                f" into %forall{i} : ({any_op}, {any_op}) -> ({any_op}, {any_op})"
            )
        if tiling.fused and tiling.tile > 1 and all(loops.parallel):
            # Within each thread's chunk, walk the split loop one step at a time and compute the
            # producers' slice for that step right before the consumer uses it (tile-level reuse).
            sizes[tiling.dim] = 1
            lines.append(
                f"    %inner{i}, %loop{i} = transform.structured.tile_using_for %tiled{i}"
                f" tile_sizes {sizes} : ({any_op}) -> ({any_op}, {any_op})"
            )
            for j, _ in enumerate(tiling.fused):
                lines.append(
                    f"    %g{i}_{j}, %d{i}_{j} = transform.structured.fuse_into_containing_op %f{i}_{j}"
                    f" into %loop{i} : ({any_op}, {any_op}) -> ({any_op}, {any_op})"
                )
    lines += ["    transform.yield", "  }", "}"]
    return "\n".join(lines)


def parallelize(module: ir.Module, options: ParallelOptions) -> int:
    """Tiles the large linalg ops of `module` (on tensors) into scf.forall; returns how many."""
    PassManager.parse("builtin.module(func.func(linalg-generalize-named-ops))", context=module.context).run(
        module.operation
    )
    tilings = plan(module, options)
    if not tilings:
        return 0
    i64 = ir.IntegerType.get_signless(64)
    for i, tiling in enumerate(tilings):
        tiling.op.attributes[TILE_ID] = ir.IntegerAttr.get(i64, i)
        for j, producer in enumerate(tiling.fused):
            producer.attributes[FUSE_ID] = ir.IntegerAttr.get(i64, i * 10000 + j)
    script = ir.Module.parse(_transform_script(tilings), context=module.context)
    entry = script.body.operations[0]
    try:
        interpreter.apply_named_sequence(module.operation, entry, script)
    except (ir.MLIRError, ValueError) as err:
        raise CompilationError(f"parallel tiling failed: {err}") from None
    return len(tilings)
