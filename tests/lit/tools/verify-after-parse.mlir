// wpk-opt verifies what it parsed, as mlir-opt does: MLIR's verifier and the Woodpecker one
// (shapes and attributes by the op semantics), before any pass and with or without passes.
// RUN: wpk-opt %s --split-input-file --verify-diagnostics
// RUN: wpk-opt %s --split-input-file --verify-diagnostics -O2
// RUN: wpk-opt %s --split-input-file --verify-diagnostics --wpk-fuse --wpk-lower
// RUN: not wpk-opt %s --split-input-file 2>&1 | FileCheck %s
// RUN: not wpk-opt %s --split-input-file -O2 2>&1 | FileCheck %s

// CHECK: verify-after-parse.mlir:[[@LINE+4]]:8: error: 'wpk.relu' op result shape [3, 2] does not match the expected shape [2, 3]
// CHECK-NOT: func.func @
func.func @relu_result_shape(%x: tensor<2x3xf32>) -> tensor<3x2xf32> {
  // expected-error @+1 {{'wpk.relu' op result shape [3, 2] does not match the expected shape [2, 3]}}
  %y = "wpk.relu"(%x) : (tensor<2x3xf32>) -> tensor<3x2xf32>
  return %y : tensor<3x2xf32>
}

// -----

// CHECK: verify-after-parse.mlir:[[@LINE+3]]:8: error: 'wpk.add' op
func.func @add_shapes(%x: tensor<2x3xf32>, %z: tensor<4xf32>) -> tensor<2x3xf32> {
  // expected-error @+1 {{'wpk.add' op}}
  %y = "wpk.add"(%x, %z) : (tensor<2x3xf32>, tensor<4xf32>) -> tensor<2x3xf32>
  return %y : tensor<2x3xf32>
}
