// wpk-convert-layout: after fusion, convolutions run in the blocked layout NCHW[8]c with their
// filters packed at compile time; the residual add (a conv epilogue), the max pooling and a
// per-channel scale follow them; reorders only where the region begins (the graph input, in
// blocks of one channel for the 3-channel first conv) and ends (before the global pooling).
// RUN: wpk-opt %s --split-input-file --wpk-fuse --wpk-convert-layout=block=8 --wpk-verify | FileCheck %s
// RUN: wpk-opt %s --split-input-file --wpk-fuse --wpk-convert-layout=block=8 --wpk-lower | FileCheck %s --check-prefix=LOWER
// RUN: not wpk-opt %s --split-input-file --wpk-convert-layout=block=x 2>&1 | FileCheck %s --check-prefix=BAD

// LOWER-NOT: "wpk.{{[a-z_0-9]+}}"(
// LOWER: wpk.named_op = "wpk.blocked_conv2d"
// BAD: wpk-convert-layout: block must be a positive integer, got 'x'

// CHECK-LABEL: func.func @main(
// CHECK:         %[[IN:.*]] = "wpk.to_blocked"(%arg0) {block = 1 : i64} : (tensor<1x3x8x8xf32>) -> tensor<1x3x8x8x1xf32>
// CHECK:         %[[C0:.*]] = "wpk.blocked_conv2d"(%[[IN]], {{.*}}) {{{.*}}epilogue = ["relu"]{{.*}}groups = 1 : i64{{.*}} : (tensor<1x3x8x8x1xf32>, tensor<2x3x3x3x1x8xf32>, tensor<2x8xf32>) -> tensor<1x2x8x8x8xf32>
// CHECK:         %[[C1:.*]] = "wpk.blocked_conv2d"(%[[C0]], {{.*}}, %[[C0]]) {{{.*}}epilogue = ["add", "relu"]{{.*}} : (tensor<1x2x8x8x8xf32>, tensor<2x2x3x3x8x8xf32>, tensor<2x8xf32>, tensor<1x2x8x8x8xf32>) -> tensor<1x2x8x8x8xf32>
// CHECK:         %[[P:.*]] = "wpk.max_pool"(%[[C1]]) {{.*}} : (tensor<1x2x8x8x8xf32>) -> tensor<1x2x4x4x8xf32>
// CHECK:         %[[S:.*]] = "wpk.elementwise"(%[[P]], {{.*}}) {{{.*}}steps = ["mul"]} : (tensor<1x2x4x4x8xf32>, tensor<1x2x1x1x8xf32>) -> tensor<1x2x4x4x8xf32>
// CHECK:         %[[OUT:.*]] = "wpk.from_blocked"(%[[S]]) {channels = 16 : i64} : (tensor<1x2x4x4x8xf32>) -> tensor<1x16x4x4xf32>
// CHECK:         "wpk.global_avg_pool"(%[[OUT]])
// CHECK-NOT:     "wpk.to_blocked"
// CHECK-NOT:     "wpk.conv2d"
func.func @main(%x: tensor<1x3x8x8xf32>) -> tensor<1x16x1x1xf32> {
  %w0 = "wpk.constant"() {value = dense<0.125> : tensor<16x3x3x3xf32>} : () -> tensor<16x3x3x3xf32>
  %b0 = "wpk.constant"() {value = dense<0.5> : tensor<16xf32>} : () -> tensor<16xf32>
  %w1 = "wpk.constant"() {value = dense<-0.25> : tensor<16x16x3x3xf32>} : () -> tensor<16x16x3x3xf32>
  %b1 = "wpk.constant"() {value = dense<1.0> : tensor<16xf32>} : () -> tensor<16xf32>
  %s = "wpk.constant"() {value = dense<2.0> : tensor<16x1x1xf32>} : () -> tensor<16x1x1xf32>
  %c0 = "wpk.conv2d"(%x, %w0, %b0) {strides = array<i64: 1, 1>, pads = array<i64: 1, 1, 1, 1>, dilations = array<i64: 1, 1>, groups = 1 : i64} : (tensor<1x3x8x8xf32>, tensor<16x3x3x3xf32>, tensor<16xf32>) -> tensor<1x16x8x8xf32>
  %r0 = "wpk.relu"(%c0) : (tensor<1x16x8x8xf32>) -> tensor<1x16x8x8xf32>
  %c1 = "wpk.conv2d"(%r0, %w1, %b1) {strides = array<i64: 1, 1>, pads = array<i64: 1, 1, 1, 1>, dilations = array<i64: 1, 1>, groups = 1 : i64} : (tensor<1x16x8x8xf32>, tensor<16x16x3x3xf32>, tensor<16xf32>) -> tensor<1x16x8x8xf32>
  %a = "wpk.add"(%c1, %r0) : (tensor<1x16x8x8xf32>, tensor<1x16x8x8xf32>) -> tensor<1x16x8x8xf32>
  %r1 = "wpk.relu"(%a) : (tensor<1x16x8x8xf32>) -> tensor<1x16x8x8xf32>
  %p = "wpk.max_pool"(%r1) {kernel_shape = array<i64: 2, 2>, strides = array<i64: 2, 2>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>, ceil_mode = false} : (tensor<1x16x8x8xf32>) -> tensor<1x16x4x4xf32>
  %m = "wpk.mul"(%p, %s) : (tensor<1x16x4x4xf32>, tensor<16x1x1xf32>) -> tensor<1x16x4x4xf32>
  %g = "wpk.global_avg_pool"(%m) : (tensor<1x16x4x4xf32>) -> tensor<1x16x1x1xf32>
  return %g : tensor<1x16x1x1xf32>
}

// -----

// A single conv with a filter computed at run time stays NCHW.
// CHECK-LABEL: func.func @runtime_filter(
// CHECK-NOT:     blocked
// CHECK:         "wpk.conv2d"
func.func @runtime_filter(%x: tensor<1x8x4x4xf32>, %w: tensor<8x8x1x1xf32>) -> tensor<1x8x4x4xf32> {
  %c = "wpk.conv2d"(%x, %w) {strides = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>, groups = 1 : i64} : (tensor<1x8x4x4xf32>, tensor<8x8x1x1xf32>) -> tensor<1x8x4x4xf32>
  return %c : tensor<1x8x4x4xf32>
}
