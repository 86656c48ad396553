// wpk-verify on the fused kernels: known steps, parameter counts, one side operand per binary
// step, side operands that broadcast to the result, the anchor's result shape. IRDL itself
// checks operandSegmentSizes.
// RUN: wpk-opt %s --split-input-file --verify-diagnostics --wpk-verify

func.func @valid(%x: tensor<1x3x8x8xf32>, %w: tensor<4x3x3x3xf32>, %r: tensor<1x4x8x8xf32>, %s: tensor<4x1x1xf32>) -> (tensor<1x4x8x8xf32>, tensor<1x4x8x8xf32>) {
  %0 = "wpk.fused_conv2d"(%x, %w, %r, %s) {strides = array<i64: 1, 1>, pads = array<i64: 1, 1, 1, 1>, dilations = array<i64: 1, 1>, groups = 1 : i64, epilogue = ["add", "clip", "mul"], epilogue_params = array<f32: 0.0, 6.0>, operandSegmentSizes = array<i32: 1, 1, 0, 1, 1, 0>} : (tensor<1x3x8x8xf32>, tensor<4x3x3x3xf32>, tensor<1x4x8x8xf32>, tensor<4x1x1xf32>) -> tensor<1x4x8x8xf32>
  %1 = "wpk.elementwise"(%s, %0) {steps = ["rdiv", "silu"], params = array<f32>, operandSegmentSizes = array<i32: 1, 1, 0, 0>} : (tensor<4x1x1xf32>, tensor<1x4x8x8xf32>) -> tensor<1x4x8x8xf32>
  return %0, %1 : tensor<1x4x8x8xf32>, tensor<1x4x8x8xf32>
}

// -----

func.func @unknown_step(%x: tensor<4xf32>) -> tensor<4xf32> {
  // expected-error @+1 {{'wpk.elementwise' op unknown step 'no_such_step' (known steps: add, sub, mul, div, rsub, rdiv, relu, sigmoid, tanh, silu, leaky_relu, clip, hard_sigmoid, hard_swish, sqrt, erf,}}
  %0 = "wpk.elementwise"(%x) {steps = ["no_such_step"], params = array<f32>, operandSegmentSizes = array<i32: 1, 0, 0, 0>} : (tensor<4xf32>) -> tensor<4xf32>
  return %0 : tensor<4xf32>
}

// -----

func.func @missing_params(%x: tensor<4xf32>) -> tensor<4xf32> {
  // expected-error @+1 {{step 'clip' needs 2 parameter(s), but the parameters ran out}}
  %0 = "wpk.elementwise"(%x) {steps = ["relu", "clip"], params = array<f32: 6.0>, operandSegmentSizes = array<i32: 1, 0, 0, 0>} : (tensor<4xf32>) -> tensor<4xf32>
  return %0 : tensor<4xf32>
}

// -----

func.func @extra_params(%x: tensor<4xf32>) -> tensor<4xf32> {
  // expected-error @+1 {{2 parameters given, but the steps use 1}}
  %0 = "wpk.elementwise"(%x) {steps = ["leaky_relu"], params = array<f32: 0.1, 0.2>, operandSegmentSizes = array<i32: 1, 0, 0, 0>} : (tensor<4xf32>) -> tensor<4xf32>
  return %0 : tensor<4xf32>
}

// -----

func.func @side_count(%x: tensor<4xf32>, %y: tensor<4xf32>) -> tensor<4xf32> {
  // expected-error @+1 {{'wpk.elementwise' op the steps take 2 side operand(s), but 1 are given}}
  %0 = "wpk.elementwise"(%x, %y) {steps = ["add", "mul"], params = array<f32>, operandSegmentSizes = array<i32: 1, 1, 0, 0>} : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32>
  return %0 : tensor<4xf32>
}

// -----

func.func @elementwise_shape(%x: tensor<4xf32>, %y: tensor<3x4xf32>) -> tensor<4xf32> {
  // expected-error @+1 {{'wpk.elementwise' op result shape [4] does not match the expected shape [3, 4]}}
  %0 = "wpk.elementwise"(%x, %y) {steps = ["add"], params = array<f32>, operandSegmentSizes = array<i32: 1, 1, 0, 0>} : (tensor<4xf32>, tensor<3x4xf32>) -> tensor<4xf32>
  return %0 : tensor<4xf32>
}

// -----

func.func @side_does_not_broadcast(%a: tensor<2x4xf32>, %b: tensor<4x3xf32>, %s: tensor<5x3xf32>) -> tensor<2x3xf32> {
  // expected-error @+1 {{'wpk.fused_matmul' op side operand #0 of shape [5, 3] does not broadcast to the result shape [2, 3]}}
  %0 = "wpk.fused_matmul"(%a, %b, %s) {epilogue = ["add"], epilogue_params = array<f32>, operandSegmentSizes = array<i32: 1, 1, 1, 0, 0>} : (tensor<2x4xf32>, tensor<4x3xf32>, tensor<5x3xf32>) -> tensor<2x3xf32>
  return %0 : tensor<2x3xf32>
}

// -----

func.func @gemm_shape(%a: tensor<2x4xf32>, %b: tensor<3x4xf32>) -> tensor<2x4xf32> {
  // expected-error @+1 {{'wpk.fused_gemm' op contracting dimensions differ: 4 vs 3}}
  %0 = "wpk.fused_gemm"(%a, %b) {alpha = 1.0 : f32, beta = 1.0 : f32, trans_a = false, trans_b = false, epilogue = ["relu"], epilogue_params = array<f32>, operandSegmentSizes = array<i32: 1, 1, 0, 0, 0, 0>} : (tensor<2x4xf32>, tensor<3x4xf32>) -> tensor<2x4xf32>
  return %0 : tensor<2x4xf32>
}

// -----

func.func @conv_bias(%x: tensor<1x3x8x8xf32>, %w: tensor<4x3x3x3xf32>, %b: tensor<3xf32>) -> tensor<1x4x6x6xf32> {
  // expected-error @+1 {{'wpk.fused_conv2d' op bias shape [3] must be [4] (one value per output channel)}}
  %0 = "wpk.fused_conv2d"(%x, %w, %b) {strides = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>, groups = 1 : i64, epilogue = [], epilogue_params = array<f32>, operandSegmentSizes = array<i32: 1, 1, 1, 0, 0, 0>} : (tensor<1x3x8x8xf32>, tensor<4x3x3x3xf32>, tensor<3xf32>) -> tensor<1x4x6x6xf32>
  return %0 : tensor<1x4x6x6xf32>
}

// -----

func.func @steps_not_strings(%x: tensor<4xf32>) -> tensor<4xf32> {
  // expected-error @+1 {{'wpk.elementwise' op attribute 'steps' must be an array of string attributes, but got [1]}}
  %0 = "wpk.elementwise"(%x) {steps = [1], params = array<f32>, operandSegmentSizes = array<i32: 1, 0, 0, 0>} : (tensor<4xf32>) -> tensor<4xf32>
  return %0 : tensor<4xf32>
}

// -----

func.func @segments(%x: tensor<4xf32>, %y: tensor<4xf32>) -> tensor<4xf32> {
  // expected-error @+1 {{'operandSegmentSizes' attribute is expected but not provided}}
  %0 = "wpk.elementwise"(%x, %y) {steps = ["add"], params = array<f32>} : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32>
  return %0 : tensor<4xf32>
}
