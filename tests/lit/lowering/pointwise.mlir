// Scalar lowerings of representative steps of ops/pointwise.py: erf as a clamped rational
// approximation in arith ops (no math.erf, which only lowers through libm and not on vectors),
// gelu on top of it, sign as two selects, floor_mod as remf with a sign fix-up.
// RUN: wpk-opt %s --wpk-lower-to-linalg | FileCheck %s
// RUN: wpk-opt %s --wpk-lower | FileCheck %s --check-prefix=NOWPK

// NOWPK-NOT: "wpk.
// CHECK-NOT: math.erf

module {

// CHECK-LABEL: func.func @erf(
// CHECK:         linalg.generic
// CHECK:           %[[LO:.*]] = arith.constant -4.000000e+00 : f32
// CHECK-NEXT:      %[[A:.*]] = arith.maximumf %{{.*}}, %[[LO]]
// CHECK-NEXT:      %[[HI:.*]] = arith.constant 4.000000e+00 : f32
// CHECK-NEXT:      %[[X:.*]] = arith.minimumf %[[A]], %[[HI]]
// CHECK-NEXT:      %[[X2:.*]] = arith.mulf %[[X]], %[[X]]
// CHECK:           %[[P:.*]] = arith.mulf %[[X]], %{{.*}}
// CHECK:           %[[R:.*]] = arith.divf %[[P]], %{{.*}}
// CHECK-NEXT:      linalg.yield %[[R]]
func.func @erf(%x: tensor<2x8xf32>) -> tensor<2x8xf32> {
  %y = "wpk.erf"(%x) : (tensor<2x8xf32>) -> tensor<2x8xf32>
  return %y : tensor<2x8xf32>
}

// CHECK-LABEL: func.func @gelu(
// CHECK:           arith.constant 0.707106769 : f32
// CHECK:           arith.divf
// CHECK:           arith.constant 5.000000e-01 : f32
// CHECK:           arith.constant 1.000000e+00 : f32
// CHECK:           linalg.yield
func.func @gelu(%x: tensor<2x8xf32>) -> tensor<2x8xf32> {
  %y = "wpk.gelu"(%x) : (tensor<2x8xf32>) -> tensor<2x8xf32>
  return %y : tensor<2x8xf32>
}

// CHECK-LABEL: func.func @sign(
// CHECK:           %[[NEG:.*]] = arith.cmpf olt, %[[V:.*]], %{{.*}}
// CHECK:           %[[S:.*]] = arith.select %[[NEG]], %{{.*}}, %[[V]]
// CHECK:           %[[POS:.*]] = arith.cmpf ogt, %[[V]], %{{.*}}
// CHECK:           %[[R:.*]] = arith.select %[[POS]], %{{.*}}, %[[S]]
// CHECK-NEXT:      linalg.yield %[[R]]
func.func @sign(%x: tensor<2x8xf32>) -> tensor<2x8xf32> {
  %y = "wpk.sign"(%x) : (tensor<2x8xf32>) -> tensor<2x8xf32>
  return %y : tensor<2x8xf32>
}

// CHECK-LABEL: func.func @floor_mod(
// CHECK:         linalg.generic {{.*}} ins(%arg0, %arg1 : tensor<2x8xf32>, tensor<8xf32>)
// CHECK:           %[[R:.*]] = arith.remf
// CHECK:           arith.xori
// CHECK:           arith.andi
// CHECK:           %[[F:.*]] = arith.addf %[[R]]
// CHECK-NEXT:      arith.select %{{.*}}, %[[F]], %[[R]]
func.func @floor_mod(%a: tensor<2x8xf32>, %b: tensor<8xf32>) -> tensor<2x8xf32> {
  %y = "wpk.floor_mod"(%a, %b) : (tensor<2x8xf32>, tensor<8xf32>) -> tensor<2x8xf32>
  return %y : tensor<2x8xf32>
}

}
