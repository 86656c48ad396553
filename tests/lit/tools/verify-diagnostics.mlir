// --verify-diagnostics reports unmatched expectations and unexpected diagnostics like mlir-opt.
// RUN: not wpk-opt %s --split-input-file --verify-diagnostics --wpk-verify 2>&1 | FileCheck %s

func.func @expected_but_not_produced(%a: tensor<2xf32>) -> tensor<2xf32> {
  // CHECK: verify-diagnostics.mlir:[[# @LINE + 1]]:6: error: expected error "this never happens" was not produced
  // expected-error @+1 {{this never happens}}
  %0 = "wpk.relu"(%a) : (tensor<2xf32>) -> tensor<2xf32>
  return %0 : tensor<2xf32>
}

// -----

func.func @unexpected(%a: tensor<?xf32>) -> tensor<?xf32> {
  // CHECK: verify-diagnostics.mlir:[[# @LINE + 1]]:8: error: unexpected error: 'wpk.relu' op operand #0 must be a statically shaped f32 tensor, but got tensor<?xf32>
  %0 = "wpk.relu"(%a) : (tensor<?xf32>) -> tensor<?xf32>
  return %0 : tensor<?xf32>
}

// -----

func.func @wrong_line(%a: tensor<?xf32>) -> tensor<?xf32> {
  // CHECK: verify-diagnostics.mlir:[[# @LINE + 2]]:8: error: unexpected error: 'wpk.relu' op
  // CHECK: verify-diagnostics.mlir:[[# @LINE + 2]]:6: error: expected error "must be a statically shaped f32 tensor" was not produced
  %0 = "wpk.relu"(%a) : (tensor<?xf32>) -> tensor<?xf32>
  // expected-error @+1 {{must be a statically shaped f32 tensor}}
  return %0 : tensor<?xf32>
}

// -----

func.func @near_miss(%a: tensor<?xf32>) -> tensor<?xf32> {
  // CHECK: verify-diagnostics.mlir:[[# @LINE + 2]]:6: error: 'error' diagnostic emitted when expecting a 'warning'
  // CHECK: verify-diagnostics.mlir:[[# @LINE + 1]]:6: error: expected warning "must be a statically shaped f32 tensor" was not produced
  // expected-warning @below {{must be a statically shaped f32 tensor}}
  %0 = "wpk.relu"(%a) : (tensor<?xf32>) -> tensor<?xf32>
  return %0 : tensor<?xf32>
}

// -----

// Matched ones are silent; every designator form works.
func.func @matched(%a: tensor<?xf32>, %b: tensor<?xf32>) -> (tensor<?xf32>, tensor<?xf32>) {
  %0 = "wpk.relu"(%a) : (tensor<?xf32>) -> tensor<?xf32>
  // expected-error @above {{'wpk.relu' op operand #0}}
  // expected-error-re @below {{'wpk.sigmoid' op operand #{{[0-9]+}} must be {{.*}} tensor}}
  %1 = "wpk.sigmoid"(%b) : (tensor<?xf32>) -> tensor<?xf32>
  return %0, %1 : tensor<?xf32>, tensor<?xf32>
}
// CHECK-NOT: verify-diagnostics.mlir:[[# @LINE - 5]]
// CHECK-NOT: error
