"""The target-independent half of a compile: import -> optimize -> outline weights -> lower.

`lower_model` turns an ONNX model into a `LoweredModel`: `@main` on linalg tensors with the
weights as trailing arguments, what every target cuts into kernels (`woodpecker.targets`).
`woodpecker.compile`, `wpk tune` and the benchmarks all start here.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import onnx
from mlir import ir
from mlir.passmanager import PassManager

from woodpecker.errors import CompilationError
from woodpecker.graph.activations import ActivationPlan, plan_activations
from woodpecker.graph.context import DATA_OPS, GraphContext
from woodpecker.graph.convert_layout import Region, regions_of
from woodpecker.graph.outline_weights import main_func, outline_weights
from woodpecker.importer import ImportedModel, import_onnx_with_weights
from woodpecker.lowering import lower_to_linalg
from woodpecker.lowering.outputs import distinct_results
from woodpecker.passes import build_pass_manager, layout_element, opt_level_pipeline
from woodpecker.runtime.cpu.host import vector_lanes
from woodpecker.stats import CompileStats, timed_stage

OPT_LEVELS = (0, 1, 2)
ModelSource = str | os.PathLike | onnx.ModelProto | ImportedModel
StageCallback = Callable[[str, ir.Module], None]


@dataclass
class LoweredModel:
    """A model after the target-independent stages: @main on linalg tensors, weights outlined."""

    imported: ImportedModel
    module: ir.Module
    weights: list[np.ndarray]  # the trailing arguments of @main, in order
    activations: ActivationPlan | None = None  # the optimized graph's activation buffers, planned
    blocked: bool = False  # whether wpk-convert-layout ran (convolution regions in NCHW[x]c)

    @property
    def num_inputs(self) -> int:
        return len(self.imported.input_names)


def lower_model(
    model: ModelSource,
    opt_level: int = 2,
    input_shapes: Mapping[str, Sequence[int]] | None = None,
    stats: CompileStats | None = None,
    on_stage: StageCallback | None = None,
    layout: str = "auto",
    regions: Mapping[str, str] | None = None,
) -> LoweredModel:
    """import -> optimize (the graph passes of `opt_level`) -> outline weights -> lower to linalg,
    every result of @main its own value (`lowering.outputs.distinct_results`).

    `on_stage(name, module)` is called after "import", "optimize" and "linalg". `layout`: the
    channel layout of the convolution regions (passes.layout_element); `regions`: the choice of
    named regions (region name -> "nchw" or a block size, graph/convert_layout.py)."""
    if opt_level not in OPT_LEVELS:
        raise CompilationError(f"opt_level must be one of {OPT_LEVELS}, got {opt_level!r}")
    stats = stats if stats is not None else CompileStats()
    with timed_stage(stats, "import"):
        imported = model if isinstance(model, ImportedModel) else import_onnx_with_weights(model, input_shapes)
    module = imported.module
    with imported.context, ir.Location.unknown():
        _report(on_stage, "import", module)
        stats.num_ops_before = count_graph_ops(module)
        with timed_stage(stats, "optimize"):
            optimize_graph(module, opt_level, GraphContext(imported.weights), layout, regions)
        _report(on_stage, "optimize", module)
        stats.num_graph_ops = count_graph_ops(module)
        activations = plan_activations(module)
        stats.peak_activation_bytes = activations.peak_bytes
        with timed_stage(stats, "outline-weights"):
            outlined = outline_weights(module)
            imported.weights.retain({w.resource for w in outlined})
            weights = [imported.weights.arrays[w.resource] for w in outlined]
        with timed_stage(stats, "lower-to-linalg"):
            lower_to_linalg(module.operation, kernel_groups=True)
            if opt_level >= 1:
                run_upstream(module, "builtin.module(canonicalize,cse)")
            distinct_results(main_func(module))
        _report(on_stage, "linalg", module)
    return LoweredModel(imported, module, weights, activations, blocked=bool(layout_element(layout, opt_level)))


def optimize_graph(
    module: ir.Module,
    opt_level: int,
    graph: GraphContext,
    layout: str = "nchw",
    regions: Mapping[str, str] | None = None,
) -> None:
    """Runs the graph passes of `opt_level` (passes.OPT_LEVEL_PIPELINES, with wpk-convert-layout
    as `layout` says) on the `wpk` module.

    Folded weights are added to `graph.weights`.
    """
    pipeline = opt_level_pipeline(opt_level, layout, regions)
    if not pipeline:
        return
    try:
        build_pass_manager(pipeline, module.context, graph).run(module.operation)
    except ir.MLIRError as err:
        raise CompilationError(f"graph optimization (opt_level={opt_level}) failed: {err}") from None


def layout_regions(
    model: ModelSource, input_shapes: Mapping[str, Sequence[int]] | None = None, opt_level: int = 2, block: int = 0
) -> list[Region]:
    """The regions wpk-convert-layout's rule (blocks of `block`, 0: the host's vector width)
    would put in the blocked layout at `opt_level`, without converting or compiling anything."""
    imported = model if isinstance(model, ImportedModel) else import_onnx_with_weights(model, input_shapes)
    with imported.context, ir.Location.unknown():
        module = imported.module.operation.clone()  # an imported model given stays as it was
        try:
            graph = GraphContext(imported.weights)
            optimize_graph(module, opt_level, graph, "nchw")
            return regions_of(module.operation, graph, block or vector_lanes())
        finally:
            module.operation.erase()


def graph_text(imported: ImportedModel) -> str:
    """The imported model's @main as text (ops, attributes, shapes; weights by name, not value)."""
    with imported.context, ir.Location.unknown():
        return str(main_func(imported.module).operation)


def count_graph_ops(module: ir.Module) -> int:
    """`wpk` ops of @main other than weights and constants: after optimization, one per kernel."""
    ops = main_func(module).regions[0].blocks[0].operations
    return sum(1 for op in ops if op.operation.name.startswith("wpk.") and op.operation.name not in DATA_OPS)


def run_upstream(module: ir.Module, pipeline: str) -> None:
    PassManager.parse(pipeline, context=module.context).run(module.operation)


def _report(on_stage: StageCallback | None, stage: str, module: ir.Module) -> None:
    if on_stage is not None:
        on_stage(stage, module)
