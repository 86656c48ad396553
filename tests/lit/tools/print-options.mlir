// Printing flags: --mlir-print-debuginfo, --mlir-elide-elementsattrs-if-larger,
// --mlir-elide-resource-strings-if-larger, --mlir-print-op-generic.
// RUN: wpk-opt %s --mlir-print-debuginfo | FileCheck %s --check-prefix=LOC
// RUN: wpk-opt %s --mlir-elide-elementsattrs-if-larger=2 | FileCheck %s --check-prefix=ELIDE
// RUN: wpk-opt %s --mlir-elide-resource-strings-if-larger=8 | FileCheck %s --check-prefix=RES
// RUN: wpk-opt %s --mlir-print-op-generic | FileCheck %s --check-prefix=GENERIC

// LOC: "wpk.relu"(%{{.*}}) : (tensor<4xf32>) -> tensor<4xf32> loc([[L:#loc[0-9]*]])
// LOC: [[L]] = loc("{{.*}}print-options.mlir":[[# @LINE + 11]]:8)

// ELIDE: "wpk.constant"() {value = dense_resource<__elided__> : tensor<4xf32>}
// ELIDE: conv_w: "0x04000000

// RES:     "wpk.constant"() {value = dense<[1.000000e+00, 2.000000e+00, 3.000000e+00, 4.000000e+00]> : tensor<4xf32>}
// RES-NOT: conv_w:

// GENERIC: "func.func"() <{function_type = {{.*}}, sym_name = "f"}>

func.func @f(%a: tensor<4xf32>) -> tensor<4xf32> {
  %0 = "wpk.relu"(%a) : (tensor<4xf32>) -> tensor<4xf32>
  %1 = "wpk.constant"() {value = dense<[1.0, 2.0, 3.0, 4.0]> : tensor<4xf32>} : () -> tensor<4xf32>
  %2 = "wpk.weight"() {value = dense_resource<conv_w> : tensor<4xf32>} : () -> tensor<4xf32>
  %3 = "wpk.add"(%0, %1) : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32>
  %4 = "wpk.add"(%3, %2) : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32>
  return %4 : tensor<4xf32>
}

{-#
  dialect_resources: {
    builtin: {
      conv_w: "0x040000000000803F000000400000404000008040"
    }
  }
#-}
