"""Per-kernel timing of compiled CPU code: time stamps between the top-level steps of `@main`.

With `CpuOptions(profile=True)` the backend

1. tags every top-level op of `@main` with the model kernel it belongs to (`tag_kernels`,
   before the library calls and schedules replace the ops): the op's location is wrapped in a
   name `wpk.profile:<kernel>|<what>`, which the ops that replace it (tiled loops, library calls,
   the copies bufferization makes) inherit; an op of no kernel (a `tensor.pad`) takes the kernel
   of the next op that has one;
2. after bufferization (`instrument`) calls `clock_gettime(CLOCK_MONOTONIC)` before the first
   op and after each step that does work (a loop nest, a `memref.copy`, a library call with the
   data-handle calls before it, a kernel's straight-line vector code), into the global
   `_mlir_wpk_profile_stamps` (two i64 per stamp);
3. reads the stamps after a call (`KernelProfile.durations`): step `i` took stamp `i+1` - stamp `i`.

The stamps are contiguous, so the steps add up to the time spent inside `@main`; what a call
takes beyond that is the caller's (Python, argument and arena set-up). A stamp costs ~20 ns
(the vDSO clock), so the profile is the compiled code's time within noise.
"""

from __future__ import annotations

import ctypes
import re
from dataclasses import dataclass, field

import numpy as np
from mlir import ir
from mlir.dialects import arith, func, memref

TAG_PREFIX = "wpk.profile:"
STAMPS_SYMBOL = "_mlir_wpk_profile_stamps"
CLOCK_MONOTONIC = 1  # Linux's clockid_t
_TAG = re.compile(r'"' + re.escape(TAG_PREFIX) + r'([^"|]*)\|([^"]*)"')
_MODEL_KERNEL_ATTR = "wpk.model_kernel"
_NAMED_OP_ATTR = "wpk.named_op"
# Top-level ops after bufferization that do no work of their own (views, constants, handles).
_FREE_OPS = {
    "arith.constant",
    "arith.index_cast",
    "arith.trunci",
    "func.return",
    "memref.collapse_shape",
    "memref.expand_shape",
    "memref.extract_aligned_pointer_as_index",
    "memref.get_global",
    "memref.load",
    "memref.reinterpret_cast",
    "memref.subview",
    "memref.view",
    "memref.cast",
    "memref.alloc",
    "memref.dealloc",
    "ub.poison",
}
# oneDNN calls that only prepare the next execution: timed with it, not as steps of their own.
_PREPARING_CALLS = {"dnnl_memory_set_data_handle"}


@dataclass(frozen=True)
class KernelInfo:
    """What the profile knows of a model kernel: its name (`k3_blocked_conv`), the named ops of its
    linalg ops, the filter shape of its convolution (empty if none) and the operand and result
    shapes of its transposes (layout reorders)."""

    name: str
    named_ops: tuple[str, ...] = ()
    filter_shape: tuple[int, ...] = ()
    transposes: tuple[tuple[tuple[int, ...], tuple[int, ...]], ...] = ()


@dataclass(frozen=True)
class ProfileStep:
    """One timed step of `@main`: the kernel it belongs to, what the tag said about the op it
    came from (`linalg.fill`, `tensor.pad`, `-`), and what it is after bufferization:
    `library` (a oneDNN/BLAS call), `copy` (a memref.copy), `loops` (generated loop nests) or
    `inline` (generated straight-line code: a small kernel's vector ops at the top level)."""

    kernel: str
    detail: str
    step: str
    callee: str = ""


@dataclass
class KernelProfile:
    """The steps of the instrumented code and where its stamps are (filled once compiled)."""

    steps: list[ProfileStep]
    kernels: dict[str, KernelInfo] = field(default_factory=dict)
    address: int = 0

    def stamps_ns(self) -> np.ndarray:
        """The stamps of the last call, in nanoseconds (len(steps) + 1 of them)."""
        if not self.address:
            raise RuntimeError("the profiled code is not compiled yet")
        count = len(self.steps) + 1
        raw = np.ctypeslib.as_array((ctypes.c_int64 * (2 * count)).from_address(self.address)).reshape(count, 2)
        return raw[:, 0] * 1_000_000_000 + raw[:, 1]

    def durations(self) -> np.ndarray:
        """Seconds each step took in the last call."""
        return np.diff(self.stamps_ns()).astype(np.float64) * 1e-9


def _str(op: ir.Operation, name: str) -> str | None:
    return ir.StringAttr(op.attributes[name]).value if name in op.attributes else None


def _shape(value: ir.Value) -> tuple[int, ...]:
    return tuple(ir.ShapedType(value.type).shape) if isinstance(value.type, ir.ShapedType) else ()


def tag_kernels(module: ir.Module) -> dict[str, KernelInfo]:
    """Wraps each top-level op's location of `@main` in its kernel's profile tag (the kernels found
    and named first, as the schedules will: `find_kernels` is idempotent); returns the kernels."""
    from woodpecker.graph.outline_weights import main_func
    from woodpecker.schedule.kernels import find_kernels

    find_kernels(module)
    fn = main_func(module)
    ops = [op.operation for op in fn.regions[0].blocks[0].operations]
    named: dict[str, list[str]] = {}
    filters: dict[str, tuple[int, ...]] = {}
    transposes: dict[str, list[tuple[tuple[int, ...], tuple[int, ...]]]] = {}
    following = "untagged"
    for op in reversed(ops):
        kernel = _str(op, _MODEL_KERNEL_ATTR)
        if kernel is None:
            if op.name == "func.return":
                continue
            kernel, detail = following, op.name
        else:
            following = kernel
            detail = _str(op, _NAMED_OP_ATTR) or "-"
            named.setdefault(kernel, []).append(detail)
            if ("wpk.groups" in op.attributes or "conv" in detail) and len(op.operands) > 1:
                filters[kernel] = _shape(op.operands[1])
            if detail == "linalg.transpose" and op.operands and op.results:
                transposes.setdefault(kernel, []).append((_shape(op.operands[0]), _shape(op.results[0])))
        op.location = ir.Location.name(f"{TAG_PREFIX}{kernel}|{detail}", childLoc=op.location, context=op.context)
    return {
        name: KernelInfo(
            name,
            tuple(dict.fromkeys(reversed(ops_))),
            filters.get(name, ()),
            tuple(transposes.get(name, ())),
        )
        for name, ops_ in named.items()
    }


def _tag_of(op: ir.Operation) -> tuple[str, str]:
    match = _TAG.search(str(op.location))
    return (match.group(1), match.group(2)) if match else ("untagged", "-")


def _callee(op: ir.Operation) -> str:
    return ir.FlatSymbolRefAttr(op.attributes["callee"]).value if op.name == "func.call" else ""


def _step_kind(op: ir.Operation) -> str:
    if op.name == "func.call":
        return "library"
    if op.name == "memref.copy":
        return "copy"
    if op.name.startswith(("scf.", "linalg.", "omp.")):
        return "loops"
    return "inline"


def _does_work(op: ir.Operation) -> bool:
    return op.name not in _FREE_OPS and not op.name.startswith("arith.")


def instrument(module: ir.Module, fn: ir.Operation) -> list[ProfileStep]:
    """Inserts the time stamps into `fn` (bufferized `@main` of `module`); returns its steps."""
    with module.context, fn.location:
        return _instrument(module, fn)


def _instrument(module: ir.Module, fn: ir.Operation) -> list[ProfileStep]:
    body = fn.regions[0].blocks[0]
    ops = [op.operation for op in body.operations]
    work = [op for op in ops if _does_work(op) and _callee(op) not in _PREPARING_CALLS]
    # Straight-line code at the top level (a small kernel vectorized without loops: vector ops,
    # loads and stores) is one step per kernel; an op whose tag got lost takes the previous one's.
    tags, previous = [], ("untagged", "-")
    for op in work:
        tag = _tag_of(op)
        if tag[0] == "untagged" and _step_kind(op) == "inline":
            tag = (previous[0], "-")
        tags.append(tag)
        previous = tag
    ends = []
    for index, op in enumerate(work):
        last = index + 1 == len(work)
        inline = _step_kind(op) == "inline"
        if not inline or last or _step_kind(work[index + 1]) != "inline" or tags[index + 1][0] != tags[index][0]:
            ends.append(index)
    i32, i64 = ir.IntegerType.get_signless(32), ir.IntegerType.get_signless(64)
    stamps_type = ir.MemRefType.get([len(ends) + 1, 2], i64)
    with ir.InsertionPoint.at_block_begin(module.body):
        memref.GlobalOp(
            STAMPS_SYMBOL,
            ir.TypeAttr.get(stamps_type),
            initial_value=ir.DenseElementsAttr.get(
                np.zeros((len(ends) + 1, 2), dtype=np.int64), type=ir.RankedTensorType.get(stamps_type.shape, i64)
            ),
            alignment=ir.IntegerAttr.get(i64, 64),
        )
        declaration = func.FuncOp("clock_gettime", ir.FunctionType.get([i32, i64], [i32]))
        declaration.attributes["sym_visibility"] = ir.StringAttr.get("private")
    with ir.InsertionPoint.at_block_begin(body):
        stamps = memref.GetGlobalOp(stamps_type, STAMPS_SYMBOL).result
        base = arith.IndexCastOp(i64, memref.ExtractAlignedPointerAsIndexOp(stamps).result).result
        clock = arith.ConstantOp(i32, CLOCK_MONOTONIC).result

    def stamp(index: int, point: ir.InsertionPoint) -> None:
        with point:
            offset = arith.ConstantOp(i64, 16 * index).result
            func.CallOp([i32], "clock_gettime", [clock, arith.AddIOp(base, offset).result])

    position = {op: i for i, op in enumerate(ops)}
    stamp(0, ir.InsertionPoint(ops[0]))
    steps = []
    for number, index in enumerate(ends, start=1):
        op = work[index]
        kernel, detail = tags[index]
        steps.append(ProfileStep(kernel, detail, _step_kind(op), _callee(op)))
        following = position[op] + 1
        stamp(number, ir.InsertionPoint(ops[following]) if following < len(ops) else ir.InsertionPoint(body))
    return steps
