// --mlir-print-ir-after-all prints to stderr after every pass, wpk (Python) and upstream ones.
// RUN: wpk-opt %s --wpk-verify --canonicalize --mlir-print-ir-after-all -o %t 2>&1 | FileCheck %s
// RUN: wpk-opt %s --pass-pipeline='builtin.module(wpk-lower)' --mlir-print-ir-after-all -o %t 2>&1 | FileCheck %s --check-prefix=ALIAS

// CHECK:      // -----// IR Dump After wpk-verify (wpk-verify) //----- //
// CHECK-NEXT: module {
// CHECK:        "wpk.relu"
// CHECK:      // -----// IR Dump After Canonicalizer (canonicalize) //----- //
// CHECK-NEXT: module {
// CHECK:        "wpk.relu"

// ALIAS:      IR Dump After wpk-verify (wpk-verify)
// ALIAS:      IR Dump After wpk-lower-to-linalg (wpk-lower-to-linalg)
// ALIAS-NOT:  "wpk.relu"
// ALIAS:      linalg.generic
// ALIAS:      IR Dump After Canonicalizer (canonicalize)
// ALIAS:      IR Dump After CSE (cse)

func.func @f(%a: tensor<2xf32>) -> tensor<2xf32> {
  %0 = "wpk.relu"(%a) : (tensor<2xf32>) -> tensor<2xf32>
  return %0 : tensor<2xf32>
}
