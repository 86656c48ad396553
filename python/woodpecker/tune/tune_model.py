"""`woodpecker.tune.tune_model`: tune every kernel of an ONNX model, then compile with the records.

    model -> lower to linalg -> target.cut -> one task per signature -> tune_tasks -> tuning database

The kernels are cut exactly as `woodpecker.compile` cuts them (the same `Target`), so their
names (`--kernel k3_conv`) and signatures are the ones compiles, reports and records use;
`woodpecker.compile` then reads the best record of each kernel from the same database.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from woodpecker.backend.cpu import CpuOptions, available_cores, thread_count
from woodpecker.frontend import ModelSource, lower_model
from woodpecker.kernels.space import SearchSpace
from woodpecker.kernels.target import Target
from woodpecker.kernels.task import KernelTask, Runner, select_tasks
from woodpecker.measure.cpu_runner import CpuMeasureOptions, InProcessCpuRunner, IsolatedCpuRunner
from woodpecker.passes import layout_for_target
from woodpecker.targets.cpu import CpuTarget
from woodpecker.tune.tuner import Progress, TuneOptions, TuneResult, tune_tasks


def model_tasks(
    target: Target,
    model: ModelSource,
    opt_level: int = 2,
    input_shapes: Mapping[str, Sequence[int]] | None = None,
    kernels: Sequence[str] | None = None,
    layout: str = "auto",
    regions: Mapping[str, str] | None = None,
) -> list[tuple[KernelTask, SearchSpace]]:
    """One (task, space) per kernel signature of the model on `target`, largest kernels first.

    `kernels` keeps only the kernels with these names (`k3_conv`) or kinds (`conv`); `layout`
    is the channel layout of the convolutions (CompileOptions.layout: the same graph as compile's)
    and `regions` the choice of its regions (CompileOptions.layout_regions: a layout record's)."""
    lowered = lower_model(
        model, opt_level, input_shapes, layout=layout_for_target(layout, target.name), regions=regions
    )
    cut = target.cut(lowered)
    spaces = {kernel.task.key: kernel.space for kernel in cut.kernels}
    selected = select_tasks([kernel.task for kernel in cut.kernels], kernels)
    return sorted(((task, spaces[task.key]) for task in selected), key=lambda pair: -pair[0].flops)


def model_cpu_tasks(
    model: ModelSource,
    opt_level: int = 2,
    input_shapes: Mapping[str, Sequence[int]] | None = None,
    threads: int | None = None,
    kernels: Sequence[str] | None = None,
    layout: str = "auto",
    regions: Mapping[str, str] | None = None,
) -> list[tuple[KernelTask, SearchSpace]]:
    """`model_tasks` on this machine's CPU with `threads` (default: every core)."""
    target = CpuTarget(CpuOptions(threads=threads or available_cores()))
    return model_tasks(target, model, opt_level, input_shapes, kernels, layout, regions)


def model_kernel_names(
    model: ModelSource,
    opt_level: int = 2,
    input_shapes: Mapping[str, Sequence[int]] | None = None,
    threads: int | None = None,
    layout: str = "auto",
) -> dict[str, tuple[str, ...]]:
    """The model's kernels (`k3_conv`) per kernel signature (workload key) on this machine's
    CPU with `threads`: how often each workload occurs in the model (`wpk tune-report --model`)."""
    tasks = model_cpu_tasks(model, opt_level, input_shapes, threads, layout=layout)
    return {task.key: task.model_kernels for task, _ in tasks}


def tune_model(
    model: ModelSource,
    options: TuneOptions | None = None,
    *,
    runner: Runner | None = None,
    isolated: bool = True,
    measure: CpuMeasureOptions | None = None,
    opt_level: int = 2,
    input_shapes: Mapping[str, Sequence[int]] | None = None,
    kernels: Sequence[str] | None = None,
    progress: Progress | None = None,
    layout: str = "auto",
) -> list[TuneResult]:
    """Tunes the model's kernels for this CPU and records the trials in the database `options.storage`."""
    options = options or TuneOptions()
    measure = measure or CpuMeasureOptions()
    threads = thread_count(measure.threads, measure.parallel)
    tasks = model_cpu_tasks(model, opt_level, input_shapes, threads, kernels, layout)
    own_runner = runner is None
    if runner is None:
        runner = IsolatedCpuRunner(measure) if isolated else InProcessCpuRunner(measure)
    try:
        return tune_tasks(tasks, runner, options, progress)
    finally:
        if own_runner:
            runner.close()
