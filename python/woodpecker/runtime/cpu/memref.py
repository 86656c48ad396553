"""The arguments of compiled CPU code: MLIR's ranked memref descriptors as ctypes structures.

`@main` is compiled with `llvm.emit_c_interface`; the ExecutionEngine adds the packed wrapper
`_mlir__mlir_ciface_main(void **args)`, where `args[i]` points at a pointer to the i-th
argument's descriptor `{allocated, aligned, offset, sizes[rank], strides[rank]}` (all 64-bit).
The JIT-ed code and a saved shared library are called the same way (`packed_arguments`).
"""

from __future__ import annotations

import ctypes
import functools
import threading
from collections.abc import Callable, Sequence

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


class EntryCall:
    """Calls of a packed entry point `entry(void **args)` with the arguments `inputs, weights,
    outputs, arena`: the argument array, the descriptors and the arena are built once, by the
    first call; later calls only point the inputs' and outputs' descriptors at their arrays.

    Building them per call cost more than some models' smaller kernels (a ctypes cast per
    weight: ~70 µs for mobilenet_v2's 106 weights). The arrays of a call must have the shapes
    and dtypes of the first call's (the caller checks the feeds against the model's static
    shapes, and its outputs are fresh arrays of fixed shapes), be C-contiguous, and live until the
    call returns. The arena (the code's buffers: `allocate`, called once, raises MemoryLimitError)
    stays allocated while this object lives. A call made while another runs on another thread
    builds its own arguments and arena.
    """

    def __init__(
        self,
        entry: Callable[[ctypes.Array], None],
        weights: Sequence[ctypes._Pointer],
        allocate: Callable[[], np.ndarray],
    ) -> None:
        self._entry = entry
        self._weights = list(weights)
        self._allocate = allocate
        self._lock = threading.Lock()
        self._arena: np.ndarray | None = None
        self._descriptors: list[ctypes.Structure] = []
        self._packed: ctypes.Array | None = None
        self._keep: list = []

    def __call__(self, inputs: Sequence[np.ndarray], outputs: Sequence[np.ndarray]) -> None:
        if not self._lock.acquire(blocking=False):
            self._call_fresh(inputs, outputs)
            return
        try:
            if self._packed is None:
                self._prepare(inputs, outputs)
            for descriptor, array in zip(self._descriptors, [*inputs, *outputs], strict=True):
                descriptor.allocated = descriptor.aligned = array.ctypes.data
            self._entry(self._packed)
        finally:
            self._lock.release()

    @property
    def arena(self) -> np.ndarray | None:
        """The arena the calls share (None before the first call)."""
        return self._arena

    def _prepare(self, inputs: Sequence[np.ndarray], outputs: Sequence[np.ndarray]) -> None:
        self._arena = self._allocate()
        run_time = [memref_arg(a) for a in [*inputs, *outputs]]
        arena = memref_arg(self._arena)
        self._descriptors = [pointer.contents.contents for pointer in run_time]
        args = [*run_time[: len(inputs)], *self._weights, *run_time[len(inputs) :], arena]
        self._keep = args  # the packed array holds the descriptors' addresses, not references
        self._packed = packed_arguments(args)

    def _call_fresh(self, inputs: Sequence[np.ndarray], outputs: Sequence[np.ndarray]) -> None:
        arena = self._allocate()
        args = [memref_arg(a) for a in inputs] + self._weights + [memref_arg(o) for o in outputs]
        self._entry(packed_arguments([*args, memref_arg(arena)]))
