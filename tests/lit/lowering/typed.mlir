// The integer, bool and indexing ops lower to linalg.generic with arith bodies; i1 tensors are
// stored as i8 (0 or 1) after lowering, arguments and results included.
// RUN: wpk-opt %s --wpk-lower-to-linalg | FileCheck %s

// CHECK-LABEL: func.func @gather(
// CHECK-SAME:      %[[T:.*]]: tensor<100x8xf32>, %[[I:.*]]: tensor<1x5xi64>) -> tensor<1x5x8xf32>
// CHECK:         linalg.generic
// CHECK-SAME:      ins(%[[I]] : tensor<1x5xi64>)
// CHECK:           arith.cmpi slt
// CHECK:           arith.addi
// CHECK:           arith.maxsi
// CHECK:           arith.minsi
// CHECK:           arith.index_cast
// CHECK:           linalg.index 2
// CHECK:           tensor.extract %[[T]]
func.func @gather(%table: tensor<100x8xf32>, %ids: tensor<1x5xi64>) -> tensor<1x5x8xf32> {
  %0 = "wpk.gather"(%table, %ids) {axis = 0 : i64} : (tensor<100x8xf32>, tensor<1x5xi64>) -> tensor<1x5x8xf32>
  return %0 : tensor<1x5x8xf32>
}

// CHECK-LABEL: func.func @mask(
// CHECK-SAME:      %{{.*}}: tensor<4xi64>, %{{.*}}: tensor<4xi8>) -> (tensor<4xf32>, tensor<4xi8>)
// CHECK:         arith.sitofp %{{.*}} : i64 to f32
// CHECK:         arith.cmpi ne, %{{.*}}, %{{.*}} : i8
// CHECK:         arith.extui %{{.*}} : i1 to i8
// CHECK:         arith.cmpf olt
// CHECK:         arith.extui %{{.*}} : i1 to i8
// CHECK:         arith.xori
// CHECK:         arith.select
func.func @mask(%m: tensor<4xi64>, %keep: tensor<4xi1>) -> (tensor<4xf32>, tensor<4xi1>) {
  %f = "wpk.cast"(%m) : (tensor<4xi64>) -> tensor<4xf32>
  %k = "wpk.not"(%keep) : (tensor<4xi1>) -> tensor<4xi1>
  %z = "wpk.constant"() {value = dense<0.5> : tensor<1xf32>} : () -> tensor<1xf32>
  %lt = "wpk.compare"(%f, %z) {predicate = "lt"} : (tensor<4xf32>, tensor<1xf32>) -> tensor<4xi1>
  %x = "wpk.logical"(%lt, %k) {kind = "xor"} : (tensor<4xi1>, tensor<4xi1>) -> tensor<4xi1>
  %w = "wpk.where"(%x, %f, %z) : (tensor<4xi1>, tensor<4xf32>, tensor<1xf32>) -> tensor<4xf32>
  return %w, %x : tensor<4xf32>, tensor<4xi1>
}
