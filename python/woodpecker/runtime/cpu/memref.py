"""The arguments of compiled CPU code: MLIR's ranked memref descriptors as ctypes structures.

`@main` is compiled with `llvm.emit_c_interface`; the ExecutionEngine adds the packed wrapper
`_mlir__mlir_ciface_main(void **args)`, where `args[i]` points at a pointer to the i-th
argument's descriptor `{allocated, aligned, offset, sizes[rank], strides[rank]}` (all 64-bit).
The JIT-ed code and a saved shared library are called the same way (`packed_arguments`).
"""

from __future__ import annotations

import ctypes
import functools
from collections.abc import Sequence

import numpy as np

# The entry point and its calling convention, as a saved model's manifest names them.
ENTRY_SYMBOL = "_mlir__mlir_ciface_main"
CALLING_CONVENTION = "mlir-c-interface-packed"


@functools.cache
def descriptor_type(rank: int) -> type[ctypes.Structure]:
    """The ctypes struct of a rank-`rank` memref descriptor (built once per rank: building one
    per call cost ~100 µs, more than running a small kernel)."""
    fields: list[tuple[str, type]] = [
        ("allocated", ctypes.c_void_p),
        ("aligned", ctypes.c_void_p),
        ("offset", ctypes.c_int64),
    ]
    if rank:
        fields += [("shape", ctypes.c_int64 * rank), ("strides", ctypes.c_int64 * rank)]
    return type(f"MemRefDescriptor{rank}", (ctypes.Structure,), {"_fields_": fields})


def memref_arg(array: np.ndarray) -> ctypes._Pointer:
    """A pointer to a pointer to `array`'s descriptor (the array must outlive the call)."""
    descriptor = descriptor_type(array.ndim)()
    descriptor.allocated = array.ctypes.data
    descriptor.aligned = array.ctypes.data
    descriptor.offset = 0
    if array.ndim:
        descriptor.shape[:] = array.shape
        descriptor.strides[:] = [stride // array.itemsize for stride in array.strides]
    return ctypes.pointer(ctypes.pointer(descriptor))


def packed_arguments(args: Sequence[ctypes._Pointer]) -> ctypes.Array:
    """The `void *args[]` of the packed entry point."""
    return (ctypes.c_void_p * len(args))(*[ctypes.cast(a, ctypes.c_void_p) for a in args])
