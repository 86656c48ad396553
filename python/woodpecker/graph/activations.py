"""The activation memory a model needs: every tensor of the optimized `@main`, planned by liveness.

Each computing `wpk` op writes one buffer (its kernel's output), live from that op to its last
reader; a reshape or flatten is a view of its operand's buffer; graph inputs live from before
the first op, graph outputs to after the last; weights and constants are not activations.
`plan_activations` places them with the arena planner of `woodpecker.runtime.memory` (the one
the CUDA plan uses), so its `peak_bytes` is the model's peak activation memory, and names the
largest buffer live at that peak by its node and op: what a compile reports
(`CompileStats.peak_activation_bytes`) and checks against the memory it may use
(`check_activation_memory`) before any code is generated or run.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from mlir import ir

from woodpecker.errors import MemoryLimitError
from woodpecker.graph.context import DATA_OPS
from woodpecker.graph.outline_weights import main_func
from woodpecker.runtime.memory import HOST_ALIGNMENT, Lifetime, MemoryPlan, format_bytes, plan_memory

VIEW_OPS = ("wpk.reshape", "wpk.flatten")
_QUOTED = re.compile(r'"((?:[^"\\]|\\.)*)"')


@dataclass(frozen=True)
class Activation:
    """One activation buffer: what writes it (a node and its op, or a graph input) and its size."""

    what: str
    shape: tuple[int, ...]
    nbytes: int

    def describe(self) -> str:
        return f"{self.what} [{', '.join(map(str, self.shape))}] ({format_bytes(self.nbytes)})"


@dataclass(frozen=True)
class ActivationPlan:
    buffers: dict[str, Activation]  # by the planner's buffer name
    plan: MemoryPlan
    largest_at_peak: Activation | None

    @property
    def peak_bytes(self) -> int:
        return self.plan.peak_bytes


def node_of(op: ir.Operation) -> str:
    """`node 'name' (wpk.op)` from the op's location (the importer names each op by its node)."""
    names = _QUOTED.findall(str(op.location))
    return f"node '{'+'.join(names)}' ({op.name})" if names else f"op {op.name}"


def _nbytes(value: ir.Value) -> tuple[tuple[int, ...], int]:
    shaped = ir.RankedTensorType(value.type)
    shape = tuple(int(d) for d in shaped.shape)
    return shape, math.prod(shape) * max(1, shaped.element_type.width // 8)


def plan_activations(module: ir.Module) -> ActivationPlan:
    """The activation buffers of `module`'s `@main` (the optimized `wpk` graph) and their plan."""
    fn = main_func(module)
    block = fn.regions[0].blocks[0]
    ops = [op.operation for op in block.operations]
    input_names = [ir.StringAttr(a).value for a in ir.ArrayAttr(fn.attributes["wpk.input_names"])]
    owner: dict[ir.Value, str] = {}  # value -> the buffer it lives in
    buffers: dict[str, Activation] = {}
    first: dict[str, int] = {}
    last: dict[str, int] = {}
    for index, arg in enumerate(list(block.arguments)[: len(input_names)]):
        name = f"input{index}"
        shape, nbytes = _nbytes(arg)
        buffers[name] = Activation(f"graph input '{input_names[index]}'", shape, nbytes)
        owner[arg] = name
        first[name] = last[name] = -1
    end = len(ops)
    for position, op in enumerate(ops):
        for operand in op.operands:
            if operand in owner:
                last[owner[operand]] = end if op.name == "func.return" else max(last[owner[operand]], position)
        if op.name in DATA_OPS or not op.results:
            continue
        if op.name in VIEW_OPS and op.operands[0] in owner:
            owner[op.results[0]] = owner[op.operands[0]]
            continue
        for k, result in enumerate(op.results):
            name = f"op{position}.{k}"
            shape, nbytes = _nbytes(result)
            buffers[name] = Activation(node_of(op), shape, nbytes)
            owner[result] = name
            first[name] = last[name] = position
    lifetimes = [Lifetime(name, buffers[name].nbytes, first[name], last[name]) for name in buffers]
    plan = plan_memory(lifetimes, alignment=HOST_ALIGNMENT)
    return ActivationPlan(buffers, plan, _largest_at_peak(lifetimes, buffers))


def _largest_at_peak(lifetimes: list[Lifetime], buffers: dict[str, Activation]) -> Activation | None:
    steps = sorted({s for b in lifetimes for s in (b.first, b.last)})
    if not steps:
        return None
    peak_step = max(steps, key=lambda s: sum(b.nbytes for b in lifetimes if b.first <= s <= b.last))
    live = [b for b in lifetimes if b.first <= peak_step <= b.last]
    return buffers[max(live, key=lambda b: b.nbytes).name]


def check_activation_memory(activations: ActivationPlan, limit: int, source: str) -> None:
    """Raises `MemoryLimitError` when the peak activation memory exceeds `limit` bytes
    (`source` says where the limit comes from), naming the largest buffer live at the peak."""
    peak = activations.peak_bytes
    if peak <= limit:
        return
    largest = activations.largest_at_peak
    culprit = f"; the largest buffer then is {largest.describe()}" if largest is not None else ""
    raise MemoryLimitError(
        f"the model needs {format_bytes(peak)} of activation memory at its peak, more than the "
        f"{format_bytes(limit)} {source}{culprit} (CompileOptions(memory_limit=BYTES) sets the limit)"
    )
