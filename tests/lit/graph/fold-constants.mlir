// wpk-fold-constants: ops whose operands are all weights/constants become new weights (numpy,
// float64); ops with a non-constant operand stay; unused weights are erased.
// RUN: wpk-opt %s --wpk-fold-constants | FileCheck %s
// RUN: wpk-opt %s --wpk-fold-constants --wpk-verify --wpk-lower | FileCheck %s --check-prefix=LOWER

// LOWER-NOT: "wpk.

module {

// A transpose and a reshape of a weight fold into one weight holding the permuted data.
// CHECK-LABEL: func.func @transpose_reshape(
// CHECK-NEXT:    %[[W:.*]] = "wpk.weight"() {value = dense_resource<[[T:.*_folded.*]]> : tensor<6xf32>} : () -> tensor<6xf32>
// CHECK-NEXT:    %[[Y:.*]] = "wpk.add"(%arg0, %[[W]])
// CHECK-NEXT:    return %[[Y]]
func.func @transpose_reshape(%x: tensor<6xf32>) -> tensor<6xf32> {
  %w = "wpk.weight"() {value = dense_resource<w23> : tensor<2x3xf32>} : () -> tensor<2x3xf32>
  %t = "wpk.transpose"(%w) {perm = array<i64: 1, 0>} : (tensor<2x3xf32>) -> tensor<3x2xf32>
  %r = "wpk.reshape"(%t) : (tensor<3x2xf32>) -> tensor<6xf32>
  %y = "wpk.add"(%x, %r) : (tensor<6xf32>, tensor<6xf32>) -> tensor<6xf32>
  return %y : tensor<6xf32>
}

// Arithmetic on weights: relu(a) * b is one weight; the weight `a` is still used by the
// add of a function argument, so it stays.
// CHECK-LABEL: func.func @arithmetic(
// CHECK-DAG:     %[[A:.*]] = "wpk.weight"() {value = dense_resource<a3> : tensor<3xf32>}
// CHECK-DAG:     %[[F:.*]] = "wpk.weight"() {value = dense_resource<[[M:.*_folded.*]]> : tensor<3xf32>}
// CHECK-NOT:     "wpk.relu"
// CHECK-NOT:     "wpk.mul"
// CHECK:         %[[S:.*]] = "wpk.add"(%arg0, %[[A]])
// CHECK:         "wpk.sub"(%[[S]], %[[F]])
func.func @arithmetic(%x: tensor<3xf32>) -> tensor<3xf32> {
  %a = "wpk.weight"() {value = dense_resource<a3> : tensor<3xf32>} : () -> tensor<3xf32>
  %b = "wpk.weight"() {value = dense_resource<b3> : tensor<3xf32>} : () -> tensor<3xf32>
  %r = "wpk.relu"(%a) : (tensor<3xf32>) -> tensor<3xf32>
  %m = "wpk.mul"(%r, %b) : (tensor<3xf32>, tensor<3xf32>) -> tensor<3xf32>
  %s = "wpk.add"(%x, %a) : (tensor<3xf32>, tensor<3xf32>) -> tensor<3xf32>
  %y = "wpk.sub"(%s, %m) : (tensor<3xf32>, tensor<3xf32>) -> tensor<3xf32>
  return %y : tensor<3xf32>
}

// A one-element result becomes an inline wpk.constant: mean([1, 2, 6]) = 3.
// CHECK-LABEL: func.func @scalar_result(
// CHECK-NEXT:    %[[C:.*]] = "wpk.constant"() {value = dense<3.000000e+00> : tensor<f32>} : () -> tensor<f32>
// CHECK-NEXT:    "wpk.mul"(%arg0, %[[C]])
func.func @scalar_result(%x: tensor<4xf32>) -> tensor<4xf32> {
  %w = "wpk.weight"() {value = dense_resource<c3> : tensor<3xf32>} : () -> tensor<3xf32>
  %m = "wpk.reduce_mean"(%w) {axes = array<i64: 0>, keepdims = false} : (tensor<3xf32>) -> tensor<f32>
  %y = "wpk.mul"(%x, %m) : (tensor<4xf32>, tensor<f32>) -> tensor<4xf32>
  return %y : tensor<4xf32>
}

// Nothing to fold: every op has a non-constant operand.
// CHECK-LABEL: func.func @nothing(
// CHECK-NEXT:    "wpk.weight"
// CHECK-NEXT:    "wpk.relu"(%arg0)
// CHECK-NEXT:    "wpk.add"
func.func @nothing(%x: tensor<3xf32>) -> tensor<3xf32> {
  %a = "wpk.weight"() {value = dense_resource<a3> : tensor<3xf32>} : () -> tensor<3xf32>
  %r = "wpk.relu"(%x) : (tensor<3xf32>) -> tensor<3xf32>
  %y = "wpk.add"(%r, %a) : (tensor<3xf32>, tensor<3xf32>) -> tensor<3xf32>
  return %y : tensor<3xf32>
}

// A gemm with trans_b and a constant B gets B transposed once (trans_b becomes false): the
// code reads B as it multiplies it, and a library call takes it as it is.
// CHECK-LABEL: func.func @gemm_trans_b(
// CHECK-NEXT:    %[[B:.*]] = "wpk.weight"() {value = dense_resource<[[BT:.*_b_transposed.*]]> : tensor<3x2xf32>}
// CHECK-NEXT:    "wpk.gemm"(%arg0, %[[B]]) {{.*}}trans_b = false
func.func @gemm_trans_b(%x: tensor<1x3xf32>) -> tensor<1x2xf32> {
  %b = "wpk.weight"() {value = dense_resource<w23> : tensor<2x3xf32>} : () -> tensor<2x3xf32>
  %y = "wpk.gemm"(%x, %b) {alpha = 1.0 : f32, beta = 1.0 : f32, trans_a = false, trans_b = true} : (tensor<1x3xf32>, tensor<2x3xf32>) -> tensor<1x2xf32>
  return %y : tensor<1x2xf32>
}

}

// The folded arrays are in the resource section (64-byte aligned blobs); the folded-away
// inputs are not.
// CHECK:       dialect_resources: {
// CHECK-NOT:     w23:
// CHECK-NOT:     b3:
// CHECK-DAG:     [[T]]: "0x400000000000803F00008040000000400000A040000040400000C040"
// CHECK-DAG:     [[M]]: "0x4000000000000000000000C000000000"
// CHECK-DAG:     a3: "0x04000000000000BF000000400000C0BF"
// CHECK-DAG:     [[BT]]: "0x400000000000803F00008040000000400000A040000040400000C040"

{-#
  dialect_resources: {
    builtin: {
      w23: "0x040000000000803F0000004000004040000080400000A0400000C040",
      a3: "0x04000000000000BF000000400000C0BF",
      b3: "0x040000000000003F000080BF0000803E",
      c3: "0x040000000000803F000000400000C040"
    }
  }
#-}
