// -o writes the output file; on failure it is not written and the status is 1.
// RUN: rm -f %t.out %t.bad
// RUN: wpk-opt %s --canonicalize -o %t.out
// RUN: FileCheck %s < %t.out
// RUN: wpk-opt %s -o - | FileCheck %s
// RUN: not wpk-opt %s --wpk-verify --pass-pipeline='builtin.module(wpk-verify)' -o %t.bad
// RUN: not wpk-opt %S/Inputs/malformed.mlir -o %t.bad
// RUN: %python -c "import os, sys; sys.exit(os.path.exists(sys.argv[1]))" %t.bad

// CHECK-LABEL: func.func @f
// CHECK-NEXT:    return %arg0
func.func @f(%a: tensor<2xf32>) -> tensor<2xf32> {
  return %a : tensor<2xf32>
}
