//===- WpkOps.td - The Woodpecker (wpk) dialect ------------*- tablegen -*-===//
//
// Source of truth for the `wpk` dialect. The bindings cannot load a compiled
// C++ dialect, so this ODS file is translated to IRDL by
// tools/gen_wpk_irdl.py (through `llvm-tblgen --dump-json`) and the result is
// committed as python/woodpecker/dialect/wpk.irdl.mlir; CMake regenerates it
// and the op documentation (docs/WpkOps.md, `mlir-tblgen -gen-op-doc`).
//
// IRDL has no optional attributes: every attribute below is required, and the
// importer always writes every one of them. Operands may be Optional/Variadic;
// an op with several Optional operands carries an `operandSegmentSizes`
// attribute (array<i32: ...>, one 0/1 entry per operand; IRDL checks it).
//
// Graph optimization (python/woodpecker/graph/, docs/DESIGN.md) rewrites the
// imported ops into kernels: after it, every op of `func.func @main` other than
// `wpk.weight` and `wpk.constant` is one kernel. The fused kernels below
// describe their elementwise work as a list of *steps* (see the dialect
// description).
//===----------------------------------------------------------------------===//

include "mlir/IR/OpBase.td"
include "mlir/IR/BuiltinAttributes.td"
include "mlir/IR/CommonAttrConstraints.td"
include "mlir/IR/CommonTypeConstraints.td"

def Wpk_Dialect : Dialect {
  let name = "wpk";
  let cppNamespace = "::wpk";
  let summary = "Woodpecker inference graph dialect";
  let description = [{
    Inference-time graph operations on statically shaped f32 tensors, imported
    from ONNX. Each op after graph optimization is one kernel.

    The fused kernels (`wpk.elementwise`, `wpk.fused_conv2d`,
    `wpk.fused_matmul`, `wpk.fused_gemm`) describe their elementwise work in
    one step language.

    Steps (an array of strings), applied in order to the running value `v`:

    | step | result | side operand | params |
    | --- | --- | --- | --- |
    | `add`, `sub`, `mul`, `div` | `v + s`, `v - s`, `v * s`, `v / s` | yes | |
    | `rsub`, `rdiv` | `s - v`, `s / v` | yes | |
    | `relu` | `max(v, 0)` | | |
    | `sigmoid`, `tanh` | `1 / (1 + exp(-v))`, `tanh(v)` | | |
    | `silu` | `v * sigmoid(v)` | | |
    | `leaky_relu` | `v if v >= 0 else alpha * v` | | alpha |
    | `clip` | `min(max(v, lo), hi)` (relu6 is `clip` 0, 6) | | lo, hi |
    | `hard_sigmoid` | `max(0, min(1, alpha * v + beta))` | | alpha, beta |
    | `hard_swish` | `v * max(0, min(1, v / 6 + 1/2))` | | |
    | `sqrt`, `exp`, `log`, `erf`, `sin`, `cos` | the math function of `v` | | |
    | `neg`, `abs`, `reciprocal`, `sign` | `-v`, `abs(v)`, `1 / v`, sign of `v` (0 at 0) | | |
    | `floor`, `ceil`, `round` | integer rounding (`round`: halves to even) | | |
    | `softplus`, `softsign` | `log(1 + exp(v))`, `v / (1 + abs(v))` | | |
    | `mish` | `v * tanh(softplus(v))` | | |
    | `gelu`, `gelu_tanh` | `v / 2 * (1 + erf(v / sqrt 2))`, its tanh approximation | | |
    | `elu`, `celu` | ONNX Elu, Celu | | alpha |
    | `selu` | `gamma * (v if v > 0 else alpha * (exp(v) - 1))` | | alpha, gamma |
    | `thresholded_relu` | `v if v > alpha else 0` | | alpha |
    | `pow`, `rpow` | `pow(v, s)`, `pow(s, v)` | yes | |
    | `max`, `min` | `max(v, s)`, `min(v, s)` (NaN propagating) | yes | |
    | `mod`, `rmod` | `fmod(v, s)`, `fmod(s, v)` | yes | |
    | `floor_mod`, `rfloor_mod` | `v - floor(v / s) * s` (sign of `s`), swapped | yes | |
    | `prelu`, `rprelu` | `v if v >= 0 else s * v`, `s if s >= 0 else v * s` | yes | |

    Binary steps take the next of the optional `side0`, `side1`, `side2`
    operands (so at most three binary steps), which broadcasts to the result
    shape like numpy. The parameters of all steps are concatenated in one
    f32 array. The number of binary steps equals the number of side operands.
  }];
}

class Wpk_Op<string mnemonic, list<Trait> traits = []>
    : Op<Wpk_Dialect, mnemonic, traits>;

// Element types beyond f32 (the integer, bool and indexing ops, and constants):
// wpk-verify checks each operand's and result's element type against its
// constraint (the ELEMENT_TYPES table generated from this file).
def Wpk_AnyTensor : AnyTypeOf<[F32Tensor, I64Tensor, I32Tensor, I1Tensor],
    "f32, i64, i32 or i1 tensor">;
def Wpk_NumberTensor : AnyTypeOf<[F32Tensor, I64Tensor, I32Tensor],
    "f32, i64 or i32 tensor">;
def Wpk_IndexTensor : AnyTypeOf<[I64Tensor, I32Tensor], "i64 or i32 tensor">;

// Weights are held as `dense_resource` blobs so that IR dumps stay readable.
def Wpk_WeightOp : Wpk_Op<"weight"> {
  let summary = "A constant weight tensor held in a dense_resource blob";
  let arguments = (ins Builtin_DenseResourceElementsAttr:$value);
  let results = (outs F32Tensor:$output);
}

def Wpk_ConstantOp : Wpk_Op<"constant"> {
  let summary = "A small constant tensor written inline (f32, or an integer or bool tensor)";
  let arguments = (ins Builtin_DenseIntOrFPElementsAttr:$value);
  let results = (outs Wpk_AnyTensor:$output);
}

def Wpk_Conv2DOp : Wpk_Op<"conv2d"> {
  let summary = "2-D convolution in NCHW/FCHW layout (ONNX Conv)";
  let description = [{
    `pads` is [top, left, bottom, right]; `groups` divides the channels; the
    optional `bias` has one value per output channel.
  }];
  let arguments = (ins F32Tensor:$input, F32Tensor:$filter,
                       Optional<F32Tensor>:$bias,
                       DenseI64ArrayAttr:$strides, DenseI64ArrayAttr:$pads,
                       DenseI64ArrayAttr:$dilations, I64Attr:$groups);
  let results = (outs F32Tensor:$output);
}

def Wpk_MatMulOp : Wpk_Op<"matmul"> {
  let summary = "Batched matrix product with numpy broadcasting (ONNX MatMul)";
  let arguments = (ins F32Tensor:$lhs, F32Tensor:$rhs);
  let results = (outs F32Tensor:$output);
}

def Wpk_GemmOp : Wpk_Op<"gemm"> {
  let summary = "alpha * op(A) * op(B) + beta * C (ONNX Gemm)";
  let arguments = (ins F32Tensor:$a, F32Tensor:$b, Optional<F32Tensor>:$c,
                       F32Attr:$alpha, F32Attr:$beta,
                       BoolAttr:$trans_a, BoolAttr:$trans_b);
  let results = (outs F32Tensor:$output);
}

class Wpk_BinaryOp<string mnemonic, string what> : Wpk_Op<mnemonic> {
  let summary = "Elementwise " # what # " with numpy broadcasting";
  let arguments = (ins F32Tensor:$lhs, F32Tensor:$rhs);
  let results = (outs F32Tensor:$output);
}
def Wpk_AddOp : Wpk_BinaryOp<"add", "addition">;
def Wpk_SubOp : Wpk_BinaryOp<"sub", "subtraction">;
def Wpk_MulOp : Wpk_BinaryOp<"mul", "multiplication">;
def Wpk_DivOp : Wpk_BinaryOp<"div", "division">;

class Wpk_UnaryOp<string mnemonic, string what> : Wpk_Op<mnemonic> {
  let summary = what;
  let arguments = (ins F32Tensor:$input);
  let results = (outs F32Tensor:$output);
}
def Wpk_ReluOp : Wpk_UnaryOp<"relu", "max(x, 0)">;
def Wpk_SigmoidOp : Wpk_UnaryOp<"sigmoid", "1 / (1 + exp(-x))">;
def Wpk_TanhOp : Wpk_UnaryOp<"tanh", "Hyperbolic tangent">;
def Wpk_GlobalAvgPoolOp : Wpk_UnaryOp<"global_avg_pool",
    "Mean over all spatial dimensions of an NCHW tensor, keeping them as 1">;

def Wpk_LeakyReluOp : Wpk_Op<"leaky_relu"> {
  let summary = "x if x >= 0 else alpha * x";
  let arguments = (ins F32Tensor:$input, F32Attr:$alpha);
  let results = (outs F32Tensor:$output);
}

def Wpk_ClipOp : Wpk_Op<"clip"> {
  let summary = "min(max(x, min), max); an absent bound is +-inf";
  let arguments = (ins F32Tensor:$input, F32Attr:$min, F32Attr:$max);
  let results = (outs F32Tensor:$output);
}

def Wpk_HardSigmoidOp : Wpk_Op<"hard_sigmoid"> {
  let summary = "max(0, min(1, alpha * x + beta)) (ONNX HardSigmoid)";
  let arguments = (ins F32Tensor:$input, F32Attr:$alpha, F32Attr:$beta);
  let results = (outs F32Tensor:$output);
}

def Wpk_HardSwishOp : Wpk_UnaryOp<"hard_swish", "x * max(0, min(1, x / 6 + 1/2)) (ONNX HardSwish)">;

def Wpk_BatchNormOp : Wpk_Op<"batch_norm"> {
  let summary = "Inference batch normalization over dimension 1";
  let arguments = (ins F32Tensor:$input, F32Tensor:$scale, F32Tensor:$bias,
                       F32Tensor:$mean, F32Tensor:$variance, F32Attr:$epsilon);
  let results = (outs F32Tensor:$output);
}

def Wpk_MaxPoolOp : Wpk_Op<"max_pool"> {
  let summary = "2-D max pooling (NCHW); pads are [top, left, bottom, right]";
  let arguments = (ins F32Tensor:$input, DenseI64ArrayAttr:$kernel_shape,
                       DenseI64ArrayAttr:$strides, DenseI64ArrayAttr:$pads,
                       DenseI64ArrayAttr:$dilations, BoolAttr:$ceil_mode);
  let results = (outs F32Tensor:$output);
}

def Wpk_AvgPoolOp : Wpk_Op<"avg_pool"> {
  let summary = "2-D average pooling (NCHW); pads are [top, left, bottom, right]";
  let arguments = (ins F32Tensor:$input, DenseI64ArrayAttr:$kernel_shape,
                       DenseI64ArrayAttr:$strides, DenseI64ArrayAttr:$pads,
                       DenseI64ArrayAttr:$dilations, BoolAttr:$ceil_mode,
                       BoolAttr:$count_include_pad);
  let results = (outs F32Tensor:$output);
}

def Wpk_SoftmaxOp : Wpk_Op<"softmax"> {
  let summary = "exp(x) / sum(exp(x)) along one non-negative axis";
  let arguments = (ins F32Tensor:$input, I64Attr:$axis);
  let results = (outs F32Tensor:$output);
}

def Wpk_ReshapeOp : Wpk_Op<"reshape"> {
  let summary = "Same elements, the shape of the result type (of any element type: an int64 mask unsqueezed)";
  let arguments = (ins Wpk_AnyTensor:$input);
  let results = (outs Wpk_AnyTensor:$output);
}

def Wpk_FlattenOp : Wpk_Op<"flatten"> {
  let summary = "Collapse to 2-D: dimensions before `axis` and from `axis` on";
  let arguments = (ins F32Tensor:$input, I64Attr:$axis);
  let results = (outs F32Tensor:$output);
}

def Wpk_TransposeOp : Wpk_Op<"transpose"> {
  let summary = "Permute dimensions: result dim i is input dim perm[i]";
  let arguments = (ins F32Tensor:$input, DenseI64ArrayAttr:$perm);
  let results = (outs F32Tensor:$output);
}

def Wpk_ConcatOp : Wpk_Op<"concat"> {
  let summary = "Concatenate two tensors along one non-negative axis";
  let description = [{
    Binary: IRDL binds one constraint variable to all values of a variadic
    operand, so a variadic concat would demand equal input types. An ONNX
    Concat of N inputs imports as a left-to-right chain of N-1 concats.
  }];
  let arguments = (ins F32Tensor:$lhs, F32Tensor:$rhs, I64Attr:$axis);
  let results = (outs F32Tensor:$output);
}

def Wpk_PadOp : Wpk_Op<"pad"> {
  let summary = "Pad with mode constant, reflect, edge or wrap (ONNX Pad)";
  let description = [{
    `pads` holds all begin values then all end values, one per dimension;
    negative values crop.
  }];
  let arguments = (ins F32Tensor:$input, DenseI64ArrayAttr:$pads,
                       StrAttr:$mode, F32Attr:$value);
  let results = (outs F32Tensor:$output);
}

// ---- normalization and reduction ops ----
// One op per reduction kind, all of one shape (ops/reduction.py REDUCE_KINDS holds
// the kinds; lowering/reduction.py lowers them all through one function).
class Wpk_ReduceKindOp<string mnemonic, string what> : Wpk_Op<mnemonic> {
  let summary = what # " over sorted non-negative `axes`";
  let description = [{
    Empty `axes` reduce nothing (the importer writes every axis for ONNX's
    default of all axes); `keepdims` keeps the reduced dimensions as size 1.
  }];
  let arguments = (ins F32Tensor:$input, DenseI64ArrayAttr:$axes,
                       BoolAttr:$keepdims);
  let results = (outs F32Tensor:$output);
}
def Wpk_ReduceMeanOp : Wpk_ReduceKindOp<"reduce_mean", "Mean">;
def Wpk_ReduceSumOp : Wpk_ReduceKindOp<"reduce_sum", "Sum">;
def Wpk_ReduceMaxOp : Wpk_ReduceKindOp<"reduce_max", "Maximum">;
def Wpk_ReduceMinOp : Wpk_ReduceKindOp<"reduce_min", "Minimum">;
def Wpk_ReduceProdOp : Wpk_ReduceKindOp<"reduce_prod", "Product">;
def Wpk_ReduceL1Op : Wpk_ReduceKindOp<"reduce_l1", "Sum of absolute values">;
def Wpk_ReduceL2Op : Wpk_ReduceKindOp<"reduce_l2", "Square root of the sum of squares">;
def Wpk_ReduceSumSquareOp : Wpk_ReduceKindOp<"reduce_sum_square", "Sum of squares">;
def Wpk_ReduceLogSumOp : Wpk_ReduceKindOp<"reduce_log_sum", "Natural log of the sum">;
def Wpk_ReduceLogSumExpOp : Wpk_ReduceKindOp<"reduce_log_sum_exp",
    "log(sum(exp(x))), computed as max + log(sum(exp(x - max)))">;

def Wpk_GlobalMaxPoolOp : Wpk_UnaryOp<"global_max_pool",
    "Maximum over all spatial dimensions of an N x C x spatial tensor, keeping them as 1">;

def Wpk_LogSoftmaxOp : Wpk_Op<"log_softmax"> {
  let summary = "x - max - log(sum(exp(x - max))) along one non-negative axis";
  let arguments = (ins F32Tensor:$input, I64Attr:$axis);
  let results = (outs F32Tensor:$output);
}

def Wpk_HardmaxOp : Wpk_Op<"hardmax"> {
  let summary = "1 at the first maximum along one non-negative axis, 0 elsewhere";
  let arguments = (ins F32Tensor:$input, I64Attr:$axis);
  let results = (outs F32Tensor:$output);
}

def Wpk_LrnOp : Wpk_Op<"lrn"> {
  let summary = "Local response normalization across channels (dimension 1, ONNX LRN)";
  let description = [{
    y = x / (bias + alpha / size * sum of x^2 over the channels
    [c - floor((size - 1) / 2), c + ceil((size - 1) / 2)]) ^ beta.
  }];
  let arguments = (ins F32Tensor:$input, F32Attr:$alpha, F32Attr:$beta,
                       F32Attr:$bias, I64Attr:$size);
  let results = (outs F32Tensor:$output);
}

def Wpk_LayerNormOp : Wpk_Op<"layer_norm"> {
  let summary = "Layer normalization over the dimensions from `axis` on, as one kernel";
  let description = [{
    (x - mean) / sqrt(variance + epsilon) * scale + bias, the mean and
    (biased) variance taken over dimensions [axis, rank); `scale` and the
    optional `bias` broadcast (numpy) against those trailing dimensions.
  }];
  let arguments = (ins F32Tensor:$input, F32Tensor:$scale,
                       Optional<F32Tensor>:$bias, I64Attr:$axis,
                       F32Attr:$epsilon);
  let results = (outs F32Tensor:$output);
}

def Wpk_InstanceNormOp : Wpk_Op<"instance_norm"> {
  let summary = "Instance normalization: per (n, c) over the spatial dimensions";
  let description = [{
    `scale` and `bias` have one value per channel (dimension 1).
  }];
  let arguments = (ins F32Tensor:$input, F32Tensor:$scale, F32Tensor:$bias,
                       F32Attr:$epsilon);
  let results = (outs F32Tensor:$output);
}

def Wpk_GroupNormOp : Wpk_Op<"group_norm"> {
  let summary = "Group normalization: per (n, group of channels) over the group and spatial dims";
  let description = [{
    The channels (dimension 1) split into `num_groups` equal groups; `scale`
    and `bias` have one value per channel (the importer expands ONNX opset-18
    per-group values).
  }];
  let arguments = (ins F32Tensor:$input, F32Tensor:$scale, F32Tensor:$bias,
                       I64Attr:$num_groups, F32Attr:$epsilon);
  let results = (outs F32Tensor:$output);
}

// ---- integer, bool and indexing ops ----

def Wpk_CastOp : Wpk_Op<"cast"> {
  let summary = "Element type conversion (ONNX Cast) between f32, i64, i32 and i1";
  let description = [{
    Float to integer truncates toward zero; to i1 is `x != 0`; i1 to a number
    is 0 or 1.
  }];
  let arguments = (ins Wpk_AnyTensor:$input);
  let results = (outs Wpk_AnyTensor:$output);
}

def Wpk_GatherOp : Wpk_Op<"gather"> {
  let summary = "Take slices of `data` along `axis` at `indices` (ONNX Gather)";
  let description = [{
    The result shape is data[:axis] + indices + data[axis+1:]. A negative
    index counts from the end of the axis; out-of-range indices are clamped
    into it (ONNX leaves them undefined).
  }];
  let arguments = (ins Wpk_AnyTensor:$data, Wpk_IndexTensor:$indices, I64Attr:$axis);
  let results = (outs Wpk_AnyTensor:$output);
}

def Wpk_CompareOp : Wpk_Op<"compare"> {
  let summary = "Elementwise comparison with numpy broadcasting, an i1 result";
  let description = [{
    `predicate` is one of `eq`, `lt`, `le`, `gt`, `ge` (ONNX Equal, Less,
    LessOrEqual, Greater, GreaterOrEqual); both operands have one element type.
  }];
  let arguments = (ins Wpk_NumberTensor:$lhs, Wpk_NumberTensor:$rhs, StrAttr:$predicate);
  let results = (outs I1Tensor:$output);
}

def Wpk_LogicalOp : Wpk_Op<"logical"> {
  let summary = "Elementwise `and`, `or` or `xor` of i1 tensors with numpy broadcasting";
  let arguments = (ins I1Tensor:$lhs, I1Tensor:$rhs, StrAttr:$kind);
  let results = (outs I1Tensor:$output);
}

def Wpk_NotOp : Wpk_Op<"not"> {
  let summary = "Elementwise logical negation of an i1 tensor";
  let arguments = (ins I1Tensor:$input);
  let results = (outs I1Tensor:$output);
}

def Wpk_IsNaNOp : Wpk_Op<"is_nan"> {
  let summary = "Elementwise x != x (ONNX IsNaN)";
  let arguments = (ins F32Tensor:$input);
  let results = (outs I1Tensor:$output);
}

def Wpk_IsInfOp : Wpk_Op<"is_inf"> {
  let summary = "Elementwise x == +inf (if detect_positive) or x == -inf (if detect_negative)";
  let arguments = (ins F32Tensor:$input, BoolAttr:$detect_positive, BoolAttr:$detect_negative);
  let results = (outs I1Tensor:$output);
}

def Wpk_WhereOp : Wpk_Op<"where"> {
  let summary = "condition ? lhs : rhs elementwise, with numpy broadcasting of all three";
  let arguments = (ins I1Tensor:$condition, Wpk_AnyTensor:$lhs, Wpk_AnyTensor:$rhs);
  let results = (outs Wpk_AnyTensor:$output);
}

// ---- elementwise ops ----
// Steps of the fused kernels like relu (dialect description, step table);
// ops/pointwise.py holds their semantics.
def Wpk_SqrtOp : Wpk_UnaryOp<"sqrt", "Square root">;
def Wpk_ErfOp : Wpk_UnaryOp<"erf", "The Gauss error function">;
def Wpk_ExpOp : Wpk_UnaryOp<"exp", "e to the power x">;
def Wpk_LogOp : Wpk_UnaryOp<"log", "Natural logarithm">;
def Wpk_NegOp : Wpk_UnaryOp<"neg", "-x">;
def Wpk_AbsOp : Wpk_UnaryOp<"abs", "|x|">;
def Wpk_ReciprocalOp : Wpk_UnaryOp<"reciprocal", "1 / x">;
def Wpk_FloorOp : Wpk_UnaryOp<"floor", "The largest integer <= x">;
def Wpk_CeilOp : Wpk_UnaryOp<"ceil", "The smallest integer >= x">;
def Wpk_RoundOp : Wpk_UnaryOp<"round", "x rounded to the nearest integer, halves to even">;
def Wpk_SignOp : Wpk_UnaryOp<"sign", "1, -1 or 0 by the sign of x">;
def Wpk_SoftplusOp : Wpk_UnaryOp<"softplus", "log(1 + exp(x))">;
def Wpk_SoftsignOp : Wpk_UnaryOp<"softsign", "x / (1 + |x|)">;
def Wpk_MishOp : Wpk_UnaryOp<"mish", "x * tanh(softplus(x))">;
def Wpk_SinOp : Wpk_UnaryOp<"sin", "Sine">;
def Wpk_CosOp : Wpk_UnaryOp<"cos", "Cosine">;
def Wpk_GeluOp : Wpk_UnaryOp<"gelu", "x / 2 * (1 + erf(x / sqrt(2))) (ONNX Gelu, approximate none)">;
def Wpk_GeluTanhOp : Wpk_UnaryOp<"gelu_tanh",
    "x / 2 * (1 + tanh(sqrt(2 / pi) * (x + 0.044715 x^3))) (ONNX Gelu, approximate tanh)">;

def Wpk_EluOp : Wpk_Op<"elu"> {
  let summary = "x if x > 0 else alpha * (exp(x) - 1)";
  let arguments = (ins F32Tensor:$input, F32Attr:$alpha);
  let results = (outs F32Tensor:$output);
}

def Wpk_SeluOp : Wpk_Op<"selu"> {
  let summary = "gamma * (x if x > 0 else alpha * (exp(x) - 1))";
  let arguments = (ins F32Tensor:$input, F32Attr:$alpha, F32Attr:$gamma);
  let results = (outs F32Tensor:$output);
}

def Wpk_CeluOp : Wpk_Op<"celu"> {
  let summary = "max(0, x) + min(0, alpha * (exp(x / alpha) - 1))";
  let arguments = (ins F32Tensor:$input, F32Attr:$alpha);
  let results = (outs F32Tensor:$output);
}

def Wpk_ThresholdedReluOp : Wpk_Op<"thresholded_relu"> {
  let summary = "x if x > alpha else 0";
  let arguments = (ins F32Tensor:$input, F32Attr:$alpha);
  let results = (outs F32Tensor:$output);
}

def Wpk_PowOp : Wpk_BinaryOp<"pow", "power (lhs to the power rhs)">;
def Wpk_MaxOp : Wpk_BinaryOp<"max", "maximum (NaN propagating)">;
def Wpk_MinOp : Wpk_BinaryOp<"min", "minimum (NaN propagating)">;
def Wpk_ModOp : Wpk_BinaryOp<"mod", "remainder with the sign of lhs (C fmod, ONNX Mod fmod=1)">;
def Wpk_FloorModOp : Wpk_BinaryOp<"floor_mod", "remainder with the sign of rhs (Python %, ONNX Mod fmod=0)">;
def Wpk_PReluOp : Wpk_BinaryOp<"prelu", "lhs if lhs >= 0 else rhs * lhs (ONNX PRelu, rhs the slope)">;

def Wpk_ConvTranspose2DOp : Wpk_Op<"conv_transpose2d"> {
  let summary = "2-D transposed convolution in NCHW layout (ONNX ConvTranspose)";
  let description = [{
    `filter` is [C, M / groups, kH, kW] (ONNX layout); `pads` is [top, left,
    bottom, right] (non-negative, cropped from the full result), `output_padding`
    adds rows/columns at the bottom/right. The result is [N, M, OH, OW] with
    OH = strides[0] * (H - 1) + output_padding[0] + dilations[0] * (kH - 1) + 1
    - pads[0] - pads[2] (OW likewise); the optional `bias` has one value per
    output channel.
  }];
  let arguments = (ins F32Tensor:$input, F32Tensor:$filter,
                       Optional<F32Tensor>:$bias,
                       DenseI64ArrayAttr:$strides, DenseI64ArrayAttr:$pads,
                       DenseI64ArrayAttr:$output_padding,
                       DenseI64ArrayAttr:$dilations, I64Attr:$groups);
  let results = (outs F32Tensor:$output);
}

//===----------------------------------------------------------------------===//
// Fused kernels, created by the graph passes (wpk-fold-batchnorm, wpk-fuse).
//===----------------------------------------------------------------------===//

// ---- data movement and shape ops ----

def Wpk_SliceOp : Wpk_Op<"slice"> {
  let summary = "Strided slice: result[i] = input[starts + i * steps] per dimension";
  let description = [{
    One start and one non-zero step per dimension (negative steps walk
    backwards); the result type gives the number of elements taken per
    dimension. Every index read lies inside the input (ONNX Slice's clamping
    is done at import).
  }];
  let arguments = (ins F32Tensor:$input, DenseI64ArrayAttr:$starts,
                       DenseI64ArrayAttr:$steps);
  let results = (outs F32Tensor:$output);
}

def Wpk_ExpandOp : Wpk_Op<"expand"> {
  let summary = "Broadcast to the result shape (numpy rules, ONNX Expand)";
  let arguments = (ins F32Tensor:$input);
  let results = (outs F32Tensor:$output);
}

def Wpk_GatherElementsOp : Wpk_Op<"gather_elements"> {
  let summary = "result[i] = input[i with dimension `axis` replaced by indices[i]]";
  let description = [{
    `indices` holds the constant, non-negative indices in row-major order of
    the result shape.
  }];
  let arguments = (ins F32Tensor:$input, DenseI64ArrayAttr:$indices,
                       I64Attr:$axis);
  let results = (outs F32Tensor:$output);
}

def Wpk_ResizeOp : Wpk_Op<"resize"> {
  let summary = "ONNX Resize, mode nearest or linear, to the result shape";
  let description = [{
    `scales` holds one scale per dimension (the factor of the coordinate
    transformation, output size / input size unless given); mode `nearest`
    rounds by `nearest_mode`, mode `linear` interpolates every dimension whose
    coordinates are not the identity, clamping at the edges.
  }];
  let arguments = (ins F32Tensor:$input, DenseF32ArrayAttr:$scales,
                       StrAttr:$mode, StrAttr:$coordinate_transformation_mode,
                       StrAttr:$nearest_mode);
  let results = (outs F32Tensor:$output);
}

// ---- blocked layout ops ----
// The blocked channel layout NCHW[b]c (wpk-convert-layout): a tensor (N, C, H, W)
// is held as (N, ceil(C/b), H, W, b), channel c at [c / b, ..., c % b]; the lanes
// past C (padding) hold zeros after wpk.to_blocked and are ignored by consumers.

def Wpk_ToBlockedOp : Wpk_Op<"to_blocked"> {
  let summary = "Reorder (N, C, *spatial) into the blocked layout (N, ceil(C/block), *spatial, block)";
  let description = [{
    Channel `c` of the input goes to `[n, c / block, ..., c % block]`; the
    padding lanes (channels C .. ceil(C/block) * block - 1) are zeros.
  }];
  let arguments = (ins F32Tensor:$input, I64Attr:$block);
  let results = (outs F32Tensor:$output);
}

def Wpk_FromBlockedOp : Wpk_Op<"from_blocked"> {
  let summary = "Reorder a blocked (N, CB, *spatial, b) tensor back to (N, channels, *spatial)";
  let description = [{
    The inverse of `wpk.to_blocked`: channel `c < channels` is read from
    `[n, c / b, ..., c % b]`; the padding lanes are dropped.
    `(CB - 1) * b < channels <= CB * b`.
  }];
  let arguments = (ins F32Tensor:$input, I64Attr:$channels);
  let results = (outs F32Tensor:$output);
}

def Wpk_BlockedConv2DOp : Wpk_Op<"blocked_conv2d", [AttrSizedOperandSegments]> {
  let summary = "2-D convolution in the blocked layout with a packed filter and an elementwise epilogue";
  let description = [{
    `input` is (N, CBi, H, W, bi_in); `filter` is packed (at compile time) as
    (OB, CBg, KH, KW, bi, bo): element [ob, cb, kh, kw, i, j] is the weight of
    output channel `o = ob * bo + j` and input channel `cb * bi + i` of its
    group; the optional `bias` is (OB, bo); the result is (N, OB, OH, OW, bo).
    With `Og = OB * bo / groups` and `Cg = CBg * bi`, output channel `o` reads
    input channels `g * Cg + c` (c < Cg) of group `g = o / Og`, channel `k` of
    the input being `[n, k / bi_in, ..., k % bi_in]`; `groups * Cg <= CBi * bi_in`.
    `groups` counts the padded channels (a depthwise conv over C channels in
    blocks of b has `groups = ceil(C/b) * b`, CBg = bi = 1). Strides, pads
    ([top, left, bottom, right]) and dilations are those of `wpk.conv2d`.
    Then the `epilogue` steps, as in `wpk.fused_conv2d`, with side operands
    broadcasting to the (blocked) result: a residual is (N, OB, OH, OW, bo), a
    per-channel operand (1, OB, 1, 1, bo).
    Steps: see the dialect description.
  }];
  let arguments = (ins F32Tensor:$input, F32Tensor:$filter,
                       Optional<F32Tensor>:$bias, Optional<F32Tensor>:$side0,
                       Optional<F32Tensor>:$side1, Optional<F32Tensor>:$side2,
                       DenseI64ArrayAttr:$strides, DenseI64ArrayAttr:$pads,
                       DenseI64ArrayAttr:$dilations, I64Attr:$groups,
                       StrArrayAttr:$epilogue, DenseF32ArrayAttr:$epilogue_params);
  let results = (outs F32Tensor:$output);
}

// ---- attention ops ----

def Wpk_MatMulTransposedOp : Wpk_Op<"matmul_transposed"> {
  let summary = "Batched matrix product with a transposed right operand: lhs x swap_last_two(rhs)";
  let description = [{
    `wpk.matmul` of `lhs` [..., M, K] and the transpose of the last two
    dimensions of `rhs` [..., N, K] (batch dimensions broadcast as numpy does;
    both operands have rank >= 2). wpk-fold-transpose makes it of a
    `wpk.matmul` whose right operand is a `wpk.transpose` ending in the swap
    of the last two dimensions (K^T in attention), so the lowering reads `rhs`
    transposed instead of materializing the transpose.
  }];
  let arguments = (ins F32Tensor:$lhs, F32Tensor:$rhs);
  let results = (outs F32Tensor:$output);
}

def Wpk_AttentionOp : Wpk_Op<"attention"> {
  let summary = "Scaled dot-product attention as one op: softmax(scale * q k^T + mask) v";
  let description = [{
    `q` [B, H, S, D], `k` [B, H, T, D], `v` [B, H, T, E] give [B, H, S, E]:
    the scores `scale * q k^T` [B, H, S, T], plus the optional `mask`
    (numpy-broadcast to [B, H, S, T]: [B, 1, 1, T], [B, 1, S, T], [S, T], ...),
    a softmax along the key axis T, then the product with `v`.
    wpk-fuse-attention makes it of the MatMul -> Mul/Div by a scalar -> Add
    mask -> Softmax -> MatMul chain of exported transformers.
  }];
  let arguments = (ins F32Tensor:$q, F32Tensor:$k, F32Tensor:$v,
                       Optional<F32Tensor>:$mask, F32Attr:$scale);
  let results = (outs F32Tensor:$output);
}

// ---- index ops ----
// ArgMax/ArgMin, integer arithmetic at run time, CumSum, GatherElements with
// run-time indices, Trilu (ops/index.py
// holds their semantics, lowering/index.py their lowering).

def Wpk_ArgReduceOp : Wpk_Op<"arg_reduce"> {
  let summary = "Index of the maximum or minimum along `axis` (ONNX ArgMax, ArgMin), an i64 result";
  let description = [{
    `kind` is `max` or `min`. The result has `axis` dropped, or kept as size 1
    with `keepdims`. Of equal extrema the first index is taken, or the last
    with `select_last_index`.
  }];
  let arguments = (ins Wpk_NumberTensor:$input, StrAttr:$kind, I64Attr:$axis,
                       BoolAttr:$keepdims, BoolAttr:$select_last_index);
  let results = (outs I64Tensor:$output);
}

def Wpk_IntegerBinaryOp : Wpk_Op<"integer_binary"> {
  let summary = "Elementwise integer arithmetic with numpy broadcasting (i64 or i32, both alike)";
  let description = [{
    `kind` is one of `add`, `sub`, `mul` (wrapping), `div` (truncating toward
    zero, as ONNX Div of integers), `mod` (sign of lhs, ONNX Mod fmod=1),
    `floor_mod` (sign of rhs, ONNX Mod fmod=0), `max`, `min`. A zero divisor
    gives 0 (ONNX leaves it undefined).
  }];
  let arguments = (ins Wpk_IndexTensor:$lhs, Wpk_IndexTensor:$rhs, StrAttr:$kind);
  let results = (outs Wpk_IndexTensor:$output);
}

def Wpk_IntegerUnaryOp : Wpk_Op<"integer_unary"> {
  let summary = "Elementwise integer `neg` or `abs` (i64 or i32, wrapping)";
  let arguments = (ins Wpk_IndexTensor:$input, StrAttr:$kind);
  let results = (outs Wpk_IndexTensor:$output);
}

def Wpk_CumSumOp : Wpk_Op<"cumsum"> {
  let summary = "Cumulative sum along `axis` (ONNX CumSum)";
  let description = [{
    With `exclusive` an element's own value is left out of its sum; with
    `reverse` the sums run from the end of the axis.
  }];
  let arguments = (ins Wpk_NumberTensor:$input, I64Attr:$axis,
                       BoolAttr:$exclusive, BoolAttr:$reverse);
  let results = (outs Wpk_NumberTensor:$output);
}

def Wpk_TakeAlongAxisOp : Wpk_Op<"take_along_axis"> {
  let summary = "result[i] = data[i with dimension `axis` replaced by indices[i]] (ONNX GatherElements, run-time indices)";
  let description = [{
    `indices` has the rank of `data` and the result's shape, no larger than
    `data` outside `axis`. A negative index counts from the end of the axis;
    out-of-range indices are clamped into it (ONNX leaves them undefined).
    `wpk.gather_elements` is the same with constant indices.
  }];
  let arguments = (ins Wpk_AnyTensor:$data, Wpk_IndexTensor:$indices, I64Attr:$axis);
  let results = (outs Wpk_AnyTensor:$output);
}

def Wpk_TriluOp : Wpk_Op<"trilu"> {
  let summary = "Upper or lower triangle of the last two dimensions (ONNX Trilu), the rest zeroed";
  let description = [{
    With `upper`, element [..., i, j] is kept where j - i >= k, else where
    j - i <= k.
  }];
  let arguments = (ins Wpk_AnyTensor:$input, BoolAttr:$upper, I64Attr:$k);
  let results = (outs Wpk_AnyTensor:$output);
}

def Wpk_ElementwiseOp : Wpk_Op<"elementwise", [AttrSizedOperandSegments]> {
  let summary = "A fused chain of elementwise steps: one kernel, one pass over memory";
  let description = [{
    `v` starts as `input`; the result has the numpy broadcast shape of `input`
    and the side operands. wpk-fuse builds it from chains of the elementwise
    ops (each is the step of its name); wpk-fold-batchnorm
    turns a batch_norm without a foldable producer into
    `steps = ["mul", "add"]` (a per-channel scale and shift).
    Steps: see the dialect description.
  }];
  let arguments = (ins F32Tensor:$input, Optional<F32Tensor>:$side0,
                       Optional<F32Tensor>:$side1, Optional<F32Tensor>:$side2,
                       StrArrayAttr:$steps, DenseF32ArrayAttr:$params);
  let results = (outs F32Tensor:$output);
}

def Wpk_FusedConv2DOp : Wpk_Op<"fused_conv2d", [AttrSizedOperandSegments]> {
  let summary = "conv2d (optional per-channel bias) followed by an elementwise epilogue";
  let description = [{
    The convolution of `wpk.conv2d` (same operands and attributes), then the
    `epilogue` steps applied to each output element with `v` starting as the
    convolution result (bias included): e.g. a residual add and a relu are
    `epilogue = ["add", "relu"]` with the residual as `side0`. The result has
    the convolution's shape; side operands broadcast to it.
    Steps: see the dialect description.
  }];
  let arguments = (ins F32Tensor:$input, F32Tensor:$filter,
                       Optional<F32Tensor>:$bias, Optional<F32Tensor>:$side0,
                       Optional<F32Tensor>:$side1, Optional<F32Tensor>:$side2,
                       DenseI64ArrayAttr:$strides, DenseI64ArrayAttr:$pads,
                       DenseI64ArrayAttr:$dilations, I64Attr:$groups,
                       StrArrayAttr:$epilogue, DenseF32ArrayAttr:$epilogue_params);
  let results = (outs F32Tensor:$output);
}

def Wpk_FusedMatMulOp : Wpk_Op<"fused_matmul", [AttrSizedOperandSegments]> {
  let summary = "matmul followed by an elementwise epilogue (e.g. bias add and activation)";
  let description = [{
    The product of `wpk.matmul`, then the `epilogue` steps with `v` starting
    as the product; the result has the product's shape.
    Steps: see the dialect description.
  }];
  let arguments = (ins F32Tensor:$lhs, F32Tensor:$rhs, Optional<F32Tensor>:$side0,
                       Optional<F32Tensor>:$side1, Optional<F32Tensor>:$side2,
                       StrArrayAttr:$epilogue, DenseF32ArrayAttr:$epilogue_params);
  let results = (outs F32Tensor:$output);
}

def Wpk_FusedGemmOp : Wpk_Op<"fused_gemm", [AttrSizedOperandSegments]> {
  let summary = "gemm followed by an elementwise epilogue";
  let description = [{
    `alpha * op(a) * op(b) + beta * c` as in `wpk.gemm`, then the `epilogue`
    steps with `v` starting as that value; the result is [M, N].
    Steps: see the dialect description.
  }];
  let arguments = (ins F32Tensor:$a, F32Tensor:$b, Optional<F32Tensor>:$c,
                       Optional<F32Tensor>:$side0, Optional<F32Tensor>:$side1,
                       Optional<F32Tensor>:$side2,
                       F32Attr:$alpha, F32Attr:$beta,
                       BoolAttr:$trans_a, BoolAttr:$trans_b,
                       StrArrayAttr:$epilogue, DenseF32ArrayAttr:$epilogue_params);
  let results = (outs F32Tensor:$output);
}
