"""GPU code generation: linalg on tensors -> PTX kernels for NVIDIA GPUs (compile only).

`compile_gpu(module, arch, configs)` cuts the lowered model into kernels (a root op plus the
fill, contraction and epilogue that write its output), schedules each with the transform
dialect (blocks, threads, reduction tiles, shared memory; knobs in `GpuConfig`), lowers them
through bufferization, `gpu.launch`, outlining and NVVM, and returns a `GpuProgram`: PTX per
kernel with grid, block, dynamic shared memory and argument list, plus the buffer plan.
"""

from woodpecker.gpu.arch import ARCHS, GpuArch
from woodpecker.gpu.codegen import compile_gpu
from woodpecker.gpu.config import GpuConfig, KernelProblem, default_config
from woodpecker.gpu.program import (
    CALLING_CONVENTION,
    BufferRef,
    GpuKernel,
    GpuProgram,
    KernelArg,
    KernelResources,
)

__all__ = [
    "ARCHS",
    "CALLING_CONVENTION",
    "BufferRef",
    "GpuArch",
    "GpuConfig",
    "GpuKernel",
    "GpuProgram",
    "KernelArg",
    "KernelProblem",
    "KernelResources",
    "compile_gpu",
    "default_config",
]
