"""Assembling the CUDA inference plan: the compiled kernels, the chosen library calls, the arena.

`build_inference_plan(program, ...)` turns a `GpuProgram` (kernels in launch order over
input/weight/output/intermediate buffers) and the per-kernel choice of implementation into a
`woodpecker.runtime.cuda.plan.InferencePlan`:

* one step per kernel; a kernel whose choice is a library call gets a `LibraryStep` whose
  operands are the kernel's own buffers (the generated kernel stays as its fallback);
* each activation buffer's lifetime runs from the step that writes it to the last step that
  reads it (a library step and its fallback kernel both count, so that either may run), graph
  inputs from before the first step, graph outputs to after the last; `plan_memory` places
  them in one arena; weights are packed into one block.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from woodpecker.gpu.program import BufferRef, GpuKernel, GpuProgram
from woodpecker.gpu.space import knobs_from_config
from woodpecker.runtime.cuda.plan import InferencePlan, KernelLaunch, LibraryStep, PlanBuffer, PlanError, Step
from woodpecker.runtime.memory import Lifetime, align, conflicts, plan_memory


@dataclass(frozen=True)
class KernelImpl:
    """The implementation chosen for one kernel (by its function name, `k3_conv`)."""

    library: LibraryStep | None = None  # None: the generated kernel
    how: str = "only candidate"
    only_for: str | None = None  # a pad that library step `only_for` does itself (see Step)


def kernel_launch(
    kernel: GpuKernel, entry: str | None = None, buffer_name: Callable[[BufferRef], str] = str
) -> KernelLaunch:
    """`kernel` as a plan's launch: its arguments named by `buffer_name`; under `entry` (the PTX
    entry renamed, and no cubin: the driver JIT-compiles the PTX) when given."""
    renamed = entry is not None and entry != kernel.name
    return KernelLaunch(
        entry=entry or kernel.name,
        ptx=kernel.ptx.replace(kernel.name, entry) if renamed else kernel.ptx,
        grid=tuple(kernel.grid),
        block=tuple(kernel.block),
        shared_bytes=kernel.shared_bytes,
        args=[(buffer_name(a.buffer), tuple(a.shape), a.access) for a in kernel.args],
        cubin=None if renamed else kernel.cubin,
        config=json.loads(json.dumps(knobs_from_config(kernel.config))),  # as saved: lists, not tuples
    )


def _lifetimes(program: GpuProgram, steps: Sequence[Step]) -> list[Lifetime]:
    first: dict[str, int] = {}
    last: dict[str, int] = {}
    for position, step in enumerate(steps):
        for name in {*step.writes, *step.kernel.writes}:
            first.setdefault(name, position)
            last[name] = max(last.get(name, position), position)
        for name in {*step.reads, *step.kernel.reads}:
            last[name] = max(last.get(name, position), position)
    end = len(steps)
    lifetimes = []
    groups = {"input": program.inputs, "output": program.outputs}
    for kind, shapes in groups.items():
        for index, shape in enumerate(shapes):
            name = str(BufferRef(kind, index))
            start = -1 if kind == "input" else first.get(name)
            if start is None:
                raise PlanError(f"no step writes the graph output {name}")
            stop = end if kind == "output" else last.get(name, -1)
            lifetimes.append(Lifetime(name, 4 * math.prod(shape), start, stop))
    for index, shape in program.intermediates:
        name = str(BufferRef("intermediate", index))
        if name not in first:
            raise PlanError(f"no step writes {name}")
        lifetimes.append(Lifetime(name, 4 * math.prod(shape), first[name], last[name]))
    return lifetimes


def build_inference_plan(
    program: GpuProgram,
    input_names: Sequence[str],
    output_names: Sequence[str],
    impls: Mapping[str, KernelImpl] | None = None,
    selection: Mapping | None = None,
) -> InferencePlan:
    """The plan for `program` with `impls` (kernel function -> implementation; missing: the
    generated kernel). Raises PlanError when the program's buffers are inconsistent."""
    impls = impls or {}
    steps = []
    for kernel in program.kernels:
        impl = impls.get(kernel.function, KernelImpl())
        steps.append(Step(kernel.function, kernel.kind, kernel_launch(kernel), impl.library, impl.how, impl.only_for))
    lifetimes = _lifetimes(program, steps)
    memory = plan_memory(lifetimes)
    found = conflicts(lifetimes, memory.offsets)
    if found:  # plan_memory's invariant: a failure here is a bug in it
        raise PlanError(f"the memory plan overlaps live buffers: {found[0]}")
    buffers: dict[str, PlanBuffer] = {}
    for life in lifetimes:
        kind = life.name.split("[")[0]
        shape = program.shape_of(BufferRef(kind, int(life.name[len(kind) + 1 : -1])))
        buffers[life.name] = PlanBuffer(life.name, kind, tuple(shape), memory.offsets[life.name])
    offset = 0
    for index, shape in enumerate(program.weights):
        name = str(BufferRef("weight", index))
        buffers[name] = PlanBuffer(name, "weight", tuple(shape), offset)
        offset += align(4 * math.prod(shape))
    plan = InferencePlan(
        arch=program.arch,
        inputs=[(n, str(BufferRef("input", i))) for i, n in enumerate(input_names)],
        outputs=[(n, str(BufferRef("output", i))) for i, n in enumerate(output_names)],
        buffers=buffers,
        steps=steps,
        arena_bytes=memory.arena_bytes,
        weight_bytes=offset,
        calling_convention=program.calling_convention,
        memory={"arena_bytes": memory.arena_bytes, "total_bytes": memory.total_bytes, "peak_bytes": memory.peak_bytes},
        selection=dict(selection or {}),
    )
    plan.validate()
    return plan
