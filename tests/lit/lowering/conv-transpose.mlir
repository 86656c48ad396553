// wpk.conv_transpose2d: the input spread by the strides into a zero tensor (padded by
// d * (k - 1) - pad before, d * (k - 1) - pad + output_padding after), the filter flipped by a
// product with the reversal permutation, one grouped linalg.generic correlating them on top of
// the bias, and the crop of the pads.
// RUN: wpk-opt %s --wpk-verify --wpk-lower-to-linalg | FileCheck %s
// RUN: wpk-opt %s --wpk-lower | FileCheck %s --check-prefix=NOWPK

// NOWPK-NOT: "wpk.

// CHECK-LABEL: func.func @strided(
// The top pad 3 exceeds d * (k - 1) = 2: that row is cropped from the result instead.
// CHECK:         %[[Z:.*]] = linalg.fill ins(%{{.*}} : f32) outs(%{{.*}} : tensor<1x2x7x6xf32>)
// CHECK:         %[[S:.*]] = tensor.insert_slice %arg0 into %[[Z]][0, 0, 0, 1] [1, 2, 3, 3] [1, 1, 2, 2]
// CHECK:         %[[XG:.*]] = tensor.expand_shape %[[S]] {{\[\[}}0], [1, 2], [3], [4]] output_shape [1, 1, 2, 7, 6]
// CHECK:         arith.constant dense<{{.*}}> : tensor<9x9xf32>
// CHECK:         %[[B:.*]] = linalg.generic {{.*}} ins(%{{.*}} : tensor<1x3xf32>) outs(%{{.*}} : tensor<1x1x3x5x4xf32>)
// CHECK:         %[[Y:.*]] = linalg.generic {{.*}}iterator_types = ["parallel", "parallel", "parallel", "parallel", "parallel", "reduction", "reduction", "reduction"]} ins(%[[XG]], %{{.*}} : tensor<1x1x2x7x6xf32>, tensor<1x2x3x3x3xf32>) outs(%[[B]] : tensor<1x1x3x5x4xf32>)
// CHECK:         %[[C:.*]] = tensor.collapse_shape %[[Y]]
// CHECK:         tensor.extract_slice %[[C]][0, 0, 1, 0] [1, 3, 4, 4] [1, 1, 1, 1]
func.func @strided(%x: tensor<1x2x3x3xf32>, %w: tensor<2x3x3x3xf32>, %b: tensor<3xf32>) -> tensor<1x3x4x4xf32> {
  %y = "wpk.conv_transpose2d"(%x, %w, %b) {strides = array<i64: 2, 2>, pads = array<i64: 3, 1, 1, 2>, output_padding = array<i64: 1, 0>, dilations = array<i64: 1, 1>, groups = 1 : i64} : (tensor<1x2x3x3xf32>, tensor<2x3x3x3xf32>, tensor<3xf32>) -> tensor<1x3x4x4xf32>
  return %y : tensor<1x3x4x4xf32>
}
