// wpk-outline-weights: the wpk.weight ops of @main become trailing arguments (one per resource).
// RUN: wpk-opt %s --split-input-file --verify-diagnostics --wpk-outline-weights | FileCheck %s

// CHECK-LABEL: func.func @main(
// CHECK-SAME:      %[[X:.*]]: tensor<4xf32>, %[[W0:.*]]: tensor<4xf32>, %[[W1:.*]]: tensor<2x2xf32>) -> tensor<4xf32>
// CHECK-NOT:     "wpk.weight"
// CHECK:         %[[A:.*]] = "wpk.add"(%[[X]], %[[W0]])
// CHECK:         %[[B:.*]] = "wpk.add"(%[[A]], %[[W0]])
// CHECK:         %[[R:.*]] = "wpk.reshape"(%[[W1]])
// CHECK:         "wpk.add"(%[[B]], %[[R]])
func.func @main(%x: tensor<4xf32>) -> tensor<4xf32> {
  %w = "wpk.weight"() {value = dense_resource<w0> : tensor<4xf32>} : () -> tensor<4xf32>
  %w_again = "wpk.weight"() {value = dense_resource<w0> : tensor<4xf32>} : () -> tensor<4xf32>
  %v = "wpk.weight"() {value = dense_resource<w1> : tensor<2x2xf32>} : () -> tensor<2x2xf32>
  %0 = "wpk.add"(%x, %w) : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32>
  %1 = "wpk.add"(%0, %w_again) : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32>
  %2 = "wpk.reshape"(%v) : (tensor<2x2xf32>) -> tensor<4xf32>
  %3 = "wpk.add"(%1, %2) : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32>
  return %3 : tensor<4xf32>
}

// -----

// expected-warning @below {{wpk-outline-weights: no wpk ops to outline}}
// expected-error @below {{outline_weights: module has no func.func @main}}
module {
  func.func @not_main() {
    return
  }
}
