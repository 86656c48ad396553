// wpk-fuse: anchors (conv2d, matmul, gemm) absorb their elementwise epilogue, elementwise
// chains become one wpk.elementwise, constant pads fold into conv/pool padding.
// RUN: wpk-opt %s --wpk-verify --wpk-fuse --wpk-verify | FileCheck %s
// RUN: wpk-opt %s --wpk-fuse --wpk-lower | FileCheck %s --check-prefix=LOWER

// LOWER-NOT: "wpk.

module {

// CHECK-LABEL: func.func @conv_relu(
// CHECK-NEXT:    %[[F:.*]] = "wpk.fused_conv2d"(%arg0, %arg1, %arg2) {dilations = array<i64: 1, 1>, epilogue = ["relu"], epilogue_params = array<f32>, groups = 1 : i64, operandSegmentSizes = array<i32: 1, 1, 1, 0, 0, 0>, pads = array<i64: 1, 1, 1, 1>, strides = array<i64: 1, 1>} : (tensor<1x2x4x4xf32>, tensor<3x2x3x3xf32>, tensor<3xf32>) -> tensor<1x3x4x4xf32>
// CHECK-NEXT:    return %[[F]]
func.func @conv_relu(%x: tensor<1x2x4x4xf32>, %w: tensor<3x2x3x3xf32>, %b: tensor<3xf32>) -> tensor<1x3x4x4xf32> {
  %c = "wpk.conv2d"(%x, %w, %b) {strides = array<i64: 1, 1>, pads = array<i64: 1, 1, 1, 1>, dilations = array<i64: 1, 1>, groups = 1 : i64} : (tensor<1x2x4x4xf32>, tensor<3x2x3x3xf32>, tensor<3xf32>) -> tensor<1x3x4x4xf32>
  %r = "wpk.relu"(%c) : (tensor<1x3x4x4xf32>) -> tensor<1x3x4x4xf32>
  return %r : tensor<1x3x4x4xf32>
}

// A residual add (the conv result is either operand) and a relu: the residual is side0.
// CHECK-LABEL: func.func @residual(
// CHECK-NEXT:    %[[F:.*]] = "wpk.fused_conv2d"(%arg0, %arg1, %arg2) {{{.*}}epilogue = ["add", "relu"], epilogue_params = array<f32>, {{.*}}operandSegmentSizes = array<i32: 1, 1, 0, 1, 0, 0>
// CHECK-NEXT:    return %[[F]]
func.func @residual(%x: tensor<1x2x4x4xf32>, %w: tensor<3x2x3x3xf32>, %res: tensor<1x3x4x4xf32>) -> tensor<1x3x4x4xf32> {
  %c = "wpk.conv2d"(%x, %w) {strides = array<i64: 1, 1>, pads = array<i64: 1, 1, 1, 1>, dilations = array<i64: 1, 1>, groups = 1 : i64} : (tensor<1x2x4x4xf32>, tensor<3x2x3x3xf32>) -> tensor<1x3x4x4xf32>
  %a = "wpk.add"(%res, %c) : (tensor<1x3x4x4xf32>, tensor<1x3x4x4xf32>) -> tensor<1x3x4x4xf32>
  %r = "wpk.relu"(%a) : (tensor<1x3x4x4xf32>) -> tensor<1x3x4x4xf32>
  return %r : tensor<1x3x4x4xf32>
}

// clip (relu6), leaky_relu, sigmoid, tanh and x * sigmoid(x) (silu) each fuse into the conv.
// CHECK-LABEL: func.func @activations(
// CHECK-NEXT:    "wpk.fused_conv2d"(%arg0, %arg1) {{{.*}}epilogue = ["clip"], epilogue_params = array<f32: 0.000000e+00, 6.000000e+00>
// CHECK-NEXT:    "wpk.fused_conv2d"(%arg0, %arg1) {{{.*}}epilogue = ["leaky_relu"], epilogue_params = array<f32: 1.250000e-01>
// CHECK-NEXT:    "wpk.fused_conv2d"(%arg0, %arg1) {{{.*}}epilogue = ["sigmoid"], epilogue_params = array<f32>
// CHECK-NEXT:    "wpk.fused_conv2d"(%arg0, %arg1) {{{.*}}epilogue = ["tanh"], epilogue_params = array<f32>
// CHECK-NEXT:    "wpk.fused_conv2d"(%arg0, %arg1) {{{.*}}epilogue = ["silu"], epilogue_params = array<f32>
// CHECK-NEXT:    return
func.func @activations(%x: tensor<1x2x4x4xf32>, %w: tensor<3x2x3x3xf32>) -> (tensor<1x3x4x4xf32>, tensor<1x3x4x4xf32>, tensor<1x3x4x4xf32>, tensor<1x3x4x4xf32>, tensor<1x3x4x4xf32>) {
  %c0 = "wpk.conv2d"(%x, %w) {strides = array<i64: 1, 1>, pads = array<i64: 1, 1, 1, 1>, dilations = array<i64: 1, 1>, groups = 1 : i64} : (tensor<1x2x4x4xf32>, tensor<3x2x3x3xf32>) -> tensor<1x3x4x4xf32>
  %r0 = "wpk.clip"(%c0) {min = 0.0 : f32, max = 6.0 : f32} : (tensor<1x3x4x4xf32>) -> tensor<1x3x4x4xf32>
  %c1 = "wpk.conv2d"(%x, %w) {strides = array<i64: 1, 1>, pads = array<i64: 1, 1, 1, 1>, dilations = array<i64: 1, 1>, groups = 1 : i64} : (tensor<1x2x4x4xf32>, tensor<3x2x3x3xf32>) -> tensor<1x3x4x4xf32>
  %r1 = "wpk.leaky_relu"(%c1) {alpha = 0.125 : f32} : (tensor<1x3x4x4xf32>) -> tensor<1x3x4x4xf32>
  %c2 = "wpk.conv2d"(%x, %w) {strides = array<i64: 1, 1>, pads = array<i64: 1, 1, 1, 1>, dilations = array<i64: 1, 1>, groups = 1 : i64} : (tensor<1x2x4x4xf32>, tensor<3x2x3x3xf32>) -> tensor<1x3x4x4xf32>
  %r2 = "wpk.sigmoid"(%c2) : (tensor<1x3x4x4xf32>) -> tensor<1x3x4x4xf32>
  %c3 = "wpk.conv2d"(%x, %w) {strides = array<i64: 1, 1>, pads = array<i64: 1, 1, 1, 1>, dilations = array<i64: 1, 1>, groups = 1 : i64} : (tensor<1x2x4x4xf32>, tensor<3x2x3x3xf32>) -> tensor<1x3x4x4xf32>
  %r3 = "wpk.tanh"(%c3) : (tensor<1x3x4x4xf32>) -> tensor<1x3x4x4xf32>
  %c4 = "wpk.conv2d"(%x, %w) {strides = array<i64: 1, 1>, pads = array<i64: 1, 1, 1, 1>, dilations = array<i64: 1, 1>, groups = 1 : i64} : (tensor<1x2x4x4xf32>, tensor<3x2x3x3xf32>) -> tensor<1x3x4x4xf32>
  %s4 = "wpk.sigmoid"(%c4) : (tensor<1x3x4x4xf32>) -> tensor<1x3x4x4xf32>
  %r4 = "wpk.mul"(%c4, %s4) : (tensor<1x3x4x4xf32>, tensor<1x3x4x4xf32>) -> tensor<1x3x4x4xf32>
  return %r0, %r1, %r2, %r3, %r4 : tensor<1x3x4x4xf32>, tensor<1x3x4x4xf32>, tensor<1x3x4x4xf32>, tensor<1x3x4x4xf32>, tensor<1x3x4x4xf32>
}

// Bias add and relu into a matmul; sigmoid into a gemm (which keeps its own C).
// CHECK-LABEL: func.func @matmul_gemm(
// CHECK-NEXT:    %[[M:.*]] = "wpk.fused_matmul"(%arg0, %arg1, %arg2) {epilogue = ["add", "relu"], epilogue_params = array<f32>, operandSegmentSizes = array<i32: 1, 1, 1, 0, 0>}
// CHECK-NEXT:    %[[G:.*]] = "wpk.fused_gemm"(%[[M]], %arg3, %arg2) {alpha = 1.000000e+00 : f32, beta = 1.000000e+00 : f32, epilogue = ["sigmoid"], epilogue_params = array<f32>, operandSegmentSizes = array<i32: 1, 1, 1, 0, 0, 0>, trans_a = false, trans_b = true}
// CHECK-NEXT:    return %[[G]]
func.func @matmul_gemm(%x: tensor<2x8xf32>, %w: tensor<8x4xf32>, %b: tensor<4xf32>, %w2: tensor<4x4xf32>) -> tensor<2x4xf32> {
  %m = "wpk.matmul"(%x, %w) : (tensor<2x8xf32>, tensor<8x4xf32>) -> tensor<2x4xf32>
  %a = "wpk.add"(%m, %b) : (tensor<2x4xf32>, tensor<4xf32>) -> tensor<2x4xf32>
  %r = "wpk.relu"(%a) : (tensor<2x4xf32>) -> tensor<2x4xf32>
  %g = "wpk.gemm"(%r, %w2, %b) {alpha = 1.0 : f32, beta = 1.0 : f32, trans_a = false, trans_b = true} : (tensor<2x4xf32>, tensor<4x4xf32>, tensor<4xf32>) -> tensor<2x4xf32>
  %s = "wpk.sigmoid"(%g) : (tensor<2x4xf32>) -> tensor<2x4xf32>
  return %s : tensor<2x4xf32>
}

// Not fused: an anchor result with two uses, an add that broadcasts the anchor result to a
// larger shape.
// CHECK-LABEL: func.func @not_fused(
// CHECK-NEXT:    %[[M:.*]] = "wpk.matmul"
// CHECK-NEXT:    "wpk.relu"(%[[M]])
// CHECK-NEXT:    %[[M2:.*]] = "wpk.matmul"
// CHECK-NEXT:    "wpk.add"(%[[M2]], %arg2)
func.func @not_fused(%x: tensor<1x4xf32>, %w: tensor<4x4xf32>, %big: tensor<3x4xf32>) -> (tensor<1x4xf32>, tensor<1x4xf32>, tensor<3x4xf32>) {
  %m = "wpk.matmul"(%x, %w) : (tensor<1x4xf32>, tensor<4x4xf32>) -> tensor<1x4xf32>
  %r = "wpk.relu"(%m) : (tensor<1x4xf32>) -> tensor<1x4xf32>
  %m2 = "wpk.matmul"(%x, %w) : (tensor<1x4xf32>, tensor<4x4xf32>) -> tensor<1x4xf32>
  %a = "wpk.add"(%m2, %big) : (tensor<1x4xf32>, tensor<3x4xf32>) -> tensor<3x4xf32>
  return %m, %r, %a : tensor<1x4xf32>, tensor<1x4xf32>, tensor<3x4xf32>
}

// A chain of six elementwise ops with four side operands: two kernels (three side operands
// at most each); `v - t` with the chain value on the right is `rsub`.
// CHECK-LABEL: func.func @chain(
// CHECK-NEXT:    %[[E:.*]] = "wpk.elementwise"(%arg0, %arg1, %arg2) {operandSegmentSizes = array<i32: 1, 1, 1, 0>, params = array<f32>, steps = ["add", "mul"]}
// CHECK-NEXT:    %[[E2:.*]] = "wpk.elementwise"(%[[E]], %arg3, %arg2) {operandSegmentSizes = array<i32: 1, 1, 1, 0>, params = array<f32>, steps = ["tanh", "rsub", "div", "relu"]}
// CHECK-NEXT:    return %[[E2]]
func.func @chain(%x: tensor<2x4xf32>, %y: tensor<2x4xf32>, %w: tensor<4xf32>, %v: tensor<1xf32>) -> tensor<2x4xf32> {
  %a = "wpk.add"(%x, %y) : (tensor<2x4xf32>, tensor<2x4xf32>) -> tensor<2x4xf32>
  %m = "wpk.mul"(%a, %w) : (tensor<2x4xf32>, tensor<4xf32>) -> tensor<2x4xf32>
  %t = "wpk.tanh"(%m) : (tensor<2x4xf32>) -> tensor<2x4xf32>
  %s = "wpk.sub"(%v, %t) : (tensor<1xf32>, tensor<2x4xf32>) -> tensor<2x4xf32>
  %d = "wpk.div"(%s, %w) : (tensor<2x4xf32>, tensor<4xf32>) -> tensor<2x4xf32>
  %r = "wpk.relu"(%d) : (tensor<2x4xf32>) -> tensor<2x4xf32>
  return %r : tensor<2x4xf32>
}

// Pads fold into conv (value 0), max_pool (value -inf) and avg_pool (value 0, the pads are
// then counted); a pad of value 1 stays.
// CHECK-LABEL: func.func @pads(
// CHECK-NEXT:    "wpk.conv2d"(%arg0, %arg1) {{{.*}}pads = array<i64: 1, 2, 3, 2>
// CHECK-NEXT:    "wpk.max_pool"(%arg0) {{{.*}}pads = array<i64: 1, 1, 1, 1>
// CHECK-NEXT:    "wpk.avg_pool"(%arg0) {ceil_mode = false, count_include_pad = true, {{.*}}pads = array<i64: 1, 1, 1, 1>
// CHECK-NEXT:    %[[P:.*]] = "wpk.pad"(%arg0)
// CHECK-NEXT:    "wpk.conv2d"(%[[P]], %arg1) {{{.*}}pads = array<i64: 0, 0, 0, 0>
func.func @pads(%x: tensor<1x2x4x4xf32>, %w: tensor<3x2x3x3xf32>) -> (tensor<1x3x6x6xf32>, tensor<1x2x3x3xf32>, tensor<1x2x3x3xf32>, tensor<1x3x6x6xf32>) {
  %p = "wpk.pad"(%x) {mode = "constant", pads = array<i64: 0, 0, 1, 2, 0, 0, 3, 2>, value = 0.0 : f32} : (tensor<1x2x4x4xf32>) -> tensor<1x2x8x8xf32>
  %c = "wpk.conv2d"(%p, %w) {strides = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>, groups = 1 : i64} : (tensor<1x2x8x8xf32>, tensor<3x2x3x3xf32>) -> tensor<1x3x6x6xf32>
  %pm = "wpk.pad"(%x) {mode = "constant", pads = array<i64: 0, 0, 1, 1, 0, 0, 1, 1>, value = 0xFF800000 : f32} : (tensor<1x2x4x4xf32>) -> tensor<1x2x6x6xf32>
  %mp = "wpk.max_pool"(%pm) {kernel_shape = array<i64: 2, 2>, strides = array<i64: 2, 2>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>, ceil_mode = false} : (tensor<1x2x6x6xf32>) -> tensor<1x2x3x3xf32>
  %pa = "wpk.pad"(%x) {mode = "constant", pads = array<i64: 0, 0, 1, 1, 0, 0, 1, 1>, value = 0.0 : f32} : (tensor<1x2x4x4xf32>) -> tensor<1x2x6x6xf32>
  %ap = "wpk.avg_pool"(%pa) {kernel_shape = array<i64: 2, 2>, strides = array<i64: 2, 2>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>, ceil_mode = false, count_include_pad = false} : (tensor<1x2x6x6xf32>) -> tensor<1x2x3x3xf32>
  %pk = "wpk.pad"(%x) {mode = "constant", pads = array<i64: 0, 0, 1, 2, 0, 0, 3, 2>, value = 1.0 : f32} : (tensor<1x2x4x4xf32>) -> tensor<1x2x8x8xf32>
  %ck = "wpk.conv2d"(%pk, %w) {strides = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>, groups = 1 : i64} : (tensor<1x2x8x8xf32>, tensor<3x2x3x3xf32>) -> tensor<1x3x6x6xf32>
  return %c, %mp, %ap, %ck : tensor<1x3x6x6xf32>, tensor<1x2x3x3xf32>, tensor<1x2x3x3xf32>, tensor<1x3x6x6xf32>
}

// relu, a batch_norm scale and shift (an elementwise kernel), a residual add and a scale:
// the conv takes the first three side operands; the last mul is its own kernel.
// CHECK-LABEL: func.func @side_limit(
// CHECK-NEXT:    %[[F:.*]] = "wpk.fused_conv2d"(%arg0, %arg1, %arg2, %arg3, %arg4) {{{.*}}epilogue = ["relu", "mul", "add", "add"], {{.*}}operandSegmentSizes = array<i32: 1, 1, 0, 1, 1, 1>
// CHECK-NEXT:    %[[M:.*]] = "wpk.mul"(%[[F]], %arg2)
// CHECK-NEXT:    return %[[M]]
func.func @side_limit(%x: tensor<1x2x4x4xf32>, %w: tensor<3x2x3x3xf32>, %s: tensor<3x1x1xf32>, %t: tensor<3x1x1xf32>, %r: tensor<1x3x4x4xf32>) -> tensor<1x3x4x4xf32> {
  %c = "wpk.conv2d"(%x, %w) {strides = array<i64: 1, 1>, pads = array<i64: 1, 1, 1, 1>, dilations = array<i64: 1, 1>, groups = 1 : i64} : (tensor<1x2x4x4xf32>, tensor<3x2x3x3xf32>) -> tensor<1x3x4x4xf32>
  %relu = "wpk.relu"(%c) : (tensor<1x3x4x4xf32>) -> tensor<1x3x4x4xf32>
  %bn = "wpk.elementwise"(%relu, %s, %t) {operandSegmentSizes = array<i32: 1, 1, 1, 0>, params = array<f32>, steps = ["mul", "add"]} : (tensor<1x3x4x4xf32>, tensor<3x1x1xf32>, tensor<3x1x1xf32>) -> tensor<1x3x4x4xf32>
  %a = "wpk.add"(%bn, %r) : (tensor<1x3x4x4xf32>, tensor<1x3x4x4xf32>) -> tensor<1x3x4x4xf32>
  %b = "wpk.mul"(%a, %s) : (tensor<1x3x4x4xf32>, tensor<3x1x1xf32>) -> tensor<1x3x4x4xf32>
  return %b : tensor<1x3x4x4xf32>
}

}
