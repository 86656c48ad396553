"""What `compile_gpu` produces: kernels in execution order and the buffers they use."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

from woodpecker.gpu.config import GpuConfig, KernelProblem

BufferKind = Literal["input", "weight", "output", "intermediate"]

CALLING_CONVENTION = "bare_ptr"
"""Every kernel parameter is one 64-bit global pointer (PTX `.param .u64 .ptr`) to the first
element of a dense, row-major f32 buffer, in the order of `GpuKernel.args`; there are no other
parameters (MLIR's `use-bare-ptr-memref-call-conv`: no allocated pointer, offset, sizes or
strides)."""


@dataclass(frozen=True)
class BufferRef:
    """A buffer of the program: the `index`-th graph input, weight, output or intermediate."""

    kind: BufferKind
    index: int

    def __str__(self) -> str:
        return f"{self.kind}[{self.index}]"


@dataclass(frozen=True)
class KernelArg:
    """One kernel parameter: which buffer it points to, viewed with `shape`."""

    buffer: BufferRef
    shape: tuple[int, ...]
    access: Literal["read", "write"]
    element_type: str = "f32"
    ptx_type: str = ".u64 .ptr"  # see CALLING_CONVENTION

    @property
    def nbytes(self) -> int:
        return math.prod(self.shape) * 4


@dataclass(frozen=True)
class KernelResources:
    """What ptxas reports for a kernel (`ptxas -v`)."""

    registers: int
    spill_stores: int
    spill_loads: int
    stack_frame: int
    static_shared: int
    constant: int = 0
    barriers: int = 0


@dataclass
class GpuKernel:
    """One kernel: PTX text with entry `name`, and how to launch it."""

    name: str
    kind: str
    ptx: str
    grid: tuple[int, int, int]
    block: tuple[int, int, int]
    shared_bytes: int  # dynamic shared memory to request at launch
    args: list[KernelArg]
    config: GpuConfig
    problem: KernelProblem
    ops: list[str] = field(default_factory=list)  # linalg ops fused into the kernel, in order
    resources: KernelResources | None = None
    cubin: bytes | None = None
    function: str = ""  # the launch's function in the device module (`k0_matmul`, `k0_conv_0`)
    model_kernel: str = ""  # the model kernel it is a launch of (`k0_conv`): its config's key

    @property
    def threads_per_block(self) -> int:
        return math.prod(self.block)

    @property
    def needs_shared_opt_in(self) -> bool:
        """True if the launcher must raise cudaFuncAttributeMaxDynamicSharedMemorySize first."""
        return self.shared_bytes > 48 * 1024


@dataclass
class GpuProgram:
    """Kernels in execution order plus the buffer plan (all buffers are f32, dense, row-major)."""

    arch: str
    kernels: list[GpuKernel]
    inputs: list[tuple[int, ...]]
    weights: list[tuple[int, ...]]
    outputs: list[tuple[int, ...]]
    intermediates: list[tuple[int, tuple[int, ...]]]  # (id, shape)
    calling_convention: str = CALLING_CONVENTION
    stage_seconds: dict[str, float] = field(default_factory=dict)

    def shape_of(self, buffer: BufferRef) -> tuple[int, ...]:
        if buffer.kind == "intermediate":
            return dict(self.intermediates)[buffer.index]
        return {"input": self.inputs, "weight": self.weights, "output": self.outputs}[buffer.kind][buffer.index]

    @property
    def intermediate_bytes(self) -> int:
        return sum(math.prod(shape) * 4 for _, shape in self.intermediates)
