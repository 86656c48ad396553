"""`CompileStats`: what a compile did and how long each stage took (every target)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class CompileStats:
    """Seconds spent in each compile stage, the op counts before and after graph
    optimization (`wpk` ops other than weights/constants; after it, one op is one
    kernel), and how the code runs."""

    stage_seconds: dict[str, float] = field(default_factory=dict)
    num_ops_before: int = 0
    num_kernels: int = 0
    tuned_kernels: int = 0  # kernels compiled with a tuning record instead of their default
    library_kernels: int = 0  # kernels computed by a library call (oneDNN, BLAS)
    parallel: bool = False

    @property
    def total_seconds(self) -> float:
        return sum(self.stage_seconds.values())
