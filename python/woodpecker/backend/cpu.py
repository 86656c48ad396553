"""CPU backend: linalg on tensors -> LLVM -> machine code (MLIR's ExecutionEngine), and calling it.

The compile produces the machine code: `compile_cpu` materializes the engine's code (LLVM's
code generation runs there, not on the first call), fills the library kernels' handle tables
and keeps the object file, which `CompiledModel.save` links into a shared library.
"""

from __future__ import annotations

import ctypes
import os
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from mlir import ir
from mlir.dialects import memref
from mlir.execution_engine import ExecutionEngine
from mlir.passmanager import PassManager

from woodpecker.backend.arena import Arena, place_in_arena
from woodpecker.backend.expand_math import expand_math
from woodpecker.backend.pipelines import cpu_bufferization, cpu_lowering
from woodpecker.backend.profile import STAMPS_SYMBOL, KernelProfile, instrument, tag_kernels
from woodpecker.dialect import dtype_of
from woodpecker.errors import CompilationError
from woodpecker.graph.outline_weights import main_func
from woodpecker.kernels.decision import Decision, split_decisions
from woodpecker.libs.emit import LibraryKernel, library_paths
from woodpecker.libs.match import LIBRARIES
from woodpecker.libs.replace import replace_library_kernels
from woodpecker.runtime.cpu.deploy import INTERFACE_SYMBOL, interface_digest
from woodpecker.runtime.cpu.library_calls import fill_table, handle_symbol
from woodpecker.runtime.cpu.memref import ENTRY_SYMBOL, EntryCall, memref_arg, packed_arguments
from woodpecker.runtime.shared_libs import c_runner_utils, openmp_runtime
from woodpecker.schedule.apply import ConfigMap, ScheduledKernel, apply_schedules
from woodpecker.schedule.packing import PackedWeight, prepack_weights
from woodpecker.schedule.target import CpuMachine
from woodpecker.stats import CompileStats, timed_stage


@dataclass
class CpuOptions:
    """How the CPU backend compiles: LLVM optimization level and whether to use all cores."""

    llvm_opt_level: int = 3
    parallel: bool = True
    threads: int | None = None  # None: every core this process may run on
    # Schedule configurations by kernel name (`k3_conv`) or kind (`conv`); others: defaults.
    # `{"impl": "onednn"}` (or a `Library`) asks for a library call instead.
    schedules: ConfigMap | None = None
    # f32 exp/expm1/log/log1p/tanh as vectorizable arith code (backend.expand_math); False
    # leaves them to LLVM's intrinsics, one libm call per vector lane (for comparisons).
    vector_math: bool = True
    # Time each top-level step of the code (backend.profile): CpuExecutable.profile says how long
    # each took in the last call. For measuring only (a stamp per step).
    profile: bool = False


@dataclass
class CpuExecutable:
    """A compiled `@main(inputs..., weights..., outputs...)` with fixed shapes: machine code in
    the engine, its entry point looked up (`main`) and its library tables filled."""

    engine: ExecutionEngine
    output_shapes: list[tuple[int, ...]]
    parallel: bool
    main: Callable[[ctypes.Array], None]  # the packed entry point (woodpecker.runtime.cpu.memref)
    schedules: list[ScheduledKernel] = field(default_factory=list)
    # Weights (by position among the weights) whose layout the code expects changed.
    packed_weights: dict[int, PackedWeight] = field(default_factory=dict)
    _fixed_args: list = field(default_factory=list)
    _keepalive: list = field(default_factory=list)
    _originals: dict[int, np.ndarray] = field(default_factory=dict)  # packed weights a library call reads
    # Library calls in the code (woodpecker.libs): their objects live as long as the code.
    libraries: list[LibraryKernel] = field(default_factory=list)
    threads: int = 1
    llvm_opt_level: int = 2
    interface: int = 0  # the digest of the argument shapes the code has (INTERFACE_SYMBOL)
    # @main's buffers: its last argument, allocated (and checked) by every call (backend.arena).
    arena: Arena = field(default_factory=lambda: Arena(0, ()))
    # The numpy dtype of each output (float32, int64, int32, bool), in order; empty: all float32.
    output_dtypes: list[np.dtype] = field(default_factory=list)
    # With CpuOptions(profile=True): the timed steps and their stamps (backend.profile).
    profile: KernelProfile | None = None
    _entry_call: EntryCall | None = None

    def _new_outputs(self) -> list[np.ndarray]:
        dtypes = self.output_dtypes or [np.dtype(np.float32)] * len(self.output_shapes)
        return [np.empty(shape, dtype=dtype) for shape, dtype in zip(self.output_shapes, dtypes, strict=True)]

    def kernel_names(self) -> list[str]:
        """The model kernels of the code, in program order: library calls and scheduled ones."""
        names = [kernel.kernel_name for kernel in self.libraries]
        names += [s.kernel.model_kernel or s.kernel.name for s in self.schedules]
        return sorted(dict.fromkeys(names), key=_kernel_index)

    @property
    def weight_bytes(self) -> int:
        """The bytes of the bound weights (as the code reads them, packed layouts included)."""
        return sum(a.nbytes for a in self._keepalive)

    def bind_weights(self, weights: Sequence[np.ndarray]) -> None:
        """Fixes the trailing weight arguments (kept alive for the executable's life)."""
        arrays = [np.ascontiguousarray(w, dtype=np.float32) for w in weights]
        read_by_libraries = {index for kernel in self.libraries for index in kernel.spec.weights.values()}
        self._originals = {i: arrays[i] for i in self.packed_weights if i in read_by_libraries}
        for index, layout in self.packed_weights.items():
            arrays[index] = layout.apply(arrays[index])
        self._keepalive = arrays
        self._fixed_args = [memref_arg(a) for a in arrays]
        self._entry_call = None  # built again with these weights by the next call

    @property
    def bound_weights(self) -> list[np.ndarray]:
        """The weights as the code reads them (packed where `packed_weights` says)."""
        return list(self._keepalive)

    @property
    def library_weights(self) -> dict[int, np.ndarray]:
        """The unpacked arrays of the packed weights that a library call also reads."""
        return dict(self._originals)

    def object_code(self) -> bytes:
        """The machine code of the module as one relocatable (position-independent) object file."""
        with tempfile.TemporaryDirectory(prefix="wpk-object-") as scratch:
            path = Path(scratch) / "model.o"
            self.engine.dump_to_object_file(str(path))
            return path.read_bytes()

    def __call__(self, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Runs the code on `inputs` (of the code's shapes and dtypes) into fresh output arrays; the
        argument array and the arena are built by the first call and reused (`EntryCall`)."""
        outputs = self._new_outputs()
        if self._entry_call is None:
            self._entry_call = EntryCall(self.main, self._fixed_args, self.arena.allocate)
        self._entry_call([np.ascontiguousarray(a) for a in inputs], outputs)
        return outputs

    def bound_call(self, inputs: Sequence[np.ndarray]) -> tuple[Callable[[], None], list[np.ndarray]]:
        """A call with its arguments built once (the inputs and outputs stay the same arrays),
        and its outputs: what the tuner times, without per-call Python work."""
        outputs = self._new_outputs()
        arrays = [np.ascontiguousarray(a) for a in inputs]
        arena = self.arena.allocate()
        args = [memref_arg(a) for a in arrays] + self._fixed_args + [memref_arg(o) for o in outputs]
        args.append(memref_arg(arena))
        packed = packed_arguments(args)
        function = self.main
        keep = (arrays, outputs, arena, args, self._keepalive)  # descriptors hold addresses, not references

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


def bufferize_into_arena(module: ir.Module) -> Arena:
    """The first part of the bufferize-to-LLVM pipeline, in place: bufferization, then @main's
    buffers moved into a trailing arena argument (`backend.arena`)."""
    fn = main_func(module)
    fn.attributes["llvm.emit_c_interface"] = ir.UnitAttr.get()
    try:
        PassManager.parse(cpu_bufferization(), context=module.context).run(module.operation)
    except ir.MLIRError as err:
        raise CompilationError(f"CPU bufferization failed: {err}") from None
    return place_in_arena(main_func(module))


def lower_to_llvm(module: ir.Module, parallel: bool, threads: int = 0, vector_math: bool = True) -> None:
    """The rest of the pipeline after `bufferize_into_arena`: deallocation, loops, LLVM (parallel
    regions of `threads` threads, 0: the OpenMP runtime's default; with `vector_math`, the f32
    transcendentals first become vectorizable arith code: backend.expand_math)."""
    if vector_math:
        expand_math(module)
    try:
        PassManager.parse(cpu_lowering(parallel, threads), context=module.context).run(module.operation)
    except ir.MLIRError as err:
        raise CompilationError(f"CPU lowering to LLVM failed: {err}") from None


def compile_cpu(
    module: ir.Module,
    options: CpuOptions | None = None,
    num_weights: int = 0,
    weights: Sequence[np.ndarray] | None = None,
    decisions: Mapping[str, Decision] | None = None,
    stats: CompileStats | None = None,
) -> CpuExecutable:
    """Lowers `module` (linalg on tensors, `@main` with tensor results) to machine code.

    The last `num_weights` arguments of `@main` are weights: layout changes the schedules
    want for them (packed B panels) are done once, by `bind_weights`. `decisions` (by model
    kernel name, what the selection chose) and `options.schedules` (by name or kind, what the
    caller configured; they win) say per kernel: a `Generated` configuration, or a `Library`
    call (woodpecker.libs), which bakes in its weights: then `weights` must be given.
    `stats` gets the seconds of each stage: libraries, schedule, lower-to-llvm, machine-code
    (LLVM's optimization and code generation; nothing is compiled on the first call).
    """
    stats = stats if stats is not None else CompileStats()
    options = options or CpuOptions()
    omp = openmp_runtime() if options.parallel else None
    parallel = omp is not None
    fn = main_func(module)
    result_types = ir.FunctionType(ir.TypeAttr(fn.attributes["function_type"]).value).results
    output_shapes = [tuple(ir.RankedTensorType(t).shape) for t in result_types]
    output_dtypes = [_stored_dtype(ir.RankedTensorType(t).element_type) for t in result_types]
    target = CpuMachine.host(threads=thread_count(options.threads, parallel))
    try:
        calls, configs = split_decisions({**dict(decisions or {}), **dict(options.schedules or {})}, LIBRARIES)
    except ValueError as err:
        raise CompilationError(str(err)) from None
    kernels = tag_kernels(module) if options.profile else {}
    libraries: list[LibraryKernel] = []
    if calls:
        with timed_stage(stats, "libraries"):
            libraries = replace_library_kernels(module, calls, weights, num_weights, target.threads)
        configs = {name: config for name, config in configs.items() if name not in calls}
    with timed_stage(stats, "schedule"):
        schedules = apply_schedules(module, configs, target)
        first_weight = len(fn.regions[0].blocks[0].arguments) - num_weights
        packed = {p.arg_index - first_weight: p for p in prepack_weights(fn, first_weight)} if num_weights else {}
    arg_shapes = [tuple(ir.ShapedType(a.type).shape) for a in fn.regions[0].blocks[0].arguments]
    with timed_stage(stats, "lower-to-llvm"):
        arena = bufferize_into_arena(module)
        profile = KernelProfile(instrument(module, main_func(module)), kernels) if options.profile else None
        input_types = [ir.ShapedType(a.type).element_type for a in fn.regions[0].blocks[0].arguments][:first_weight]
        dtypes = [_stored_dtype(t).name for t in input_types] + [d.name for d in output_dtypes]
        interface = interface_digest(
            arg_shapes[:first_weight], arg_shapes[first_weight:], output_shapes, arena_bytes=arena.nbytes, dtypes=dtypes
        )
        _emit_interface(module, interface)
        lower_to_llvm(module, parallel, target.threads, options.vector_math)
    libs = [str(c_runner_utils())] + ([str(omp)] if omp else [])
    libs += library_paths({kernel.library for kernel in libraries})
    with timed_stage(stats, "machine-code"):
        engine, main = machine_code(module, options.llvm_opt_level, libs)
    if profile is not None:
        profile.address = engine.raw_lookup(STAMPS_SYMBOL.removeprefix("_mlir_"))
    for kernel in libraries:
        address = engine.raw_lookup(handle_symbol(kernel.kernel_name).removeprefix("_mlir_"))  # it adds _mlir_
        if not address:
            raise CompilationError(f"kernel {kernel.kernel_name}: the code has no handle table")
        fill_table(address, kernel.spec, kernel.keep, f"kernel {kernel.kernel_name}", CompilationError)
    return CpuExecutable(
        engine=engine,
        output_shapes=output_shapes,
        parallel=parallel,
        main=main,
        schedules=schedules,
        packed_weights=packed,
        libraries=libraries,
        threads=target.threads,
        llvm_opt_level=options.llvm_opt_level,
        interface=interface,
        arena=arena,
        output_dtypes=output_dtypes,
        profile=profile,
    )


def _stored_dtype(element: ir.Type) -> np.dtype:
    """The numpy dtype of a lowered result's elements: i8 is how a bool (i1) tensor is stored
    (lowering.common.storage_type), read as numpy bool (one byte, 0 or 1)."""
    if isinstance(element, ir.IntegerType) and element.width == 8:
        return np.dtype(np.bool_)
    return dtype_of(element)


def _emit_interface(module: ir.Module, digest: int) -> None:
    """The constant global INTERFACE_SYMBOL: the digest of the code's argument shapes, which a
    saved model's manifest must match (woodpecker.runtime.cpu.deploy)."""
    i64 = ir.IntegerType.get_signless(64, module.context)
    with ir.Location.unknown(module.context), ir.InsertionPoint.at_block_begin(module.body):
        memref.GlobalOp(
            INTERFACE_SYMBOL,
            ir.TypeAttr.get(ir.MemRefType.get([1], i64)),
            initial_value=ir.DenseElementsAttr.get(
                np.asarray([digest], dtype=np.int64), type=ir.RankedTensorType.get([1], i64)
            ),
            constant=True,
        )


def machine_code(module: ir.Module, opt_level: int, libs: list[str]) -> tuple[ExecutionEngine, Callable]:
    """The engine with the module's machine code generated (position-independent, so that its
    object file links into a shared library) and the packed entry point."""
    try:
        engine = ExecutionEngine(
            module, opt_level=opt_level, shared_libs=libs, enable_object_dump=True, enable_pic=True
        )
        # The ExecutionEngine compiles lazily, on the first look-up: this is LLVM's code generation.
        address = engine.raw_lookup(ENTRY_SYMBOL.removeprefix("_mlir_"))
    except Exception as err:  # the bindings raise RuntimeError with LLVM's message
        raise CompilationError(f"machine code generation failed: {err}") from None
    if not address:
        raise CompilationError(f"machine code generation failed: no entry point {ENTRY_SYMBOL}")
    return engine, ctypes.CFUNCTYPE(None, ctypes.c_void_p)(address)
