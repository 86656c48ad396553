"""`woodpecker.tune.tune_model`: tune every kernel of an ONNX model, then compile with the records.

    model -> lower to linalg -> kernels -> one task per signature -> tune_tasks -> storage

`woodpecker.compile` then reads the best record of each kernel from the same storage.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

import onnx

from woodpecker.backend.cpu import available_cores, thread_count
from woodpecker.compiler import CompileOptions, lower_model
from woodpecker.importer import ImportedModel
from woodpecker.kernels.task import KernelTask, Runner, select_tasks
from woodpecker.measure.cpu_runner import CpuMeasureOptions, InProcessCpuRunner, IsolatedCpuRunner
from woodpecker.schedule.space import SearchSpace
from woodpecker.schedule.target import CpuTarget
from woodpecker.tune.extract import cpu_tasks
from woodpecker.tune.tuner import Progress, TuneOptions, TuneResult, tune_tasks

ModelSource = str | os.PathLike | onnx.ModelProto | ImportedModel


def model_cpu_tasks(
    model: ModelSource,
    opt_level: int = 2,
    input_shapes: Mapping[str, Sequence[int]] | None = None,
    threads: int | None = None,
    kernels: Sequence[str] | None = None,
) -> list[tuple[KernelTask, SearchSpace]]:
    """One (task, space) per kernel signature of the model, largest kernels first.

    `kernels` keeps only the kernels with these names (`k3_conv`) or kinds (`conv`)."""
    lowered = lower_model(model, CompileOptions(opt_level=opt_level), input_shapes)
    threads = threads or available_cores()
    with lowered.imported.context:
        extracted = cpu_tasks(lowered.module, len(lowered.weights), CpuTarget.host(threads=threads))
    spaces = {item.task.key: item.space for item in extracted}
    selected = select_tasks([item.task for item in extracted], kernels)
    return sorted(((task, spaces[task.key]) for task in selected), key=lambda pair: -pair[0].flops)


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
) -> list[TuneResult]:
    """Tunes the model's kernels for this CPU and records the trials in `options.storage`."""
    options = options or TuneOptions()
    measure = measure or CpuMeasureOptions()
    threads = thread_count(measure.threads, measure.parallel)
    tasks = model_cpu_tasks(model, opt_level, input_shapes, threads, kernels)
    own_runner = runner is None
    if runner is None:
        runner = IsolatedCpuRunner(measure) if isolated else InProcessCpuRunner(measure)
    try:
        return tune_tasks(tasks, runner, options, progress)
    finally:
        if own_runner:
            runner.close()
