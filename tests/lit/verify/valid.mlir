// wpk-verify accepts valid IR and leaves it unchanged (pool results in ceil mode, 1-D matmul,
// grouped and dilated convolution, cropping pads).
// RUN: wpk-opt %s --wpk-verify | FileCheck %s
// RUN: wpk-opt %s --pass-pipeline='builtin.module(wpk-verify)' | FileCheck %s

// CHECK-LABEL: func.func @valid
// CHECK-COUNT-7: "wpk.
// CHECK: return
func.func @valid(%x: tensor<1x4x7x7xf32>, %w: tensor<8x2x3x3xf32>, %v: tensor<7xf32>, %m: tensor<2x7x3xf32>) -> (tensor<1x8x2x2xf32>, tensor<1x4x4x4xf32>, tensor<1x4x3x3xf32>, tensor<2x3xf32>, tensor<1x4x5x7xf32>, tensor<1x4x7x7xf32>, tensor<1x4x7x7xf32>) {
  %0 = "wpk.conv2d"(%x, %w) {strides = array<i64: 2, 2>, pads = array<i64: 1, 1, 0, 0>, dilations = array<i64: 2, 2>, groups = 2 : i64} : (tensor<1x4x7x7xf32>, tensor<8x2x3x3xf32>) -> tensor<1x8x2x2xf32>
  %1 = "wpk.max_pool"(%x) {kernel_shape = array<i64: 2, 2>, strides = array<i64: 2, 2>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>, ceil_mode = true} : (tensor<1x4x7x7xf32>) -> tensor<1x4x4x4xf32>
  %2 = "wpk.avg_pool"(%x) {kernel_shape = array<i64: 2, 2>, strides = array<i64: 2, 2>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>, ceil_mode = false, count_include_pad = true} : (tensor<1x4x7x7xf32>) -> tensor<1x4x3x3xf32>
  %3 = "wpk.matmul"(%v, %m) : (tensor<7xf32>, tensor<2x7x3xf32>) -> tensor<2x3xf32>
  %4 = "wpk.pad"(%x) {pads = array<i64: 0, 0, -1, 0, 0, 0, -1, 0>, mode = "edge", value = 0.0 : f32} : (tensor<1x4x7x7xf32>) -> tensor<1x4x5x7xf32>
  %5 = "wpk.add"(%x, %v) : (tensor<1x4x7x7xf32>, tensor<7xf32>) -> tensor<1x4x7x7xf32>
  %6 = "wpk.softmax"(%x) {axis = 3 : i64} : (tensor<1x4x7x7xf32>) -> tensor<1x4x7x7xf32>
  return %0, %1, %2, %3, %4, %5, %6 : tensor<1x8x2x2xf32>, tensor<1x4x4x4xf32>, tensor<1x4x3x3xf32>, tensor<2x3xf32>, tensor<1x4x5x7xf32>, tensor<1x4x7x7xf32>, tensor<1x4x7x7xf32>
}
