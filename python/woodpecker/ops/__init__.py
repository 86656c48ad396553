"""The semantics of every `wpk` op, one module per op family, in one registry.

Per op class (woodpecker.dialect.wpk) an `OpSemantics` entry gives its result shape rule (the
verifier's shape check), its numpy evaluation in float64 (constant folding in
graph/evaluate.py and the tests' reference tests/py/numpy_reference.py) and, for elementwise
ops, the step it becomes in a fused kernel (the step vocabulary of steps.py and its numpy
code are these entries'). `semantics_of(op_class_or_name)` looks one up.

| module | ops |
| --- | --- |
| elementwise.py | the elementwise ops (add, relu, ...) and the step kinds, batch_norm |
| pointwise.py | more elementwise steps: sqrt, exp, log, erf, gelu, elu, ..., pow, max, min, mod, prelu |
| conv.py | conv2d |
| conv_transpose.py | conv_transpose2d |
| matmul.py | matmul, gemm |
| attention.py | matmul_transposed, attention |
| pooling.py | max_pool, avg_pool, global_avg_pool |
| reduction.py | softmax, log_softmax, hardmax, the reduce_* family, global_max_pool |
| normalization.py | layer_norm, instance_norm, group_norm, lrn |
| shape.py | reshape, flatten, transpose, concat, pad |
| movement.py | slice, expand, gather_elements |
| resize.py | resize (nearest, linear) |
| data.py | weight, constant |
| typed.py | cast, gather, compare, logical, not, is_nan, is_inf, where (i64/i32/i1 tensors) |
| index.py | arg_reduce, integer_binary, integer_unary, cumsum, trilu |
| fused.py | elementwise, fused_conv2d, fused_matmul, fused_gemm (fused_layout.py: their operands on IR) |
| layout.py | to_blocked, from_blocked, blocked_conv2d (the blocked channel layout) |

Adding an elementwise op: its record in dialects/WpkOps.td, one `StepKind` and
`register(unary_step_op(...))` in elementwise.py, a converter (importer/converters.py) and the
step's scalar lowering (lowering/elementwise.py).
"""

from woodpecker.ops import (  # noqa: F401 (register)
    attention,
    conv,
    conv_transpose,
    data,
    elementwise,
    fused,
    index,
    layout,
    matmul,
    movement,
    normalization,
    pointwise,
    pooling,
    reduction,
    resize,
    shape,
    typed,
)
from woodpecker.ops.args import NotEvaluable, OpArgs, Shape, ShapeRuleError
from woodpecker.ops.registry import OpSemantics, op_step, registered, semantics_of, step_op_names
from woodpecker.ops.steps import STEP_KINDS, Step, StepError, StepKind

__all__ = [
    "STEP_KINDS",
    "NotEvaluable",
    "OpArgs",
    "OpSemantics",
    "Shape",
    "ShapeRuleError",
    "Step",
    "StepError",
    "StepKind",
    "op_step",
    "registered",
    "semantics_of",
    "step_op_names",
]
