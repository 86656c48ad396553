"""The importer's entry points: ONNX model -> `wpk` module."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

import onnx
from mlir import ir

from woodpecker.dialect import create_context, load_wpk_dialect
from woodpecker.importer.builder import ImportedModel, build_module
from woodpecker.importer.loader import load_model


def import_onnx_with_weights(
    model: str | os.PathLike | onnx.ModelProto,
    input_shapes: Mapping[str, Sequence[int]] | None = None,
    context: ir.Context | None = None,
) -> ImportedModel:
    """Imports `model` (a path or ModelProto) and returns the module with its weight arrays.

    `input_shapes` fixes the shapes of graph inputs (needed for dynamic dimensions).
    Raises ModelLoadError, ShapeError or UnsupportedOperatorError.
    """
    loaded = load_model(model, input_shapes)
    if context is None:
        context = create_context()
    else:
        load_wpk_dialect(context)
    return build_module(loaded, context)


def import_onnx(
    model: str | os.PathLike | onnx.ModelProto,
    input_shapes: Mapping[str, Sequence[int]] | None = None,
    context: ir.Context | None = None,
) -> ir.Module:
    """Imports `model` into an MLIR module holding one `func.func @main` of `wpk` ops."""
    return import_onnx_with_weights(model, input_shapes, context).module
