"""`woodpecker.compile`: ONNX model -> runnable `CompiledModel`, stage by stage.

import -> optimize (graph passes of the opt level) -> outline weights -> lower to linalg
-> bufferize/LLVM -> JIT.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np
import onnx
from mlir import ir
from mlir.passmanager import PassManager

from woodpecker.backend.cpu import CpuOptions, compile_cpu
from woodpecker.backend.model import CompiledModel
from woodpecker.errors import CompilationError
from woodpecker.graph.context import DATA_OPS, GraphContext
from woodpecker.graph.outline_weights import main_func, outline_weights
from woodpecker.importer import ImportedModel, import_onnx_with_weights
from woodpecker.lowering import lower_to_linalg
from woodpecker.passes import build_pass_manager, opt_level_pipeline
from woodpecker.stats import CompileStats

if TYPE_CHECKING:
    from woodpecker.gpu.config import GpuConfig
    from woodpecker.gpu.model import CudaModel

TARGETS = ("cpu", "cuda")
OPT_LEVELS = (0, 1, 2)


@dataclass
class CompileOptions:
    """What `compile` does; the defaults are what `wpk run` uses."""

    target: str = "cpu"
    # Graph optimization: 0 none, 1 folding (constants, batch_norm), 2 folding and fusion.
    opt_level: int = 2
    cpu: CpuOptions = field(default_factory=CpuOptions)
    # Called with (stage name, module) after each stage, e.g. to dump IR.
    on_stage: Callable[[str, ir.Module], None] | None = None
    # target="cuda": the GPU architecture, and per-kernel schedules (kernel name or kind ->
    # GpuConfig or a dict of search-space knobs, see woodpecker.gpu.space).
    arch: str = "sm_90"
    gpu_configs: Mapping[str, GpuConfig | Mapping[str, Any]] | None = None
    # The best configuration `wpk tune` recorded for a kernel is used unless the kernel is
    # configured in cpu.schedules; tuning_db: a storage URL or path (None: the default
    # database, see woodpecker.tune.storage).
    use_tuning_records: bool = True
    tuning_db: str | None = None
    # target="cpu": the vendor libraries whose kernels compete with the generated ones ("all",
    # "none", "onednn", "blas", or a comma-separated list), and how each kernel's implementation
    # is chosen: "records" (the stored measurements, else the stated heuristic), "measure"
    # (measure what is not recorded yet and record it), "heuristic" (never measure).
    libraries: str = "all"
    select: str = "records"

    def validate(self) -> None:
        if self.target not in TARGETS:
            raise CompilationError(
                f"target '{self.target}' is not supported yet; available targets: {', '.join(TARGETS)}"
            )
        from woodpecker.select.candidates import parse_libraries
        from woodpecker.select.selection import MODES

        try:
            parse_libraries(self.libraries, self.target)
        except ValueError as err:
            raise CompilationError(str(err)) from None
        if self.select not in MODES:
            raise CompilationError(f"select must be one of {', '.join(MODES)}, got {self.select!r}")
        if self.opt_level not in OPT_LEVELS:
            raise CompilationError(f"opt_level must be one of {OPT_LEVELS}, got {self.opt_level!r}")
        if self.target == "cuda":
            from woodpecker.gpu.arch import ARCHS

            if self.arch not in ARCHS:
                raise CompilationError(
                    f"unknown CUDA architecture '{self.arch}'; known architectures: {', '.join(ARCHS)}"
                )


def compile(
    model: str | os.PathLike | onnx.ModelProto | ImportedModel,
    target: str = "cpu",
    opt_level: int = 2,
    input_shapes: Mapping[str, Sequence[int]] | None = None,
    options: CompileOptions | None = None,
    *,
    arch: str = "sm_90",
) -> CompiledModel | CudaModel:
    """Compiles an ONNX model (path, ModelProto, or an already imported model) for `target`.

    target="cuda" returns a `woodpecker.gpu.model.CudaModel` (PTX kernels for `arch`)."""
    options = options or CompileOptions(target=target, opt_level=opt_level, arch=arch)
    options.validate()
    stats = CompileStats()
    lowered = lower_model(model, options, input_shapes, stats)
    imported, module, weights = lowered.imported, lowered.module, lowered.weights
    with imported.context, ir.Location.unknown():
        if options.target == "cuda":
            from woodpecker.gpu.model import build_cuda_model

            with _stage(stats, "select"):
                gpu_configs, selection = _cuda_plan(module, len(imported.input_names), options, stats)
            return build_cuda_model(
                module, weights, imported, options.arch, gpu_configs, stats, selection.impls, selection.choices,
                report_header=selection.header,
            )
        with _stage(stats, "select"):
            cpu_options, selection = _cpu_plan(module, len(weights), options, stats)
        with _stage(stats, "codegen"):
            executable = compile_cpu(module, cpu_options, num_weights=len(weights), weights=weights)
        executable.bind_weights(weights)
        stats.library_kernels = len(executable.libraries)  # explicitly configured ones included
    stats.parallel = executable.parallel
    return CompiledModel(
        input_names=list(imported.input_names),
        output_names=list(imported.output_names),
        input_shapes={k: tuple(v) for k, v in imported.input_shapes.items()},
        output_shapes={k: tuple(v) for k, v in imported.output_shapes.items()},
        executable=executable,
        stats=stats,
        target=options.target,
        selection=selection,
    )


@dataclass
class LoweredModel:
    """A model after the target-independent stages: @main on linalg tensors, weights outlined."""

    imported: ImportedModel
    module: ir.Module
    weights: list[np.ndarray]  # the trailing arguments of @main, in order


def lower_model(
    model: str | os.PathLike | onnx.ModelProto | ImportedModel,
    options: CompileOptions,
    input_shapes: Mapping[str, Sequence[int]] | None = None,
    stats: CompileStats | None = None,
) -> LoweredModel:
    """import -> optimize -> outline weights -> lower to linalg (what every target shares)."""
    stats = stats if stats is not None else CompileStats()
    with _stage(stats, "import"):
        imported = model if isinstance(model, ImportedModel) else import_onnx_with_weights(model, input_shapes)
    module = imported.module
    with imported.context, ir.Location.unknown():
        _report(options, "import", module)
        stats.num_ops_before = _count_kernels(module)
        with _stage(stats, "optimize"):
            optimize_graph(module, options.opt_level, GraphContext(imported.weights))
        _report(options, "optimize", module)
        stats.num_kernels = _count_kernels(module)
        with _stage(stats, "outline-weights"):
            outlined = outline_weights(module)
            imported.weights.retain({w.resource for w in outlined})
            weights = [imported.weights.arrays[w.resource] for w in outlined]
        with _stage(stats, "lower-to-linalg"):
            lower_to_linalg(module.operation)
            if options.opt_level >= 1:
                _run_upstream(module, "builtin.module(canonicalize,cse)")
        _report(options, "linalg", module)
    return LoweredModel(imported, module, weights)


def _cpu_plan(module: ir.Module, num_weights: int, options: CompileOptions, stats: CompileStats):
    """`options.cpu` with each kernel's tuning record and chosen implementation (kernels the
    caller configured explicitly keep their configuration), and the selection made."""
    from woodpecker.select.candidates import parse_libraries
    from woodpecker.select.plan import cpu_plan

    plan = cpu_plan(
        module,
        num_weights,
        options.cpu,
        parse_libraries(options.libraries),
        # Without records, nothing stored is read: the heuristic chooses unless asked to measure.
        mode=options.select if options.use_tuning_records or options.select == "measure" else "heuristic",
        use_records=options.use_tuning_records,
        storage=options.tuning_db,
    )
    stats.tuned_kernels = plan.tuned_kernels
    if not plan.schedules:
        return options.cpu, plan.choices
    return replace(options.cpu, schedules={**plan.schedules, **dict(options.cpu.schedules or {})}), plan.choices


def _cuda_plan(module: ir.Module, num_inputs: int, options: CompileOptions, stats: CompileStats):
    """(per-kernel GPU configs: the caller's, then the best tuning records of the generated
    kernels the selection kept; the selection: per kernel generated / cuDNN / cuBLAS)."""
    from woodpecker.runtime.cuda.launch import cuda_status
    from woodpecker.select.candidates import parse_libraries
    from woodpecker.select.cuda_plan import cuda_selection, plan_selection_header
    from woodpecker.tune.cuda_tasks import cuda_kernel_cuts
    from woodpecker.tune.storage import storage_exists

    explicit = dict(options.gpu_configs or {})
    libraries = parse_libraries(options.libraries, "cuda")
    mode = options.select if options.use_tuning_records or options.select == "measure" else "heuristic"
    gpu_reason = cuda_status()
    if mode == "measure" and gpu_reason is not None:
        raise CompilationError(
            f"select='measure' times the candidates on an NVIDIA GPU, and there is none here ({gpu_reason}); "
            "use select='heuristic' (or 'records' with timings recorded on a GPU host)"
        )
    read_records = options.use_tuning_records and storage_exists(options.tuning_db)
    cuts = cuda_kernel_cuts(module, options.arch, num_inputs=num_inputs)
    records: dict[str, dict] = {}
    if read_records:
        from woodpecker.tune.records import best_records

        records = {key: found[0] for key, found in best_records(options.tuning_db, [c.task.key for c in cuts]).items()}
    selection = cuda_selection(cuts, libraries, mode, records, explicit, storage=options.tuning_db, arch=options.arch)
    selection.header = plan_selection_header(options.arch, mode, libraries, gpu_reason)
    stats.tuned_kernels = selection.tuned_kernels
    return {**selection.configs, **explicit} or None, selection


def optimize_graph(module: ir.Module, opt_level: int, graph: GraphContext) -> None:
    """Runs the graph passes of `opt_level` (passes.OPT_LEVEL_PIPELINES) on the `wpk` module.

    Folded weights are added to `graph.weights`.
    """
    pipeline = opt_level_pipeline(opt_level)
    if not pipeline:
        return
    try:
        build_pass_manager(pipeline, module.context, graph).run(module.operation)
    except ir.MLIRError as err:
        raise CompilationError(f"graph optimization (opt_level={opt_level}) failed: {err}") from None


def _count_kernels(module: ir.Module) -> int:
    """`wpk` ops of @main other than weights and constants: after optimization, one per kernel."""
    ops = main_func(module).regions[0].blocks[0].operations
    return sum(1 for op in ops if op.operation.name.startswith("wpk.") and op.operation.name not in DATA_OPS)


def _run_upstream(module: ir.Module, pipeline: str) -> None:
    PassManager.parse(pipeline, context=module.context).run(module.operation)


def _report(options: CompileOptions, stage: str, module: ir.Module) -> None:
    if options.on_stage is not None:
        options.on_stage(stage, module)


@contextmanager
def _stage(stats: CompileStats, name: str) -> Iterator[None]:
    start = time.perf_counter()
    yield
    stats.stage_seconds[name] = stats.stage_seconds.get(name, 0.0) + time.perf_counter() - start


def random_feeds(model: CompiledModel, seed: int = 0) -> dict[str, np.ndarray]:
    """Random float32 inputs of the right shapes (for demos and benchmarks)."""
    rng = np.random.default_rng(seed)
    return {name: rng.standard_normal(model.input_shapes[name]).astype(np.float32) for name in model.input_names}
