// wpk.matmul and wpk.gemm lower to linalg.matmul (batched: collapsed or linalg.batch_matmul).
// RUN: wpk-opt %s --wpk-lower-to-linalg | FileCheck %s
// RUN: wpk-opt %s --wpk-lower | FileCheck %s --check-prefix=NOWPK

// NOWPK-NOT: "wpk.

// CHECK-LABEL: func.func @matmul(
// CHECK:         %[[ZERO:.*]] = arith.constant 0.000000e+00 : f32
// CHECK:         %[[INIT:.*]] = linalg.fill ins(%[[ZERO]] : f32) outs(%{{.*}} : tensor<2x4xf32>)
// CHECK:         %[[MM:.*]] = linalg.matmul ins(%arg0, %arg1 : tensor<2x3xf32>, tensor<3x4xf32>) outs(%[[INIT]] : tensor<2x4xf32>) -> tensor<2x4xf32>
// CHECK:         return %[[MM]]
func.func @matmul(%a: tensor<2x3xf32>, %b: tensor<3x4xf32>) -> tensor<2x4xf32> {
  %0 = "wpk.matmul"(%a, %b) : (tensor<2x3xf32>, tensor<3x4xf32>) -> tensor<2x4xf32>
  return %0 : tensor<2x4xf32>
}

// CHECK-LABEL: func.func @batched(
// CHECK:         linalg.{{(batch_)?}}matmul
// CHECK:         return {{.*}} : tensor<5x2x4xf32>
func.func @batched(%a: tensor<5x2x3xf32>, %b: tensor<3x4xf32>) -> tensor<5x2x4xf32> {
  %0 = "wpk.matmul"(%a, %b) : (tensor<5x2x3xf32>, tensor<3x4xf32>) -> tensor<5x2x4xf32>
  return %0 : tensor<5x2x4xf32>
}

// CHECK-LABEL: func.func @gemm(
// CHECK:         %[[BT:.*]] = linalg.transpose ins(%arg1 : tensor<4x3xf32>) outs(%{{.*}} : tensor<3x4xf32>) permutation = [1, 0]
// CHECK:         %[[MM:.*]] = linalg.matmul ins(%arg0, %[[BT]] : tensor<2x3xf32>, tensor<3x4xf32>)
// CHECK:         linalg.generic {{.*}} ins(%[[MM]], %arg2 : tensor<2x4xf32>, tensor<4xf32>)
// CHECK-DAG:       arith.constant 2.000000e+00 : f32
// CHECK-DAG:       arith.constant 5.000000e-01 : f32
// CHECK:           arith.addf
func.func @gemm(%a: tensor<2x3xf32>, %b: tensor<4x3xf32>, %c: tensor<4xf32>) -> tensor<2x4xf32> {
  %0 = "wpk.gemm"(%a, %b, %c) {alpha = 2.0 : f32, beta = 0.5 : f32, trans_a = false, trans_b = true} : (tensor<2x3xf32>, tensor<4x3xf32>, tensor<4xf32>) -> tensor<2x4xf32>
  return %0 : tensor<2x4xf32>
}
