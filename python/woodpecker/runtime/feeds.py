"""The one check of what a model is run with: its feeds and the output names asked for.

`CompiledModel.run` (CPU), `PlanModel.run` (a CUDA plan) and `wpk run` (arrays read from files,
checked on their `.npy` headers before any data is read) all check through here, so a feed of
the wrong name, type, dtype or shape is one `InputError` line naming the input and what differs,
the same on every target. Also `checked_shape`, for a shape given by the user (`input_shapes`).
No MLIR here: the runtime layer uses it.
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

import numpy as np

from woodpecker.errors import InputError

T = TypeVar("T")

FLOAT32 = np.dtype(np.float32)
# The most elements one tensor may have (2^48: 1 PiB of f32): far beyond any machine, and far
# from where MLIR's int64 sizes and strides overflow (which aborts the process).
MAX_TENSOR_ELEMENTS = 1 << 48

# A dimension of an input: its size, or the name (or "?") of one the model leaves open.
Dim = int | str


@dataclass(frozen=True)
class InputSpec:
    """What one model input takes: its name, element type and shape."""

    name: str
    dtype: np.dtype
    shape: tuple[Dim, ...]

    def shape_text(self) -> str:
        return _shape_text(self.shape)


def static_specs(
    input_names: Sequence[str],
    input_shapes: Mapping[str, Sequence[int]],
    input_dtypes: Mapping[str, np.dtype] | None = None,
) -> list[InputSpec]:
    """The specs of a compiled model's inputs: static shapes, of `input_dtypes` (float32 for an
    input it does not name)."""
    dtypes = input_dtypes or {}
    return [
        InputSpec(name, np.dtype(dtypes.get(name, FLOAT32)), tuple(int(d) for d in input_shapes[name]))
        for name in input_names
    ]


def check_feed(spec: InputSpec, dtype: np.dtype, shape: Sequence[int], source: str = "") -> None:
    """An `InputError` unless an array of `dtype` and `shape` fits `spec` (an open dimension
    takes any size); `source` (a file name) goes into the message."""
    where = f"input '{spec.name}'" + (f" ({source})" if source else "")
    if np.dtype(dtype) != spec.dtype:
        raise InputError(f"{where} has dtype {np.dtype(dtype)}; the model expects {spec.dtype}")
    shape = tuple(int(d) for d in shape)
    fits = len(shape) == len(spec.shape) and all(
        isinstance(want, str) or got == want for got, want in zip(shape, spec.shape, strict=True)
    )
    if not fits:
        raise InputError(f"{where} has shape {_shape_text(shape)}; the model expects {spec.shape_text()}")


def check_feeds(feeds: object, specs: Sequence[InputSpec]) -> list[np.ndarray]:
    """The feeds (a mapping input name -> array, like onnxruntime's) as C-contiguous arrays in
    the order of `specs`; an `InputError` naming the input for anything else."""
    names = [spec.name for spec in specs]
    if not isinstance(feeds, Mapping):
        what = "None" if feeds is None else f"a {type(feeds).__name__}"
        hint = ""
        if isinstance(feeds, list | tuple):
            hint = " (write {" + ", ".join(f"{name!r}: array" for name in names) + "})"
        raise InputError(
            f"feeds must be a dict {{input name: numpy array}}, as for onnxruntime, not {what}{hint}; "
            f"the inputs are {names}"
        )
    unknown = [key for key in feeds if key not in names]
    if unknown:
        raise InputError(f"feeds name {unknown[0]!r}, which is not an input of the model; the inputs are {names}")
    arrays = []
    for spec in specs:
        if spec.name not in feeds:
            raise InputError(f"missing input '{spec.name}'; the inputs are {names}")
        value = feeds[spec.name]
        if not isinstance(value, np.ndarray):
            raise InputError(
                f"input '{spec.name}' is a {type(value).__name__}, not a numpy array "
                f"(np.asarray(value, dtype=np.{spec.dtype}) makes one)"
            )
        check_feed(spec, value.dtype, value.shape)
        arrays.append(np.ascontiguousarray(value))
    return arrays


def check_output_names(output_names: object, outputs: Sequence[str]) -> list[str]:
    """The outputs asked for: all of them for None, else a list (or tuple) of known output names."""
    if output_names is None:
        return list(outputs)
    if isinstance(output_names, str):
        raise InputError(
            f"output_names must be a list of output names or None, not the str {output_names!r} "
            f"(write [{output_names!r}]); the outputs are {list(outputs)}"
        )
    if not isinstance(output_names, Sequence):
        raise InputError(
            f"output_names must be a list of output names or None, not {type(output_names).__name__}; "
            f"the outputs are {list(outputs)}"
        )
    for name in output_names:
        if not isinstance(name, str) or name not in outputs:
            raise InputError(f"unknown output name {name!r}; the outputs are {list(outputs)}")
    return list(output_names)


def pick_outputs(outputs: Sequence[str], results: Sequence[T], output_names: Sequence[str] | None) -> list[T]:
    """`results` (one per graph output, in the order of `outputs`) for `output_names` (None: all,
    in order; else names `check_output_names` accepted). A graph may list one name several
    times: each position keeps its own result, and a name asked for gets its first."""
    if output_names is None:
        return list(results)
    first: dict[str, int] = {}
    for position, name in enumerate(outputs):
        first.setdefault(name, position)
    return [results[first[name]] for name in output_names]


def checked_shape(name: str, shape: object, error: type[Exception], what: str = "input_shapes") -> tuple[int, ...]:
    """`shape` as a tuple of positive ints (a list or tuple of ints, numpy ints included, no
    bools, floats or strings); `error` naming `what[name]` otherwise."""
    where = f"{what}[{name!r}] = {shape!r}"
    if isinstance(shape, str | bytes) or not isinstance(shape, Sequence | np.ndarray):
        raise error(f"{where} is a {type(shape).__name__}, not a list of ints such as [1, 3, 224, 224]")
    dims = []
    for dim in shape:
        if isinstance(dim, bool | np.bool_) or not isinstance(dim, numbers.Integral):
            raise error(f"{where}: dimension {dim!r} is a {type(dim).__name__}, not an int")
        if dim <= 0:
            raise error(f"{where} must have positive dimensions")
        dims.append(int(dim))
    check_element_count(dims, error, where)
    return tuple(dims)


def check_element_count(shape: Sequence[int], error: type[Exception], where: str) -> None:
    """`error` naming `where` when a tensor of `shape` has more than MAX_TENSOR_ELEMENTS."""
    count = 1
    for dim in shape:
        count *= max(int(dim), 0)
    if count > MAX_TENSOR_ELEMENTS:
        raise error(f"{where}: {count} elements, more than the {MAX_TENSOR_ELEMENTS} (2^48) a tensor may have")


def _shape_text(shape: Sequence[Dim]) -> str:
    return "(" + ", ".join(str(d) for d in shape) + ("," if len(shape) == 1 else "") + ")"
