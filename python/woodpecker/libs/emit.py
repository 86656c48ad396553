"""Library calls inside the generated module: build the library object, emit the calls.

A matched kernel (`LibraryPlan`) becomes, in `@main` (linalg on tensors):

    %in  = bufferization.to_buffer %x read_only        (each run-time input)
    %out = memref.alloc()                              (the result, 64-byte aligned)
    func.call @dnnl_memory_set_data_handle(<memory>, <pointer of %in / %out>)   (oneDNN)
    func.call @dnnl_primitive_execute(<primitive>, <stream>, <nargs>, <args>)   (each execution)
    func.call @dnnl_stream_wait(<stream>)
      or  func.call @scipy_cblas_sgemm(...)                                       (BLAS)
    %r = bufferization.to_tensor %out restrict writable

and `%r` replaces the kernel's result. The library objects (primitives with their weights
reordered once, memory objects, argument arrays; for BLAS the weight array) are built here,
at compile time, and their addresses are constants of the code: the executable keeps them
alive (`LibraryKernel.keep`). The ExecutionEngine links the libraries, so the JIT-ed code calls
them directly, with no Python in between.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from mlir import ir
from mlir.dialects import arith, bufferization, func, memref

from woodpecker.libs import blas
from woodpecker.libs.match import LibraryPlan


@dataclass
class LibraryKernel:
    """A library call emitted into a module, with what must outlive the executable's code."""

    plan_description: str
    kernel_name: str
    library: str
    implementation: str  # e.g. oneDNN's implementation name ("brg_conv_fwd:avx2"), "openblas sgemm"
    keep: object


def build_call(plan: LibraryPlan, weights_by_arg: dict[int, np.ndarray], threads: int) -> object:
    """The library object computing `plan`, with its weights baked in."""
    if plan.library == "blas":
        blas.load()
        blas.set_threads(1)  # see woodpecker.libs.blas: no second thread pool next to OpenMP's
        weights = np.ascontiguousarray(weights_by_arg[plan.weight_args["weights"]], dtype=np.float32)
        return weights
    from woodpecker.libs import onednn

    onednn.load()
    onednn.set_threads(threads)
    params = plan.params
    post_ops = [
        onednn.PostOp(p["kind"], p["alg"], alpha=p["alpha"], beta=p["beta"], shape=tuple(p.get("shape", ())))
        for p in params.get("post_ops", ())
    ]
    bias = weights_by_arg[plan.weight_args["bias"]] if "bias" in plan.weight_args else None
    if plan.op == "conv":
        weights = weights_by_arg[plan.weight_args["weights"]].reshape(params["filter_shape"])
        return onednn.Convolution(
            params["src_shape"],
            np.asarray(weights, dtype=np.float32),
            None if bias is None else np.asarray(bias, dtype=np.float32),
            strides=params["strides"],
            pads_begin=params["pads_begin"],
            pads_end=params["pads_end"],
            dilations=params["dilations"],
            groups=params["groups"],
            post_ops=post_ops,
        )
    if plan.op == "matmul":
        weights = np.asarray(weights_by_arg[plan.weight_args["weights"]], dtype=np.float32)
        logical = weights.T if params["transposed_weights"] else weights  # (K, N)
        return onednn.MatMul(
            params["m"], params["k"], logical, None if bias is None else np.asarray(bias, np.float32), post_ops
        )
    return onednn.Pooling(
        params["src_shape"],
        params["kind"],
        kernel=params["kernel"],
        strides=params["strides"],
        pads_begin=params["pads_begin"],
        pads_end=params["pads_end"],
    )


def _declare(module: ir.Module, name: str, inputs: Sequence[ir.Type], results: Sequence[ir.Type]) -> None:
    body = module.body
    for op in body.operations:
        if op.operation.name == "func.func" and ir.StringAttr(op.operation.attributes["sym_name"]).value == name:
            return
    with ir.InsertionPoint.at_block_begin(body):
        declaration = func.FuncOp(name, ir.FunctionType.get(list(inputs), list(results)))
        declaration.attributes["sym_visibility"] = ir.StringAttr.get("private")


def _i64(value: int) -> ir.Value:
    return arith.ConstantOp(ir.IntegerType.get_signless(64), int(value)).result


def _i32(value: int) -> ir.Value:
    return arith.ConstantOp(ir.IntegerType.get_signless(32), int(value)).result


def _f32(value: float) -> ir.Value:
    return arith.ConstantOp(ir.F32Type.get(), float(value)).result


def _pointer(buffer: ir.Value) -> ir.Value:
    index = memref.ExtractAlignedPointerAsIndexOp(buffer).result
    return arith.IndexCastOp(ir.IntegerType.get_signless(64), index).result


def _buffer(tensor: ir.Value) -> ir.Value:
    shape = ir.RankedTensorType(tensor.type).shape
    return bufferization.ToBufferOp(ir.MemRefType.get(shape, ir.F32Type.get()), tensor, read_only=True).result


def emit_call(module: ir.Module, plan: LibraryPlan, call: object) -> ir.Value:
    """Emits the library call for `plan` before the op it replaces; returns its result tensor."""
    i32, i64, f32 = ir.IntegerType.get_signless(32), ir.IntegerType.get_signless(64), ir.F32Type.get()
    anchor = plan.replaces
    with ir.InsertionPoint(anchor), anchor.location:
        inputs = [_pointer(_buffer(value)) for value in plan.inputs]
        out_type = ir.MemRefType.get(list(plan.output_shape), f32)
        out = memref.AllocOp(out_type, [], [], alignment=64).result
        out_pointer = _pointer(out)
        if plan.library == "blas":
            _declare(module, blas.SGEMM_SYMBOL, [i32] * 6 + [f32, i64, i32, i64, i32, f32, i64, i32], [])
            m, k, n = plan.params["m"], plan.params["k"], plan.params["n"]
            transposed = plan.params["transposed_weights"]
            weights = call
            assert isinstance(weights, np.ndarray)
            func.CallOp(
                [],
                blas.SGEMM_SYMBOL,
                [
                    _i32(blas.ROW_MAJOR),
                    _i32(blas.NO_TRANS),
                    _i32(blas.TRANS if transposed else blas.NO_TRANS),
                    _i32(m),
                    _i32(n),
                    _i32(k),
                    _f32(1.0),
                    inputs[0],
                    _i32(k),
                    _i64(weights.ctypes.data),
                    _i32(k if transposed else n),
                    _f32(0.0),
                    out_pointer,
                    _i32(n),
                ],
            )
        else:
            _declare(module, "dnnl_memory_set_data_handle", [i64, i64], [i32])
            _declare(module, "dnnl_primitive_execute", [i64, i64, i32, i64], [i32])
            _declare(module, "dnnl_stream_wait", [i64], [i32])
            memories = call.runtime_memories
            if len(memories) != len(inputs) + 1:
                raise ValueError(f"{plan.description}: {len(memories)} run-time memories for {len(inputs) + 1} tensors")
            for memory, pointer in zip(memories, [*inputs, out_pointer], strict=True):
                func.CallOp([i32], "dnnl_memory_set_data_handle", [_i64(memory), pointer])
            for execution in call.executions:
                func.CallOp(
                    [i32],
                    "dnnl_primitive_execute",
                    [_i64(execution.primitive), _i64(call.stream), _i32(execution.nargs), _i64(execution.args)],
                )
            func.CallOp([i32], "dnnl_stream_wait", [_i64(call.stream)])
        tensor_type = ir.RankedTensorType.get(list(plan.output_shape), f32)
        return bufferization.ToTensorOp(tensor_type, out, restrict=True, writable=True).result


def implementation_name(plan: LibraryPlan, call: object) -> str:
    if plan.library == "blas":
        return "openblas sgemm"
    return str(getattr(call, "name", "onednn"))


def library_paths(libraries: set[str]) -> list[str]:
    """The shared libraries the ExecutionEngine must link for `libraries`."""
    paths = []
    if "blas" in libraries:
        path = blas.library_path()
        if path is not None:
            paths.append(str(path))
    if "onednn" in libraries:
        from woodpecker.libs import onednn

        path = onednn.library_path()
        if path is not None:
            paths.append(str(path))
    return paths
