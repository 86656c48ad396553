// --split-input-file: chunks are processed independently (a failing chunk does not stop the
// others), outputs are joined with "// -----", and diagnostics use the file's line numbers.
// RUN: not wpk-opt %s --split-input-file --wpk-verify 2>%t.err | FileCheck %s
// RUN: FileCheck %s --check-prefix=ERR < %t.err
// Without splitting, the markers are comments and the second @first is a redefinition.
// RUN: not wpk-opt %s 2>&1 | FileCheck %s --check-prefix=NOSPLIT

// CHECK:       module {
// CHECK-NEXT:    func.func @first
// CHECK:       // -----
// CHECK-NEXT:  // -----
// CHECK-NEXT:  module {
// CHECK-NEXT:    func.func @first
// CHECK-NOT:   // -----

func.func @first() {
  return
}

// -----

func.func @second(%a: tensor<?xf32>) {
  // ERR: split-input-file.mlir:[[# @LINE + 1]]:8: error: 'wpk.relu' op operand #0 must be a statically shaped f32 tensor
  %0 = "wpk.relu"(%a) : (tensor<?xf32>) -> tensor<2xf32>
  return
}

// -----

func.func @first() {
  return
}

// NOSPLIT: split-input-file.mlir:[[# @LINE - 4]]:1: error: redefinition of symbol named 'first'
