"""`woodpecker.load(directory)`: a saved model, by the format its directory holds (no MLIR).

A CPU model (manifest.json of format woodpecker.cpu-model: a shared library, weights) loads as a
`woodpecker.runtime.cpu.deploy.DeployedCpuModel`; a CUDA plan (plan.json) as a
`woodpecker.runtime.cuda.model.PlanModel`.
"""

from __future__ import annotations

import os
from typing import Any

from woodpecker.runtime.cpu.deploy import is_cpu_model, load_cpu_model


def load(directory: str | os.PathLike, device: int = 0) -> Any:
    """The model saved in `directory` (`device`: the GPU a CUDA plan runs on)."""
    if is_cpu_model(directory):
        return load_cpu_model(directory)
    from woodpecker.runtime.cuda.model import load as load_cuda_plan

    return load_cuda_plan(directory, device)
