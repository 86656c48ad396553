"""GPU code generation: linalg on tensors -> PTX kernels for NVIDIA GPUs (compile only).

`compile_gpu(module, arch, configs)` cuts the lowered model into kernels (a root op plus the
fill, contraction and epilogue that write its output), schedules each with the transform
dialect (blocks, threads, reduction tiles, shared memory; knobs in `GpuConfig`), lowers them
through bufferization, `gpu.launch`, outlining and NVVM, and returns a `GpuProgram`: PTX per
kernel with grid, block, dynamic shared memory and argument list, plus the buffer plan.
`gpu_search_space` describes a kernel's configurations as a `SearchSpace`;
`woodpecker.compile(model, target="cuda")` (through `woodpecker.targets.cuda`) compiles a whole
ONNX model into a `CudaModel`. Running plans and kernels needs no MLIR: `woodpecker.runtime.cuda`.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "ARCHS": "woodpecker.gpu.arch",
    "GpuArch": "woodpecker.gpu.arch",
    "compile_gpu": "woodpecker.gpu.codegen",
    "kernel_search_spaces": "woodpecker.gpu.codegen",
    "lower_gpu_kernels": "woodpecker.gpu.codegen",
    "schedule_gpu_kernels": "woodpecker.gpu.codegen",
    "GpuConfig": "woodpecker.gpu.config",
    "KernelProblem": "woodpecker.gpu.config",
    "default_config": "woodpecker.gpu.config",
    "CudaModel": "woodpecker.gpu.model",
    "CALLING_CONVENTION": "woodpecker.gpu.program",
    "BufferRef": "woodpecker.gpu.program",
    "GpuKernel": "woodpecker.gpu.program",
    "GpuProgram": "woodpecker.gpu.program",
    "KernelArg": "woodpecker.gpu.program",
    "KernelResources": "woodpecker.gpu.program",
    "config_from_knobs": "woodpecker.gpu.space",
    "gpu_search_space": "woodpecker.gpu.space",
    "knobs_from_config": "woodpecker.gpu.space",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'woodpecker.gpu' has no attribute '{name}'")
