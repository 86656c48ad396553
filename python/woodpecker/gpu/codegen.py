"""`compile_gpu`: linalg on tensors (weights as arguments) -> one PTX kernel per fused op chain."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any, Literal

from mlir import ir
from mlir.dialects import gpu

from woodpecker.errors import CompilationError
from woodpecker.gpu.arch import GpuArch, get_arch
from woodpecker.gpu.config import KINDS, GpuConfig, LaunchShape, default_config
from woodpecker.gpu.lower import (
    BUFFERIZE,
    OUTLINE,
    check_no_heap,
    private_to_stack,
    read_launch,
    run_pipeline,
    set_kernel_attributes,
    sink_constants_into_launch,
    symbol,
    to_dynamic_shared_memory,
    to_nvvm,
    to_ptx,
    top_ops,
)
from woodpecker.gpu.partition import KernelPlan, Partition, partition
from woodpecker.gpu.prepare import clone_module, prepare
from woodpecker.gpu.program import GpuKernel, GpuProgram, KernelArg
from woodpecker.gpu.ptxas import assemble_all, find_ptxas
from woodpecker.gpu.schedule import apply_script, map_to_gpu_script, schedule
from woodpecker.gpu.space import config_from_knobs, gpu_search_space
from woodpecker.kernels.space import SearchSpace

Assembler = Literal["ptxas", "mlir"]


@dataclass
class ScheduledKernel:
    plan: KernelPlan
    config: GpuConfig
    shape: LaunchShape


ConfigSpec = GpuConfig | Mapping[str, Any]
"""A kernel's schedule: a `GpuConfig`, or a dict of search-space knob values (`gpu.space`),
which is checked against the kernel's search space (`InvalidConfigError`) before compiling."""


def choose_config(plan: KernelPlan, configs: Mapping[str, ConfigSpec] | None, arch: GpuArch) -> ScheduledKernel:
    """The config for launch `plan`: its model kernel's for the main launch (or the launch's own
    name), else by kind, else the default; validated."""
    configs = configs or {}
    spec = configs.get(plan.model_kernel) if plan.is_main else None
    spec = spec or configs.get(plan.name) or configs.get(plan.kind)
    if spec is None:
        config = default_config(plan.problem, arch)
    elif isinstance(spec, GpuConfig):
        config = spec
    elif isinstance(spec, Mapping):
        knobs = gpu_search_space(plan.problem, arch, plan.name).validate(spec)
        config = replace(config_from_knobs(knobs), notes="search space")
    else:
        raise TypeError(f"kernel {plan.name}: a config must be a GpuConfig or a dict of knobs, got {type(spec)}")
    try:
        shape = config.launch_shape(plan.problem, arch)
    except ValueError as err:
        raise ValueError(f"kernel {plan.name} ({plan.kind}, output {plan.problem.output_shape}): {err}") from None
    return ScheduledKernel(plan, config, shape)


def plan_kernels(
    module: ir.Module, configs: Mapping[str, ConfigSpec] | None, arch: GpuArch, num_inputs: int | None = None
) -> tuple[Partition, list[ScheduledKernel]]:
    """Prepares a copy of `module`, cuts it into kernels and picks their configs."""
    work = clone_module(module)
    prepare(work)
    parts = partition(work, num_inputs)
    known = {p.name for p in parts.kernels} | {p.model_kernel for p in parts.kernels} | set(KINDS)
    unknown = set(configs or {}) - known
    if unknown:
        names = list(parts.model_kernels())
        raise ValueError(
            f"configs name no kernel of this model and no kernel kind: {sorted(unknown)} "
            f"(kinds: {', '.join(KINDS)}; kernels: {', '.join(names)})"
        )
    return parts, [choose_config(p, configs, arch) for p in parts.kernels]


def kernel_search_spaces(
    module: ir.Module, arch: str = "sm_90", num_inputs: int | None = None
) -> dict[str, SearchSpace]:
    """The search space of every kernel `compile_gpu` makes of `module`, by kernel name
    (`k0_matmul`, the key of its config)."""
    target = get_arch(arch)
    with module.context, ir.Location.unknown(module.context):
        work = clone_module(module)
        prepare(work)
        plans = partition(work, num_inputs).kernels
    return {p.name: gpu_search_space(p.problem, target, p.name) for p in plans}


def kernel_functions(device: ir.Module) -> dict[str, ir.Operation]:
    return {symbol(op): op for op in top_ops(device, "func.func")}


@contextmanager
def _timed(stages: dict[str, float], name: str) -> Iterator[None]:
    start = time.perf_counter()
    yield
    stages[name] = stages.get(name, 0.0) + time.perf_counter() - start


Stage = Literal["schedule", "nvvm"]
StageCallback = Callable[[str, ir.Module], None]


@dataclass
class _Lowered:
    """What the stages up to NVVM leave: the device module, the partition and the kernels."""

    device: ir.Module
    parts: Partition
    kernels: list[GpuKernel]


def _lower(
    module: ir.Module,
    target: GpuArch,
    configs: Mapping[str, ConfigSpec] | None,
    num_inputs: int | None,
    stages: dict[str, float],
    stop_after: Stage | None = None,
    on_stage: StageCallback | None = None,
) -> _Lowered:
    """Partition, schedule, bufferize, map to blocks/threads, outline and lower to NVVM (in
    the module's context); `stop_after="schedule"` returns right after the transform schedules."""
    with _timed(stages, "partition"):
        parts, scheduled = plan_kernels(module, configs, target, num_inputs)
    functions = kernel_functions(parts.device)
    with _timed(stages, "schedule"):
        for item in scheduled:
            schedule(functions[item.plan.name], item.plan, item.config, item.shape, gpu_mapping=True)
    if on_stage is not None:
        on_stage("schedule", parts.device)
    if stop_after == "schedule":
        return _Lowered(parts.device, parts, [])
    with _timed(stages, "bufferize"):
        run_pipeline(parts.device, BUFFERIZE, "bufferization of the GPU kernels")
    with _timed(stages, "map-to-gpu"):
        for item in scheduled:
            where = f"kernel {item.plan.name}: mapping to blocks/threads"
            apply_script(functions[item.plan.name], map_to_gpu_script(item.shape.block), where)
            sink_constants_into_launch(functions[item.plan.name])
        run_pipeline(parts.device, OUTLINE, "kernel outlining")
    kernels = _launches(parts.device, scheduled)
    with _timed(stages, "nvvm"):
        to_nvvm(parts.device, target)
    if on_stage is not None:
        on_stage("nvvm", parts.device)
    return _Lowered(parts.device, parts, kernels)


def schedule_gpu_kernels(
    module: ir.Module,
    arch: str = "sm_90",
    configs: Mapping[str, ConfigSpec] | None = None,
    *,
    num_inputs: int | None = None,
) -> ir.Module:
    """The device module `compile_gpu` builds, right after the transform schedules: one
    `func.func @k<i>_<kind>` per kernel on tensors, tiled into `scf.forall` loops mapped to
    `#gpu.block`/`#gpu.thread` (shared tiles in `#gpu.address_space<workgroup>`), before
    bufferization. `module` is not modified."""
    target = get_arch(arch)
    with module.context, ir.Location.unknown(module.context):
        return _lower(module, target, configs, num_inputs, {}, stop_after="schedule").device


def lower_gpu_kernels(
    module: ir.Module,
    arch: str = "sm_90",
    configs: Mapping[str, ConfigSpec] | None = None,
    *,
    num_inputs: int | None = None,
) -> ir.Module:
    """The device module `compile_gpu` builds, lowered to NVVM just before PTX serialization:
    one `gpu.module` per kernel (`#nvvm.target`, an `llvm.func` with `nvvm.kernel`), with
    `wpk.gpu.grid`, `wpk.gpu.block` and `wpk.gpu.shared_bytes` on each gpu.module. `module`
    is not modified."""
    target = get_arch(arch)
    with module.context, ir.Location.unknown(module.context):
        return _lower(module, target, configs, num_inputs, {}).device


def compile_gpu(
    module: ir.Module,
    arch: str = "sm_90",
    configs: Mapping[str, ConfigSpec] | None = None,
    *,
    num_inputs: int | None = None,
    assemble: bool | None = None,
    assembler: Assembler = "ptxas",
    on_stage: StageCallback | None = None,
) -> GpuProgram:
    """Compiles the linalg-on-tensors @main of `module` (weights outlined as trailing
    arguments) into PTX kernels for `arch`, with their launch geometry and buffer plan.

    `configs` maps a kernel name (`k3_conv`) or kind (`conv`) to its `GpuConfig` (or to a
    dict of search-space knobs, see `gpu.space`); other kernels get `default_config`.
    `num_inputs` is the number of graph inputs among @main's arguments (default: from
    `wpk.input_names`, else all). `assemble` (default: when ptxas is installed) also
    produces cubins and ptxas' resource report; `assembler="mlir"` makes the cubins with
    MLIR's `gpu-module-to-binary{format=bin}` instead of calling ptxas directly.
    `on_stage(name, device_module)` is called after the schedules ("schedule") and after
    lowering to NVVM ("nvvm"). The input module is not modified.
    """
    target = get_arch(arch)
    stages: dict[str, float] = {}
    with module.context, ir.Location.unknown(module.context):
        lowered = _lower(module, target, configs, num_inputs, stages, on_stage=on_stage)
        parts, kernels = lowered.parts, lowered.kernels
        nvvm_module = clone_module(parts.device) if assembler == "mlir" else None
        with _timed(stages, "ptx"):
            ptx = to_ptx(parts.device)
        for kernel in kernels:
            kernel.ptx = ptx[kernel.name]
        if assemble is None:
            assemble = find_ptxas() is not None
        if assemble:
            with _timed(stages, "assemble"):
                _assemble(kernels, nvvm_module, target)
    return GpuProgram(
        arch=target.chip,
        kernels=kernels,
        inputs=parts.inputs,
        weights=parts.weights,
        outputs=parts.outputs,
        intermediates=parts.intermediates,
        stage_seconds=stages,
    )


def _launches(device: ir.Module, scheduled: list[ScheduledKernel]) -> list[GpuKernel]:
    """Reads each host function's launch, moves shared tiles to dynamic shared memory and
    drops the host functions; returns the kernels (PTX still empty)."""
    functions = kernel_functions(device)
    gpu_modules = {symbol(op): op for op in top_ops(device, "gpu.module")}
    kernels = []
    for item in scheduled:
        plan = item.plan
        launch = read_launch(functions[plan.name])
        if (launch.grid, launch.block) != (item.shape.grid, item.shape.block):
            raise CompilationError(
                f"kernel {plan.name}: launch {launch.grid}x{launch.block} differs from the schedule's "
                f"{item.shape.grid}x{item.shape.block}"
            )
        args = []
        for position in launch.arg_positions:
            if position < len(plan.inputs):
                arg = plan.inputs[position]
                args.append(KernelArg(arg.buffer, arg.shape, "read"))
            else:
                args.append(KernelArg(plan.output.buffer, plan.output.shape, "write"))
        gpu_module = gpu_modules[launch.module]
        gpu_func = next(
            op.operation for op in gpu_module.regions[0].blocks[0].operations if op.operation.name == "gpu.func"
        )
        shared = to_dynamic_shared_memory(gpu_func)
        private_to_stack(gpu_func, launch.kernel)
        check_no_heap(gpu_func, launch.kernel)
        set_kernel_attributes(gpu_func)
        _annotate_launch(gpu_module, launch.grid, launch.block, shared)
        kernels.append(
            GpuKernel(
                name=launch.kernel,
                kind=plan.kind,
                ptx="",
                grid=launch.grid,
                block=launch.block,
                shared_bytes=shared,
                args=args,
                config=item.config,
                problem=plan.problem,
                ops=list(plan.ops),
                function=plan.name,
                model_kernel=plan.model_kernel,
            )
        )
    for fn in functions.values():
        fn.erase()
    return kernels


def _annotate_launch(
    gpu_module: ir.Operation, grid: tuple[int, int, int], block: tuple[int, int, int], shared: int
) -> None:
    """Launch data as discardable attributes of the kernel's gpu.module (for IR dumps)."""
    ctx = gpu_module.context
    gpu_module.attributes["wpk.gpu.grid"] = ir.DenseI32ArrayAttr.get(list(grid), ctx)
    gpu_module.attributes["wpk.gpu.block"] = ir.DenseI32ArrayAttr.get(list(block), ctx)
    gpu_module.attributes["wpk.gpu.shared_bytes"] = ir.IntegerAttr.get(ir.IntegerType.get_signless(64, ctx), shared)


def _assemble(kernels: list[GpuKernel], nvvm_module: ir.Module | None, arch: GpuArch) -> None:
    reports = assemble_all({k.name: k.ptx for k in kernels}, arch.chip)
    cubins = _mlir_cubins(nvvm_module) if nvvm_module is not None else {}
    for kernel in kernels:
        cubin, resources = reports[kernel.name]
        kernel.cubin = cubins.get(kernel.name, cubin)
        kernel.resources = resources


def _mlir_cubins(module: ir.Module) -> dict[str, bytes]:
    """cubins from `gpu-module-to-binary{format=bin}` (MLIR runs ptxas itself)."""
    run_pipeline(module, "builtin.module(gpu-module-to-binary{format=bin})", "cubin generation (gpu-module-to-binary)")
    cubins = {}
    for binary in top_ops(module, "gpu.binary"):
        cubins[symbol(binary)] = bytes(gpu.ObjectAttr(ir.ArrayAttr(binary.attributes["objects"])[0]).object)
    return cubins
