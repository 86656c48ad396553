"""CPU backend: linalg on tensors -> LLVM -> MLIR ExecutionEngine, and calling it."""

from __future__ import annotations

import ctypes
import functools
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from mlir import ir
from mlir.execution_engine import ExecutionEngine
from mlir.passmanager import PassManager
from mlir.runtime import get_ranked_memref_descriptor
from mlir.runtime.np_to_memref import make_nd_memref_descriptor, make_zero_d_memref_descriptor

from woodpecker.backend.pipelines import cpu_pipeline
from woodpecker.errors import CompilationError
from woodpecker.graph.outline_weights import main_func
from woodpecker.kernels.decision import Decision, split_decisions
from woodpecker.libs.emit import LibraryKernel, library_paths
from woodpecker.libs.match import LIBRARIES
from woodpecker.libs.replace import replace_library_kernels
from woodpecker.runtime.shared_libs import c_runner_utils, openmp_runtime
from woodpecker.schedule.apply import ConfigMap, ScheduledKernel, apply_schedules
from woodpecker.schedule.packing import PackedWeight, prepack_weights
from woodpecker.schedule.target import CpuMachine


@dataclass
class CpuOptions:
    """How the CPU backend compiles: LLVM optimization level and whether to use all cores."""

    llvm_opt_level: int = 3
    parallel: bool = True
    threads: int | None = None  # None: every core this process may run on
    # Schedule configurations by kernel name (`k3_conv`) or kind (`conv`); others: defaults.
    # `{"impl": "onednn"}` (or a `Library`) asks for a library call instead.
    schedules: ConfigMap | None = None


@dataclass
class CpuExecutable:
    """A JIT-compiled `@main(inputs..., weights..., outputs...)` with fixed shapes."""

    engine: ExecutionEngine
    output_shapes: list[tuple[int, ...]]
    parallel: bool
    schedules: list[ScheduledKernel] = field(default_factory=list)
    # Weights (by position among the weights) whose layout the code expects changed.
    packed_weights: dict[int, PackedWeight] = field(default_factory=dict)
    _fixed_args: list = field(default_factory=list)
    _keepalive: list = field(default_factory=list)
    _main: Callable | None = None  # the JIT-ed entry point, looked up once
    # Library calls in the code (woodpecker.libs): their objects live as long as the code.
    libraries: list[LibraryKernel] = field(default_factory=list)

    def kernel_names(self) -> list[str]:
        """The model kernels of the code, in program order: library calls and scheduled ones."""
        names = [kernel.kernel_name for kernel in self.libraries]
        names += [s.kernel.model_kernel or s.kernel.name for s in self.schedules]
        return sorted(dict.fromkeys(names), key=_kernel_index)

    def bind_weights(self, weights: Sequence[np.ndarray]) -> None:
        """Fixes the trailing weight arguments (kept alive for the executable's life)."""
        arrays = [np.ascontiguousarray(w, dtype=np.float32) for w in weights]
        for index, layout in self.packed_weights.items():
            arrays[index] = layout.apply(arrays[index])
        self._keepalive = arrays
        self._fixed_args = [_memref_arg(a) for a in arrays]

    def __call__(self, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
        outputs = [np.empty(shape, dtype=np.float32) for shape in self.output_shapes]
        args = [_memref_arg(a) for a in inputs] + self._fixed_args + [_memref_arg(o) for o in outputs]
        if self._main is None:
            self._main = self.engine.lookup("main")
        self._main((ctypes.c_void_p * len(args))(*[ctypes.cast(a, ctypes.c_void_p) for a in args]))
        return outputs

    def bound_call(self, inputs: Sequence[np.ndarray]) -> tuple[Callable[[], None], list[np.ndarray]]:
        """A call with its arguments built once (the inputs and outputs stay the same arrays),
        and its outputs: what the tuner times, without per-call Python work."""
        outputs = [np.empty(shape, dtype=np.float32) for shape in self.output_shapes]
        arrays = [np.ascontiguousarray(a) for a in inputs]
        args = [_memref_arg(a) for a in arrays] + self._fixed_args + [_memref_arg(o) for o in outputs]
        packed = (ctypes.c_void_p * len(args))(*[ctypes.cast(a, ctypes.c_void_p) for a in args])
        function = self.engine.lookup("main")
        keep = (arrays, outputs, args, self._keepalive)  # descriptors hold addresses, not references

        def call() -> None:
            function(packed)
            _ = keep  # the arrays and descriptors live as long as the call

        return call, outputs


def _kernel_index(name: str) -> tuple[int, str]:
    """`k12_conv` -> (12, name): model kernels sort in program order."""
    digits = name[1:].split("_", 1)[0]
    return (int(digits), name) if name.startswith("k") and digits.isdigit() else (1 << 30, name)


def available_cores() -> int:
    """Cores this process may run on (the affinity mask, not the machine's count)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def thread_count(threads: int | None, parallel: bool) -> int:
    """The threads the code runs on: `threads`, else every core this process may use; 1 serial."""
    return (threads or available_cores()) if parallel else 1


@functools.cache
def _descriptor_type(rank: int) -> type[ctypes.Structure]:
    """The ctypes struct of a rank-`rank` f32 memref descriptor (built once: building one per
    call cost ~100 µs, more than running a small kernel)."""
    return (
        make_zero_d_memref_descriptor(ctypes.c_float) if rank == 0 else make_nd_memref_descriptor(rank, ctypes.c_float)
    )


def _memref_arg(array: np.ndarray) -> ctypes.c_void_p:
    if array.dtype != np.float32:
        return ctypes.pointer(ctypes.pointer(get_ranked_memref_descriptor(array)))
    descriptor = _descriptor_type(array.ndim)()
    descriptor.allocated = array.ctypes.data
    descriptor.aligned = ctypes.cast(array.ctypes.data, ctypes.POINTER(ctypes.c_float))
    descriptor.offset = 0
    if array.ndim:
        descriptor.shape[:] = array.shape
        descriptor.strides[:] = [stride // array.itemsize for stride in array.strides]
    return ctypes.pointer(ctypes.pointer(descriptor))


def lower_to_llvm(module: ir.Module, parallel: bool) -> None:
    """Runs the bufferize-to-LLVM pipeline on a module of linalg on tensors, in place."""
    fn = main_func(module)
    fn.attributes["llvm.emit_c_interface"] = ir.UnitAttr.get()
    pipeline = cpu_pipeline(parallel)
    try:
        PassManager.parse(pipeline, context=module.context).run(module.operation)
    except ir.MLIRError as err:
        raise CompilationError(f"CPU lowering to LLVM failed: {err}") from None


def compile_cpu(
    module: ir.Module,
    options: CpuOptions | None = None,
    num_weights: int = 0,
    weights: Sequence[np.ndarray] | None = None,
    decisions: Mapping[str, Decision] | None = None,
) -> CpuExecutable:
    """Lowers `module` (linalg on tensors, `@main` with tensor results) and JIT-compiles it.

    The last `num_weights` arguments of `@main` are weights: layout changes the schedules
    want for them (packed B panels) are done once, by `bind_weights`. `decisions` (by model
    kernel name, what the selection chose) and `options.schedules` (by name or kind, what the
    caller configured; they win) say per kernel: a `Generated` configuration, or a `Library`
    call (woodpecker.libs), which bakes in its weights: then `weights` must be given.
    """
    options = options or CpuOptions()
    omp = openmp_runtime() if options.parallel else None
    parallel = omp is not None
    fn = main_func(module)
    result_types = ir.FunctionType(ir.TypeAttr(fn.attributes["function_type"]).value).results
    output_shapes = [tuple(ir.RankedTensorType(t).shape) for t in result_types]
    target = CpuMachine.host(threads=thread_count(options.threads, parallel))
    try:
        calls, configs = split_decisions({**dict(decisions or {}), **dict(options.schedules or {})}, LIBRARIES)
    except ValueError as err:
        raise CompilationError(str(err)) from None
    libraries: list[LibraryKernel] = []
    if calls:
        libraries = replace_library_kernels(module, calls, weights, num_weights, target.threads)
        configs = {name: config for name, config in configs.items() if name not in calls}
    schedules = apply_schedules(module, configs, target)
    first_weight = len(fn.regions[0].blocks[0].arguments) - num_weights
    packed = {p.arg_index - first_weight: p for p in prepack_weights(fn, first_weight)} if num_weights else {}
    lower_to_llvm(module, parallel)
    libs = [str(c_runner_utils())] + ([str(omp)] if omp else [])
    libs += library_paths({kernel.library for kernel in libraries})
    try:
        engine = ExecutionEngine(module, opt_level=options.llvm_opt_level, shared_libs=libs)
    except Exception as err:  # the bindings raise RuntimeError with LLVM's message
        raise CompilationError(f"JIT compilation failed: {err}") from None
    return CpuExecutable(
        engine=engine,
        output_shapes=output_shapes,
        parallel=parallel,
        schedules=schedules,
        packed_weights=packed,
        libraries=libraries,
    )
