"""`woodpecker.compile`: ONNX model -> a runnable model, the same few steps for every target.

    lowered = lower_model(...)               import -> optimize -> outline weights -> lower
    cut, plan = plan_kernels(target, ...)    model kernels; per kernel Generated | Library
    model = target.codegen(lowered, cut, plan, stats)

`target` is a `woodpecker.targets.cpu.CpuTarget` (LLVM through the ExecutionEngine) or a
`woodpecker.targets.cuda.CudaTarget` (PTX kernels and an inference plan).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any

import numpy as np
import onnx
from mlir import ir

from woodpecker.backend.cpu import CpuOptions
from woodpecker.errors import CompilationError
from woodpecker.frontend import OPT_LEVELS, LoweredModel, lower_model
from woodpecker.graph.activations import check_activation_memory
from woodpecker.importer import ImportedModel, import_onnx_with_weights
from woodpecker.kernels.target import Target
from woodpecker.passes import layout_element, layout_for_target
from woodpecker.runtime.memory import host_available_bytes
from woodpecker.select.candidates import parse_libraries
from woodpecker.select.layout_record import RULE, model_name, recorded_layout
from woodpecker.select.plan import PlanRequest, plan_kernels
from woodpecker.select.selection import MODES
from woodpecker.stats import CompileStats, timed_stage

if TYPE_CHECKING:
    from woodpecker.backend.model import CompiledModel
    from woodpecker.gpu.config import GpuConfig
    from woodpecker.gpu.model import CudaModel

TARGETS = ("cpu", "cuda")
DEFAULT_ARCH = "sm_90"


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
    arch: str = DEFAULT_ARCH
    gpu_configs: Mapping[str, GpuConfig | Mapping[str, Any]] | None = None
    # The best configuration `wpk tune` recorded for a kernel is used unless the kernel is
    # configured explicitly; tuning_db: the tuning database, a path or a postgresql:// URL
    # (None: the default one, see woodpecker.database; one that cannot be used raises a
    # woodpecker.database.DatabaseError, a WoodpeckerError).
    use_tuning_records: bool = True
    tuning_db: str | None = None
    # The vendor libraries whose kernels compete with the generated ones ("all", "none", or a
    # comma-separated list of the target's: onednn, blas; cudnn, cublas), and how each
    # kernel's implementation is chosen: "records" (the stored measurements, else the stated
    # heuristic), "measure" (measure what is not recorded yet and record it), "heuristic"
    # (never measure).
    libraries: str = "all"
    select: str = "records"
    # The bytes the model's activations may take at their peak (CompileStats.peak_activation_bytes);
    # more is a MemoryLimitError naming the largest buffer, before any code is generated. None:
    # the memory available on this machine for target="cpu" (MemAvailable), unchecked for cuda.
    memory_limit: int | None = None
    # The channel layout of convolution regions: "auto" (wpk-convert-layout at opt level 2,
    # blocks of the host's vector width; NCHW on cuda), "nchw", "blocked" (at every level, CPU
    # only), "blocked<N>".
    layout: str = "auto"
    # The choice of named layout regions (graph/convert_layout.py; `woodpecker.frontend.layout_regions`
    # lists them): region name -> "nchw" or a block size; regions not listed keep the rule.
    layout_regions: Mapping[str, str] | None = None

    def validate(self) -> None:
        if self.target not in TARGETS:
            raise CompilationError(
                f"target '{self.target}' is not supported yet; available targets: {', '.join(TARGETS)}"
            )
        try:
            parse_libraries(self.libraries, self.target)
        except ValueError as err:
            raise CompilationError(str(err)) from None
        if self.select not in MODES:
            raise CompilationError(f"select must be one of {', '.join(MODES)}, got {self.select!r}")
        if self.opt_level not in OPT_LEVELS:
            raise CompilationError(f"opt_level must be one of {OPT_LEVELS}, got {self.opt_level!r}")
        try:
            layout_element(layout_for_target(self.layout, self.target), self.opt_level, self.layout_regions)
        except ValueError as err:
            raise CompilationError(str(err)) from None
        if self.memory_limit is not None and (
            isinstance(self.memory_limit, bool) or not isinstance(self.memory_limit, int) or self.memory_limit <= 0
        ):
            raise CompilationError(f"memory_limit must be a positive number of bytes, got {self.memory_limit!r}")
        if self.target == "cuda":
            from woodpecker.gpu.arch import ARCHS

            if self.arch not in ARCHS:
                raise CompilationError(
                    f"unknown CUDA architecture '{self.arch}'; known architectures: {', '.join(ARCHS)}"
                )


def target_class(name: str) -> type[Target]:
    if name == "cuda":
        from woodpecker.targets.cuda import CudaTarget

        return CudaTarget
    from woodpecker.targets.cpu import CpuTarget

    return CpuTarget


def make_target(options: CompileOptions) -> Target:
    """The `Target` that `options` compile for."""
    if options.target == "cuda":
        from woodpecker.targets.cuda import CudaTarget

        return CudaTarget(arch=options.arch, configs=dict(options.gpu_configs or {}))
    from woodpecker.targets.cpu import CpuTarget

    return CpuTarget(options.cpu)


def resolve_options(
    options: CompileOptions | None, target: str | None, opt_level: int | None, arch: str | None
) -> CompileOptions:
    """`options`, or new ones from the keywords; a keyword that contradicts `options` is an error."""
    given = {"target": target, "opt_level": opt_level, "arch": arch}
    if options is None:
        defaults = {f.name: f.default for f in fields(CompileOptions) if f.name in given}
        return CompileOptions(**{k: defaults[k] if v is None else v for k, v in given.items()})
    for name, value in given.items():
        if value is not None and value != getattr(options, name):
            raise CompilationError(
                f"compile({name}={value!r}) contradicts options.{name}={getattr(options, name)!r}: "
                f"pass {name} in the options or as an argument, not both"
            )
    return options


def compile(
    model: str | os.PathLike | onnx.ModelProto | ImportedModel,
    target: str | None = None,
    opt_level: int | None = None,
    input_shapes: Mapping[str, Sequence[int]] | None = None,
    options: CompileOptions | None = None,
    *,
    arch: str | None = None,
) -> CompiledModel | CudaModel:
    """Compiles an ONNX model (path, ModelProto, or an already imported model) for `target`
    ("cpu", the default, or "cuda"; `arch` for CUDA, default sm_90) at `opt_level` (default 2),
    or as `options` say; target="cuda" returns a `woodpecker.gpu.model.CudaModel`."""
    options = resolve_options(options, target, opt_level, arch)
    options.validate()
    backend = make_target(options)
    stats = CompileStats()
    layout = layout_for_target(options.layout, options.target)
    model, regions = choose_layout(model, input_shapes, options, backend, stats)
    lowered = lower_model(model, options.opt_level, input_shapes, stats, options.on_stage, layout, regions)
    check_memory(lowered, options)
    request = PlanRequest(
        libraries=parse_libraries(options.libraries, options.target),
        mode=options.select,
        use_records=options.use_tuning_records,
        storage=options.tuning_db,
        explicit=tuple(explicit_configs(options)),
    )
    with lowered.imported.context, ir.Location.unknown():
        with timed_stage(stats, "select"):
            cut, plan = plan_kernels(backend, lowered, request)
        return backend.codegen(lowered, cut, plan, stats)


def choose_layout(
    model: str | os.PathLike | onnx.ModelProto | ImportedModel,
    input_shapes: Mapping[str, Sequence[int]] | None,
    options: CompileOptions,
    backend: Target,
    stats: CompileStats,
) -> tuple[str | os.PathLike | onnx.ModelProto | ImportedModel, Mapping[str, str] | None]:
    """(the model, the layout regions to compile it with); sets `stats.layout` to where they come
    from. With layout "auto" on the CPU at an opt level that converts layouts, the tuning
    records' decision for this model here (`woodpecker.select.layout_record`; the model is
    imported first to identify it), else the rule; an explicit layout or regions win."""
    if options.layout_regions is not None:
        stats.layout = f"given ({len(options.layout_regions)} regions)"
        return model, options.layout_regions
    if options.layout != "auto" or options.target != "cpu":
        stats.layout = layout_for_target(options.layout, options.target)
        return model, None
    stats.layout = RULE
    if not options.use_tuning_records or not layout_element("auto", options.opt_level):
        return model, None
    with timed_stage(stats, "import"):
        imported = model if isinstance(model, ImportedModel) else import_onnx_with_weights(model, input_shapes)
    threads = getattr(backend, "threads", None) or 1
    choice = recorded_layout(imported, options.opt_level, threads, options.tuning_db, model_name(model))
    stats.layout = choice.source
    return imported, choice.regions


def check_memory(lowered: LoweredModel, options: CompileOptions) -> None:
    """Refuses a model whose peak activation memory exceeds `options.memory_limit` (None: what
    this machine has available, for the CPU; the GPU's memory is not known here)."""
    if lowered.activations is None:
        return
    if options.memory_limit is not None:
        limit, source = options.memory_limit, "allowed by memory_limit"
    elif options.target == "cpu":
        limit, source = host_available_bytes()
    else:
        return
    check_activation_memory(lowered.activations, limit, source)


def explicit_configs(options: CompileOptions) -> dict[str, Any]:
    """The kernels (by name or kind) the caller configured: they are not selected."""
    return dict(options.gpu_configs or {}) if options.target == "cuda" else dict(options.cpu.schedules or {})


def random_feeds(
    model: CompiledModel, seed: int = 0, names: Sequence[str] | None = None
) -> dict[str, np.ndarray]:
    """Random inputs of the right shapes and dtypes (for demos and benchmarks): float32 drawn
    from a standard normal in float32 (no float64 copy), int64/int32 and bool ones 0 or 1 (valid
    as indices and as masks); `names`: only these inputs."""
    rng = np.random.default_rng(seed)
    wanted = model.input_names if names is None else names
    dtypes = getattr(model, "input_dtypes", {})
    feeds = {}
    for name in wanted:
        shape, dtype = model.input_shapes[name], np.dtype(dtypes.get(name, np.float32))
        if dtype == np.float32:
            feeds[name] = rng.standard_normal(shape, dtype=np.float32)
        else:
            feeds[name] = rng.integers(0, 2, shape).astype(dtype)
    return feeds
