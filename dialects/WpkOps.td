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

    Binary steps take the next of the optional `side0`, `side1`, `side2`
    operands (so at most three binary steps), which broadcasts to the result
    shape like numpy. The parameters of all steps are concatenated in one
    f32 array. The number of binary steps equals the number of side operands.
  }];
}

class Wpk_Op<string mnemonic, list<Trait> traits = []>
    : Op<Wpk_Dialect, mnemonic, traits>;

// Weights are held as `dense_resource` blobs so that IR dumps stay readable.
def Wpk_WeightOp : Wpk_Op<"weight"> {
  let summary = "A constant weight tensor held in a dense_resource blob";
  let arguments = (ins Builtin_DenseResourceElementsAttr:$value);
  let results = (outs F32Tensor:$output);
}

def Wpk_ConstantOp : Wpk_Op<"constant"> {
  let summary = "A small constant tensor written inline";
  let arguments = (ins Builtin_DenseIntOrFPElementsAttr:$value);
  let results = (outs F32Tensor:$output);
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
  let summary = "Same elements, the shape of the result type";
  let arguments = (ins F32Tensor:$input);
  let results = (outs F32Tensor:$output);
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

def Wpk_ReduceMeanOp : Wpk_Op<"reduce_mean"> {
  let summary = "Mean over sorted non-negative `axes`";
  let arguments = (ins F32Tensor:$input, DenseI64ArrayAttr:$axes,
                       BoolAttr:$keepdims);
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
