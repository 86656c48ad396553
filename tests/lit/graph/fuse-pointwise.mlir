// The steps of ops/pointwise.py fuse like relu: into a matmul epilogue (with the bias add), into
// elementwise chains, binary ones taking a side operand; and x * 0.5 * (1 + erf(x / sqrt 2))
// (the GELU exporters write) becomes one `gelu` step. Everything lowers to upstream ops.
// RUN: wpk-opt %s --wpk-verify --wpk-fuse --wpk-verify | FileCheck %s
// RUN: wpk-opt %s --wpk-fuse --wpk-lower | FileCheck %s --check-prefix=LOWER

// LOWER-NOT: "wpk.

module {

// CHECK-LABEL: func.func @matmul_bias_gelu(
// CHECK-NEXT:    %[[F:.*]] = "wpk.fused_matmul"(%arg0, %arg1, %arg2) {epilogue = ["add", "gelu"], epilogue_params = array<f32>, operandSegmentSizes = array<i32: 1, 1, 1, 0, 0>}
// CHECK-NEXT:    return %[[F]]
func.func @matmul_bias_gelu(%x: tensor<4x8xf32>, %w: tensor<8x16xf32>, %b: tensor<16xf32>) -> tensor<4x16xf32> {
  %mm = "wpk.matmul"(%x, %w) : (tensor<4x8xf32>, tensor<8x16xf32>) -> tensor<4x16xf32>
  %h = "wpk.add"(%mm, %b) : (tensor<4x16xf32>, tensor<16xf32>) -> tensor<4x16xf32>
  %sqrt2 = "wpk.constant"() {value = dense<1.41421354> : tensor<f32>} : () -> tensor<f32>
  %one = "wpk.constant"() {value = dense<1.0> : tensor<f32>} : () -> tensor<f32>
  %half = "wpk.constant"() {value = dense<0.5> : tensor<f32>} : () -> tensor<f32>
  %d = "wpk.div"(%h, %sqrt2) : (tensor<4x16xf32>, tensor<f32>) -> tensor<4x16xf32>
  %e = "wpk.erf"(%d) : (tensor<4x16xf32>) -> tensor<4x16xf32>
  %a = "wpk.add"(%one, %e) : (tensor<f32>, tensor<4x16xf32>) -> tensor<4x16xf32>
  %m = "wpk.mul"(%h, %a) : (tensor<4x16xf32>, tensor<4x16xf32>) -> tensor<4x16xf32>
  %y = "wpk.mul"(%m, %half) : (tensor<4x16xf32>, tensor<f32>) -> tensor<4x16xf32>
  return %y : tensor<4x16xf32>
}

// 0.5 * x first, erf's operand scaled by 1/sqrt 2: the same step.
// CHECK-LABEL: func.func @gelu_other_order(
// CHECK-NEXT:    %[[G:.*]] = "wpk.elementwise"(%arg0) {operandSegmentSizes = array<i32: 1, 0, 0, 0>, params = array<f32>, steps = ["gelu"]}
// CHECK-NEXT:    return %[[G]]
func.func @gelu_other_order(%x: tensor<2x3xf32>) -> tensor<2x3xf32> {
  %inv = "wpk.constant"() {value = dense<0.707106769> : tensor<f32>} : () -> tensor<f32>
  %one = "wpk.constant"() {value = dense<1.0> : tensor<f32>} : () -> tensor<f32>
  %half = "wpk.constant"() {value = dense<0.5> : tensor<f32>} : () -> tensor<f32>
  %hx = "wpk.mul"(%half, %x) : (tensor<f32>, tensor<2x3xf32>) -> tensor<2x3xf32>
  %s = "wpk.mul"(%x, %inv) : (tensor<2x3xf32>, tensor<f32>) -> tensor<2x3xf32>
  %e = "wpk.erf"(%s) : (tensor<2x3xf32>) -> tensor<2x3xf32>
  %a = "wpk.add"(%e, %one) : (tensor<2x3xf32>, tensor<f32>) -> tensor<2x3xf32>
  %y = "wpk.mul"(%hx, %a) : (tensor<2x3xf32>, tensor<2x3xf32>) -> tensor<2x3xf32>
  return %y : tensor<2x3xf32>
}

// Not a GELU (the scale is 0.6, not 1/2): the ops stay separate steps and still chain.
// CHECK-LABEL: func.func @not_gelu(
// CHECK-NOT:     "gelu"
// CHECK:         return
func.func @not_gelu(%x: tensor<2x3xf32>) -> tensor<2x3xf32> {
  %inv = "wpk.constant"() {value = dense<0.707106769> : tensor<f32>} : () -> tensor<f32>
  %one = "wpk.constant"() {value = dense<1.0> : tensor<f32>} : () -> tensor<f32>
  %half = "wpk.constant"() {value = dense<0.6> : tensor<f32>} : () -> tensor<f32>
  %hx = "wpk.mul"(%half, %x) : (tensor<f32>, tensor<2x3xf32>) -> tensor<2x3xf32>
  %s = "wpk.mul"(%x, %inv) : (tensor<2x3xf32>, tensor<f32>) -> tensor<2x3xf32>
  %e = "wpk.erf"(%s) : (tensor<2x3xf32>) -> tensor<2x3xf32>
  %a = "wpk.add"(%e, %one) : (tensor<2x3xf32>, tensor<f32>) -> tensor<2x3xf32>
  %y = "wpk.mul"(%hx, %a) : (tensor<2x3xf32>, tensor<2x3xf32>) -> tensor<2x3xf32>
  return %y : tensor<2x3xf32>
}

// A chain of new steps, unary and binary (pow and the swapped max/prelu), is one kernel.
// CHECK-LABEL: func.func @chain(
// CHECK-NEXT:    %[[K:.*]] = "wpk.elementwise"(%arg0, %arg1, %arg2) {operandSegmentSizes = array<i32: 1, 1, 1, 0>, params = array<f32: 1.000000e+00>, steps = ["exp", "log", "pow", "elu", "prelu", "mish", "sqrt"]}
// CHECK-NEXT:    return %[[K]]
func.func @chain(%x: tensor<2x3xf32>, %p: tensor<3xf32>, %s: tensor<2x3xf32>) -> tensor<2x3xf32> {
  %0 = "wpk.exp"(%x) : (tensor<2x3xf32>) -> tensor<2x3xf32>
  %1 = "wpk.log"(%0) : (tensor<2x3xf32>) -> tensor<2x3xf32>
  %2 = "wpk.pow"(%1, %p) : (tensor<2x3xf32>, tensor<3xf32>) -> tensor<2x3xf32>
  %3 = "wpk.elu"(%2) {alpha = 1.0 : f32} : (tensor<2x3xf32>) -> tensor<2x3xf32>
  %4 = "wpk.prelu"(%3, %s) : (tensor<2x3xf32>, tensor<2x3xf32>) -> tensor<2x3xf32>
  %5 = "wpk.mish"(%4) : (tensor<2x3xf32>) -> tensor<2x3xf32>
  %6 = "wpk.sqrt"(%5) : (tensor<2x3xf32>) -> tensor<2x3xf32>
  return %6 : tensor<2x3xf32>
}

}
