// The index ops lower to linalg.generic with arith bodies: integer div guards the divisor
// (0 gives 0, -1 negates, so no lane traps); arg_reduce is the extremum then the first index
// holding it (a NaN counts as hit); cumsum is one generic with the summed position j as an
// extra reduction loop (exclusive: j < i); trilu selects on j - i against k; take_along_axis
// extracts data at the normalized, clamped index it loads.
// RUN: wpk-opt %s --wpk-verify --wpk-lower-to-linalg | FileCheck %s
// RUN: wpk-opt %s --wpk-lower | FileCheck %s --check-prefix=NOWPK

// NOWPK-NOT: "wpk.

// CHECK-DAG: #[[READ:map[0-9]*]] = affine_map<(d0, d1, d2) -> (d0, d2)>
// CHECK-DAG: #[[WRITE:map[0-9]*]] = affine_map<(d0, d1, d2) -> (d0, d1)>
module {
// CHECK-LABEL: func.func @div(
// CHECK:         linalg.generic {{.*}}iterator_types = ["parallel"]
// CHECK:           %[[ZERO:.*]] = arith.cmpi eq, %[[B:.*]], %c0_i64
// CHECK:           %[[M1:.*]] = arith.cmpi eq, %[[B]], %c-1_i64
// CHECK:           %[[BAD:.*]] = arith.ori %[[ZERO]], %[[M1]] : i1
// CHECK:           %[[D:.*]] = arith.select %[[BAD]], %c1_i64, %[[B]] : i64
// CHECK:           %[[NEG:.*]] = arith.subi %{{.*}}, %[[A:.*]] : i64
// CHECK:           %[[Q:.*]] = arith.divsi %[[A]], %[[D]] : i64
// CHECK:           %[[R:.*]] = arith.select %[[M1]], %[[NEG]], %[[Q]] : i64
// CHECK:           arith.select %[[ZERO]], %{{.*}}, %[[R]] : i64
  func.func @div(%arg0: tensor<4xi64>, %arg1: tensor<4xi64>) -> tensor<4xi64> {
    %0 = "wpk.integer_binary"(%arg0, %arg1) {kind = "div"} : (tensor<4xi64>, tensor<4xi64>) -> tensor<4xi64>
    return %0 : tensor<4xi64>
  }
// CHECK-LABEL: func.func @argmax(
// CHECK:         %[[PEAK:.*]] = linalg.generic {{.*}}iterator_types = ["parallel", "reduction"]{{.*}}outs(%{{.*}} : tensor<2xf32>)
// CHECK:           arith.maximumf
// CHECK:         linalg.fill ins(%c5_i64 : i64)
// CHECK:         linalg.generic {{.*}}iterator_types = ["parallel", "reduction"]} ins(%arg0, %[[PEAK]] : tensor<2x5xf32>, tensor<2xf32>) outs(%{{.*}} : tensor<2xi64>)
// CHECK:           arith.cmpf oeq
// CHECK:           arith.cmpf uno
// CHECK:           linalg.index 1 : index
// CHECK:           arith.minsi
  func.func @argmax(%arg0: tensor<2x5xf32>) -> tensor<2xi64> {
    %0 = "wpk.arg_reduce"(%arg0) {axis = 1 : i64, keepdims = false, kind = "max", select_last_index = false} : (tensor<2x5xf32>) -> tensor<2xi64>
    return %0 : tensor<2xi64>
  }
// CHECK-LABEL: func.func @cumsum(
// CHECK:         linalg.generic {indexing_maps = [#[[READ]], #[[WRITE]]], iterator_types = ["parallel", "parallel", "reduction"]}
// CHECK:           %[[J:.*]] = linalg.index 2 : index
// CHECK-NEXT:      %[[I:.*]] = linalg.index 1 : index
// CHECK-NEXT:      arith.cmpi slt, %[[J]], %[[I]] : index
// CHECK:           arith.addi {{.*}} : i32
  func.func @cumsum(%arg0: tensor<3x4xi32>) -> tensor<3x4xi32> {
    %0 = "wpk.cumsum"(%arg0) {axis = 1 : i64, exclusive = true, reverse = false} : (tensor<3x4xi32>) -> tensor<3x4xi32>
    return %0 : tensor<3x4xi32>
  }
// CHECK-LABEL: func.func @trilu(
// CHECK:           %[[OFF:.*]] = arith.subi
// CHECK:           arith.cmpi sge, %[[OFF]], %c1_i64 : i64
  func.func @trilu(%arg0: tensor<3x4xf32>) -> tensor<3x4xf32> {
    %0 = "wpk.trilu"(%arg0) {k = 1 : i64, upper = true} : (tensor<3x4xf32>) -> tensor<3x4xf32>
    return %0 : tensor<3x4xf32>
  }
// CHECK-LABEL: func.func @take(
// CHECK:         linalg.generic {{.*}} ins(%arg1 : tensor<2x4xi32>) outs(%{{.*}} : tensor<2x4xf32>)
// CHECK:           arith.minsi %{{.*}}, %c4_i32 : i32
// CHECK:           %[[P:.*]] = arith.index_cast %{{.*}} : i32 to index
// CHECK:           %[[R:.*]] = linalg.index 0 : index
// CHECK:           tensor.extract %arg0[%[[R]], %[[P]]] : tensor<3x5xf32>
  func.func @take(%arg0: tensor<3x5xf32>, %arg1: tensor<2x4xi32>) -> tensor<2x4xf32> {
    %0 = "wpk.take_along_axis"(%arg0, %arg1) {axis = 1 : i64} : (tensor<3x5xf32>, tensor<2x4xi32>) -> tensor<2x4xf32>
    return %0 : tensor<2x4xf32>
  }
}
