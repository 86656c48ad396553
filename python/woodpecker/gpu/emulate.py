"""Checking GPU schedules on the CPU: same kernels, same tiling, no GPU mapping.

`run_on_cpu` cuts the module into the kernels `compile_gpu` would make, applies the same
transform scripts with `gpu_mapping=False` (shared-memory tiles become ordinary buffers,
`scf.forall` loops are lowered with `scf-forall-to-for` after bufferization), JIT-compiles
each kernel with the CPU backend's pipelines and runs them in order on numpy buffers laid
out by the program's buffer plan. What it checks: partition, in-place epilogues, tiling,
fusion, reduction tiling and promotion arithmetic, and the kernel argument/buffer mapping.
What it cannot check: anything specific to the GPU (barriers, thread guards, NVVM).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from mlir import ir
from mlir.passmanager import PassManager

from woodpecker.backend.cpu import CpuExecutable, machine_code
from woodpecker.backend.pipelines import BUFFERIZE, LOOPS_SERIAL, TO_LLVM
from woodpecker.errors import CompilationError
from woodpecker.gpu.arch import get_arch
from woodpecker.gpu.codegen import ConfigSpec, ScheduledKernel, kernel_functions, plan_kernels
from woodpecker.gpu.program import BufferRef
from woodpecker.gpu.schedule import schedule
from woodpecker.runtime.shared_libs import c_runner_utils

CPU_PIPELINE = (
    f"builtin.module(canonicalize,{BUFFERIZE},func.func(scf-forall-to-for),{LOOPS_SERIAL},{TO_LLVM.format(openmp='')})"
)


@dataclass
class CpuKernel:
    """One scheduled kernel JIT-compiled for the CPU."""

    scheduled: ScheduledKernel
    executable: CpuExecutable

    def __call__(self, inputs: Sequence[np.ndarray]) -> np.ndarray:
        plan = self.scheduled.plan
        out = np.zeros(plan.output.shape, dtype=np.float32)
        (result,) = self.executable([*inputs, out])
        return result


def compile_kernel_for_cpu(fn: ir.Operation, item: ScheduledKernel, llvm_opt_level: int = 1) -> CpuKernel:
    """JIT-compiles scheduled kernel function `fn` (tensors, no GPU mapping) as `@main`."""
    module = ir.Module.parse(fn.get_asm(), context=fn.context)
    main = module.body.operations[0]
    main.attributes["sym_name"] = ir.StringAttr.get("main", fn.context)
    main.attributes["llvm.emit_c_interface"] = ir.UnitAttr.get(fn.context)
    try:
        PassManager.parse(CPU_PIPELINE, context=fn.context).run(module.operation)
    except (ir.MLIRError, RuntimeError) as err:
        raise CompilationError(f"kernel {item.plan.name}: CPU compilation of the schedule failed: {err}") from None
    try:
        engine, entry = machine_code(module, llvm_opt_level, [str(c_runner_utils())])
    except CompilationError as err:
        raise CompilationError(f"kernel {item.plan.name}: {err}") from None
    executable = CpuExecutable(engine=engine, output_shapes=[item.plan.output.shape], parallel=False, main=entry)
    return CpuKernel(item, executable)


def compile_for_cpu(
    module: ir.Module,
    configs: Mapping[str, ConfigSpec] | None = None,
    arch: str = "sm_90",
    num_inputs: int | None = None,
) -> tuple[list[CpuKernel], list[tuple[int, ...]]]:
    """Every kernel of `module` scheduled as for `arch`, compiled for the CPU; and the output shapes."""
    target = get_arch(arch)
    with module.context, ir.Location.unknown(module.context):
        parts, scheduled = plan_kernels(module, configs, target, num_inputs)
        functions = kernel_functions(parts.device)
        kernels = []
        for item in scheduled:
            fn = functions[item.plan.name]
            schedule(fn, item.plan, item.config, item.shape, gpu_mapping=False)
            kernels.append(compile_kernel_for_cpu(fn, item))
    return kernels, parts.outputs


def run_on_cpu(
    module: ir.Module,
    inputs: Sequence[np.ndarray],
    weights: Sequence[np.ndarray] = (),
    configs: Mapping[str, ConfigSpec] | None = None,
    arch: str = "sm_90",
) -> list[np.ndarray]:
    """Runs the GPU kernels of `module` (scheduled as by `compile_gpu`) on the CPU, in order."""
    kernels, output_shapes = compile_for_cpu(module, configs, arch, num_inputs=len(inputs))
    buffers: dict[BufferRef, np.ndarray] = {}
    for i, array in enumerate(inputs):
        buffers[BufferRef("input", i)] = np.ascontiguousarray(array, dtype=np.float32)
    for i, array in enumerate(weights):
        buffers[BufferRef("weight", i)] = np.ascontiguousarray(array, dtype=np.float32)
    for kernel in kernels:
        plan = kernel.scheduled.plan
        args = [buffers[a.buffer].reshape(a.shape) for a in plan.inputs]
        buffers[plan.output.buffer] = kernel(args)
    return [buffers[BufferRef("output", k)].reshape(shape) for k, shape in enumerate(output_shapes)]
