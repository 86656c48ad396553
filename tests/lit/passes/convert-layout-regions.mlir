// wpk-convert-layout{regions=...}: each region (ops joined through blocked values, named by its
// first conv) takes the listed choice, nchw or a block size; a region not listed keeps the rule
// (block=8 here); a name that is no region is one error naming it and the regions there are.
// RUN: wpk-opt %s --wpk-fuse --wpk-convert-layout="block=8" --wpk-verify | FileCheck %s --check-prefix=RULE
// RUN: wpk-opt %s --wpk-fuse --wpk-convert-layout="block=8 regions=conv_a:nchw,conv_b:16" --wpk-verify | FileCheck %s --check-prefix=CHOSEN
// RUN: wpk-opt %s --wpk-fuse --wpk-convert-layout="block=8 regions=conv_b:nchw" --wpk-verify | FileCheck %s --check-prefix=KEPT
// RUN: not wpk-opt %s --wpk-fuse --wpk-convert-layout="block=8 regions=conv_c:8" 2>&1 | FileCheck %s --check-prefix=UNKNOWN
// RUN: not wpk-opt %s --wpk-convert-layout="regions=conv_a:x" 2>&1 | FileCheck %s --check-prefix=BAD

// RULE:      "wpk.blocked_conv2d"({{.*}}) -> tensor<1x2x8x8x8xf32>
// RULE:      "wpk.blocked_conv2d"({{.*}}) -> tensor<1x2x1x1x8xf32>
// RULE-NOT:  "wpk.{{(fused_)?}}conv2d"

// CHOSEN:     "wpk.fused_conv2d"({{.*}}) -> tensor<1x16x8x8xf32>
// CHOSEN:     "wpk.global_avg_pool"
// CHOSEN:     "wpk.to_blocked"({{.*}}) {block = 16 : i64} : (tensor<1x16x1x1xf32>) -> tensor<1x1x1x1x16xf32>
// CHOSEN:     "wpk.blocked_conv2d"({{.*}}) -> tensor<1x1x1x1x16xf32>
// CHOSEN-NOT: "wpk.blocked_conv2d"

// KEPT:      "wpk.blocked_conv2d"({{.*}}) -> tensor<1x2x8x8x8xf32>
// KEPT:      "wpk.conv2d"({{.*}}) -> tensor<1x16x1x1xf32>

// UNKNOWN: error: convert_layout_pass: no region named 'conv_c' (regions: conv_a, conv_b)
// BAD: wpk-convert-layout: bad region choice 'conv_a:x' (expected name:nchw or name:<block>)

func.func @main(%x: tensor<1x3x8x8xf32>) -> tensor<1x16x1x1xf32> {
  %w0 = "wpk.constant"() {value = dense<0.125> : tensor<16x3x3x3xf32>} : () -> tensor<16x3x3x3xf32>
  %b0 = "wpk.constant"() {value = dense<0.5> : tensor<16xf32>} : () -> tensor<16xf32>
  %w1 = "wpk.constant"() {value = dense<-0.25> : tensor<16x16x1x1xf32>} : () -> tensor<16x16x1x1xf32>
  %b1 = "wpk.constant"() {value = dense<1.0> : tensor<16xf32>} : () -> tensor<16xf32>
  %c0 = "wpk.conv2d"(%x, %w0, %b0) {strides = array<i64: 1, 1>, pads = array<i64: 1, 1, 1, 1>, dilations = array<i64: 1, 1>, groups = 1 : i64} : (tensor<1x3x8x8xf32>, tensor<16x3x3x3xf32>, tensor<16xf32>) -> tensor<1x16x8x8xf32> loc("conv_a")
  %r0 = "wpk.relu"(%c0) : (tensor<1x16x8x8xf32>) -> tensor<1x16x8x8xf32>
  %g = "wpk.global_avg_pool"(%r0) : (tensor<1x16x8x8xf32>) -> tensor<1x16x1x1xf32>
  %c1 = "wpk.conv2d"(%g, %w1, %b1) {strides = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>, groups = 1 : i64} : (tensor<1x16x1x1xf32>, tensor<16x16x1x1xf32>, tensor<16xf32>) -> tensor<1x16x1x1xf32> loc("conv_b")
  return %c1 : tensor<1x16x1x1xf32>
}
