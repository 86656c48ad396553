"""`CompileStats`: what a compile did and how long each stage took (every target)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field


@dataclass
class CompileStats:
    """Seconds spent in each compile stage, the op counts before and after graph
    optimization (`wpk` ops other than weights/constants), the model kernels, and how the
    code runs.

    A kernel is one `wpk` op of the optimized graph that computes something (a reshape or
    flatten is a view, not a kernel), named `k<i>_<kind>` in every table, report, record and
    option; `num_kernels`, `tuned_kernels` and `library_kernels` count those."""

    stage_seconds: dict[str, float] = field(default_factory=dict)
    num_ops_before: int = 0
    num_graph_ops: int = 0  # after graph optimization
    num_kernels: int = 0  # the model kernels the code has
    tuned_kernels: int = 0  # kernels compiled with a tuning record instead of their default
    library_kernels: int = 0  # kernels computed by a library call (oneDNN, BLAS, cuDNN, cuBLAS)
    # The most bytes of activations (graph inputs, kernel outputs) live at once, as the arena
    # planner places them (woodpecker.graph.activations); compile() refuses what cannot fit.
    peak_activation_bytes: int = 0
    parallel: bool = False
    # Where the convolutions' layout came from: "rule" (wpk-convert-layout's), "from records (N
    # regions)" (the layout search's decision, woodpecker.select.layout_record), "given (N
    # regions)" (CompileOptions.layout_regions), or the explicit layout ("nchw", "blocked", ...).
    layout: str = ""

    @property
    def total_seconds(self) -> float:
        return sum(self.stage_seconds.values())


@contextmanager
def timed_stage(stats: CompileStats, name: str) -> Iterator[None]:
    """Adds the seconds the block takes to `stats.stage_seconds[name]`."""
    start = time.perf_counter()
    try:
        yield
    finally:
        stats.stage_seconds[name] = stats.stage_seconds.get(name, 0.0) + time.perf_counter() - start
