"""Cutting CPU kernels out of a model: one standalone module and one signature per kernel.

`cpu_tasks` takes a model's `@main` lowered to linalg on tensors (weights as trailing
arguments), finds its model kernels as the CPU back end does (`schedule.kernels`), and for
each kernel builds a module whose `@main(inputs..., weights...)` computes only that kernel:
every unit of it (a convolution's padding copies, its fill, the convolution and its
epilogue), with every value produced elsewhere in the model (the residual operand, the
previous kernel's output) turned into an input argument. The text of that module,
with the target and the device, is the kernel's *signature*: identical layers (ResNet-50's
repeated blocks) get the same `KernelTask.key`, so they are tuned once and their records are
shared by every model that has them.
"""

from __future__ import annotations

import hashlib
import math
import platform
from dataclasses import dataclass

from mlir import ir
from mlir.dialects import func

from woodpecker.errors import CompilationError
from woodpecker.graph.outline_weights import main_func
from woodpecker.kernels.naming import GROUP_ATTR, MODEL_KERNEL_ATTR
from woodpecker.kernels.space import SearchSpace
from woodpecker.kernels.task import KernelTask
from woodpecker.schedule.kernels import (
    KERNEL_ATTR,
    ROLE_ATTR,
    ModelKernel,
    erase_unused,
    find_kernels,
    model_kernels,
    owner_of,
)
from woodpecker.schedule.target import CpuMachine
from woodpecker.schedule.templates import schedule_space

# Ops a kernel may use that are copied into its standalone module rather than passed in.
_LOCAL_OPS = ("tensor.empty", "arith.constant")
_CONTRACTIONS = ("matmul", "conv", "depthwise_conv", "blocked_conv", "blocked_depthwise_conv")


@dataclass
class ExtractedKernel:
    """A model kernel with its tuning task and search space (its main unit's)."""

    kernel_name: str  # in the model, e.g. "k7_conv"
    task: KernelTask
    space: SearchSpace  # of the model's kernel (same knobs as the standalone one)


def cpu_device(threads: int) -> str:
    """The hardware CPU timings belong to: the CPU model, its vector ISA and the thread count."""
    model = platform.processor() or platform.machine()
    isa = ""
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith("model name") and ":" in line:
                    model = line.split(":", 1)[1].strip()
                elif line.startswith("flags") and ":" in line:
                    flags = set(line.split(":", 1)[1].split())
                    isa = "avx512" if "avx512f" in flags else "avx2" if "avx2" in flags else ""
                    break
    except OSError:
        pass
    return " ".join(part for part in (model, isa, f"{threads}t") if part)


def cpu_tasks(
    module: ir.Module, num_weights: int, target: CpuMachine, device: str | None = None
) -> list[ExtractedKernel]:
    """The tuning tasks of every model kernel of `module`, which is cut in place: its kernels
    are found and tagged with their names (what code generation then reads)."""
    device = device or cpu_device(target.threads)
    with module.context, ir.Location.unknown(module.context):
        kernels = model_kernels(find_kernels(module))
        tagged = str(module)
        first_weight = len(main_func(module).regions[0].blocks[0].arguments) - num_weights
        extracted = []
        for kernel in kernels:
            _, space = schedule_space(kernel.main, target)
            text, arg_shapes, weights = _standalone(tagged, kernel.name, first_weight)
            extracted.append(
                ExtractedKernel(kernel.name, _task(kernel, space, text, arg_shapes, weights, device), space)
            )
    by_key: dict[str, list[str]] = {}
    for item in extracted:
        by_key.setdefault(item.task.key, []).append(item.kernel_name)
    for item in extracted:
        object.__setattr__(item.task, "model_kernels", tuple(by_key[item.task.key]))
    return extracted


def _task(
    kernel: ModelKernel, space: SearchSpace, text: str, arg_shapes: list[tuple[int, ...]], weights: int, device: str
) -> KernelTask:
    digest = hashlib.sha1(f"cpu\n{device}\n{text}".encode()).hexdigest()[:12]
    main = kernel.main
    shapes = " ".join("x".join(map(str, s)) for s in arg_shapes)
    out = "x".join(map(str, kernel.units[-1].output_shape))
    op = main.named_op.removeprefix("linalg.")
    extra = [unit for unit in kernel.units if not unit.is_main]
    description = f"{op} {shapes} -> {out}" + (" +epilogue" if main.epilogue is not None else "")
    if extra:
        description += f" +{len(extra)} op{'s' if len(extra) > 1 else ''}"
    factor = 2 if main.kind in _CONTRACTIONS else 1
    return KernelTask(
        key=f"cpu.{kernel.kind}.{out}.{digest}",
        description=description,
        kind=kernel.kind,
        template=space.template,
        target="cpu",
        device=device,
        module_text=text,
        num_weights=weights,
        arg_shapes=tuple(arg_shapes),
        output_shape=kernel.units[-1].output_shape,
        kernel_name="k0_" + kernel.kind,
        flops=factor * math.prod(main.loops.extents),
    )


def _is_weight(value: ir.Value, first_weight: int) -> bool:
    """A weight argument, or a reshape of one (a depthwise filter collapsed to C x KH x KW):
    its values are fixed when the model is compiled, which a library kernel relies on."""
    while not isinstance(value.owner, ir.Block):
        owner = owner_of(value)
        if owner is None or owner.name not in ("tensor.collapse_shape", "tensor.expand_shape"):
            return False
        value = owner.operands[0]
    return ir.BlockArgument(value).arg_number >= first_weight


def _standalone(tagged: str, name: str, first_weight: int) -> tuple[str, list[tuple[int, ...]], int]:
    """The module computing only model kernel `name` of the tagged module text; its argument
    shapes and how many of its (trailing) arguments are weights."""
    module = ir.Module.parse(tagged)
    fn = main_func(module)
    block = fn.regions[0].blocks[0]
    members = [
        op.operation
        for op in block.operations
        if MODEL_KERNEL_ATTR in op.operation.attributes
        and ir.StringAttr(op.operation.attributes[MODEL_KERNEL_ATTR]).value == name
    ]
    root = _output_of(members)
    if root is None:
        raise CompilationError(f"kernel {name} has no op whose result leaves it")
    # Every operand produced outside the kernel (and not a constant or an empty tensor) becomes
    # an argument; old arguments are kept (inputs before weights).
    externals: list[tuple[ir.Value, bool]] = []  # (value, is_weight)

    def external_index(value: ir.Value) -> int:
        for i, (known, _) in enumerate(externals):
            if known == value:
                return i
        is_weight = _is_weight(value, first_weight)
        externals.append((value, is_weight))
        return len(externals) - 1

    uses: list[tuple[ir.Operation, int, int]] = []  # (op, operand number, external index)

    def defined_outside(value: ir.Value) -> bool:
        """Made in @main's body (or an argument of it), not by a kernel member or a local op."""
        owner = value.owner
        if isinstance(owner, ir.Block):
            return owner == block
        owner = owner_of(value)
        return owner.parent == fn.operation and not any(owner == m for m in members) and owner.name not in _LOCAL_OPS

    def collect(op: ir.Operation) -> None:
        for number, value in enumerate(op.operands):
            if defined_outside(value):
                uses.append((op, number, external_index(value)))
        for region in op.regions:  # values a body captures from @main (a tensor.extract in a pad)
            for inner_block in region.blocks:
                for inner in inner_block.operations:
                    collect(inner.operation)

    for op in members:
        collect(op)
    order = [i for i, (_, w) in enumerate(externals) if not w] + [i for i, (_, w) in enumerate(externals) if w]
    old_count = len(block.arguments)
    new_args = {}
    for i in order:
        value = externals[i][0]
        new_args[i] = block.add_argument(value.type, ir.Location.unknown())
    for op, number, i in uses:
        op.operands[number] = new_args[i]
    group = ir.IntegerAttr.get(ir.IntegerType.get_signless(64), 0)
    for op in members:
        for attr in (KERNEL_ATTR, ROLE_ATTR, MODEL_KERNEL_ATTR):
            if attr in op.attributes:
                del op.attributes[attr]
        op.attributes[GROUP_ATTR] = group  # one kernel, whatever its position was in the model
    terminator = block.operations[len(block.operations) - 1]
    terminator.operation.erase()
    with ir.InsertionPoint(block):
        func.ReturnOp([root.results[0]])
    erase_unused(block)
    for position in reversed(range(old_count)):
        if list(block.arguments[position].uses):
            raise CompilationError(f"kernel {name} still uses argument {position} of @main after extraction")
        block.erase_argument(position)
    arg_types = [arg.type for arg in block.arguments]
    fn.attributes["function_type"] = ir.TypeAttr.get(ir.FunctionType.get(arg_types, [root.results[0].type]))
    for attr in [a if isinstance(a, str) else a.name for a in fn.attributes]:
        if attr.startswith("wpk."):  # input/output names: not part of the signature
            del fn.attributes[attr]
    for op in block.operations:
        op_name = op.operation.name
        if op_name not in _LOCAL_OPS and op_name != "func.return" and not any(op.operation == m for m in members):
            raise CompilationError(f"kernel {name} cannot be cut out: it depends on '{op_name}'")
    shapes = [tuple(ir.RankedTensorType(t).shape) for t in arg_types]
    weights = sum(1 for _, w in externals if w)
    return str(module), shapes, weights


def _output_of(members: list[ir.Operation]) -> ir.Operation | None:
    """The member whose result is used outside the kernel (or returned): the kernel's output
    (the last such one, should there be several)."""
    found = None
    for op in members:
        if len(op.results) != 1:
            continue
        for use in op.results[0].uses:
            user = use.owner.operation if isinstance(use.owner, ir.OpView) else use.owner
            if not any(user == member for member in members):
                found = op
                break
    return found
