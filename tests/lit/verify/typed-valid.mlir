// The integer, bool and indexing ops on f32, i64, i32 and i1 tensors verify.
// RUN: wpk-opt %s --wpk-verify | FileCheck %s

// CHECK-LABEL: func.func @typed
// CHECK: "wpk.gather"
// CHECK: "wpk.cast"
// CHECK: "wpk.compare"
// CHECK: "wpk.logical"
// CHECK: "wpk.not"
// CHECK: "wpk.is_inf"
// CHECK: "wpk.where"
func.func @typed(%table: tensor<100x8xf32>, %ids: tensor<1x5xi64>, %m: tensor<1x5xi32>) -> (tensor<1x5x8xf32>, tensor<1x5xi1>) {
  %e = "wpk.gather"(%table, %ids) {axis = 0 : i64} : (tensor<100x8xf32>, tensor<1x5xi64>) -> tensor<1x5x8xf32>
  %b = "wpk.cast"(%m) : (tensor<1x5xi32>) -> tensor<1x5xi1>
  %z = "wpk.constant"() {value = dense<0> : tensor<1xi64>} : () -> tensor<1xi64>
  %p = "wpk.compare"(%ids, %z) {predicate = "ge"} : (tensor<1x5xi64>, tensor<1xi64>) -> tensor<1x5xi1>
  %a = "wpk.logical"(%p, %b) {kind = "and"} : (tensor<1x5xi1>, tensor<1x5xi1>) -> tensor<1x5xi1>
  %n = "wpk.not"(%a) : (tensor<1x5xi1>) -> tensor<1x5xi1>
  %i = "wpk.is_inf"(%e) {detect_positive = true, detect_negative = false} : (tensor<1x5x8xf32>) -> tensor<1x5x8xi1>
  %w = "wpk.where"(%i, %e, %e) : (tensor<1x5x8xi1>, tensor<1x5x8xf32>, tensor<1x5x8xf32>) -> tensor<1x5x8xf32>
  return %w, %n : tensor<1x5x8xf32>, tensor<1x5xi1>
}
