"""The library objects compiled CPU code calls (oneDNN primitives, a BLAS weight), and the
handle tables through which the code reaches them.

The generated code does not hold the library objects' addresses as constants: each library
kernel reads them from its own table, the mutable global `_mlir_wpk_handles_<kernel>` of i64 (see
woodpecker.libs.emit). Slot 0 holds the table's capacity (a constant of the code); slots 1...
the handles, in the order `handles` lists them:

    oneDNN: the stream, the run-time memory objects (inputs, then the output), then per
            execution its primitive, its argument count and its argument array;
    BLAS:   the weight matrix (none for a product of two run-time operands).

The compile builds the objects (`LibraryCallSpec.build`) and fills the tables of the JIT-ed code;
`woodpecker.load` builds them again from the saved spec and weights and fills the tables of the
shared library (`fill_table`), refusing a table whose capacity is not what the objects need or
whose digest is not the spec's (a saved spec that is not the one the code was compiled with).
No MLIR here.
"""

from __future__ import annotations

import ctypes
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

# The ExecutionEngine's look-up (`raw_lookup`) prefixes names with `_mlir_`, so the tables carry it.
HANDLE_SYMBOL_PREFIX = "_mlir_wpk_handles_"
LIBRARY_NAMES = ("onednn", "blas")
ONEDNN_OPS = ("conv", "blocked_conv", "matmul", "runtime_matmul", "max_pool", "avg_pool")
BLAS_OPS = ("matmul", "runtime_matmul")


def handle_symbol(kernel_name: str) -> str:
    """The table's symbol for the library kernel `kernel_name` (`k3_conv`)."""
    return HANDLE_SYMBOL_PREFIX + kernel_name


@dataclass(frozen=True)
class LibraryCallSpec:
    """What a library kernel computes, enough to build its library object again: the library,
    the operation, its static parameters (shapes, strides, pads, post-ops; JSON values) and its
    weights by role (`weights`, `bias`) as positions among the model's weights."""

    kernel_name: str
    library: str
    op: str
    params: dict[str, Any] = field(default_factory=dict)
    weights: dict[str, int] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "kernel": self.kernel_name,
            "library": self.library,
            "op": self.op,
            "params": self.params,
            "weights": dict(self.weights),
        }

    def digest(self) -> int:
        """A signed 64-bit digest of the spec's JSON (what the code's table holds in slot 1)."""
        return json_digest(self.to_json())

    def build(self, weights: Mapping[str, np.ndarray], threads: int) -> object:
        """The library object, with `weights` (by role) baked in (reordered by oneDNN)."""
        if self.library == "blas":
            from woodpecker.runtime.cpu import blas

            if self.op not in BLAS_OPS:
                raise ValueError(f"BLAS has no call for {self.op!r} (its calls: {', '.join(BLAS_OPS)})")
            blas.load()
            blas.set_threads(1)  # see woodpecker.runtime.cpu.blas: no second thread pool next to OpenMP's
            if self.op == "runtime_matmul":
                if self.params.get("batch") is not None and not blas.has_batch_strided():
                    raise ValueError(f"this OpenBLAS has no {blas.SGEMM_BATCH_STRIDED_SYMBOL} for a batched matmul")
                return None  # both operands are run-time tensors: the call has no handles
            return np.ascontiguousarray(weights["weights"], dtype=np.float32)
        from woodpecker.runtime.cpu import onednn

        onednn.load()
        onednn.set_threads(threads)
        params = self.params
        post_ops = [
            onednn.PostOp(p["kind"], p["alg"], alpha=p["alpha"], beta=p["beta"], shape=tuple(p.get("shape", ())))
            for p in params.get("post_ops", ())
        ]
        bias = weights.get("bias")
        bias = None if bias is None else np.asarray(bias, dtype=np.float32)
        if self.op == "conv":
            return onednn.Convolution(
                params["src_shape"],
                np.asarray(weights["weights"], dtype=np.float32).reshape(params["filter_shape"]),
                bias,
                strides=params["strides"],
                pads_begin=params["pads_begin"],
                pads_end=params["pads_end"],
                dilations=params["dilations"],
                groups=params["groups"],
                post_ops=post_ops,
            )
        if self.op == "blocked_conv":
            formats = params["formats"]
            return onednn.BlockedConvolution(
                params["src_shape"],
                np.asarray(weights["weights"], dtype=np.float32),
                params["filter_shape"],
                bias,
                strides=params["strides"],
                pads_begin=params["pads_begin"],
                pads_end=params["pads_end"],
                dilations=params["dilations"],
                groups=params["groups"],
                post_ops=post_ops,
                formats=onednn.BlockedFormats(
                    formats["src"], formats["weights"], formats["dst"], tuple(formats["binary"])
                ),
            )
        if self.op == "runtime_matmul":
            batch = params["batch"]
            return onednn.RuntimeMatMul(
                None if batch is None else int(batch),
                params["m"],
                params["k"],
                params["n"],
                bool(params["transposed_b"]),
                bias,
                post_ops,
            )
        if self.op == "matmul":
            matrix = np.asarray(weights["weights"], dtype=np.float32)
            logical = matrix.T if params["transposed_weights"] else matrix  # (K, N)
            return onednn.MatMul(params["m"], params["k"], logical, bias, post_ops)
        return onednn.Pooling(
            params["src_shape"],
            params["kind"],
            kernel=params["kernel"],
            strides=params["strides"],
            pads_begin=params["pads_begin"],
            pads_end=params["pads_end"],
        )


def json_digest(value: object) -> int:
    """A signed 64-bit digest of `value`'s canonical JSON."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"))
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little", signed=True)


# The slots of a table: capacity, digest, then the handles.
CAPACITY_SLOT, DIGEST_SLOT, FIRST_HANDLE_SLOT = 0, 1, 2
ONEDNN_STREAM_SLOT = FIRST_HANDLE_SLOT
BLAS_WEIGHTS_SLOT = FIRST_HANDLE_SLOT


def onednn_memory_slot(index: int) -> int:
    return FIRST_HANDLE_SLOT + 1 + index


def onednn_execution_slots(memories: int, index: int) -> tuple[int, int, int]:
    """(primitive, argument count, argument array) slots of execution `index`."""
    base = FIRST_HANDLE_SLOT + 1 + memories + 3 * index
    return base, base + 1, base + 2


def table_initial_values(spec: LibraryCallSpec, capacity: int) -> list[int]:
    """What the code's table holds before it is filled."""
    return [capacity, spec.digest()] + [0] * capacity


def handles(library: str, call: object) -> list[int]:
    """The handles of `call` in table order (slots 2...)."""
    if library == "blas":
        if call is None:  # a product of two run-time operands
            return []
        assert isinstance(call, np.ndarray)
        return [call.ctypes.data]
    values = [call.stream, *call.runtime_memories]  # type: ignore[attr-defined]
    for execution in call.executions:  # type: ignore[attr-defined]
        values += [execution.primitive, execution.nargs, execution.args]
    return values


def table_capacity(library: str, call: object) -> int:
    """The handle slots a table for `call` has."""
    return len(handles(library, call))


def fill_table(address: int, spec: LibraryCallSpec, call: object, what: str, error: type[Exception]) -> None:
    """Writes `call`'s handles into the table at `address`; `error` naming `what` when the table's
    capacity is not the number of handles or its digest not `spec`'s."""
    values = handles(spec.library, call)
    header = (ctypes.c_int64 * FIRST_HANDLE_SLOT).from_address(address)
    if header[DIGEST_SLOT] != spec.digest():
        raise error(f"{what}: the library call's spec is not the one the code was compiled with")
    if header[CAPACITY_SLOT] != len(values):
        raise error(f"{what}: its handle table has {header[CAPACITY_SLOT]} slots, the library call needs {len(values)}")
    slots = (ctypes.c_int64 * (FIRST_HANDLE_SLOT + len(values))).from_address(address)
    slots[FIRST_HANDLE_SLOT:] = values
