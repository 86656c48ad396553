"""A library call's epilogue as a generated kernel of its own, for when the library cannot fuse it.

cuDNN fuses a convolution's bias, residual add and activation into one graph only where one of
its engines supports the fused pattern for the data layout (its runtime fusion engines want
channels-last data; the plan's is NCHW). The plan therefore also carries, for each cuDNN step
with an epilogue, that epilogue compiled alone: `@main(kernel args..., y)` applies the kernel's
epilogue `linalg.generic` to `y`, the main op's result. The executor runs the library's plain
convolution into the step's output buffer and then this kernel on the same buffer, in place
(the epilogue is elementwise over the output: each element is read and written by one thread).
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable

from mlir import ir
from mlir.dialects import func, linalg, tensor

from woodpecker.dialect import create_context
from woodpecker.errors import CompilationError
from woodpecker.gpu.codegen import compile_gpu
from woodpecker.gpu.inference_plan import kernel_launch
from woodpecker.gpu.prepare import clone_with_mapping
from woodpecker.gpu.program import BufferRef, GpuKernel
from woodpecker.kernels.task import KernelTask
from woodpecker.runtime.cuda.plan import KernelLaunch, LibraryStep

_MAIN_OPS = ("linalg.conv_2d_nchw_fchw", "linalg.depthwise_conv_2d_nchw_chw", "linalg.matmul",
             "linalg.matmul_transpose_b")


def epilogue_module(module_text: str) -> str | None:
    """`@main(the task's arguments..., y)` -> the task kernel's epilogue applied to `y`; None
    when the kernel has no epilogue."""
    with create_context() as context, ir.Location.unknown(context):
        module = ir.Module.parse(module_text)
        main_fn = next(op for op in module.body.operations if op.operation.name == "func.func")
        entry = main_fn.regions[0].blocks[0]
        ops = [op.operation for op in entry.operations]
        main = next((op for op in ops if op.name in _MAIN_OPS), None)
        if main is None:
            return None
        epilogue = next((op for op in ops if op.name == "linalg.generic" and main.results[0] in list(op.operands)),
                        None)
        if epilogue is None:
            return None
        result_type = main.results[0].type
        args = list(entry.arguments)
        out = ir.Module.create()
        with ir.InsertionPoint(out.body):
            fn = func.FuncOp("main", ([a.type for a in args] + [result_type], [epilogue.results[0].type]))
            block = fn.add_entry_block()
        fn.attributes["wpk.input_names"] = ir.ArrayAttr.get(
            [ir.StringAttr.get(f"x{k}") for k in range(len(args) + 1)]
        )
        mapping = {old: new for old, new in zip(args, block.arguments, strict=False)}
        y = block.arguments[len(args)]
        with ir.InsertionPoint(block):
            for op in ops[: ops.index(main)]:
                if op.name == "arith.constant":
                    clone_with_mapping(op, mapping)
            result = _epilogue_on(epilogue, main.results[0], y, mapping)
            func.ReturnOp([result])
        if not out.operation.verify():
            raise CompilationError("the epilogue module does not verify")
        return str(out)


def _epilogue_on(epilogue: ir.Operation, main_result: ir.Value, y: ir.Value, mapping: dict) -> ir.Value:
    """`epilogue` cloned at the insertion point with the main op's result replaced by `y`. The
    GPU partition wants a kernel to write a fresh tensor, so an epilogue that updates the main
    result in place (its `outs`) is rebuilt with `y` as its first input and `tensor.empty` as
    its output; the body reads the input where it read the output."""
    inputs = len(epilogue.operands) - 1
    if epilogue.operands[inputs] != main_result:  # the main result is an input: a plain clone
        return clone_with_mapping(epilogue, {**mapping, main_result: y}).results[0]
    maps = list(ir.ArrayAttr(epilogue.attributes["indexing_maps"]))
    out_type = ir.RankedTensorType(epilogue.results[0].type)
    fresh = tensor.EmptyOp(list(out_type.shape), out_type.element_type).result
    rebuilt = linalg.GenericOp(
        [out_type],
        [y, *(mapping[v] for v in list(epilogue.operands)[:inputs])],
        [fresh],
        ir.ArrayAttr.get([maps[inputs], *maps[:inputs], maps[inputs]]),
        epilogue.attributes["iterator_types"],
    )
    old_body = epilogue.regions[0].blocks[0]
    old_args = list(old_body.arguments)
    body = rebuilt.regions[0].blocks.append(old_args[inputs].type, *(a.type for a in old_args))
    new_args = list(body.arguments)
    # old (ins..., out) -> new (y, ins..., out): the old output element is y's element
    body_map = {**mapping, old_args[inputs]: new_args[0], **dict(zip(old_args[:inputs], new_args[1:-1], strict=True))}
    with ir.InsertionPoint(body):
        for op in old_body.operations:
            clone_with_mapping(op.operation, body_map)
    return rebuilt.results[0]


@functools.lru_cache(maxsize=256)
def _epilogue_kernel(module_text: str, num_args: int, arch: str) -> GpuKernel | None:
    text = epilogue_module(module_text)
    if text is None:
        return None
    with create_context() as context, ir.Location.unknown(context):
        program = compile_gpu(ir.Module.parse(text), arch, None, num_inputs=num_args + 1)
    if len(program.kernels) != 1:
        raise CompilationError(f"the epilogue compiled to {len(program.kernels)} kernels, not one")
    return program.kernels[0]


def split_epilogue(
    task: KernelTask, arch: str, name: str, arg_buffer: Callable[[int], str], y: str
) -> KernelLaunch | None:
    """The epilogue of `task`'s kernel (model kernel `name`) as a launch over plan buffers:
    `arg_buffer(j)` is the buffer of the task's argument j, `y` the output, read and written in
    place. None when the kernel has no epilogue. Compiled once per signature."""
    n_args = len(task.arg_shapes)
    try:
        kernel = _epilogue_kernel(task.module_text, n_args, arch)
    except CompilationError as err:
        raise CompilationError(f"kernel {name}: {err}") from None
    if kernel is None:
        return None

    def buffer(ref: BufferRef) -> str:
        if ref.kind == "output" or ref.index == n_args:
            return y
        if ref.kind != "input":
            raise CompilationError(f"kernel {name}: its epilogue uses a {ref.kind} buffer")
        return arg_buffer(ref.index)

    return kernel_launch(kernel, f"{name}_epilogue", buffer)


def library_epilogue(
    task: KernelTask, step: LibraryStep, arch: str, name: str, arg_buffer: Callable[[int], str]
) -> KernelLaunch | None:
    """For a cuDNN step with a bias or post-ops: its epilogue as a kernel of its own (run after a
    plain convolution where cuDNN has no engine for the fused graph); else None. A kernel that
    does not compile only costs that option: the warning says so."""
    if step.library != "cudnn" or not (step.spec.get("bias") or step.spec.get("post_ops")):
        return None
    try:
        return split_epilogue(task, arch, name, arg_buffer, step.operands["y"])
    except CompilationError as err:
        warnings.warn(f"{err}: where cuDNN cannot fuse it, the step runs its generated kernel", stacklevel=2)
        return None
