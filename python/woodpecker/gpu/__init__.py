"""GPU code generation: linalg on tensors -> PTX kernels for NVIDIA GPUs (compile only).

`compile_gpu(module, arch, configs)` cuts the lowered model into kernels (a root op plus the
fill, contraction and epilogue that write its output), schedules each with the transform
dialect (blocks, threads, reduction tiles, shared memory; knobs in `GpuConfig`), lowers them
through bufferization, `gpu.launch`, outlining and NVVM, and returns a `GpuProgram`: PTX per
kernel with grid, block, dynamic shared memory and argument list, plus the buffer plan.
`gpu_search_space` describes a kernel's configurations as a `SearchSpace`; `compile_cuda` (or
`woodpecker.compile(model, target="cuda")`) compiles a whole ONNX model into a `CudaModel`.
"""

from woodpecker.gpu.arch import ARCHS, GpuArch
from woodpecker.gpu.codegen import compile_gpu, kernel_search_spaces, lower_gpu_kernels, schedule_gpu_kernels
from woodpecker.gpu.config import GpuConfig, KernelProblem, default_config
from woodpecker.gpu.model import CudaModel, compile_cuda
from woodpecker.gpu.program import (
    CALLING_CONVENTION,
    BufferRef,
    GpuKernel,
    GpuProgram,
    KernelArg,
    KernelResources,
)
from woodpecker.gpu.space import config_from_knobs, gpu_search_space, knobs_from_config

__all__ = [
    "ARCHS",
    "CALLING_CONVENTION",
    "BufferRef",
    "CudaModel",
    "GpuArch",
    "GpuConfig",
    "GpuKernel",
    "GpuProgram",
    "KernelArg",
    "KernelProblem",
    "KernelResources",
    "compile_cuda",
    "compile_gpu",
    "config_from_knobs",
    "default_config",
    "gpu_search_space",
    "kernel_search_spaces",
    "knobs_from_config",
    "lower_gpu_kernels",
    "schedule_gpu_kernels",
]
