// Optimization levels: -O0 changes nothing, -O1 folds (constants, batch_norm), -O2 also fuses;
// --wpk-graph-opt is -O2. conv -> batch_norm -> residual add -> relu becomes one kernel.
// RUN: wpk-opt %s -O0 | FileCheck %s --check-prefix=O0
// RUN: wpk-opt %s -O1 | FileCheck %s --check-prefix=O1
// RUN: wpk-opt %s -O2 | FileCheck %s --check-prefix=O2
// RUN: wpk-opt %s --wpk-graph-opt | FileCheck %s --check-prefix=O2
// RUN: wpk-opt %s -O2 --wpk-lower | FileCheck %s --check-prefix=LOWER
// RUN: not wpk-opt %s -O3 2>&1 | FileCheck %s --check-prefix=BAD
// RUN: not wpk-opt %s -O2 --pass-pipeline='builtin.module(wpk-fuse)' 2>&1 | FileCheck %s --check-prefix=BOTH

// O0:         "wpk.transpose"
// O0:         "wpk.conv2d"
// O0-NEXT:    "wpk.batch_norm"
// O0-NEXT:    "wpk.add"
// O0-NEXT:    "wpk.relu"

// O1-NOT:     "wpk.transpose"
// O1-NOT:     "wpk.batch_norm"
// O1:         %[[C:.*]] = "wpk.conv2d"(%arg0, %{{.*}}, %{{.*}})
// O1-NEXT:    %[[A:.*]] = "wpk.add"(%[[C]], %arg0)
// O1-NEXT:    %[[R:.*]] = "wpk.relu"(%[[A]])
// O1-NEXT:    return %[[R]]

// O2-LABEL:   func.func @main(
// O2-NEXT:      %[[W:.*]] = "wpk.weight"() {value = dense_resource<{{.*}}> : tensor<2x2x1x1xf32>}
// O2-NEXT:      %[[B:.*]] = "wpk.weight"() {value = dense_resource<{{.*}}> : tensor<2xf32>}
// O2-NEXT:      %[[F:.*]] = "wpk.fused_conv2d"(%arg0, %[[W]], %[[B]], %arg0) {{{.*}}epilogue = ["add", "relu"]
// O2-NEXT:      return %[[F]]
// O2-NEXT:    }

// LOWER-NOT:  "wpk.
// LOWER:      linalg.conv_2d_nchw_fchw
// LOWER:      linalg.generic
// LOWER-NOT:  linalg.generic
// LOWER:      return

// BAD: invalid optimization level '-O3'; use one of -O0, -O1, -O2
// BOTH: '--pass-pipeline' option can't be used with individual pass options or -O levels

func.func @main(%x: tensor<1x2x4x4xf32>) -> tensor<1x2x4x4xf32> {
  %w = "wpk.weight"() {value = dense_resource<four> : tensor<2x2xf32>} : () -> tensor<2x2xf32>
  %wt = "wpk.transpose"(%w) {perm = array<i64: 1, 0>} : (tensor<2x2xf32>) -> tensor<2x2xf32>
  %w4 = "wpk.reshape"(%wt) : (tensor<2x2xf32>) -> tensor<2x2x1x1xf32>
  %b = "wpk.weight"() {value = dense_resource<b> : tensor<2xf32>} : () -> tensor<2xf32>
  %g = "wpk.weight"() {value = dense_resource<gamma> : tensor<2xf32>} : () -> tensor<2xf32>
  %be = "wpk.weight"() {value = dense_resource<beta> : tensor<2xf32>} : () -> tensor<2xf32>
  %m = "wpk.weight"() {value = dense_resource<mean> : tensor<2xf32>} : () -> tensor<2xf32>
  %v = "wpk.weight"() {value = dense_resource<var> : tensor<2xf32>} : () -> tensor<2xf32>
  %c = "wpk.conv2d"(%x, %w4, %b) {strides = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>, groups = 1 : i64} : (tensor<1x2x4x4xf32>, tensor<2x2x1x1xf32>, tensor<2xf32>) -> tensor<1x2x4x4xf32>
  %n = "wpk.batch_norm"(%c, %g, %be, %m, %v) {epsilon = 1.0 : f32} : (tensor<1x2x4x4xf32>, tensor<2xf32>, tensor<2xf32>, tensor<2xf32>, tensor<2xf32>) -> tensor<1x2x4x4xf32>
  %a = "wpk.add"(%n, %x) : (tensor<1x2x4x4xf32>, tensor<1x2x4x4xf32>) -> tensor<1x2x4x4xf32>
  %r = "wpk.relu"(%a) : (tensor<1x2x4x4xf32>) -> tensor<1x2x4x4xf32>
  return %r : tensor<1x2x4x4xf32>
}

{-#
  dialect_resources: {
    builtin: {
      four: "0x040000000000803F000000400000404000008040",
      b: "0x040000000000803F000080BF",
      gamma: "0x040000000000803F00000040",
      beta: "0x040000000000003F00000000",
      mean: "0x040000000000803F00000040",
      var: "0x040000000000404000000000"
    }
  }
#-}
