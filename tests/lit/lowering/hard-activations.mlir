// hard_sigmoid and hard_swish are steps: wpk-fuse folds them into an anchor's epilogue and into
// elementwise chains (with relu here), and every form lowers to the same scalar ops:
// hard_sigmoid(v) = clip(alpha * v + beta, 0, 1), hard_swish(v) = v * clip(v * (1/6) + 1/2, 0, 1).
// RUN: wpk-opt %s --wpk-verify --wpk-fuse --wpk-verify | FileCheck %s --check-prefix=FUSE
// RUN: wpk-opt %s --wpk-fuse --wpk-lower-to-linalg | FileCheck %s --check-prefix=LOWER
// RUN: wpk-opt %s --wpk-lower-to-linalg | FileCheck %s --check-prefix=UNFUSED
// RUN: wpk-opt %s --wpk-fuse --wpk-lower | FileCheck %s --check-prefix=NOWPK

// NOWPK-NOT: "wpk.

module {

// FUSE-LABEL: func.func @conv_epilogue(
// FUSE-NEXT:    %[[F:.*]] = "wpk.fused_conv2d"(%arg0, %arg1, %arg2) {{{.*}}epilogue = ["hard_sigmoid", "hard_swish"], epilogue_params = array<f32: 2.000000e-01, 5.000000e-01>, {{.*}}operandSegmentSizes = array<i32: 1, 1, 1, 0, 0, 0>
// FUSE-NEXT:    return %[[F]]
// LOWER-LABEL: func.func @conv_epilogue(
// LOWER:         %[[CONV:.*]] = linalg.conv_2d_nchw_fchw
// LOWER:         linalg.generic {{.*}} ins(%[[CONV]], %arg2 : tensor<1x3x4x4xf32>, tensor<3xf32>)
// LOWER-NEXT:    ^bb0(%[[V:[a-z0-9_]+]]: f32, %[[B:[a-z0-9_]+]]: f32, %{{[a-z0-9_]+}}: f32):
// LOWER-NEXT:      %[[X:.*]] = arith.addf %[[V]], %[[B]]
// LOWER-NEXT:      %[[ALPHA:.*]] = arith.constant 2.000000e-01 : f32
// LOWER-NEXT:      %[[AX:.*]] = arith.mulf %[[X]], %[[ALPHA]]
// LOWER-NEXT:      %[[BETA:.*]] = arith.constant 5.000000e-01 : f32
// LOWER-NEXT:      %[[L:.*]] = arith.addf %[[AX]], %[[BETA]]
// LOWER-NEXT:      %[[ZERO:.*]] = arith.constant 0.000000e+00 : f32
// LOWER-NEXT:      %[[LO:.*]] = arith.maximumf %[[L]], %[[ZERO]]
// LOWER-NEXT:      %[[ONE:.*]] = arith.constant 1.000000e+00 : f32
// LOWER-NEXT:      %[[S:.*]] = arith.minimumf %[[LO]], %[[ONE]]
// LOWER-NEXT:      %[[SIXTH:.*]] = arith.constant 0.166666672 : f32
// LOWER-NEXT:      %[[S6:.*]] = arith.mulf %[[S]], %[[SIXTH]]
// LOWER-NEXT:      %[[HALF:.*]] = arith.constant 5.000000e-01 : f32
// LOWER-NEXT:      %[[G0:.*]] = arith.addf %[[S6]], %[[HALF]]
// LOWER:           %[[G1:.*]] = arith.maximumf %[[G0]], %{{.*}}
// LOWER:           %[[G:.*]] = arith.minimumf %[[G1]], %{{.*}}
// LOWER-NEXT:      %[[Y:.*]] = arith.mulf %[[S]], %[[G]]
// LOWER-NEXT:      linalg.yield %[[Y]]
func.func @conv_epilogue(%x: tensor<1x2x4x4xf32>, %w: tensor<3x2x3x3xf32>, %b: tensor<3xf32>) -> tensor<1x3x4x4xf32> {
  %c = "wpk.conv2d"(%x, %w, %b) {strides = array<i64: 1, 1>, pads = array<i64: 1, 1, 1, 1>, dilations = array<i64: 1, 1>, groups = 1 : i64} : (tensor<1x2x4x4xf32>, tensor<3x2x3x3xf32>, tensor<3xf32>) -> tensor<1x3x4x4xf32>
  %s = "wpk.hard_sigmoid"(%c) {alpha = 0.2 : f32, beta = 0.5 : f32} : (tensor<1x3x4x4xf32>) -> tensor<1x3x4x4xf32>
  %y = "wpk.hard_swish"(%s) : (tensor<1x3x4x4xf32>) -> tensor<1x3x4x4xf32>
  return %y : tensor<1x3x4x4xf32>
}

// A matmul's epilogue takes them too.
// FUSE-LABEL: func.func @matmul_epilogue(
// FUSE-NEXT:    "wpk.fused_matmul"(%arg0, %arg1) {epilogue = ["hard_swish"], epilogue_params = array<f32>, operandSegmentSizes = array<i32: 1, 1, 0, 0, 0>}
func.func @matmul_epilogue(%a: tensor<2x3xf32>, %b: tensor<3x4xf32>) -> tensor<2x4xf32> {
  %m = "wpk.matmul"(%a, %b) : (tensor<2x3xf32>, tensor<3x4xf32>) -> tensor<2x4xf32>
  %y = "wpk.hard_swish"(%m) : (tensor<2x4xf32>) -> tensor<2x4xf32>
  return %y : tensor<2x4xf32>
}

// An elementwise chain: relu, hard_swish, a broadcast add, hard_sigmoid: one wpk.elementwise.
// FUSE-LABEL: func.func @chain(
// FUSE-NEXT:    %[[E:.*]] = "wpk.elementwise"(%arg0, %arg1) {operandSegmentSizes = array<i32: 1, 1, 0, 0>, params = array<f32: 5.000000e-01, 2.500000e-01>, steps = ["relu", "hard_swish", "add", "hard_sigmoid"]} : (tensor<2x3xf32>, tensor<3xf32>) -> tensor<2x3xf32>
// FUSE-NEXT:    return %[[E]]
func.func @chain(%x: tensor<2x3xf32>, %t: tensor<3xf32>) -> tensor<2x3xf32> {
  %0 = "wpk.relu"(%x) : (tensor<2x3xf32>) -> tensor<2x3xf32>
  %1 = "wpk.hard_swish"(%0) : (tensor<2x3xf32>) -> tensor<2x3xf32>
  %2 = "wpk.add"(%1, %t) : (tensor<2x3xf32>, tensor<3xf32>) -> tensor<2x3xf32>
  %3 = "wpk.hard_sigmoid"(%2) {alpha = 0.5 : f32, beta = 0.25 : f32} : (tensor<2x3xf32>) -> tensor<2x3xf32>
  return %3 : tensor<2x3xf32>
}

}

// Unfused, each op is one linalg.generic with the same scalar ops.
// UNFUSED-LABEL: func.func @chain(
// UNFUSED:         linalg.generic
// UNFUSED:           arith.maximumf
// UNFUSED:         %[[HS:.*]] = linalg.generic
// UNFUSED:           arith.constant 0.166666672 : f32
// UNFUSED:           arith.minimumf
// UNFUSED:           arith.mulf
// UNFUSED:         %[[ADD:.*]] = linalg.generic {{.*}} ins(%[[HS]], %arg1 : tensor<2x3xf32>, tensor<3xf32>)
// UNFUSED:           arith.addf
// UNFUSED:         linalg.generic {{.*}} ins(%[[ADD]] : tensor<2x3xf32>)
// UNFUSED:           arith.constant 5.000000e-01 : f32
// UNFUSED:           arith.mulf
// UNFUSED:           arith.constant 2.500000e-01 : f32
// UNFUSED:           arith.addf
// UNFUSED:           arith.maximumf
// UNFUSED:           arith.minimumf
