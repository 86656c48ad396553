"""Assembling the CUDA inference plan: the compiled kernels, the chosen library calls, the arena.

`build_inference_plan(program, ...)` turns a `GpuProgram` (kernels in launch order over
input/weight/output/intermediate buffers) and the per-kernel choice of implementation into a
`woodpecker.runtime.cuda.plan.InferencePlan`:

* one step per model kernel, with its launches (`GpuKernel.model_kernel`); a kernel whose
  choice is a library call gets a `LibraryStep` whose operands are the kernel's own buffers (its
  generated launches stay as its fallback);
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
from woodpecker.kernels.naming import kernel_kind
from woodpecker.runtime.cuda.plan import InferencePlan, KernelLaunch, LibraryStep, PlanBuffer, PlanError, Step
from woodpecker.runtime.memory import Lifetime, align, conflicts, plan_memory


@dataclass(frozen=True)
class KernelImpl:
    """The implementation chosen for one model kernel (by its name, `k3_conv`)."""

    library: LibraryStep | None = None  # None: the generated kernels
    how: str = "only candidate"


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
    """Buffer lifetimes over the launches: a step's generated kernels run one after the other
    (a padding gather's output is dead once the convolution read it); its library call, which
    may run instead, keeps its operands live over the whole step."""
    first: dict[str, int] = {}
    last: dict[str, int] = {}

    def write(name: str, position: int) -> None:
        first[name] = min(first.get(name, position), position)
        last[name] = max(last.get(name, position), position)

    def read(name: str, position: int) -> None:
        last[name] = max(last.get(name, position), position)

    position = 0
    for step in steps:
        begin = position
        for kernel in step.kernels:
            for name in kernel.writes:
                write(name, position)
            for name in kernel.reads:
                read(name, position)
            position += 1
        end_of_step = position - 1
        if step.library is not None:
            for name in step.writes:
                write(name, begin)
                read(name, end_of_step)
            for name in step.reads:
                read(name, end_of_step)
    end = position
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
    steps: list[Step] = []
    kinds: dict[str, list[str]] = {}
    for kernel in program.kernels:
        name = kernel.model_kernel or kernel.function
        if not steps or steps[-1].name != name:
            impl = impls.get(name, KernelImpl())
            steps.append(Step(name, kernel.kind, [], impl.library, impl.how))
        steps[-1].kernels.append(kernel_launch(kernel))
        kinds.setdefault(name, []).append(kernel.kind)
    for step in steps:
        step.kind = kernel_kind(kinds[step.name])
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
