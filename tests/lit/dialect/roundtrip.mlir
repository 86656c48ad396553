// Every wpk op parses, verifies (IRDL and wpk-verify) and prints back in generic form,
// including wpk.weight with its dense_resource blob.
// RUN: wpk-opt %s | FileCheck %s
// RUN: wpk-opt %s | wpk-opt | FileCheck %s
// RUN: wpk-opt --wpk-verify %s | FileCheck %s
// RUN: mlir-opt --irdl-file=%irdl %s | FileCheck %s

func.func @all_ops(%x: tensor<1x2x8x8xf32>, %m: tensor<2x3xf32>) -> (tensor<1xf32>, tensor<1x2xf32>) {
  %w = "wpk.weight"() {value = dense_resource<conv_w> : tensor<2x2x1x1xf32>} : () -> tensor<2x2x1x1xf32>
  %b = "wpk.constant"() {value = dense<[0.5, -0.5]> : tensor<2xf32>} : () -> tensor<2xf32>
  %b3 = "wpk.constant"() {value = dense<0.25> : tensor<3xf32>} : () -> tensor<3xf32>
  %dw = "wpk.constant"() {value = dense<1.0> : tensor<2x1x3x3xf32>} : () -> tensor<2x1x3x3xf32>
  %c = "wpk.conv2d"(%x, %w, %b) {strides = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>, groups = 1 : i64} : (tensor<1x2x8x8xf32>, tensor<2x2x1x1xf32>, tensor<2xf32>) -> tensor<1x2x8x8xf32>
  %c2 = "wpk.conv2d"(%c, %dw) {strides = array<i64: 1, 1>, pads = array<i64: 1, 1, 1, 1>, dilations = array<i64: 1, 1>, groups = 2 : i64} : (tensor<1x2x8x8xf32>, tensor<2x1x3x3xf32>) -> tensor<1x2x8x8xf32>
  %r = "wpk.relu"(%c2) : (tensor<1x2x8x8xf32>) -> tensor<1x2x8x8xf32>
  %s = "wpk.sigmoid"(%r) : (tensor<1x2x8x8xf32>) -> tensor<1x2x8x8xf32>
  %t = "wpk.tanh"(%s) : (tensor<1x2x8x8xf32>) -> tensor<1x2x8x8xf32>
  %lr = "wpk.leaky_relu"(%t) {alpha = 0.1 : f32} : (tensor<1x2x8x8xf32>) -> tensor<1x2x8x8xf32>
  %cl = "wpk.clip"(%lr) {min = 0.0 : f32, max = 6.0 : f32} : (tensor<1x2x8x8xf32>) -> tensor<1x2x8x8xf32>
  %bn = "wpk.batch_norm"(%cl, %b, %b, %b, %b) {epsilon = 1.0e-05 : f32} : (tensor<1x2x8x8xf32>, tensor<2xf32>, tensor<2xf32>, tensor<2xf32>, tensor<2xf32>) -> tensor<1x2x8x8xf32>
  %mp = "wpk.max_pool"(%bn) {kernel_shape = array<i64: 2, 2>, strides = array<i64: 2, 2>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>, ceil_mode = false} : (tensor<1x2x8x8xf32>) -> tensor<1x2x4x4xf32>
  %ap = "wpk.avg_pool"(%mp) {kernel_shape = array<i64: 3, 3>, strides = array<i64: 2, 2>, pads = array<i64: 1, 1, 1, 1>, dilations = array<i64: 1, 1>, ceil_mode = false, count_include_pad = false} : (tensor<1x2x4x4xf32>) -> tensor<1x2x2x2xf32>
  %g = "wpk.global_avg_pool"(%ap) : (tensor<1x2x2x2xf32>) -> tensor<1x2x1x1xf32>
  %f = "wpk.flatten"(%g) {axis = 1 : i64} : (tensor<1x2x1x1xf32>) -> tensor<1x2xf32>
  %tr = "wpk.transpose"(%m) {perm = array<i64: 1, 0>} : (tensor<2x3xf32>) -> tensor<3x2xf32>
  %gm = "wpk.gemm"(%f, %tr, %b3) {alpha = 1.0 : f32, beta = 1.0 : f32, trans_a = false, trans_b = true} : (tensor<1x2xf32>, tensor<3x2xf32>, tensor<3xf32>) -> tensor<1x3xf32>
  %mm = "wpk.matmul"(%gm, %tr) : (tensor<1x3xf32>, tensor<3x2xf32>) -> tensor<1x2xf32>
  %add = "wpk.add"(%mm, %b) : (tensor<1x2xf32>, tensor<2xf32>) -> tensor<1x2xf32>
  %sub = "wpk.sub"(%add, %b) : (tensor<1x2xf32>, tensor<2xf32>) -> tensor<1x2xf32>
  %mul = "wpk.mul"(%sub, %add) : (tensor<1x2xf32>, tensor<1x2xf32>) -> tensor<1x2xf32>
  %div = "wpk.div"(%mul, %b) : (tensor<1x2xf32>, tensor<2xf32>) -> tensor<1x2xf32>
  %sm = "wpk.softmax"(%div) {axis = 1 : i64} : (tensor<1x2xf32>) -> tensor<1x2xf32>
  %rs = "wpk.reshape"(%sm) : (tensor<1x2xf32>) -> tensor<2xf32>
  %cc = "wpk.concat"(%rs, %b3) {axis = 0 : i64} : (tensor<2xf32>, tensor<3xf32>) -> tensor<5xf32>
  %pd = "wpk.pad"(%cc) {pads = array<i64: 1, -2>, mode = "reflect", value = 0.0 : f32} : (tensor<5xf32>) -> tensor<4xf32>
  %rm = "wpk.reduce_mean"(%pd) {axes = array<i64: 0>, keepdims = true} : (tensor<4xf32>) -> tensor<1xf32>
  return %rm, %sm : tensor<1xf32>, tensor<1x2xf32>
}

{-#
  dialect_resources: {
    builtin: {
      conv_w: "0x040000000000803F000000400000404000008040"
    }
  }
#-}

// CHECK-LABEL: func.func @all_ops(
// CHECK-SAME:      %[[X:.*]]: tensor<1x2x8x8xf32>, %[[M:.*]]: tensor<2x3xf32>)
// CHECK:         %[[W:.*]] = "wpk.weight"() {value = dense_resource<conv_w> : tensor<2x2x1x1xf32>} : () -> tensor<2x2x1x1xf32>
// CHECK:         %[[B:.*]] = "wpk.constant"() {value = dense<[5.000000e-01, -5.000000e-01]> : tensor<2xf32>} : () -> tensor<2xf32>
// CHECK:         %[[B3:.*]] = "wpk.constant"() {value = dense<2.500000e-01> : tensor<3xf32>}
// CHECK:         %[[DW:.*]] = "wpk.constant"() {value = dense<1.000000e+00> : tensor<2x1x3x3xf32>}
// CHECK:         %[[C:.*]] = "wpk.conv2d"(%[[X]], %[[W]], %[[B]]) {dilations = array<i64: 1, 1>, groups = 1 : i64, pads = array<i64: 0, 0, 0, 0>, strides = array<i64: 1, 1>} : (tensor<1x2x8x8xf32>, tensor<2x2x1x1xf32>, tensor<2xf32>) -> tensor<1x2x8x8xf32>
// CHECK:         %[[C2:.*]] = "wpk.conv2d"(%[[C]], %[[DW]]) {{{.*}}groups = 2 : i64, pads = array<i64: 1, 1, 1, 1>{{.*}}} : (tensor<1x2x8x8xf32>, tensor<2x1x3x3xf32>) -> tensor<1x2x8x8xf32>
// CHECK:         %[[R:.*]] = "wpk.relu"(%[[C2]]) : (tensor<1x2x8x8xf32>) -> tensor<1x2x8x8xf32>
// CHECK:         %[[S:.*]] = "wpk.sigmoid"(%[[R]])
// CHECK:         %[[T:.*]] = "wpk.tanh"(%[[S]])
// CHECK:         %[[LR:.*]] = "wpk.leaky_relu"(%[[T]]) {alpha = 1.000000e-01 : f32}
// CHECK:         %[[CL:.*]] = "wpk.clip"(%[[LR]]) {max = 6.000000e+00 : f32, min = 0.000000e+00 : f32}
// CHECK:         %[[BN:.*]] = "wpk.batch_norm"(%[[CL]], %[[B]], %[[B]], %[[B]], %[[B]]) {epsilon = 9.99999974E-6 : f32}
// CHECK:         %[[MP:.*]] = "wpk.max_pool"(%[[BN]]) {ceil_mode = false, dilations = array<i64: 1, 1>, kernel_shape = array<i64: 2, 2>, pads = array<i64: 0, 0, 0, 0>, strides = array<i64: 2, 2>} : (tensor<1x2x8x8xf32>) -> tensor<1x2x4x4xf32>
// CHECK:         %[[AP:.*]] = "wpk.avg_pool"(%[[MP]]) {ceil_mode = false, count_include_pad = false, dilations = array<i64: 1, 1>, kernel_shape = array<i64: 3, 3>, pads = array<i64: 1, 1, 1, 1>, strides = array<i64: 2, 2>} : (tensor<1x2x4x4xf32>) -> tensor<1x2x2x2xf32>
// CHECK:         %[[G:.*]] = "wpk.global_avg_pool"(%[[AP]]) : (tensor<1x2x2x2xf32>) -> tensor<1x2x1x1xf32>
// CHECK:         %[[F:.*]] = "wpk.flatten"(%[[G]]) {axis = 1 : i64} : (tensor<1x2x1x1xf32>) -> tensor<1x2xf32>
// CHECK:         %[[TR:.*]] = "wpk.transpose"(%[[M]]) {perm = array<i64: 1, 0>} : (tensor<2x3xf32>) -> tensor<3x2xf32>
// CHECK:         %[[GM:.*]] = "wpk.gemm"(%[[F]], %[[TR]], %[[B3]]) {alpha = 1.000000e+00 : f32, beta = 1.000000e+00 : f32, trans_a = false, trans_b = true}
// CHECK:         %[[MM:.*]] = "wpk.matmul"(%[[GM]], %[[TR]]) : (tensor<1x3xf32>, tensor<3x2xf32>) -> tensor<1x2xf32>
// CHECK:         %[[ADD:.*]] = "wpk.add"(%[[MM]], %[[B]]) : (tensor<1x2xf32>, tensor<2xf32>) -> tensor<1x2xf32>
// CHECK:         %[[SUB:.*]] = "wpk.sub"(%[[ADD]], %[[B]])
// CHECK:         %[[MUL:.*]] = "wpk.mul"(%[[SUB]], %[[ADD]])
// CHECK:         %[[DIV:.*]] = "wpk.div"(%[[MUL]], %[[B]])
// CHECK:         %[[SM:.*]] = "wpk.softmax"(%[[DIV]]) {axis = 1 : i64}
// CHECK:         %[[RS:.*]] = "wpk.reshape"(%[[SM]]) : (tensor<1x2xf32>) -> tensor<2xf32>
// CHECK:         %[[CC:.*]] = "wpk.concat"(%[[RS]], %[[B3]]) {axis = 0 : i64} : (tensor<2xf32>, tensor<3xf32>) -> tensor<5xf32>
// CHECK:         %[[PD:.*]] = "wpk.pad"(%[[CC]]) {mode = "reflect", pads = array<i64: 1, -2>, value = 0.000000e+00 : f32} : (tensor<5xf32>) -> tensor<4xf32>
// CHECK:         %[[RM:.*]] = "wpk.reduce_mean"(%[[PD]]) {axes = array<i64: 0>, keepdims = true} : (tensor<4xf32>) -> tensor<1xf32>
// CHECK:         return %[[RM]], %[[SM]] : tensor<1xf32>, tensor<1x2xf32>

// The blob survives the round trip.
// CHECK:       {-#
// CHECK-NEXT:    dialect_resources: {
// CHECK-NEXT:      builtin: {
// CHECK-NEXT:        conv_w: "0x040000000000803F000000400000404000008040"
// CHECK-NEXT:      }
// CHECK-NEXT:    }
// CHECK-NEXT:  #-}
