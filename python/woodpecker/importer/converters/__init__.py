"""One converter per ONNX op type: ONNX node -> `wpk` ops, one module per op family.

Each converter is registered for its ONNX op type(s) by `@converts("Conv")` (registry.py) next
to it; `CONVERTERS` maps the ONNX op type to its converter, `SUPPORTED_OPS` lists them.

| module | ONNX ops |
| --- | --- |
| core.py | Constant, Identity, Dropout, elementwise, Clip, MatMul, Gemm, Conv, |
|  | BatchNormalization, pooling, Reshape, Flatten, Squeeze, Unsqueeze, Transpose, |
|  | Concat, Pad |
| movement.py | Shape, Size, ConstantOfShape, Range, If (folded at import); Slice, Split, |
|  | Expand, Tile, DepthToSpace, SpaceToDepth, GatherElements |
| resize.py | Resize |
| typed.py | Cast, Gather, Equal, Less, LessOrEqual, Greater, GreaterOrEqual, Not, And, Or, |
|  | Xor, IsNaN, IsInf, Where (f32, i64, i32 and bool tensors), GatherND, ScatterND (constant indices) |
| normalization.py | Softmax, LogSoftmax, Hardmax, Reduce{Mean,Sum,Max,Min,Prod,L1,L2,SumSquare, |
|  | LogSum,LogSumExp}, GlobalMaxPool, LRN, Layer/Instance/GroupNormalization |
| conv_transpose.py | ConvTranspose (1-D, 2-D) |
| recurrent.py | LSTM, GRU (unrolled over the sequence) |
| elementwise.py | Sqrt, Erf, Exp, Log, Neg, Abs, Reciprocal, Floor, Ceil, Round, Sign, Softplus, |
|  | Softsign, Mish, Sin, Cos, Gelu, Elu, Selu, Celu, ThresholdedRelu, Pow, PRelu, Mod, |
|  | Max, Min, Sum, Mean |
| index.py | ArgMax, ArgMin, CumSum, Trilu, OneHot, Einsum; the integer (i64, i32) path of Add, Sub, |
|  | Mul, Div, Mod, Neg, Abs, Max, Min at run time (`wpk.integer_binary`, `wpk.integer_unary`) |
"""

from woodpecker.importer.converters import (  # noqa: F401 (registers)
    conv_transpose,
    core,
    elementwise,
    index,
    movement,
    normalization,
    recurrent,
    resize,
    typed,
)
from woodpecker.importer.converters.registry import CONVERTERS, Converter, Result, converts

SUPPORTED_OPS: tuple[str, ...] = tuple(sorted(CONVERTERS))
"""The ONNX op types the importer converts, sorted."""

__all__ = ["CONVERTERS", "SUPPORTED_OPS", "Converter", "Result", "converts"]
