// Parse and verifier errors print as file:line:col with the source line, like mlir-opt; exit 1.
// RUN: not wpk-opt %s 2>&1 | FileCheck %s
// RUN: not wpk-opt < %s 2>&1 | FileCheck %s --check-prefix=STDIN
// RUN: not wpk-opt %S/Inputs/malformed.mlir 2>&1 | FileCheck %s --check-prefix=VERIFY
// RUN: not wpk-opt %t.does-not-exist.mlir 2>&1 | FileCheck %s --check-prefix=MISSING

// CHECK: parse-error.mlir:[[# @LINE + 5]]:19: error: use of value '%0' expects different type than prior uses: 'i64' vs 'i32'
// CHECK-NEXT: {{^}}  %1 = arith.addi %0, %0 : i64
// CHECK-NEXT: {{^}}                  ^
// CHECK-NEXT: parse-error.mlir:[[# @LINE + 1]]:3: note: prior use here
  %0 = arith.constant 1 : i32
  %1 = arith.addi %0, %0 : i64
// CHECK-NOT: Traceback

// STDIN: <stdin>:[[# @LINE - 3]]:19: error: use of value '%0'

// VERIFY: malformed.mlir:3:10: error: use of value '%0' expects different type than prior uses: 'tensor<2xf32>' vs 'tensor<3xf32>'
// MISSING: wpk-opt: error: cannot open input file '{{.*}}does-not-exist.mlir': No such file or directory
