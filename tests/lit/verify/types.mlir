// wpk-verify: tensor types and attribute element kinds, which IRDL checks only by base kind.
// RUN: wpk-opt %s --split-input-file --verify-diagnostics --wpk-verify
// IRDL alone (upstream mlir-opt with the dialect's IRDL file) accepts all of these:
// RUN: mlir-opt --irdl-file=%irdl %s --split-input-file | FileCheck %s --check-prefix=IRDL
// IRDL-COUNT-8: "wpk.

func.func @dynamic_shape(%a: tensor<?x3xf32>) -> tensor<?x3xf32> {
  // expected-error @+1 {{'wpk.relu' op operand #0 must be a statically shaped f32 tensor, but got tensor<?x3xf32>}}
  %0 = "wpk.relu"(%a) : (tensor<?x3xf32>) -> tensor<?x3xf32>
  return %0 : tensor<?x3xf32>
}

// -----

func.func @f16_elements(%a: tensor<2xf16>) -> tensor<2xf16> {
  // expected-error @+1 {{'wpk.sigmoid' op operand #0 must be a statically shaped f32 tensor, but got tensor<2xf16>}}
  %0 = "wpk.sigmoid"(%a) : (tensor<2xf16>) -> tensor<2xf16>
  return %0 : tensor<2xf16>
}

// -----

func.func @dynamic_result(%a: tensor<2xf32>) -> tensor<?xf32> {
  // expected-error @+1 {{'wpk.tanh' op result #0 must be a statically shaped f32 tensor, but got tensor<?xf32>}}
  %0 = "wpk.tanh"(%a) : (tensor<2xf32>) -> tensor<?xf32>
  return %0 : tensor<?xf32>
}

// -----

func.func @i32_groups(%x: tensor<1x1x4x4xf32>, %w: tensor<1x1x1x1xf32>) -> tensor<1x1x4x4xf32> {
  // expected-error @+1 {{'wpk.conv2d' op attribute 'groups' must be a 64-bit signless integer attribute (I64Attr), but got 1 : i32}}
  %0 = "wpk.conv2d"(%x, %w) {strides = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>, groups = 1 : i32} : (tensor<1x1x4x4xf32>, tensor<1x1x1x1xf32>) -> tensor<1x1x4x4xf32>
  return %0 : tensor<1x1x4x4xf32>
}

// -----

func.func @f64_alpha(%a: tensor<2xf32>) -> tensor<2xf32> {
  // expected-error @+1 {{'wpk.leaky_relu' op attribute 'alpha' must be a 32-bit float attribute (F32Attr), but got 1.000000e-01 : f64}}
  %0 = "wpk.leaky_relu"(%a) {alpha = 0.1 : f64} : (tensor<2xf32>) -> tensor<2xf32>
  return %0 : tensor<2xf32>
}

// -----

func.func @integer_bool(%a: tensor<2x3xf32>) -> tensor<2xf32> {
  // expected-error @+1 {{'wpk.reduce_mean' op attribute 'keepdims' must be a bool attribute (i1, BoolAttr), but got 0 : i64}}
  %0 = "wpk.reduce_mean"(%a) {axes = array<i64: 1>, keepdims = 0 : i64} : (tensor<2x3xf32>) -> tensor<2xf32>
  return %0 : tensor<2xf32>
}

// -----

func.func @i32_array(%a: tensor<2x3xf32>) -> tensor<3x2xf32> {
  // expected-error @+1 {{'wpk.transpose' op attribute 'perm' must be an i64 dense array attribute (array<i64: ...>), but got array<i32: 1, 0>}}
  %0 = "wpk.transpose"(%a) {perm = array<i32: 1, 0>} : (tensor<2x3xf32>) -> tensor<3x2xf32>
  return %0 : tensor<3x2xf32>
}

// -----

func.func @weight_type_mismatch() -> tensor<4xf32> {
  // expected-error @+1 {{'wpk.weight' op 'value' has type tensor<2x2xf32>, but the result type is tensor<4xf32>}}
  %0 = "wpk.weight"() {value = dense_resource<w> : tensor<2x2xf32>} : () -> tensor<4xf32>
  return %0 : tensor<4xf32>
}
