"""The CPU code's activation buffers in one arena that Python allocates (and checks) per call.

After bufferization `@main` allocates each intermediate tensor with `memref.alloc`, which LLVM
lowers to an unchecked `malloc`: a buffer that cannot be allocated (a huge intermediate) made
the generated code write through NULL (a segfault). `place_in_arena` replaces every
`memref.alloc` of `@main`'s body (the kernels' outputs and padding copies: static shapes) by a
`memref.view` into one trailing argument `%arena : memref<Nxi8>`, at offsets planned by
liveness (`woodpecker.runtime.memory.plan_memory`, the CUDA plan's planner): a buffer lives
from its allocation to the last top-level op that uses it or a view of it. It runs between
`buffer-results-to-out-params` and the deallocation pipeline, which then frees nothing of the
arena. `CpuExecutable` (and a saved model, `runtime.cpu.deploy`) allocates the arena with
numpy before each call, so a failure is a `MemoryLimitError` naming the largest buffer and its
size, raised before any kernel runs; the arena's size is part of the code's interface digest.

Allocations nested in the kernels' loops (a tile's temporary, bounded by the tile) stay `malloc`.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np
from mlir import ir
from mlir.dialects import arith, memref

from woodpecker.runtime.memory import HOST_ALIGNMENT, Lifetime, allocate_arena, format_bytes, plan_memory

_QUOTED = re.compile(r'"((?:[^"\\]|\\.)*)"')


@dataclass(frozen=True)
class ArenaBuffer:
    """One buffer of the arena: where it is, how large, and which node's op allocated it."""

    what: str
    shape: tuple[int, ...]
    nbytes: int
    offset: int

    def describe(self) -> str:
        return f"{self.what} [{', '.join(map(str, self.shape))}] ({format_bytes(self.nbytes)})"


@dataclass(frozen=True)
class Arena:
    """The arena `@main`'s last argument points to: `nbytes` long, holding `buffers`."""

    nbytes: int
    buffers: tuple[ArenaBuffer, ...]

    def largest(self) -> ArenaBuffer | None:
        return max(self.buffers, key=lambda b: b.nbytes, default=None)

    def largest_text(self) -> str:
        largest = self.largest()
        return largest.describe() if largest is not None else ""

    def allocate(self) -> np.ndarray:
        """The arena of one call (`runtime.memory.allocate_arena`: a MemoryLimitError naming the
        largest buffer when it cannot be allocated)."""
        return allocate_arena(self.nbytes, self.largest_text())


def _top_level(op: ir.Operation, fn: ir.Operation) -> ir.Operation:
    """The op of `fn`'s body that `op` is (or is nested in)."""
    while op.parent is not None and op.parent != fn:
        op = op.parent
    return op


def _what(op: ir.Operation) -> str:
    names = _QUOTED.findall(str(op.location))
    return f"the buffer of node '{'+'.join(names)}'" if names else "a buffer"


def _last_use(alloc: ir.Operation, fn: ir.Operation, position: dict[ir.Operation, int]) -> int:
    """The position of the last top-level op that uses the buffer of `alloc` or any memref an
    op derives from it (views, loop results: every memref result of an op that reads it)."""
    last = position[alloc]
    pending = [alloc.results[0]]
    seen: set[ir.Value] = set()
    while pending:
        value = pending.pop()
        if value in seen:
            continue
        seen.add(value)
        for use in value.uses:
            user = use.owner.operation if isinstance(use.owner, ir.OpView) else use.owner
            last = max(last, position[_top_level(user, fn)])
            pending.extend(r for r in user.results if isinstance(r.type, ir.MemRefType))
    return last


def _plain(memref_type: ir.Type) -> bool:
    """A static shape in the identity layout (what `memref.view` can give)."""
    shaped = ir.MemRefType(memref_type)
    return shaped.has_static_shape and memref_type == ir.MemRefType.get(shaped.shape, shaped.element_type)


def place_in_arena(fn: ir.Operation) -> Arena:
    """Moves the static top-level allocations of `fn` into a new trailing `memref<Nxi8>` argument."""
    with fn.context, fn.location:
        return _place_in_arena(fn)


def _place_in_arena(fn: ir.Operation) -> Arena:
    body = fn.regions[0].blocks[0]
    ops = [op.operation for op in body.operations]
    position = {op: i for i, op in enumerate(ops)}
    allocs = [op for op in ops if op.name == "memref.alloc" and _plain(op.results[0].type)]
    lifetimes = []
    for index, op in enumerate(allocs):
        shaped = ir.MemRefType(op.results[0].type)
        nbytes = math.prod(shaped.shape) * max(1, shaped.element_type.width // 8)
        lifetimes.append(Lifetime(f"b{index}", nbytes, position[op], _last_use(op, fn, position)))
    plan = plan_memory(lifetimes, alignment=HOST_ALIGNMENT)
    arena_type = ir.MemRefType.get([max(plan.arena_bytes, 1)], ir.IntegerType.get_signless(8))
    arena = body.add_argument(arena_type, fn.location)
    function_type = ir.FunctionType(ir.TypeAttr(fn.attributes["function_type"]).value)
    fn.attributes["function_type"] = ir.TypeAttr.get(
        ir.FunctionType.get([*function_type.inputs, arena_type], function_type.results)
    )
    buffers = []
    for op, lifetime in zip(allocs, lifetimes, strict=True):
        offset = plan.offsets[lifetime.name]
        with op.location, ir.InsertionPoint(op):
            start = arith.ConstantOp(ir.IndexType.get(), offset).result
            view = memref.ViewOp(op.results[0].type, arena, start, []).result
        op.results[0].replace_all_uses_with(view)
        shape = tuple(ir.MemRefType(op.results[0].type).shape)
        buffers.append(ArenaBuffer(_what(op), shape, lifetime.nbytes, offset))
        op.erase()
    return Arena(plan.arena_bytes, tuple(buffers))
