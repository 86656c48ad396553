// wpk-verify: ranks, axes and result shapes of the other ops.
// RUN: wpk-opt %s --split-input-file --verify-diagnostics --wpk-verify

func.func @broadcast(%a: tensor<2x3xf32>, %b: tensor<4xf32>) -> tensor<2x3xf32> {
  // expected-error @+1 {{'wpk.add' op operand shapes [2, 3] and [4] are not broadcast-compatible}}
  %0 = "wpk.add"(%a, %b) : (tensor<2x3xf32>, tensor<4xf32>) -> tensor<2x3xf32>
  return %0 : tensor<2x3xf32>
}

// -----

func.func @broadcast_result(%a: tensor<2x1xf32>, %b: tensor<3xf32>) -> tensor<2x1xf32> {
  // expected-error @+1 {{'wpk.mul' op result shape [2, 1] does not match the expected shape [2, 3]}}
  %0 = "wpk.mul"(%a, %b) : (tensor<2x1xf32>, tensor<3xf32>) -> tensor<2x1xf32>
  return %0 : tensor<2x1xf32>
}

// -----

func.func @unary_shape(%a: tensor<2x3xf32>) -> tensor<3x2xf32> {
  // expected-error @+1 {{'wpk.clip' op result shape [3, 2] does not match the expected shape [2, 3]}}
  %0 = "wpk.clip"(%a) {min = 0.0 : f32, max = 6.0 : f32} : (tensor<2x3xf32>) -> tensor<3x2xf32>
  return %0 : tensor<3x2xf32>
}

// -----

func.func @matmul_contraction(%a: tensor<2x3xf32>, %b: tensor<4x5xf32>) -> tensor<2x5xf32> {
  // expected-error @+1 {{'wpk.matmul' op contracting dimensions differ: lhs [2, 3], rhs [4, 5]}}
  %0 = "wpk.matmul"(%a, %b) : (tensor<2x3xf32>, tensor<4x5xf32>) -> tensor<2x5xf32>
  return %0 : tensor<2x5xf32>
}

// -----

func.func @matmul_batch(%a: tensor<3x2x3xf32>, %b: tensor<3x4xf32>) -> tensor<2x4xf32> {
  // expected-error @+1 {{'wpk.matmul' op result shape [2, 4] does not match the expected shape [3, 2, 4]}}
  %0 = "wpk.matmul"(%a, %b) : (tensor<3x2x3xf32>, tensor<3x4xf32>) -> tensor<2x4xf32>
  return %0 : tensor<2x4xf32>
}

// -----

func.func @gemm_rank(%a: tensor<2x3x1xf32>, %b: tensor<3x4xf32>) -> tensor<2x4xf32> {
  // expected-error @+1 {{'wpk.gemm' op operand 'a' must be 2-D, but has rank 3}}
  %0 = "wpk.gemm"(%a, %b) {alpha = 1.0 : f32, beta = 1.0 : f32, trans_a = false, trans_b = false} : (tensor<2x3x1xf32>, tensor<3x4xf32>) -> tensor<2x4xf32>
  return %0 : tensor<2x4xf32>
}

// -----

func.func @gemm_transposed(%a: tensor<3x2xf32>, %b: tensor<3x4xf32>) -> tensor<2x4xf32> {
  // expected-error @+1 {{'wpk.gemm' op contracting dimensions differ: 2 vs 3}}
  %0 = "wpk.gemm"(%a, %b) {alpha = 1.0 : f32, beta = 1.0 : f32, trans_a = false, trans_b = false} : (tensor<3x2xf32>, tensor<3x4xf32>) -> tensor<2x4xf32>
  return %0 : tensor<2x4xf32>
}

// -----

func.func @batch_norm_params(%x: tensor<1x3x2x2xf32>, %s: tensor<2xf32>) -> tensor<1x3x2x2xf32> {
  // expected-error @+1 {{'wpk.batch_norm' op operand 'scale' shape [2] must be [3] (one value per channel)}}
  %0 = "wpk.batch_norm"(%x, %s, %s, %s, %s) {epsilon = 1.0e-05 : f32} : (tensor<1x3x2x2xf32>, tensor<2xf32>, tensor<2xf32>, tensor<2xf32>, tensor<2xf32>) -> tensor<1x3x2x2xf32>
  return %0 : tensor<1x3x2x2xf32>
}

// -----

func.func @softmax_axis(%a: tensor<2x3xf32>) -> tensor<2x3xf32> {
  // expected-error @+1 {{'wpk.softmax' op attribute 'axis' = 2 is out of range [0, 1]}}
  %0 = "wpk.softmax"(%a) {axis = 2 : i64} : (tensor<2x3xf32>) -> tensor<2x3xf32>
  return %0 : tensor<2x3xf32>
}

// -----

func.func @negative_axis(%a: tensor<2x3xf32>) -> tensor<2x3xf32> {
  // expected-error @+1 {{'wpk.softmax' op attribute 'axis' = -1 is out of range [0, 1]}}
  %0 = "wpk.softmax"(%a) {axis = -1 : i64} : (tensor<2x3xf32>) -> tensor<2x3xf32>
  return %0 : tensor<2x3xf32>
}

// -----

func.func @reshape_count(%a: tensor<2x3xf32>) -> tensor<7xf32> {
  // expected-error @+1 {{'wpk.reshape' op cannot reshape [2, 3] (6 elements) to [7] (7 elements)}}
  %0 = "wpk.reshape"(%a) : (tensor<2x3xf32>) -> tensor<7xf32>
  return %0 : tensor<7xf32>
}

// -----

func.func @flatten(%a: tensor<2x3x4xf32>) -> tensor<2x12xf32> {
  // expected-error @+1 {{'wpk.flatten' op result shape [2, 12] does not match the expected shape [6, 4]}}
  %0 = "wpk.flatten"(%a) {axis = 2 : i64} : (tensor<2x3x4xf32>) -> tensor<2x12xf32>
  return %0 : tensor<2x12xf32>
}

// -----

func.func @transpose_perm(%a: tensor<2x3xf32>) -> tensor<3x2xf32> {
  // expected-error @+1 {{'wpk.transpose' op attribute 'perm' [1, 1] is not a permutation of the 2 input dimensions}}
  %0 = "wpk.transpose"(%a) {perm = array<i64: 1, 1>} : (tensor<2x3xf32>) -> tensor<3x2xf32>
  return %0 : tensor<3x2xf32>
}

// -----

func.func @concat_shapes(%a: tensor<2x3xf32>, %b: tensor<2x4xf32>) -> tensor<4x3xf32> {
  // expected-error @+1 {{'wpk.concat' op input #1 shape [2, 4] does not match input #0 [2, 3] outside axis 0}}
  %0 = "wpk.concat"(%a, %b) {axis = 0 : i64} : (tensor<2x3xf32>, tensor<2x4xf32>) -> tensor<4x3xf32>
  return %0 : tensor<4x3xf32>
}

// -----

func.func @concat_result(%a: tensor<2x3xf32>, %b: tensor<2x4xf32>) -> tensor<2x8xf32> {
  // expected-error @+1 {{'wpk.concat' op result shape [2, 8] does not match the expected shape [2, 7]}}
  %0 = "wpk.concat"(%a, %b) {axis = 1 : i64} : (tensor<2x3xf32>, tensor<2x4xf32>) -> tensor<2x8xf32>
  return %0 : tensor<2x8xf32>
}

// -----

func.func @pad_length(%a: tensor<2x3xf32>) -> tensor<4x3xf32> {
  // expected-error @+1 {{'wpk.pad' op attribute 'pads' must have 4 values, but has 2}}
  %0 = "wpk.pad"(%a) {pads = array<i64: 1, 1>, mode = "constant", value = 0.0 : f32} : (tensor<2x3xf32>) -> tensor<4x3xf32>
  return %0 : tensor<4x3xf32>
}

// -----

func.func @pad_mode(%a: tensor<2x3xf32>) -> tensor<4x3xf32> {
  // expected-error @+1 {{'wpk.pad' op attribute 'mode' is 'mirror', expected one of constant, reflect, edge, wrap}}
  %0 = "wpk.pad"(%a) {pads = array<i64: 1, 0, 1, 0>, mode = "mirror", value = 0.0 : f32} : (tensor<2x3xf32>) -> tensor<4x3xf32>
  return %0 : tensor<4x3xf32>
}

// -----

func.func @reduce_axes(%a: tensor<2x3xf32>) -> tensor<1x1xf32> {
  // expected-error @+1 {{'wpk.reduce_mean' op attribute 'axes' [1, 0] must be sorted, unique and in [0, 1]}}
  %0 = "wpk.reduce_mean"(%a) {axes = array<i64: 1, 0>, keepdims = true} : (tensor<2x3xf32>) -> tensor<1x1xf32>
  return %0 : tensor<1x1xf32>
}

// -----

func.func @reduce_result(%a: tensor<2x3xf32>) -> tensor<2x1xf32> {
  // expected-error @+1 {{'wpk.reduce_mean' op result shape [2, 1] does not match the expected shape [2]}}
  %0 = "wpk.reduce_mean"(%a) {axes = array<i64: 1>, keepdims = false} : (tensor<2x3xf32>) -> tensor<2x1xf32>
  return %0 : tensor<2x1xf32>
}
