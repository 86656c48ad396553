// wpk-fuse-attention: matmul(q, k^T) -> scale -> + mask -> softmax(axis 3) -> matmul(., v)
// becomes one wpk.attention(q, k, v, mask) {scale}; chains with a second user of an
// intermediate, or other softmax axes, stay as they are.
// RUN: wpk-opt %s --wpk-verify --wpk-fold-transpose --wpk-fuse-attention --wpk-verify | FileCheck %s
// RUN: wpk-opt %s --wpk-fold-transpose --wpk-fuse-attention --wpk-lower | FileCheck %s --check-prefix=LOWER

// LOWER-NOT: "wpk.

module {

// Div by sqrt(4) = 2 and a [B, 1, 1, T] run-time mask: scale 0.5, the mask an operand.
// CHECK-LABEL: func.func @div_mask(
// CHECK-NEXT:    %[[A:.*]] = "wpk.attention"(%arg0, %arg1, %arg2, %arg3) {scale = 5.000000e-01 : f32} : (tensor<1x2x5x4xf32>, tensor<1x2x6x4xf32>, tensor<1x2x6x3xf32>, tensor<1x1x1x6xf32>) -> tensor<1x2x5x3xf32>
// CHECK-NEXT:    return %[[A]]
// LOWER-LABEL: func.func @div_mask(
// LOWER:         linalg.batch_matmul indexing_maps = [#{{.*}}, #{{.*}}, #{{.*}}] ins(%{{.*}}, %{{.*}} : tensor<2x5x4xf32>, tensor<2x6x4xf32>)
// LOWER:         math.exp
// LOWER:         linalg.batch_matmul ins(%{{.*}}, %{{.*}} : tensor<2x5x6xf32>, tensor<2x6x3xf32>)
// LOWER:         arith.divf
func.func @div_mask(%q: tensor<1x2x5x4xf32>, %k: tensor<1x2x6x4xf32>, %v: tensor<1x2x6x3xf32>, %mask: tensor<1x1x1x6xf32>) -> tensor<1x2x5x3xf32> {
  %c = "wpk.constant"() {value = dense<2.0> : tensor<f32>} : () -> tensor<f32>
  %kt = "wpk.transpose"(%k) {perm = array<i64: 0, 1, 3, 2>} : (tensor<1x2x6x4xf32>) -> tensor<1x2x4x6xf32>
  %s = "wpk.matmul"(%q, %kt) : (tensor<1x2x5x4xf32>, tensor<1x2x4x6xf32>) -> tensor<1x2x5x6xf32>
  %d = "wpk.div"(%s, %c) : (tensor<1x2x5x6xf32>, tensor<f32>) -> tensor<1x2x5x6xf32>
  %m = "wpk.add"(%d, %mask) : (tensor<1x2x5x6xf32>, tensor<1x1x1x6xf32>) -> tensor<1x2x5x6xf32>
  %p = "wpk.softmax"(%m) {axis = 3 : i64} : (tensor<1x2x5x6xf32>) -> tensor<1x2x5x6xf32>
  %y = "wpk.matmul"(%p, %v) : (tensor<1x2x5x6xf32>, tensor<1x2x6x3xf32>) -> tensor<1x2x5x3xf32>
  return %y : tensor<1x2x5x3xf32>
}

// Mul by 0.25 on q and on k (BERT's split 1/sqrt(d)), a constant mask first and no scale on the
// scores: scale 0.0625, the mask an [S, T] operand.
// CHECK-LABEL: func.func @scaled_q_k(
// CHECK-NEXT:    %[[MASK:.*]] = "wpk.constant"
// CHECK-NEXT:    %[[A:.*]] = "wpk.attention"(%arg0, %arg1, %arg2, %[[MASK]]) {scale = 6.250000e-02 : f32}
// CHECK-NEXT:    return %[[A]]
func.func @scaled_q_k(%q: tensor<1x2x5x4xf32>, %k: tensor<1x2x6x4xf32>, %v: tensor<1x2x6x3xf32>) -> tensor<1x2x5x3xf32> {
  %c = "wpk.constant"() {value = dense<0.25> : tensor<1xf32>} : () -> tensor<1xf32>
  %mask = "wpk.constant"() {value = dense<-1.0> : tensor<5x6xf32>} : () -> tensor<5x6xf32>
  %qs = "wpk.mul"(%q, %c) : (tensor<1x2x5x4xf32>, tensor<1xf32>) -> tensor<1x2x5x4xf32>
  %ks = "wpk.mul"(%c, %k) : (tensor<1xf32>, tensor<1x2x6x4xf32>) -> tensor<1x2x6x4xf32>
  %kt = "wpk.transpose"(%ks) {perm = array<i64: 0, 1, 3, 2>} : (tensor<1x2x6x4xf32>) -> tensor<1x2x4x6xf32>
  %s = "wpk.matmul"(%qs, %kt) : (tensor<1x2x5x4xf32>, tensor<1x2x4x6xf32>) -> tensor<1x2x5x6xf32>
  %m = "wpk.add"(%mask, %s) : (tensor<5x6xf32>, tensor<1x2x5x6xf32>) -> tensor<1x2x5x6xf32>
  %p = "wpk.softmax"(%m) {axis = 3 : i64} : (tensor<1x2x5x6xf32>) -> tensor<1x2x5x6xf32>
  %y = "wpk.matmul"(%p, %v) : (tensor<1x2x5x6xf32>, tensor<1x2x6x3xf32>) -> tensor<1x2x5x3xf32>
  return %y : tensor<1x2x5x3xf32>
}

// No scale, no mask: scale 1.
// CHECK-LABEL: func.func @plain(
// CHECK-NEXT:    %[[A:.*]] = "wpk.attention"(%arg0, %arg1, %arg2) {scale = 1.000000e+00 : f32}
// CHECK-NEXT:    return %[[A]]
func.func @plain(%q: tensor<2x2x5x4xf32>, %k: tensor<2x2x6x4xf32>, %v: tensor<2x2x6x3xf32>) -> tensor<2x2x5x3xf32> {
  %kt = "wpk.transpose"(%k) {perm = array<i64: 0, 1, 3, 2>} : (tensor<2x2x6x4xf32>) -> tensor<2x2x4x6xf32>
  %s = "wpk.matmul"(%q, %kt) : (tensor<2x2x5x4xf32>, tensor<2x2x4x6xf32>) -> tensor<2x2x5x6xf32>
  %p = "wpk.softmax"(%s) {axis = 3 : i64} : (tensor<2x2x5x6xf32>) -> tensor<2x2x5x6xf32>
  %y = "wpk.matmul"(%p, %v) : (tensor<2x2x5x6xf32>, tensor<2x2x6x3xf32>) -> tensor<2x2x5x3xf32>
  return %y : tensor<2x2x5x3xf32>
}

// torch's multi-head attention export (ViT): q and K^T scaled by c, K^T a 3-D [h, d, t]
// transpose viewed as [1, h, d, t]: k becomes that view of x (the swap folded away).
// CHECK-LABEL: func.func @viewed_kt(
// CHECK-NEXT:    %[[K:.*]] = "wpk.reshape"(%arg1) : (tensor<2x6x4xf32>) -> tensor<1x2x6x4xf32>
// CHECK-NEXT:    %[[A:.*]] = "wpk.attention"(%arg0, %[[K]], %arg2) {scale = 2.500000e-01 : f32}
// CHECK-NEXT:    return %[[A]]
func.func @viewed_kt(%q: tensor<1x2x5x4xf32>, %k: tensor<2x6x4xf32>, %v: tensor<1x2x6x3xf32>) -> tensor<1x2x5x3xf32> {
  %c = "wpk.constant"() {value = dense<0.5> : tensor<1xf32>} : () -> tensor<1xf32>
  %qs = "wpk.mul"(%q, %c) : (tensor<1x2x5x4xf32>, tensor<1xf32>) -> tensor<1x2x5x4xf32>
  %kt = "wpk.transpose"(%k) {perm = array<i64: 0, 2, 1>} : (tensor<2x6x4xf32>) -> tensor<2x4x6xf32>
  %kv = "wpk.reshape"(%kt) : (tensor<2x4x6xf32>) -> tensor<1x2x4x6xf32>
  %ks = "wpk.mul"(%kv, %c) : (tensor<1x2x4x6xf32>, tensor<1xf32>) -> tensor<1x2x4x6xf32>
  %s = "wpk.matmul"(%qs, %ks) : (tensor<1x2x5x4xf32>, tensor<1x2x4x6xf32>) -> tensor<1x2x5x6xf32>
  %p = "wpk.softmax"(%s) {axis = 3 : i64} : (tensor<1x2x5x6xf32>) -> tensor<1x2x5x6xf32>
  %y = "wpk.matmul"(%p, %v) : (tensor<1x2x5x6xf32>, tensor<1x2x6x3xf32>) -> tensor<1x2x5x3xf32>
  return %y : tensor<1x2x5x3xf32>
}

// Keys [B, T, H, D] transposed by [0, 2, 3, 1] and scaled after the transpose: the head split
// [0, 2, 1, 3] stays as k.
// CHECK-LABEL: func.func @heads_kt(
// CHECK-NEXT:    %[[K:.*]] = "wpk.transpose"(%arg1) {perm = array<i64: 0, 2, 1, 3>} : (tensor<1x6x2x4xf32>) -> tensor<1x2x6x4xf32>
// CHECK-NEXT:    %[[A:.*]] = "wpk.attention"(%arg0, %[[K]], %arg2) {scale = 5.000000e-01 : f32}
// CHECK-NEXT:    return %[[A]]
func.func @heads_kt(%q: tensor<1x2x5x4xf32>, %k: tensor<1x6x2x4xf32>, %v: tensor<1x2x6x3xf32>) -> tensor<1x2x5x3xf32> {
  %c = "wpk.constant"() {value = dense<0.5> : tensor<1xf32>} : () -> tensor<1xf32>
  %kt = "wpk.transpose"(%k) {perm = array<i64: 0, 2, 3, 1>} : (tensor<1x6x2x4xf32>) -> tensor<1x2x4x6xf32>
  %ks = "wpk.mul"(%kt, %c) : (tensor<1x2x4x6xf32>, tensor<1xf32>) -> tensor<1x2x4x6xf32>
  %s = "wpk.matmul"(%q, %ks) : (tensor<1x2x5x4xf32>, tensor<1x2x4x6xf32>) -> tensor<1x2x5x6xf32>
  %p = "wpk.softmax"(%s) {axis = 3 : i64} : (tensor<1x2x5x6xf32>) -> tensor<1x2x5x6xf32>
  %y = "wpk.matmul"(%p, %v) : (tensor<1x2x5x6xf32>, tensor<1x2x6x3xf32>) -> tensor<1x2x5x3xf32>
  return %y : tensor<1x2x5x3xf32>
}

// Not fused: the scaled scores have a second user (returned).
// CHECK-LABEL: func.func @scores_used_twice(
// CHECK-NOT:     "wpk.attention"
// CHECK:         "wpk.matmul_transposed"
// CHECK:         "wpk.softmax"
// CHECK:         "wpk.matmul"
// CHECK-NOT:     "wpk.attention"
func.func @scores_used_twice(%q: tensor<1x2x5x4xf32>, %k: tensor<1x2x6x4xf32>, %v: tensor<1x2x6x3xf32>) -> (tensor<1x2x5x3xf32>, tensor<1x2x5x6xf32>) {
  %c = "wpk.constant"() {value = dense<2.0> : tensor<f32>} : () -> tensor<f32>
  %kt = "wpk.transpose"(%k) {perm = array<i64: 0, 1, 3, 2>} : (tensor<1x2x6x4xf32>) -> tensor<1x2x4x6xf32>
  %s = "wpk.matmul"(%q, %kt) : (tensor<1x2x5x4xf32>, tensor<1x2x4x6xf32>) -> tensor<1x2x5x6xf32>
  %d = "wpk.div"(%s, %c) : (tensor<1x2x5x6xf32>, tensor<f32>) -> tensor<1x2x5x6xf32>
  %p = "wpk.softmax"(%d) {axis = 3 : i64} : (tensor<1x2x5x6xf32>) -> tensor<1x2x5x6xf32>
  %y = "wpk.matmul"(%p, %v) : (tensor<1x2x5x6xf32>, tensor<1x2x6x3xf32>) -> tensor<1x2x5x3xf32>
  return %y, %d : tensor<1x2x5x3xf32>, tensor<1x2x5x6xf32>
}

// Not fused: the probabilities have a second user, and a softmax along another axis.
// CHECK-LABEL: func.func @kept(
// CHECK-NOT:     "wpk.attention"
// CHECK:         "wpk.softmax"{{.*}}axis = 3
// CHECK:         "wpk.softmax"{{.*}}axis = 2
// CHECK-NOT:     "wpk.attention"
func.func @kept(%q: tensor<1x2x5x4xf32>, %k: tensor<1x2x6x4xf32>, %v: tensor<1x2x6x3xf32>, %v2: tensor<1x2x5x3xf32>) -> (tensor<1x2x5x3xf32>, tensor<1x2x5x6xf32>, tensor<1x2x6x3xf32>) {
  %kt = "wpk.transpose"(%k) {perm = array<i64: 0, 1, 3, 2>} : (tensor<1x2x6x4xf32>) -> tensor<1x2x4x6xf32>
  %s = "wpk.matmul"(%q, %kt) : (tensor<1x2x5x4xf32>, tensor<1x2x4x6xf32>) -> tensor<1x2x5x6xf32>
  %p = "wpk.softmax"(%s) {axis = 3 : i64} : (tensor<1x2x5x6xf32>) -> tensor<1x2x5x6xf32>
  %y = "wpk.matmul"(%p, %v) : (tensor<1x2x5x6xf32>, tensor<1x2x6x3xf32>) -> tensor<1x2x5x3xf32>
  %kt2 = "wpk.transpose"(%k) {perm = array<i64: 0, 1, 3, 2>} : (tensor<1x2x6x4xf32>) -> tensor<1x2x4x6xf32>
  %s2 = "wpk.matmul"(%q, %kt2) : (tensor<1x2x5x4xf32>, tensor<1x2x4x6xf32>) -> tensor<1x2x5x6xf32>
  %p2 = "wpk.softmax"(%s2) {axis = 2 : i64} : (tensor<1x2x5x6xf32>) -> tensor<1x2x5x6xf32>
  %t = "wpk.transpose"(%p2) {perm = array<i64: 0, 1, 3, 2>} : (tensor<1x2x5x6xf32>) -> tensor<1x2x6x5xf32>
  %y2 = "wpk.matmul"(%t, %v2) : (tensor<1x2x6x5xf32>, tensor<1x2x5x3xf32>) -> tensor<1x2x6x3xf32>
  return %y, %p, %y2 : tensor<1x2x5x3xf32>, tensor<1x2x5x6xf32>, tensor<1x2x6x3xf32>
}

}
