// IRDL verification of wpk ops: the messages come from MLIR's IRDL verifier.
// RUN: wpk-opt %s --split-input-file --verify-diagnostics
// RUN: mlir-opt --irdl-file=%irdl %s --split-input-file --verify-diagnostics

func.func @too_many_operands(%a: tensor<2xf32>, %b: tensor<2xf32>) -> tensor<2xf32> {
  // expected-error @+1 {{op expects exactly 1 operands, but got 2}}
  %0 = "wpk.relu"(%a, %b) : (tensor<2xf32>, tensor<2xf32>) -> tensor<2xf32>
  return %0 : tensor<2xf32>
}

// -----

func.func @missing_result(%a: tensor<2xf32>) {
  // expected-error @+1 {{op expects exactly 1 results, but got 0}}
  "wpk.relu"(%a) : (tensor<2xf32>) -> ()
  return
}

// -----

func.func @too_many_optional_operands(%x: tensor<1x1x4x4xf32>, %w: tensor<1x1x1x1xf32>, %b: tensor<1xf32>) -> tensor<1x1x4x4xf32> {
  // expected-error @+1 {{op expects at most 3 operands, but got 4}}
  %0 = "wpk.conv2d"(%x, %w, %b, %b) {strides = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>, groups = 1 : i64} : (tensor<1x1x4x4xf32>, tensor<1x1x1x1xf32>, tensor<1xf32>, tensor<1xf32>) -> tensor<1x1x4x4xf32>
  return %0 : tensor<1x1x4x4xf32>
}

// -----

func.func @missing_attribute(%a: tensor<2xf32>) -> tensor<2xf32> {
  // expected-error @+1 {{'wpk.leaky_relu' op attribute "alpha" is expected but not provided}}
  %0 = "wpk.leaky_relu"(%a) : (tensor<2xf32>) -> tensor<2xf32>
  return %0 : tensor<2xf32>
}

// -----

func.func @wrong_attribute_kind(%a: tensor<2xf32>) -> tensor<2xf32> {
  // expected-error @+1 {{expected base attribute 'builtin.integer' but got 'builtin.string'}}
  %0 = "wpk.softmax"(%a) {axis = "0"} : (tensor<2xf32>) -> tensor<2xf32>
  return %0 : tensor<2xf32>
}

// -----

func.func @wrong_array_kind(%a: tensor<2x3xf32>) -> tensor<3x2xf32> {
  // expected-error @+1 {{expected base attribute 'builtin.dense_array' but got 'builtin.array'}}
  %0 = "wpk.transpose"(%a) {perm = [1, 0]} : (tensor<2x3xf32>) -> tensor<3x2xf32>
  return %0 : tensor<3x2xf32>
}

// -----

func.func @constant_from_resource() -> tensor<2xf32> {
  // expected-error @+1 {{expected base attribute 'builtin.dense_int_or_fp_elements' but got 'builtin.dense_resource_elements'}}
  %0 = "wpk.constant"() {value = dense_resource<blob> : tensor<2xf32>} : () -> tensor<2xf32>
  return %0 : tensor<2xf32>
}

// -----

func.func @non_tensor_operand(%a: memref<2xf32>) -> tensor<2xf32> {
  // expected-error @+1 {{expected base type 'builtin.tensor' but got 'builtin.memref'}}
  %0 = "wpk.relu"(%a) : (memref<2xf32>) -> tensor<2xf32>
  return %0 : tensor<2xf32>
}

// -----

func.func @non_tensor_result(%a: tensor<2xf32>) -> vector<2xf32> {
  // expected-error @+1 {{expected base type 'builtin.tensor' but got 'builtin.vector'}}
  %0 = "wpk.relu"(%a) : (tensor<2xf32>) -> vector<2xf32>
  return %0 : vector<2xf32>
}

// -----

func.func @unknown_op(%a: tensor<2xf32>) -> tensor<2xf32> {
  // expected-error @+1 {{unregistered operation 'wpk.no_such_op' found in dialect ('wpk') that does not allow unknown operations}}
  %0 = "wpk.no_such_op"(%a) : (tensor<2xf32>) -> tensor<2xf32>
  return %0 : tensor<2xf32>
}
