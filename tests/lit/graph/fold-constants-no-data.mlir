// wpk-fold-constants on a weight whose data is not in the module (no dialect_resources entry,
// or one of the wrong size) is an error at the weight, not a KeyError.
// RUN: wpk-opt %s --split-input-file --verify-diagnostics --wpk-fold-constants
// RUN: not wpk-opt %s --split-input-file -O2 2>&1 | FileCheck %s

// CHECK: fold-constants-no-data.mlir:[[@LINE+3]]:8: error: 'wpk.weight' op no data for weight resource 'w3' in the module's dialect_resources
// CHECK-NOT: Traceback
func.func @no_data(%x: tensor<3xf32>) -> tensor<3xf32> {
  %w = "wpk.weight"() {value = dense_resource<w3> : tensor<3xf32>} : () -> tensor<3xf32> // expected-error {{'wpk.weight' op no data for weight resource 'w3' in the module's dialect_resources}}
  %r = "wpk.relu"(%w) : (tensor<3xf32>) -> tensor<3xf32>
  %y = "wpk.add"(%x, %r) : (tensor<3xf32>, tensor<3xf32>) -> tensor<3xf32>
  return %y : tensor<3xf32>
}

// -----

// CHECK: error: 'wpk.weight' op weight resource 'w2' holds 2 f32 values, its type [3] needs 3
module {
  func.func @wrong_size(%x: tensor<3xf32>) -> tensor<3xf32> {
    %w = "wpk.weight"() {value = dense_resource<w2> : tensor<3xf32>} : () -> tensor<3xf32> // expected-error {{'wpk.weight' op weight resource 'w2' holds 2 f32 values, its type [3] needs 3}}
    %r = "wpk.relu"(%w) : (tensor<3xf32>) -> tensor<3xf32>
    return %r : tensor<3xf32>
  }
}
{-#
  dialect_resources: {
    builtin: {
      w2: "0x040000000000803F00000040"
    }
  }
#-}
