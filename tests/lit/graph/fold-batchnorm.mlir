// wpk-fold-batchnorm: batch_norm with constant parameters folds into a single-use conv2d,
// gemm or 2-D matmul producer (rescaled weights and a bias), else becomes a per-channel
// scale and shift (wpk.elementwise mul, add); with non-constant parameters it stays.
// Parameters: gamma = [1, 2], beta = [0.5, 0], mean = [1, 2], var = [3, 0], epsilon = 1, so
// s = gamma / sqrt(var + eps) = [0.5, 2] and t = beta - mean * s = [0, -4].
// RUN: wpk-opt %s --wpk-fold-batchnorm | FileCheck %s
// RUN: wpk-opt %s --wpk-fold-batchnorm --wpk-verify --wpk-lower | FileCheck %s --check-prefix=LOWER

// LOWER-NOT: "wpk.

module {

// conv2d with bias [1, -1] and filter [2, 3]: filter * s = [1, 6], bias * s + t = [0.5, -6].
// CHECK-LABEL: func.func @conv(
// CHECK-NOT:     "wpk.batch_norm"
// CHECK-DAG:     %[[W:.*]] = "wpk.weight"() {value = dense_resource<[[CW:bn_filter.*]]> : tensor<2x1x1x1xf32>}
// CHECK-DAG:     %[[B:.*]] = "wpk.weight"() {value = dense_resource<[[CB:bn_bias.*]]> : tensor<2xf32>}
// CHECK:         %[[C:.*]] = "wpk.conv2d"(%arg0, %[[W]], %[[B]]) {dilations = array<i64: 1, 1>, groups = 1 : i64, pads = array<i64: 0, 0, 0, 0>, strides = array<i64: 1, 1>}
// CHECK-NEXT:    return %[[C]]
func.func @conv(%x: tensor<1x1x4x4xf32>) -> tensor<1x2x4x4xf32> {
  %w = "wpk.weight"() {value = dense_resource<w> : tensor<2x1x1x1xf32>} : () -> tensor<2x1x1x1xf32>
  %b = "wpk.weight"() {value = dense_resource<b> : tensor<2xf32>} : () -> tensor<2xf32>
  %g = "wpk.weight"() {value = dense_resource<gamma> : tensor<2xf32>} : () -> tensor<2xf32>
  %be = "wpk.weight"() {value = dense_resource<beta> : tensor<2xf32>} : () -> tensor<2xf32>
  %m = "wpk.weight"() {value = dense_resource<mean> : tensor<2xf32>} : () -> tensor<2xf32>
  %v = "wpk.weight"() {value = dense_resource<var> : tensor<2xf32>} : () -> tensor<2xf32>
  %c = "wpk.conv2d"(%x, %w, %b) {strides = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>, groups = 1 : i64} : (tensor<1x1x4x4xf32>, tensor<2x1x1x1xf32>, tensor<2xf32>) -> tensor<1x2x4x4xf32>
  %y = "wpk.batch_norm"(%c, %g, %be, %m, %v) {epsilon = 1.0 : f32} : (tensor<1x2x4x4xf32>, tensor<2xf32>, tensor<2xf32>, tensor<2xf32>, tensor<2xf32>) -> tensor<1x2x4x4xf32> loc("bn")
  return %y : tensor<1x2x4x4xf32>
}

// Without a conv bias, the new bias is t.
// CHECK-LABEL: func.func @conv_no_bias(
// CHECK:         %[[C:.*]] = "wpk.conv2d"(%arg0, %{{.*}}, %{{.*}}) {{.*}} : (tensor<1x1x4x4xf32>, tensor<2x1x1x1xf32>, tensor<2xf32>)
// CHECK-NEXT:    return %[[C]]
func.func @conv_no_bias(%x: tensor<1x1x4x4xf32>) -> tensor<1x2x4x4xf32> {
  %w = "wpk.weight"() {value = dense_resource<w> : tensor<2x1x1x1xf32>} : () -> tensor<2x1x1x1xf32>
  %g = "wpk.weight"() {value = dense_resource<gamma> : tensor<2xf32>} : () -> tensor<2xf32>
  %be = "wpk.weight"() {value = dense_resource<beta> : tensor<2xf32>} : () -> tensor<2xf32>
  %m = "wpk.weight"() {value = dense_resource<mean> : tensor<2xf32>} : () -> tensor<2xf32>
  %v = "wpk.weight"() {value = dense_resource<var> : tensor<2xf32>} : () -> tensor<2xf32>
  %c = "wpk.conv2d"(%x, %w) {strides = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>, groups = 1 : i64} : (tensor<1x1x4x4xf32>, tensor<2x1x1x1xf32>) -> tensor<1x2x4x4xf32>
  %y = "wpk.batch_norm"(%c, %g, %be, %m, %v) {epsilon = 1.0 : f32} : (tensor<1x2x4x4xf32>, tensor<2xf32>, tensor<2xf32>, tensor<2xf32>, tensor<2xf32>) -> tensor<1x2x4x4xf32> loc("bn_nobias")
  return %y : tensor<1x2x4x4xf32>
}

// gemm (trans_b, B = [[0, 1, 2], [3, 4, 5]], C = [1, -1]): rows of B scaled by s, C * s + t.
// CHECK-LABEL: func.func @gemm(
// CHECK-DAG:     %[[GB:.*]] = "wpk.weight"() {value = dense_resource<[[GBR:gbn_b.*]]> : tensor<2x3xf32>}
// CHECK-DAG:     %[[GC:.*]] = "wpk.weight"() {value = dense_resource<[[GCR:gbn_c.*]]> : tensor<2xf32>}
// CHECK:         "wpk.gemm"(%arg0, %[[GB]], %[[GC]]) {alpha = 5.000000e-01 : f32, beta = 1.000000e+00 : f32, trans_a = false, trans_b = true}
// CHECK-NOT:     "wpk.batch_norm"
func.func @gemm(%x: tensor<1x3xf32>) -> tensor<1x2xf32> {
  %bm = "wpk.weight"() {value = dense_resource<g23> : tensor<2x3xf32>} : () -> tensor<2x3xf32>
  %b = "wpk.weight"() {value = dense_resource<b> : tensor<2xf32>} : () -> tensor<2xf32>
  %g = "wpk.weight"() {value = dense_resource<gamma> : tensor<2xf32>} : () -> tensor<2xf32>
  %be = "wpk.weight"() {value = dense_resource<beta> : tensor<2xf32>} : () -> tensor<2xf32>
  %m = "wpk.weight"() {value = dense_resource<mean> : tensor<2xf32>} : () -> tensor<2xf32>
  %v = "wpk.weight"() {value = dense_resource<var> : tensor<2xf32>} : () -> tensor<2xf32>
  %p = "wpk.gemm"(%x, %bm, %b) {alpha = 0.5 : f32, beta = 1.0 : f32, trans_a = false, trans_b = true} : (tensor<1x3xf32>, tensor<2x3xf32>, tensor<2xf32>) -> tensor<1x2xf32>
  %y = "wpk.batch_norm"(%p, %g, %be, %m, %v) {epsilon = 1.0 : f32} : (tensor<1x2xf32>, tensor<2xf32>, tensor<2xf32>, tensor<2xf32>, tensor<2xf32>) -> tensor<1x2xf32> loc("gbn")
  return %y : tensor<1x2xf32>
}

// A 2-D matmul with a constant right operand becomes a gemm with c = t.
// CHECK-LABEL: func.func @matmul(
// CHECK:         %[[G:.*]] = "wpk.gemm"(%arg0, %{{.*}}, %{{.*}}) {alpha = 1.000000e+00 : f32, beta = 1.000000e+00 : f32, trans_a = false, trans_b = false} : (tensor<4x3xf32>, tensor<3x2xf32>, tensor<2xf32>) -> tensor<4x2xf32>
// CHECK-NEXT:    return %[[G]]
func.func @matmul(%x: tensor<4x3xf32>) -> tensor<4x2xf32> {
  %bt = "wpk.weight"() {value = dense_resource<g32> : tensor<3x2xf32>} : () -> tensor<3x2xf32>
  %g = "wpk.weight"() {value = dense_resource<gamma> : tensor<2xf32>} : () -> tensor<2xf32>
  %be = "wpk.weight"() {value = dense_resource<beta> : tensor<2xf32>} : () -> tensor<2xf32>
  %m = "wpk.weight"() {value = dense_resource<mean> : tensor<2xf32>} : () -> tensor<2xf32>
  %v = "wpk.weight"() {value = dense_resource<var> : tensor<2xf32>} : () -> tensor<2xf32>
  %p = "wpk.matmul"(%x, %bt) : (tensor<4x3xf32>, tensor<3x2xf32>) -> tensor<4x2xf32>
  %y = "wpk.batch_norm"(%p, %g, %be, %m, %v) {epsilon = 1.0 : f32} : (tensor<4x2xf32>, tensor<2xf32>, tensor<2xf32>, tensor<2xf32>, tensor<2xf32>) -> tensor<4x2xf32>
  return %y : tensor<4x2xf32>
}

// No foldable producer (a relu; and a conv whose result has a second use): a per-channel
// scale and shift, s and t shaped [2, 1, 1].
// CHECK-LABEL: func.func @scale_shift(
// CHECK-DAG:     %[[S:.*]] = "wpk.weight"() {value = dense_resource<[[SR:ss_scale.*]]> : tensor<2x1x1xf32>}
// CHECK-DAG:     %[[T:.*]] = "wpk.weight"() {value = dense_resource<[[TR:ss_shift.*]]> : tensor<2x1x1xf32>}
// CHECK-DAG:     %[[R:.*]] = "wpk.relu"(%arg0)
// CHECK:         "wpk.elementwise"(%[[R]], %[[S]], %[[T]]) {operandSegmentSizes = array<i32: 1, 1, 1, 0>, params = array<f32>, steps = ["mul", "add"]} : (tensor<1x2x4x4xf32>, tensor<2x1x1xf32>, tensor<2x1x1xf32>) -> tensor<1x2x4x4xf32>
// CHECK:         %[[C:.*]] = "wpk.conv2d"
// CHECK:         "wpk.elementwise"(%[[C]], %{{.*}}, %{{.*}}) {{.*}}steps = ["mul", "add"]
// CHECK-NOT:     "wpk.batch_norm"
func.func @scale_shift(%x: tensor<1x2x4x4xf32>, %x1: tensor<1x1x4x4xf32>) -> (tensor<1x2x4x4xf32>, tensor<1x2x4x4xf32>, tensor<1x2x4x4xf32>) {
  %w = "wpk.weight"() {value = dense_resource<w> : tensor<2x1x1x1xf32>} : () -> tensor<2x1x1x1xf32>
  %g = "wpk.weight"() {value = dense_resource<gamma> : tensor<2xf32>} : () -> tensor<2xf32>
  %be = "wpk.weight"() {value = dense_resource<beta> : tensor<2xf32>} : () -> tensor<2xf32>
  %m = "wpk.weight"() {value = dense_resource<mean> : tensor<2xf32>} : () -> tensor<2xf32>
  %v = "wpk.weight"() {value = dense_resource<var> : tensor<2xf32>} : () -> tensor<2xf32>
  %r = "wpk.relu"(%x) : (tensor<1x2x4x4xf32>) -> tensor<1x2x4x4xf32>
  %y = "wpk.batch_norm"(%r, %g, %be, %m, %v) {epsilon = 1.0 : f32} : (tensor<1x2x4x4xf32>, tensor<2xf32>, tensor<2xf32>, tensor<2xf32>, tensor<2xf32>) -> tensor<1x2x4x4xf32> loc("ss")
  %c = "wpk.conv2d"(%x1, %w) {strides = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>, groups = 1 : i64} : (tensor<1x1x4x4xf32>, tensor<2x1x1x1xf32>) -> tensor<1x2x4x4xf32>
  %z = "wpk.batch_norm"(%c, %g, %be, %m, %v) {epsilon = 1.0 : f32} : (tensor<1x2x4x4xf32>, tensor<2xf32>, tensor<2xf32>, tensor<2xf32>, tensor<2xf32>) -> tensor<1x2x4x4xf32>
  return %y, %z, %c : tensor<1x2x4x4xf32>, tensor<1x2x4x4xf32>, tensor<1x2x4x4xf32>
}

// Parameters that are not constants: unchanged.
// CHECK-LABEL: func.func @dynamic_parameters(
// CHECK:         "wpk.batch_norm"(%arg0, %arg1, %arg1, %arg1, %arg1)
func.func @dynamic_parameters(%x: tensor<1x2x4x4xf32>, %p: tensor<2xf32>) -> tensor<1x2x4x4xf32> {
  %y = "wpk.batch_norm"(%x, %p, %p, %p, %p) {epsilon = 1.0 : f32} : (tensor<1x2x4x4xf32>, tensor<2xf32>, tensor<2xf32>, tensor<2xf32>, tensor<2xf32>) -> tensor<1x2x4x4xf32>
  return %y : tensor<1x2x4x4xf32>
}

}

// CHECK:       dialect_resources: {
// CHECK-DAG:     [[CW]]: "0x400000000000803F0000C040"
// CHECK-DAG:     [[CB]]: "0x400000000000003F0000C0C0"
// CHECK-DAG:     [[GBR]]: "0x40000000000000000000003F0000803F0000C0400000004100002041"
// CHECK-DAG:     [[GCR]]: "0x400000000000003F0000C0C0"
// CHECK-DAG:     [[SR]]: "0x400000000000003F00000040"
// CHECK-DAG:     [[TR]]: "0x4000000000000000000080C0"

{-#
  dialect_resources: {
    builtin: {
      w: "0x040000000000004000004040",
      b: "0x040000000000803F000080BF",
      gamma: "0x040000000000803F00000040",
      beta: "0x040000000000003F00000000",
      mean: "0x040000000000803F00000040",
      var: "0x040000000000404000000000",
      g23: "0x04000000000000000000803F0000004000004040000080400000A040",
      g32: "0x0400000000000000000040400000803F00008040000000400000A040"
    }
  }
#-}
