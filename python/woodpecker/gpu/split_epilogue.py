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
from collections.abc import Callable

from mlir import ir
from mlir.dialects import func

from woodpecker.cuda.plan import KernelLaunch
from woodpecker.dialect import create_context
from woodpecker.errors import CompilationError
from woodpecker.gpu.codegen import compile_gpu
from woodpecker.gpu.inference_plan import kernel_launch
from woodpecker.gpu.prepare import clone_with_mapping
from woodpecker.gpu.program import BufferRef, GpuKernel
from woodpecker.tune.task import KernelTask

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
        copy_module = ir.Module.parse(_copy_text(ir.RankedTensorType(result_type)))  # kept alive while cloning
        copy_fn = copy_module.body.operations[0]
        copy_ops = [op.operation for op in copy_fn.regions[0].blocks[0].operations][:-1]  # empty, copy
        y = block.arguments[len(args)]
        with ir.InsertionPoint(block):
            # The epilogue updates a fresh copy of y (the GPU partition wants kernels to write
            # fresh tensors); the copy and the epilogue become one elementwise kernel. The copy
            # adds +0.0 (which changes nothing but the sign of a zero) so that canonicalization
            # does not fold it away as an identity.
            copy_map = {copy_fn.regions[0].blocks[0].arguments[0]: y}
            for op in copy_ops:
                copied = clone_with_mapping(op, copy_map)
            mapping[main.results[0]] = copied.results[0]
            for op in ops[: ops.index(main)]:
                if op.name == "arith.constant":
                    clone_with_mapping(op, mapping)
            clone = clone_with_mapping(epilogue, mapping)
            func.ReturnOp([clone.results[0]])
        if not out.operation.verify():
            raise CompilationError("the epilogue module does not verify")
        return str(out)


def _copy_text(tensor_type: ir.RankedTensorType) -> str:
    rank = tensor_type.rank
    dims = ", ".join(f"d{i}" for i in range(rank))
    identity = f"affine_map<({dims}) -> ({dims})>"
    parallel = ", ".join(['"parallel"'] * rank)
    t = str(tensor_type)
    return (
        f"func.func @copy(%y: {t}) -> {t} {{\n"
        f"  %e = tensor.empty() : {t}\n"
        f"  %c = linalg.generic {{indexing_maps = [{identity}, {identity}], iterator_types = [{parallel}]}} "
        f"ins(%y : {t}) outs(%e : {t}) {{\n"
        f"  ^bb0(%i: f32, %o: f32):\n    %z = arith.constant 0.0 : f32\n    %s = arith.addf %i, %z : f32\n"
        f"    linalg.yield %s : f32\n  }} -> {t}\n"
        f"  return %c : {t}\n}}\n"
    )


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
