// Elementwise wpk ops lower to linalg.generic with numpy-broadcasting indexing maps.
// RUN: wpk-opt %s --wpk-lower-to-linalg | FileCheck %s
// RUN: wpk-opt %s --wpk-lower | FileCheck %s --check-prefix=NOWPK

// NOWPK-NOT: "wpk.

// CHECK-DAG:   #[[ID:.*]] = affine_map<(d0, d1) -> (d0, d1)>
// CHECK-DAG:   #[[ROW:.*]] = affine_map<(d0, d1) -> (d1)>
// CHECK-DAG:   #[[COL:.*]] = affine_map<(d0, d1) -> (d0, 0)>
// CHECK-DAG:   #[[ROW0:.*]] = affine_map<(d0, d1) -> (0, d1)>

// CHECK-LABEL: func.func @chain(
// CHECK:         %[[ADD:.*]] = linalg.generic {indexing_maps = [#[[ID]], #[[ROW]], #[[ID]]], iterator_types = ["parallel", "parallel"]} ins(%arg0, %arg1 : tensor<2x3xf32>, tensor<3xf32>)
// CHECK:           arith.addf
// CHECK:         %[[RELU:.*]] = linalg.generic {indexing_maps = [#[[ID]], #[[ID]]], {{.*}}} ins(%[[ADD]] : tensor<2x3xf32>)
// CHECK:           arith.maximumf
// CHECK:         %[[SIG:.*]] = linalg.generic {{.*}} ins(%[[RELU]] : tensor<2x3xf32>)
// CHECK:           math.exp
// CHECK:         %[[CLIP:.*]] = linalg.generic {{.*}} ins(%[[SIG]] : tensor<2x3xf32>)
// CHECK:           arith.maximumf
// CHECK:           arith.minimumf
// CHECK:         %[[SUB:.*]] = linalg.generic {{.*}} ins(%[[CLIP]], %arg1 : tensor<2x3xf32>, tensor<3xf32>)
// CHECK:           arith.subf
// CHECK:         %[[MUL:.*]] = linalg.generic {{.*}} ins(%[[SUB]], %[[SUB]] : tensor<2x3xf32>, tensor<2x3xf32>)
// CHECK:           arith.mulf
// CHECK:         %[[DIV:.*]] = linalg.generic {{.*}} ins(%[[MUL]], %arg1 : tensor<2x3xf32>, tensor<3xf32>)
// CHECK:           arith.divf
// CHECK:         %[[TANH:.*]] = linalg.generic {{.*}} ins(%[[DIV]] : tensor<2x3xf32>)
// CHECK:           math.tanh
// CHECK:         return %[[TANH]] : tensor<2x3xf32>
func.func @chain(%a: tensor<2x3xf32>, %b: tensor<3xf32>) -> tensor<2x3xf32> {
  %0 = "wpk.add"(%a, %b) : (tensor<2x3xf32>, tensor<3xf32>) -> tensor<2x3xf32>
  %1 = "wpk.relu"(%0) : (tensor<2x3xf32>) -> tensor<2x3xf32>
  %2 = "wpk.sigmoid"(%1) : (tensor<2x3xf32>) -> tensor<2x3xf32>
  %3 = "wpk.clip"(%2) {min = 0.0 : f32, max = 6.0 : f32} : (tensor<2x3xf32>) -> tensor<2x3xf32>
  %4 = "wpk.sub"(%3, %b) : (tensor<2x3xf32>, tensor<3xf32>) -> tensor<2x3xf32>
  %5 = "wpk.mul"(%4, %4) : (tensor<2x3xf32>, tensor<2x3xf32>) -> tensor<2x3xf32>
  %6 = "wpk.div"(%5, %b) : (tensor<2x3xf32>, tensor<3xf32>) -> tensor<2x3xf32>
  %7 = "wpk.tanh"(%6) : (tensor<2x3xf32>) -> tensor<2x3xf32>
  return %7 : tensor<2x3xf32>
}

// Broadcasting both ways: (2x1) + (1x3) -> (2x3).
// CHECK-LABEL: func.func @outer(
// CHECK:         linalg.generic {indexing_maps = [#[[COL]], #[[ROW0]], #[[ID]]]
func.func @outer(%a: tensor<2x1xf32>, %b: tensor<1x3xf32>) -> tensor<2x3xf32> {
  %0 = "wpk.add"(%a, %b) : (tensor<2x1xf32>, tensor<1x3xf32>) -> tensor<2x3xf32>
  return %0 : tensor<2x3xf32>
}

// CHECK-LABEL: func.func @leaky_relu(
// CHECK:         linalg.generic
// CHECK:           arith.constant 1.000000e-01 : f32
// CHECK:           arith.select
func.func @leaky_relu(%a: tensor<4xf32>) -> tensor<4xf32> {
  %0 = "wpk.leaky_relu"(%a) {alpha = 0.1 : f32} : (tensor<4xf32>) -> tensor<4xf32>
  return %0 : tensor<4xf32>
}
