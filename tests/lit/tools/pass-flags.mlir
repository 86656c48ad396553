// Pass flags run in command-line order, mixing wpk and upstream passes (with options);
// input from stdin; several top-level ops get an implicit module.
// RUN: wpk-opt --wpk-verify --canonicalize='top-down=false' --cse < %s --mlir-print-ir-after-all 2>&1 >/dev/null | FileCheck %s --check-prefix=ORDER
// RUN: wpk-opt - --wpk-verify --canonicalize < %s | FileCheck %s
// RUN: wpk-opt -wpk-verify -canonicalize %s | FileCheck %s
// RUN: wpk-opt %s --mlir-print-debuginfo | FileCheck %s --check-prefix=LOC
// RUN: not wpk-opt %S/Inputs/unregistered.mlir 2>&1 | FileCheck %s --check-prefix=UNREG
// RUN: wpk-opt --allow-unregistered-dialect %S/Inputs/unregistered.mlir | FileCheck %s --check-prefix=ALLOW

// ORDER:      IR Dump After wpk-verify (wpk-verify)
// ORDER:      IR Dump After Canonicalizer (canonicalize)
// ORDER:      IR Dump After CSE (cse)

// CHECK:       module {
// CHECK-LABEL:   func.func @first
// CHECK-NEXT:      %[[R:.*]] = "wpk.relu"(%arg0)
// CHECK-NEXT:      return %[[R]]
// CHECK-LABEL:   func.func @second
// CHECK-NEXT:      return %arg0

// LOC: loc("{{.*}}pass-flags.mlir":[[# @LINE + 7]]:3)

// UNREG: unregistered.mlir:2:{{[0-9]+}}: error: operation being parsed with an unregistered dialect
// ALLOW: "mydialect.op"

func.func @first(%a: tensor<2xf32>) -> tensor<2xf32> {
  %0 = "wpk.relu"(%a) : (tensor<2xf32>) -> tensor<2xf32>
  return %0 : tensor<2xf32>
}

func.func @second(%a: tensor<2xf32>) -> tensor<2xf32> {
  return %a : tensor<2xf32>
}
