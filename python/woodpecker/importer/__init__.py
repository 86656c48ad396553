"""ONNX -> `wpk` importer.

`import_onnx(model, input_shapes=None, context=None) -> ir.Module` and
`import_onnx_with_weights(...) -> ImportedModel` (module, context, WeightTable and
the I/O signature). `SUPPORTED_OPS` lists the ONNX op types it converts.
"""

from woodpecker.importer.api import import_onnx, import_onnx_with_weights
from woodpecker.importer.builder import ImportedModel
from woodpecker.importer.converters import CONVERTERS, SUPPORTED_OPS

__all__ = [
    "CONVERTERS",
    "SUPPORTED_OPS",
    "ImportedModel",
    "import_onnx",
    "import_onnx_with_weights",
]
