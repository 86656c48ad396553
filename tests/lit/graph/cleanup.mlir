// wpk-cleanup: dead wpk ops are erased and duplicates (same name, operands, attributes and
// result types) merged; upstream canonicalize/cse leave IRDL ops alone.
// RUN: wpk-opt %s --wpk-cleanup | FileCheck %s
// RUN: wpk-opt %s --canonicalize --cse | FileCheck %s --check-prefix=UPSTREAM

// CHECK-LABEL: func.func @main(
// CHECK-NEXT:    %[[W:.*]] = "wpk.weight"() {value = dense_resource<four>
// CHECK-NEXT:    %[[A:.*]] = "wpk.add"(%arg0, %[[W]])
// CHECK-NEXT:    %[[R:.*]] = "wpk.relu"(%[[A]])
// CHECK-NEXT:    %[[C1:.*]] = "wpk.clip"(%[[R]]) {max = 6.000000e+00 : f32, min = 0.000000e+00 : f32}
// CHECK-NEXT:    %[[C2:.*]] = "wpk.clip"(%[[R]]) {max = 5.000000e+00 : f32, min = 0.000000e+00 : f32}
// CHECK-NEXT:    %[[S:.*]] = "wpk.add"(%[[C1]], %[[C2]])
// CHECK-NEXT:    %[[T:.*]] = "wpk.add"(%[[S]], %[[S]])
// CHECK-NEXT:    return %[[T]], %[[R]]

// UPSTREAM-COUNT-2: "wpk.weight"
// UPSTREAM-COUNT-2: "wpk.relu"
// UPSTREAM:         "wpk.tanh"
func.func @main(%x: tensor<4xf32>) -> (tensor<4xf32>, tensor<4xf32>) {
  %w = "wpk.weight"() {value = dense_resource<four> : tensor<4xf32>} : () -> tensor<4xf32>
  %w_again = "wpk.weight"() {value = dense_resource<four> : tensor<4xf32>} : () -> tensor<4xf32>
  %a = "wpk.add"(%x, %w) : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32>
  %b = "wpk.add"(%x, %w_again) : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32>
  %r = "wpk.relu"(%a) : (tensor<4xf32>) -> tensor<4xf32>
  %r2 = "wpk.relu"(%b) : (tensor<4xf32>) -> tensor<4xf32>
  %dead = "wpk.tanh"(%r2) : (tensor<4xf32>) -> tensor<4xf32>
  %dead2 = "wpk.sigmoid"(%dead) : (tensor<4xf32>) -> tensor<4xf32>
  %c1 = "wpk.clip"(%r) {min = 0.0 : f32, max = 6.0 : f32} : (tensor<4xf32>) -> tensor<4xf32>
  %c2 = "wpk.clip"(%r2) {min = 0.0 : f32, max = 5.0 : f32} : (tensor<4xf32>) -> tensor<4xf32>
  %s = "wpk.add"(%c1, %c2) : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32>
  %s2 = "wpk.add"(%c1, %c2) : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32>
  %t = "wpk.add"(%s, %s2) : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32>
  return %t, %r2 : tensor<4xf32>, tensor<4xf32>
}

{-#
  dialect_resources: {
    builtin: {
      four: "0x040000000000803F000000400000404000008040"
    }
  }
#-}
