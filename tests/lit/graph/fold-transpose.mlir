// wpk-fold-transpose: a transpose moving the last dim of a matmul's right operand to its rows
// (K^T) folds into wpk.matmul_transposed, which lowers to a named matmul reading it as [N, K].
// RUN: wpk-opt %s --wpk-verify --wpk-fold-transpose --wpk-verify | FileCheck %s
// RUN: wpk-opt %s --wpk-fold-transpose --wpk-lower | FileCheck %s --check-prefix=LOWER

// LOWER-NOT: "wpk.

module {

// perm [0, 1, 3, 2]: no transpose is left.
// CHECK-LABEL: func.func @swap_last_two(
// CHECK-NEXT:    %[[M:.*]] = "wpk.matmul_transposed"(%arg0, %arg1) : (tensor<2x3x5x4xf32>, tensor<2x3x6x4xf32>) -> tensor<2x3x5x6xf32>
// CHECK-NEXT:    return %[[M]]
// LOWER-LABEL: func.func @swap_last_two(
// LOWER-NOT:     linalg.transpose
// LOWER:         linalg.batch_matmul indexing_maps = [#{{.*}}, #{{.*}}, #{{.*}}] ins(%{{.*}}, %{{.*}} : tensor<6x5x4xf32>, tensor<6x6x4xf32>)
func.func @swap_last_two(%q: tensor<2x3x5x4xf32>, %k: tensor<2x3x6x4xf32>) -> tensor<2x3x5x6xf32> {
  %kt = "wpk.transpose"(%k) {perm = array<i64: 0, 1, 3, 2>} : (tensor<2x3x6x4xf32>) -> tensor<2x3x4x6xf32>
  %s = "wpk.matmul"(%q, %kt) : (tensor<2x3x5x4xf32>, tensor<2x3x4x6xf32>) -> tensor<2x3x5x6xf32>
  return %s : tensor<2x3x5x6xf32>
}

// Keys [B, S, H, D] with perm [0, 2, 3, 1]: the head split [0, 2, 1, 3] stays, the swap folds.
// CHECK-LABEL: func.func @heads(
// CHECK-NEXT:    %[[T:.*]] = "wpk.transpose"(%arg1) {perm = array<i64: 0, 2, 1, 3>} : (tensor<1x6x3x4xf32>) -> tensor<1x3x6x4xf32>
// CHECK-NEXT:    %[[M:.*]] = "wpk.matmul_transposed"(%arg0, %[[T]]) : (tensor<1x3x5x4xf32>, tensor<1x3x6x4xf32>) -> tensor<1x3x5x6xf32>
// CHECK-NEXT:    return %[[M]]
func.func @heads(%q: tensor<1x3x5x4xf32>, %k: tensor<1x6x3x4xf32>) -> tensor<1x3x5x6xf32> {
  %kt = "wpk.transpose"(%k) {perm = array<i64: 0, 2, 3, 1>} : (tensor<1x6x3x4xf32>) -> tensor<1x3x4x6xf32>
  %s = "wpk.matmul"(%q, %kt) : (tensor<1x3x5x4xf32>, tensor<1x3x4x6xf32>) -> tensor<1x3x5x6xf32>
  return %s : tensor<1x3x5x6xf32>
}

// A 2-D right operand shared by the batch: one matmul over the collapsed rows.
// CHECK-LABEL: func.func @shared_rhs(
// CHECK-NEXT:    "wpk.matmul_transposed"(%arg0, %arg1) : (tensor<2x5x4xf32>, tensor<6x4xf32>) -> tensor<2x5x6xf32>
// LOWER-LABEL: func.func @shared_rhs(
// LOWER:         linalg.matmul indexing_maps = [#{{.*}}, #{{.*}}, #{{.*}}] ins(%{{.*}}, %{{.*}} : tensor<10x4xf32>, tensor<6x4xf32>)
func.func @shared_rhs(%x: tensor<2x5x4xf32>, %w: tensor<6x4xf32>) -> tensor<2x5x6xf32> {
  %wt = "wpk.transpose"(%w) {perm = array<i64: 1, 0>} : (tensor<6x4xf32>) -> tensor<4x6xf32>
  %s = "wpk.matmul"(%x, %wt) : (tensor<2x5x4xf32>, tensor<4x6xf32>) -> tensor<2x5x6xf32>
  return %s : tensor<2x5x6xf32>
}

// Not folded: V's head split [0, 2, 1, 3] keeps the last dim last (folding would trade it for a
// worse transpose), and a transpose with another use stays anyway.
// CHECK-LABEL: func.func @kept(
// CHECK:         "wpk.matmul"
// CHECK:         "wpk.matmul"
// CHECK-NOT:     "wpk.matmul_transposed"
func.func @kept(%p: tensor<1x3x5x6xf32>, %v: tensor<1x6x3x4xf32>, %q: tensor<2x5x4xf32>, %k: tensor<2x6x4xf32>) -> (tensor<1x3x5x4xf32>, tensor<2x5x6xf32>, tensor<2x4x6xf32>) {
  %vh = "wpk.transpose"(%v) {perm = array<i64: 0, 2, 1, 3>} : (tensor<1x6x3x4xf32>) -> tensor<1x3x6x4xf32>
  %c = "wpk.matmul"(%p, %vh) : (tensor<1x3x5x6xf32>, tensor<1x3x6x4xf32>) -> tensor<1x3x5x4xf32>
  %kt = "wpk.transpose"(%k) {perm = array<i64: 0, 2, 1>} : (tensor<2x6x4xf32>) -> tensor<2x4x6xf32>
  %s = "wpk.matmul"(%q, %kt) : (tensor<2x5x4xf32>, tensor<2x4x6xf32>) -> tensor<2x5x6xf32>
  return %c, %s, %kt : tensor<1x3x5x4xf32>, tensor<2x5x6xf32>, tensor<2x4x6xf32>
}

}
