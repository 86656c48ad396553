"""One converter per ONNX op type: ONNX node -> `wpk` ops, one module per op family.

Each converter is registered for its ONNX op type(s) by `@converts("Conv")` (registry.py) next
to it; `CONVERTERS` maps the ONNX op type to its converter, `SUPPORTED_OPS` lists them.

| module | ONNX ops |
| --- | --- |
| core.py | Constant, Identity, Dropout, elementwise, Clip, MatMul, Gemm, Conv, |
|  | BatchNormalization, pooling, Reshape, Flatten, Squeeze, Unsqueeze, Transpose, |
|  | Concat, Pad |
| movement.py | Shape, Size, ConstantOfShape, Range, Mod, If (folded at import); Slice, Split, |
|  | Expand, Tile, DepthToSpace, SpaceToDepth, GatherElements |
| resize.py | Resize |
| typed.py | Cast, Gather, Equal, Less, LessOrEqual, Greater, GreaterOrEqual, Not, And, Or, |
|  | Xor, IsNaN, IsInf, Where (f32, i64, i32 and bool tensors) |
| normalization.py | Softmax, LogSoftmax, Hardmax, Reduce{Mean,Sum,Max,Min,Prod,L1,L2,SumSquare, |
|  | LogSum,LogSumExp}, GlobalMaxPool, LRN, Layer/Instance/GroupNormalization |
"""

from woodpecker.importer.converters import core, movement, normalization, resize, typed  # noqa: F401 (registers)
from woodpecker.importer.converters.registry import CONVERTERS, Converter, Result, converts

SUPPORTED_OPS: tuple[str, ...] = tuple(sorted(CONVERTERS))
"""The ONNX op types the importer converts, sorted."""

__all__ = ["CONVERTERS", "SUPPORTED_OPS", "Converter", "Result", "converts"]
