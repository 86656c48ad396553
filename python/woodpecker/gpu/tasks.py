"""The tuning tasks of a model compiled for CUDA: one standalone module per model kernel.

`cuda_tasks(module, arch, device_name)` cuts the linalg-on-tensors model (weights outlined as
trailing arguments, what `CudaModel.linalg` holds) into the model kernels `compile_gpu` makes
(`gpu.partition`: a kernel is the launches of one graph op, e.g. a padding gather and the
convolution), and turns each into a `KernelTask` whose `module_text` is a module with
`@main(inputs..., weights...)` computing only that kernel: its launch functions (already
prepared: fused epilogues, gather generics) inlined in launch order, each output initialized by
`tensor.empty`, the kernel's arguments with weights last. Re-partitioning that module gives back
the same launches (same problems, ops and launch shapes) of one kernel named `k0_<kind>`: the
task's `kernel_name`, the key of its config (which is its main launch's). `model_kernels` lists
the model's kernels (`k3_conv`) the task stands for.

Kernels with the same signature share one key: `cuda.<kind>.<output dims>.<arch>.<sha1>`, the
hash over every launch's problem (loops, operand accesses), fused ops and the ops in their
bodies (the epilogue), the argument shapes and roles, the element type, the arch and the
device. `cuda_tasks` returns one task per kernel, in launch order; kernels that share a key get
the same task object (the first one's module).

`compile_candidate(task, config, arch)` compiles only that module with `config` for the kernel
and returns a `CudaModel` whose weights are seeded random arrays (the same for every candidate
of a task, so that candidates' outputs can be compared); `space_for(task, arch)` is the
kernel's `SearchSpace`.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from mlir import ir
from mlir.dialects import func, tensor

from woodpecker.errors import CompilationError
from woodpecker.gpu.arch import get_arch
from woodpecker.gpu.codegen import compile_gpu, kernel_functions, kernel_search_spaces, plan_kernels
from woodpecker.gpu.model import CudaModel
from woodpecker.gpu.partition import MAIN_TAG, OP_TAG, ROOT_TAG, KernelPlan
from woodpecker.gpu.prepare import clone_with_mapping
from woodpecker.gpu.program import BufferRef
from woodpecker.kernels.naming import GROUP_ATTR, kernel_kind
from woodpecker.kernels.space import SearchSpace
from woodpecker.kernels.task import Config, KernelTask
from woodpecker.stats import CompileStats

KEY_VERSION = 2  # bump when the signature's description changes (2: a task is a model kernel's launches)
CONTRACTION_KINDS = frozenset({"matmul", "batch_matmul", "conv", "depthwise_conv"})
REDUCING_KINDS = frozenset({"pool", "reduction"})
OUTPUT_NAME = "y"


def _dims(shape: tuple[int, ...]) -> str:
    return "x".join(str(d) for d in shape) or "scalar"


def _body_ops(op: ir.Operation) -> list[str]:
    """The names of the ops nested in `op` (a linalg op's body: the epilogue's arithmetic)."""
    names: list[str] = []

    def visit(nested: ir.Operation) -> ir.WalkResult:
        if nested != op:
            names.append(nested.name)
        return ir.WalkResult.ADVANCE

    op.walk(visit, ir.WalkOrder.PRE_ORDER)
    return names


def _standalone(
    functions: dict[str, ir.Operation], launches: list[KernelPlan]
) -> tuple[str, list[BufferRef], list[tuple[int, ...]], list[str]]:
    """Module text with `@main(non-weight args..., weight args...)` computing the launches of one
    model kernel (their functions of the partition, inlined in order), the model buffer of each
    argument, their shapes, and the body op names."""
    produced = {launch.output.buffer for launch in launches}
    arguments: list[tuple[BufferRef, ir.Type]] = []
    for launch in launches:
        fn = functions[launch.name]
        types = list(fn.regions[0].blocks[0].arguments)
        for position, arg in enumerate(launch.inputs):
            if arg.buffer not in produced and all(b != arg.buffer for b, _ in arguments):
                arguments.append((arg.buffer, types[position].type))
    arguments = [a for a in arguments if a[0].kind != "weight"] + [a for a in arguments if a[0].kind == "weight"]
    out_type = ir.RankedTensorType(functions[launches[-1].name].regions[0].blocks[0].arguments[-1].type)
    module = ir.Module.create()
    with ir.InsertionPoint(module.body):
        main = func.FuncOp("main", ([ty for _, ty in arguments], [out_type]))
        block = main.add_entry_block()
    n_inputs = sum(1 for buffer, _ in arguments if buffer.kind != "weight")
    main.attributes["wpk.input_names"] = ir.ArrayAttr.get([ir.StringAttr.get(f"x{k}") for k in range(n_inputs)])
    values: dict[BufferRef, ir.Value] = {buffer: block.arguments[k] for k, (buffer, _) in enumerate(arguments)}
    body: list[str] = []
    group = ir.IntegerAttr.get(ir.IntegerType.get_signless(64), 0)
    with ir.InsertionPoint(block):
        for launch in launches:
            entry = functions[launch.name].regions[0].blocks[0]
            args = list(entry.arguments)
            mapping = {args[k]: values[arg.buffer] for k, arg in enumerate(launch.inputs)}
            out = ir.RankedTensorType(args[-1].type)
            mapping[args[-1]] = tensor.EmptyOp(list(out.shape), out.element_type).result
            result = None
            for op in entry.operations:
                if op.operation.name == "func.return":
                    result = mapping[op.operation.operands[0]]
                    continue
                clone = clone_with_mapping(op.operation, mapping)
                for tag in (OP_TAG, ROOT_TAG, MAIN_TAG):
                    if tag in clone.attributes:
                        del clone.attributes[tag]
                if clone.name.startswith("linalg."):
                    clone.attributes[GROUP_ATTR] = group  # one kernel, wherever it was in the model
                    body.append(clone.name)
                    body.extend(_body_ops(clone))
            assert result is not None
            values[launch.output.buffer] = result
        func.ReturnOp([values[launches[-1].output.buffer]])
    if not module.operation.verify():
        raise CompilationError(f"kernel {launches[-1].model_kernel}: the standalone module does not verify")
    shapes = [tuple(ir.RankedTensorType(ty).shape) for _, ty in arguments]
    return str(module), [buffer for buffer, _ in arguments], shapes, body


def _flops(plan: KernelPlan) -> int:
    loops = math.prod(plan.problem.loop_extents) if plan.problem.loop_extents else 0
    if plan.kind in CONTRACTION_KINDS:
        return 2 * loops
    if plan.kind in REDUCING_KINDS:
        return loops
    return 0


def _description(plan: KernelPlan, arg_shapes: list[tuple[int, ...]]) -> str:
    """e.g. "conv 1x8x34x34 * 8x8x3x3 -> 1x8x32x32 +epilogue(8, 1x8x32x32)": the main launch's
    operands, its output, and the shapes of its other arguments (read by the epilogue); the
    caller adds the kernel's other launches ("+1 launch": a padding gather)."""
    operands = [tuple(o.shape) for o in plan.problem.operands]
    extras = list(arg_shapes)
    for shape in operands:
        if shape in extras:
            extras.remove(shape)
    ops = list(plan.ops)
    main = next((i for i, name in enumerate(ops) if name != "linalg.fill"), len(ops) - 1)
    text = f"{plan.kind} {' * '.join(_dims(s) for s in operands or arg_shapes)} -> {_dims(plan.output.shape)}"
    if main < len(ops) - 1:
        text += f" +epilogue({', '.join(_dims(s) for s in extras)})" if extras and operands else " +epilogue"
    return text


def _key(
    launches: list[KernelPlan], roles: list[tuple[str, tuple[int, ...]]], body: list[str], arch: str, device: str
) -> str:
    plan = _main(launches)
    signature = {
        "version": KEY_VERSION,
        "template": f"cuda.{plan.problem.kind}",
        "problems": [asdict(launch.problem) for launch in launches],
        "ops": [list(launch.ops) for launch in launches],
        "body": body,
        "args": [[role, list(shape)] for role, shape in roles],
        "output": list(launches[-1].output.shape),
        "element_type": "f32",
        "arch": arch,
        "device": device,
    }
    digest = hashlib.sha1(json.dumps(signature, sort_keys=True).encode()).hexdigest()
    return f"cuda.{plan.kind}.{_dims(launches[-1].output.shape)}.{arch}.{digest[:16]}"


def _main(launches: list[KernelPlan]) -> KernelPlan:
    return next(launch for launch in launches if launch.is_main)


def _parse(text: str) -> ir.Module:
    context = ir.Context()
    return ir.Module.parse(text, context=context)


@dataclass(frozen=True)
class KernelCut:
    """One model kernel as a task: its launches, the model buffer each task argument reads
    (`arg_buffers[j]` for the task's argument j; weights last) and the buffer it writes."""

    task: KernelTask
    launches: tuple[KernelPlan, ...]
    arg_buffers: tuple[BufferRef, ...]
    output: BufferRef

    @property
    def name(self) -> str:
        return self.launches[-1].model_kernel

    @property
    def main(self) -> KernelPlan:
        return _main(list(self.launches))


def cuda_tasks(
    module: str | ir.Module | CudaModel,
    arch: str = "sm_90",
    device_name: str | None = None,
    *,
    num_inputs: int | None = None,
) -> list[KernelTask]:
    """One task per model kernel of `module` (linalg on tensors, weights outlined; its text, or
    a `CudaModel` compiled from it), in launch order; identical kernels share a key and a task.
    `device_name` is the GPU the times will belong to (default: `arch`). `num_inputs`: the
    number of graph inputs among @main's arguments (default: `wpk.input_names`, else all)."""
    return [cut.task for cut in cuda_kernel_cuts(module, arch, device_name, num_inputs=num_inputs)]


def cuda_kernel_cuts(
    module: str | ir.Module | CudaModel,
    arch: str = "sm_90",
    device_name: str | None = None,
    *,
    num_inputs: int | None = None,
) -> list[KernelCut]:
    """`cuda_tasks` with, per model kernel, its launches and the buffers of the task's arguments."""
    if isinstance(module, CudaModel):
        if module.linalg is None:
            raise CompilationError("cuda_tasks needs the linalg module, which a loaded CudaModel does not have")
        num_inputs = len(module.input_names) if num_inputs is None else num_inputs
        module = module.linalg
    if isinstance(module, str):
        module = _parse(module)
    target = get_arch(arch)
    device = device_name or target.chip
    with module.context, ir.Location.unknown(module.context):
        parts, _ = plan_kernels(module, None, target, num_inputs)
        functions = kernel_functions(parts.device)
        cut = []
        for launches in parts.model_kernels().values():
            text, buffers, shapes, body = _standalone(functions, launches)
            roles = [("weight" if b.kind == "weight" else "input", s) for b, s in zip(buffers, shapes, strict=True)]
            cut.append((launches, text, roles, body, buffers))
    by_key: dict[str, list[str]] = {}
    keyed = []
    for launches, text, roles, body, buffers in cut:
        key = _key(launches, roles, body, target.chip, device)
        by_key.setdefault(key, []).append(launches[-1].model_kernel)
        keyed.append((key, launches, text, roles, buffers))
    tasks: dict[str, KernelTask] = {}
    out = []
    for key, launches, text, roles, buffers in keyed:
        main = _main(launches)
        kind = kernel_kind(launch.kind for launch in launches)
        if key not in tasks:
            arg_shapes = tuple(tuple(int(d) for d in shape) for _, shape in roles)
            ordered = sorted(main.inputs, key=lambda arg: arg.buffer.kind == "weight")  # as the task's args
            description = _description(main, [tuple(arg.shape) for arg in ordered])
            if len(launches) > 1:
                description += f" +{len(launches) - 1} launch{'es' if len(launches) > 2 else ''}"
            tasks[key] = KernelTask(
                key=key,
                description=description,
                kind=kind,
                template=f"cuda.{main.problem.kind}",
                target="cuda",
                device=device,
                module_text=text,
                num_weights=sum(1 for role, _ in roles if role == "weight"),
                arg_shapes=arg_shapes,
                output_shape=tuple(int(d) for d in launches[-1].output.shape),
                kernel_name=f"k0_{kind}",
                flops=sum(_flops(launch) for launch in launches),
                model_kernels=tuple(by_key[key]),
            )
        out.append(KernelCut(tasks[key], tuple(launches), tuple(buffers), launches[-1].output.buffer))
    return out


def num_task_inputs(task: KernelTask) -> int:
    return len(task.arg_shapes) - task.num_weights


def task_weights(task: KernelTask) -> list[np.ndarray]:
    """Seeded random weights for the task's weight arguments (the same for every call)."""
    rng = np.random.default_rng(int(hashlib.sha1(task.key.encode()).hexdigest()[:8], 16))
    shapes = task.arg_shapes[num_task_inputs(task) :]
    return [rng.standard_normal(shape).astype(np.float32) for shape in shapes]


@functools.lru_cache(maxsize=256)
def _space(module_text: str, arch: str, num_inputs: int, kernel_name: str) -> SearchSpace:
    module = _parse(module_text)
    spaces = kernel_search_spaces(module, arch, num_inputs=num_inputs)
    if kernel_name not in spaces:
        raise CompilationError(f"the task's module has kernels {sorted(spaces)}, not {kernel_name}")
    return spaces[kernel_name]


def space_for(task: KernelTask, arch: str = "sm_90") -> SearchSpace:
    """The search space of the task's kernel on `arch` (what `compile_candidate` accepts)."""
    return _space(task.module_text, arch, num_task_inputs(task), task.kernel_name)


def compile_candidate(task: KernelTask, config: Mapping[str, Any] | Config | None, arch: str = "sm_90") -> CudaModel:
    """Compiles only the task's kernel with `config` (search-space knobs; None: the default)
    for `arch`: a one-kernel `CudaModel` with inputs `x0..`, output `y` and seeded random
    weights. Raises `InvalidConfigError` for a config outside the space, `CompilationError`
    when the kernel does not compile."""
    start = time.perf_counter()
    module = _parse(task.module_text)
    n_inputs = num_task_inputs(task)
    configs = None if config is None else {task.kernel_name: dict(config)}
    with module.context, ir.Location.unknown(module.context):
        program = compile_gpu(module, arch, configs, num_inputs=n_inputs)
    if not program.kernels or any(k.model_kernel != task.kernel_name for k in program.kernels):
        names = [k.function for k in program.kernels]
        raise CompilationError(f"task {task.key}: the standalone module compiled to launches {names}, not one kernel")
    names = [f"x{k}" for k in range(n_inputs)]
    stats = CompileStats(stage_seconds=dict(program.stage_seconds), num_kernels=1)
    stats.stage_seconds["codegen"] = time.perf_counter() - start
    return CudaModel(
        program=program,
        input_names=names,
        output_names=[OUTPUT_NAME],
        input_shapes={n: tuple(s) for n, s in zip(names, task.arg_shapes[:n_inputs], strict=True)},
        output_shapes={OUTPUT_NAME: tuple(task.output_shape)},
        weights=task_weights(task),
        stats=stats,
        linalg=module,
    )
