// The fused kernels lower to the anchor's named linalg op followed by ONE linalg.generic that
// consumes its result and computes the whole epilogue (bias, alpha/beta/C, every step), and
// wpk.elementwise to one linalg.generic.
// RUN: wpk-opt %s --wpk-verify --wpk-lower-to-linalg | FileCheck %s

// CHECK-DAG:   #[[ID4:.*]] = affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>
// CHECK-DAG:   #[[CH:.*]] = affine_map<(d0, d1, d2, d3) -> (d1)>
// CHECK-DAG:   #[[CH11:.*]] = affine_map<(d0, d1, d2, d3) -> (d1, 0, 0)>
// CHECK-DAG:   #[[ID2:.*]] = affine_map<(d0, d1) -> (d0, d1)>
// CHECK-DAG:   #[[COL:.*]] = affine_map<(d0, d1) -> (d1)>

// CHECK-LABEL: func.func @conv(
// CHECK:         %[[CONV:.*]] = linalg.conv_2d_nchw_fchw
// CHECK-NOT:     linalg.generic
// CHECK:         %[[OUT:.*]] = linalg.generic {indexing_maps = [#[[ID4]], #[[CH]], #[[ID4]], #[[CH11]], #[[ID4]]], iterator_types = ["parallel", "parallel", "parallel", "parallel"]} ins(%[[CONV]], %arg2, %arg3, %arg4 : tensor<1x4x8x8xf32>, tensor<4xf32>, tensor<1x4x8x8xf32>, tensor<4x1x1xf32>)
// CHECK-NEXT:    ^bb0(%[[V:.*]]: f32, %[[B:.*]]: f32, %[[R:.*]]: f32, %[[S:.*]]: f32, %{{.*}}: f32):
// CHECK-NEXT:      %[[V1:.*]] = arith.addf %[[V]], %[[B]] : f32
// CHECK-NEXT:      %[[V2:.*]] = arith.addf %[[V1]], %[[R]] : f32
// CHECK:           %[[V3:.*]] = arith.maximumf %[[V2]], %{{.*}} : f32
// CHECK:           %[[V4:.*]] = arith.minimumf %[[V3]], %{{.*}} : f32
// CHECK-NEXT:      %[[V5:.*]] = arith.mulf %[[V4]], %[[S]] : f32
// CHECK-NEXT:      linalg.yield %[[V5]] : f32
// CHECK-NOT:     linalg.generic
// CHECK:         return %[[OUT]]
func.func @conv(%x: tensor<1x3x8x8xf32>, %w: tensor<4x3x3x3xf32>, %b: tensor<4xf32>, %r: tensor<1x4x8x8xf32>, %s: tensor<4x1x1xf32>) -> tensor<1x4x8x8xf32> {
  %0 = "wpk.fused_conv2d"(%x, %w, %b, %r, %s) {strides = array<i64: 1, 1>, pads = array<i64: 1, 1, 1, 1>, dilations = array<i64: 1, 1>, groups = 1 : i64, epilogue = ["add", "clip", "mul"], epilogue_params = array<f32: 0.0, 6.0>, operandSegmentSizes = array<i32: 1, 1, 1, 1, 1, 0>} : (tensor<1x3x8x8xf32>, tensor<4x3x3x3xf32>, tensor<4xf32>, tensor<1x4x8x8xf32>, tensor<4x1x1xf32>) -> tensor<1x4x8x8xf32>
  return %0 : tensor<1x4x8x8xf32>
}

// Depthwise, no bias, silu.
// CHECK-LABEL: func.func @depthwise_silu(
// CHECK:         %[[DW:.*]] = linalg.depthwise_conv_2d_nchw_chw
// CHECK:         linalg.generic {indexing_maps = [#[[ID4]], #[[ID4]]], {{.*}} ins(%[[DW]] : tensor<1x4x6x6xf32>)
// CHECK:           math.exp
// CHECK:           arith.mulf
// CHECK-NOT:     linalg.generic
func.func @depthwise_silu(%x: tensor<1x4x8x8xf32>, %w: tensor<4x1x3x3xf32>) -> tensor<1x4x6x6xf32> {
  %0 = "wpk.fused_conv2d"(%x, %w) {strides = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>, groups = 4 : i64, epilogue = ["silu"], epilogue_params = array<f32>, operandSegmentSizes = array<i32: 1, 1, 0, 0, 0, 0>} : (tensor<1x4x8x8xf32>, tensor<4x1x3x3xf32>) -> tensor<1x4x6x6xf32>
  return %0 : tensor<1x4x6x6xf32>
}

// gemm: alpha * A B^T + beta * C, then leaky_relu, in the generic after the matmul.
// CHECK-LABEL: func.func @gemm(
// CHECK:         linalg.transpose
// CHECK:         %[[MM:.*]] = linalg.matmul
// CHECK:         linalg.generic {indexing_maps = [#[[ID2]], #[[COL]], #[[ID2]]], {{.*}} ins(%[[MM]], %arg2 : tensor<2x3xf32>, tensor<3xf32>)
// CHECK:           arith.mulf
// CHECK:           arith.mulf
// CHECK:           arith.addf
// CHECK:           arith.cmpf oge
// CHECK:           arith.select
// CHECK-NOT:     linalg.generic
func.func @gemm(%a: tensor<2x4xf32>, %b: tensor<3x4xf32>, %c: tensor<3xf32>) -> tensor<2x3xf32> {
  %0 = "wpk.fused_gemm"(%a, %b, %c) {alpha = 0.5 : f32, beta = 2.0 : f32, trans_a = false, trans_b = true, epilogue = ["leaky_relu"], epilogue_params = array<f32: 0.1>, operandSegmentSizes = array<i32: 1, 1, 1, 0, 0, 0>} : (tensor<2x4xf32>, tensor<3x4xf32>, tensor<3xf32>) -> tensor<2x3xf32>
  return %0 : tensor<2x3xf32>
}

// matmul with a bias and a relu.
// CHECK-LABEL: func.func @matmul(
// CHECK:         %[[MM:.*]] = linalg.matmul
// CHECK:         linalg.generic {indexing_maps = [#[[ID2]], #[[COL]], #[[ID2]]], {{.*}} ins(%[[MM]], %arg2 : tensor<2x3xf32>, tensor<3xf32>)
// CHECK:           arith.addf
// CHECK:           arith.maximumf
// CHECK-NOT:     linalg.generic
func.func @matmul(%a: tensor<2x4xf32>, %b: tensor<4x3xf32>, %bias: tensor<3xf32>) -> tensor<2x3xf32> {
  %0 = "wpk.fused_matmul"(%a, %b, %bias) {epilogue = ["add", "relu"], epilogue_params = array<f32>, operandSegmentSizes = array<i32: 1, 1, 1, 0, 0>} : (tensor<2x4xf32>, tensor<4x3xf32>, tensor<3xf32>) -> tensor<2x3xf32>
  return %0 : tensor<2x3xf32>
}

// An elementwise chain: one generic, the running value broadcast like the side operands;
// `rsub` and `rdiv` put the side operand first.
// CHECK-LABEL: func.func @elementwise(
// CHECK:         linalg.generic {indexing_maps = [#[[COL]], #[[ID2]], #[[ID2]]], {{.*}} ins(%arg0, %arg1 : tensor<3xf32>, tensor<2x3xf32>)
// CHECK-NEXT:    ^bb0(%[[V:.*]]: f32, %[[S:.*]]: f32, %{{.*}}: f32):
// CHECK-NEXT:      %[[D:.*]] = arith.subf %[[S]], %[[V]] : f32
// CHECK:           math.tanh %[[D]] : f32
// CHECK-NOT:     linalg.generic
func.func @elementwise(%x: tensor<3xf32>, %y: tensor<2x3xf32>) -> tensor<2x3xf32> {
  %0 = "wpk.elementwise"(%x, %y) {steps = ["rsub", "tanh"], params = array<f32>, operandSegmentSizes = array<i32: 1, 1, 0, 0>} : (tensor<3xf32>, tensor<2x3xf32>) -> tensor<2x3xf32>
  return %0 : tensor<2x3xf32>
}
