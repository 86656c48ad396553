// The data-movement ops lower to tensor/linalg: a positive-step slice is a strided
// tensor.extract_slice, a negative step a linalg.generic gather (index = start + i * step);
// expand is a broadcast copy; gather_elements and resize read their source with tensor.extract
// at indices from inline i64 tables (resize linear: two taps and a weight per resized
// dimension, four corners blended for 2-D bilinear); a nearest resize by integer factors is a
// plain copy whose input map reads (d floordiv 2).
// RUN: wpk-opt %s --wpk-verify --wpk-lower-to-linalg | FileCheck %s
// RUN: wpk-opt %s --wpk-lower | FileCheck %s --check-prefix=NOWPK

// NOWPK-NOT: "wpk.

module {
// CHECK: #[[UP:map[0-9]*]] = affine_map<(d0, d1, d2, d3) -> (d0, d1, d2 floordiv 2, d3 floordiv 2)>
// CHECK-LABEL: func.func @slice_neg(
// CHECK:         linalg.generic
// CHECK:           %[[I:.*]] = linalg.index 0 : index
// CHECK-NEXT:      %[[STEP:.*]] = arith.constant -2 : index
// CHECK-NEXT:      %[[IS:.*]] = arith.muli %[[I]], %[[STEP]] : index
// CHECK-NEXT:      %[[START:.*]] = arith.constant 3 : index
// CHECK-NEXT:      %[[ROW:.*]] = arith.addi %[[IS]], %[[START]] : index
// CHECK:           tensor.extract %arg0[%[[ROW]], %{{.*}}] : tensor<4x6xf32>
  func.func @slice_neg(%arg0: tensor<4x6xf32>) -> tensor<2x3xf32> {
    %0 = "wpk.slice"(%arg0) {starts = array<i64: 3, 0>, steps = array<i64: -2, 2>} : (tensor<4x6xf32>) -> tensor<2x3xf32>
    return %0 : tensor<2x3xf32>
  }
// CHECK-LABEL: func.func @slice_pos(
// CHECK-NEXT:    tensor.extract_slice %arg0[1, 0] [2, 3] [2, 2] : tensor<4x6xf32> to tensor<2x3xf32>
  func.func @slice_pos(%arg0: tensor<4x6xf32>) -> tensor<2x3xf32> {
    %0 = "wpk.slice"(%arg0) {starts = array<i64: 1, 0>, steps = array<i64: 2, 2>} : (tensor<4x6xf32>) -> tensor<2x3xf32>
    return %0 : tensor<2x3xf32>
  }
// CHECK-LABEL: func.func @expand(
// CHECK:         linalg.generic {indexing_maps = [#[[IN:.*]], #{{.*}}]{{.*}} ins(%arg0 : tensor<3x1xf32>) outs(%{{.*}} : tensor<2x3x4xf32>)
  func.func @expand(%arg0: tensor<3x1xf32>) -> tensor<2x3x4xf32> {
    %0 = "wpk.expand"(%arg0) : (tensor<3x1xf32>) -> tensor<2x3x4xf32>
    return %0 : tensor<2x3x4xf32>
  }
// CHECK-LABEL: func.func @gather_elements(
// CHECK:         %[[IDX:.*]] = arith.constant dense<{{\[\[}}2, 0], [1, 1]]> : tensor<2x2xi64>
// CHECK:         linalg.generic {{.*}} ins(%[[IDX]] : tensor<2x2xi64>)
// CHECK:           %[[ROW:.*]] = linalg.index 0 : index
// CHECK-NEXT:      %[[COL:.*]] = arith.index_cast %{{.*}} : i64 to index
// CHECK-NEXT:      tensor.extract %arg0[%[[ROW]], %[[COL]]] : tensor<2x3xf32>
  func.func @gather_elements(%arg0: tensor<2x3xf32>) -> tensor<2x2xf32> {
    %0 = "wpk.gather_elements"(%arg0) {axis = 1 : i64, indices = array<i64: 2, 0, 1, 1>} : (tensor<2x3xf32>) -> tensor<2x2xf32>
    return %0 : tensor<2x2xf32>
  }
// CHECK-LABEL: func.func @nearest(
// CHECK:         linalg.generic {indexing_maps = [#[[UP]], #{{.*}}]{{.*}} ins(%arg0 : tensor<1x1x2x2xf32>)
// CHECK-NOT:       tensor.extract
// CHECK:         linalg.yield
  func.func @nearest(%arg0: tensor<1x1x2x2xf32>) -> tensor<1x1x4x4xf32> {
    %0 = "wpk.resize"(%arg0) {coordinate_transformation_mode = "asymmetric", mode = "nearest", nearest_mode = "floor", scales = array<f32: 1.0, 1.0, 2.0, 2.0>} : (tensor<1x1x2x2xf32>) -> tensor<1x1x4x4xf32>
    return %0 : tensor<1x1x4x4xf32>
  }
// CHECK-LABEL: func.func @nearest_table(
// CHECK:         arith.constant dense<[0, 1, 1]> : tensor<3xi64>
// CHECK:         arith.constant dense<[0, 1, 1]> : tensor<3xi64>
// CHECK:         linalg.generic
// CHECK-COUNT-1:   tensor.extract %arg0
// CHECK-NOT:       tensor.extract
// CHECK:         linalg.yield
  func.func @nearest_table(%arg0: tensor<1x1x2x2xf32>) -> tensor<1x1x3x3xf32> {
    %0 = "wpk.resize"(%arg0) {coordinate_transformation_mode = "half_pixel", mode = "nearest", nearest_mode = "round_prefer_ceil", scales = array<f32: 1.0, 1.0, 1.5, 1.5>} : (tensor<1x1x2x2xf32>) -> tensor<1x1x3x3xf32>
    return %0 : tensor<1x1x3x3xf32>
  }
// CHECK-LABEL: func.func @bilinear(
// CHECK:         arith.constant dense<[0, 0, 0, 1]> : tensor<4xi64>
// CHECK-NEXT:    arith.constant dense<[0, 1, 1, 1]> : tensor<4xi64>
// CHECK-NEXT:    arith.constant dense<[7.500000e-01, 2.500000e-01, 7.500000e-01, 2.500000e-01]> : tensor<4xf32>
// CHECK:         linalg.generic
// CHECK-COUNT-4:   tensor.extract %arg0
// CHECK:         linalg.yield
  func.func @bilinear(%arg0: tensor<1x1x2x2xf32>) -> tensor<1x1x4x4xf32> {
    %0 = "wpk.resize"(%arg0) {coordinate_transformation_mode = "half_pixel", mode = "linear", nearest_mode = "round_prefer_floor", scales = array<f32: 1.0, 1.0, 2.0, 2.0>} : (tensor<1x1x2x2xf32>) -> tensor<1x1x4x4xf32>
    return %0 : tensor<1x1x4x4xf32>
  }
}
