"""Library calls inside the generated module: build the library object, emit the calls.

A matched kernel (`LibraryPlan`) becomes, in `@main` (linalg on tensors):

    %in  = bufferization.to_buffer %x read_only        (each run-time input)
    %out = memref.alloc()                              (the result, 64-byte aligned)
    func.call @dnnl_memory_set_data_handle(<memory>, <pointer of %in / %out>)   (oneDNN)
    func.call @dnnl_primitive_execute(<primitive>, <stream>, <nargs>, <args>)   (each execution)
    func.call @dnnl_stream_wait(<stream>)
      or  func.call @scipy_cblas_sgemm(...)                                       (BLAS)
      or  func.call @scipy_cblas_sgemm_batch_strided(...)          (BLAS, batched run-time operands)
    %r = bufferization.to_tensor %out restrict writable

and `%r` replaces the kernel's result. The library objects (primitives with their weights
reordered once, memory objects, argument arrays; for BLAS the weight array) are built here,
at compile time (`LibraryCallSpec.build`). Their addresses are not constants of the code: each
`<memory>`, `<primitive>`, ... is a load from the kernel's handle table `@_mlir_wpk_handles_<kernel>`
(woodpecker.runtime.cpu.library_calls), which the backend fills once the code is compiled and
a saved model fills at load time with the objects it built again. The executable keeps them
alive (`LibraryKernel.keep`). The ExecutionEngine (or the saved shared library) links the
libraries, so the code calls them directly, with no Python in between.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from mlir import ir
from mlir.dialects import arith, bufferization, func, memref

from woodpecker.libs.match import LibraryPlan
from woodpecker.runtime.cpu import blas
from woodpecker.runtime.cpu.library_calls import (
    BLAS_WEIGHTS_SLOT,
    ONEDNN_STREAM_SLOT,
    LibraryCallSpec,
    handle_symbol,
    onednn_execution_slots,
    onednn_memory_slot,
    table_capacity,
    table_initial_values,
)


@dataclass
class LibraryKernel:
    """A library call emitted into a module, with what must outlive the executable's code."""

    plan_description: str
    kernel_name: str
    library: str
    implementation: str  # e.g. oneDNN's implementation name ("brg_conv_fwd:avx2"), "openblas sgemm"
    keep: object  # the library object (its handles fill the kernel's table)
    spec: LibraryCallSpec  # how to build it again (a saved model does, at load time)


def call_spec(plan: LibraryPlan, first_weight: int) -> LibraryCallSpec:
    """What a saved model needs to build `plan`'s library object again: its parameters and its
    weights as positions among the model's weights."""
    return LibraryCallSpec(
        kernel_name=plan.kernel_name,
        library=plan.library,
        op=plan.op,
        params=json_params(plan.params),
        weights={role: arg - first_weight for role, arg in plan.weight_args.items()},
    )


def json_params(value: object) -> Any:
    """`value` with tuples as lists (what a manifest holds and reads back)."""
    if isinstance(value, dict):
        return {str(k): json_params(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_params(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def build_call(spec: LibraryCallSpec, weights: Sequence[np.ndarray], threads: int) -> object:
    """The library object computing `spec`, with its weights baked in."""
    return spec.build({role: weights[index] for role, index in spec.weights.items()}, threads)


def _declare(module: ir.Module, name: str, inputs: Sequence[ir.Type], results: Sequence[ir.Type]) -> None:
    body = module.body
    for op in body.operations:
        if op.operation.name == "func.func" and ir.StringAttr(op.operation.attributes["sym_name"]).value == name:
            return
    with ir.InsertionPoint.at_block_begin(body):
        declaration = func.FuncOp(name, ir.FunctionType.get(list(inputs), list(results)))
        declaration.attributes["sym_visibility"] = ir.StringAttr.get("private")


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


def _handle_table(module: ir.Module, spec: LibraryCallSpec, capacity: int) -> ir.Value:
    """Declares the kernel's handle table (a mutable i64 global holding its capacity and the
    spec's digest, see woodpecker.runtime.cpu.library_calls); returns it as a memref here."""
    initial = np.asarray(table_initial_values(spec, capacity), dtype=np.int64)
    table_type = ir.MemRefType.get([initial.size], ir.IntegerType.get_signless(64))
    name = handle_symbol(spec.kernel_name)
    with ir.InsertionPoint.at_block_begin(module.body):
        memref.GlobalOp(
            name,
            ir.TypeAttr.get(table_type),
            initial_value=ir.DenseElementsAttr.get(
                initial, type=ir.RankedTensorType.get([initial.size], table_type.element_type)
            ),
            alignment=ir.IntegerAttr.get(ir.IntegerType.get_signless(64), 64),
        )
    return memref.GetGlobalOp(table_type, name).result


def _slot(table: ir.Value, slot: int) -> ir.Value:
    return memref.LoadOp(table, [arith.ConstantOp(ir.IndexType.get(), slot).result]).result


def _emit_blas(module: ir.Module, plan: LibraryPlan, table: ir.Value, inputs: list[ir.Value], out: ir.Value) -> None:
    """C = A @ op(B) by `scipy_cblas_sgemm` (B a weight: the table's slot), or for two run-time
    operands by `scipy_cblas_sgemm_batch_strided` (one matrix per batch entry, B read from memory)."""
    i32, i64, f32 = ir.IntegerType.get_signless(32), ir.IntegerType.get_signless(64), ir.F32Type.get()
    params = plan.params
    m, k, n = params["m"], params["k"], params["n"]
    if plan.op == "runtime_matmul":
        transposed, rhs = params["transposed_b"], inputs[1]
    else:
        transposed, rhs = params["transposed_weights"], _slot(table, BLAS_WEIGHTS_SLOT)
    head = [_i32(blas.ROW_MAJOR), _i32(blas.NO_TRANS), _i32(blas.TRANS if transposed else blas.NO_TRANS)]
    head += [_i32(m), _i32(n), _i32(k), _f32(1.0)]
    ldb = k if transposed else n
    if plan.op == "runtime_matmul" and params["batch"] is not None:
        args = [*head, inputs[0], _i32(k), _i32(m * k), rhs, _i32(ldb), _i32(k * n), _f32(0.0), out, _i32(n)]
        args += [_i32(m * n), _i32(params["batch"])]
        types = [i32] * 6 + [f32, i64, i32, i32, i64, i32, i32, f32, i64, i32, i32, i32]
        _declare(module, blas.SGEMM_BATCH_STRIDED_SYMBOL, types, [])
        func.CallOp([], blas.SGEMM_BATCH_STRIDED_SYMBOL, args)
        return
    _declare(module, blas.SGEMM_SYMBOL, [i32] * 6 + [f32, i64, i32, i64, i32, f32, i64, i32], [])
    func.CallOp([], blas.SGEMM_SYMBOL, [*head, inputs[0], _i32(k), rhs, _i32(ldb), _f32(0.0), out, _i32(n)])


def emit_call(module: ir.Module, plan: LibraryPlan, spec: LibraryCallSpec, call: object) -> ir.Value:
    """Emits the library call for `plan` before the op it replaces; returns its result tensor.
    The library objects' handles are read from the kernel's table, not baked in as constants."""
    i32, i64, f32 = ir.IntegerType.get_signless(32), ir.IntegerType.get_signless(64), ir.F32Type.get()
    anchor = plan.replaces
    with ir.InsertionPoint(anchor), anchor.location:
        table = _handle_table(module, spec, table_capacity(plan.library, call))
        # The output first: the arena planner (backend/arena.py) ends an input's lifetime at the
        # last op using its buffer, the pointer extraction, so an output allocated after it could
        # share the input's memory while the call still reads it.
        out_type = ir.MemRefType.get(list(plan.output_shape), f32)
        out = memref.AllocOp(out_type, [], [], alignment=64).result
        inputs = [_pointer(_buffer(value)) for value in plan.inputs]
        out_pointer = _pointer(out)
        if plan.library == "blas":
            _emit_blas(module, plan, table, inputs, out_pointer)
        else:
            _declare(module, "dnnl_memory_set_data_handle", [i64, i64], [i32])
            _declare(module, "dnnl_primitive_execute", [i64, i64, i32, i64], [i32])
            _declare(module, "dnnl_stream_wait", [i64], [i32])
            memories = call.runtime_memories
            if len(memories) != len(inputs) + 1:
                raise ValueError(f"{plan.description}: {len(memories)} run-time memories for {len(inputs) + 1} tensors")
            stream = _slot(table, ONEDNN_STREAM_SLOT)
            for index, pointer in enumerate([*inputs, out_pointer]):
                func.CallOp([i32], "dnnl_memory_set_data_handle", [_slot(table, onednn_memory_slot(index)), pointer])
            for index in range(len(call.executions)):
                primitive, nargs, args = onednn_execution_slots(len(memories), index)
                count = arith.TruncIOp(i32, _slot(table, nargs)).result
                func.CallOp(
                    [i32], "dnnl_primitive_execute", [_slot(table, primitive), stream, count, _slot(table, args)]
                )
            func.CallOp([i32], "dnnl_stream_wait", [stream])
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
        from woodpecker.runtime.cpu import onednn

        path = onednn.library_path()
        if path is not None:
            paths.append(str(path))
    return paths
