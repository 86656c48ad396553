"""The converter registry: `@converts("Conv")` registers a converter for ONNX op types.

A converter takes a `NodeContext` and returns one entry per node output: an MLIR value, a
numpy array (the output is a compile-time constant, e.g. a Constant node or an op folded on
constant inputs), or None (output not produced). It builds `wpk` ops through their generated
classes (woodpecker.dialect.wpk).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from types import MappingProxyType

import numpy as np
from mlir import ir

from woodpecker.importer.node import NodeContext

Result = ir.Value | np.ndarray | None
Converter = Callable[[NodeContext], Sequence[Result]]

_CONVERTERS: dict[str, Converter] = {}

CONVERTERS: MappingProxyType[str, Converter] = MappingProxyType(_CONVERTERS)
"""ONNX op type -> converter (filled by `converts` as this module is imported)."""


def converts(*op_types: str) -> Callable[[Converter], Converter]:
    """Registers the decorated converter for the ONNX op types `op_types` (once per type)."""

    def register(convert: Converter) -> Converter:
        for op_type in op_types:
            if op_type in _CONVERTERS:
                raise ValueError(f"ONNX op type '{op_type}' already has a converter")
            _CONVERTERS[op_type] = convert
        return convert

    return register
