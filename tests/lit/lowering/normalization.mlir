// layer_norm lowers to two reductions along the hidden axis (sum x; sum (x - mean)^2, reading
// x and the mean, nothing materialized), each first into 16 partial sums per row that stay
// innermost and contiguous (x viewed as [.., 48, 16]: a schedule vectorizes them along the
// hidden axis), then over the 16; the per-row scalars; and one all-parallel pass whose innermost
// loop is the hidden axis. reduce_l2 is one fused square-and-add reduction and a sqrt; a
// reduce_sum past 2^14 elements per output is staged in blocks of 1024 (the partial last block
// summed from its own slice).
// RUN: wpk-opt %s --wpk-lower-to-linalg | FileCheck %s
// RUN: wpk-opt %s --wpk-lower | FileCheck %s --check-prefix=NOWPK

// NOWPK-NOT: "wpk.

// CHECK-DAG:   #[[LANES4:.*]] = affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>
// CHECK-DAG:   #[[PART4:.*]] = affine_map<(d0, d1, d2, d3) -> (d0, d1, d3)>
// CHECK-DAG:   #[[ROW4:.*]] = affine_map<(d0, d1, d2, d3) -> (d0, d1)>
// CHECK-DAG:   #[[ID3:.*]] = affine_map<(d0, d1, d2) -> (d0, d1, d2)>
// CHECK-DAG:   #[[ROW:.*]] = affine_map<(d0, d1, d2) -> (d0, d1)>
// CHECK-DAG:   #[[HID:.*]] = affine_map<(d0, d1, d2) -> (d2)>

// CHECK-LABEL: func.func @layer_norm(
// CHECK:         %[[X1:.*]] = tensor.expand_shape %arg0 {{\[}}[0], [1], [2, 3]] output_shape [1, 128, 48, 16]
// CHECK:         %[[P1:.*]] = linalg.generic {indexing_maps = [#[[LANES4]], #[[PART4]]], iterator_types = ["parallel", "parallel", "reduction", "parallel"]} ins(%[[X1]] : tensor<1x128x48x16xf32>) outs(%{{.*}} : tensor<1x128x16xf32>)
// CHECK:           arith.addf
// CHECK:         %[[SUM:.*]] = linalg.generic {indexing_maps = [#[[ID3]], #[[ROW]]], iterator_types = ["parallel", "parallel", "reduction"]} ins(%[[P1]] : tensor<1x128x16xf32>)
// CHECK:           arith.addf
// CHECK:         %[[MEAN:.*]] = linalg.generic {{.*}} ins(%[[SUM]] : tensor<1x128xf32>)
// CHECK:           arith.constant 0.00130208337 : f32
// CHECK:         %[[X2:.*]] = tensor.expand_shape %arg0 {{\[}}[0], [1], [2, 3]] output_shape [1, 128, 48, 16]
// CHECK:         %[[P2:.*]] = linalg.generic {indexing_maps = [#[[LANES4]], #[[ROW4]], #[[PART4]]], iterator_types = ["parallel", "parallel", "reduction", "parallel"]} ins(%[[X2]], %[[MEAN]] : tensor<1x128x48x16xf32>, tensor<1x128xf32>) outs(%{{.*}} : tensor<1x128x16xf32>)
// CHECK:           arith.subf
// CHECK:           arith.mulf
// CHECK:           arith.addf
// CHECK:         %[[SQ:.*]] = linalg.generic {{.*}} ins(%[[P2]] : tensor<1x128x16xf32>)
// CHECK:         %[[RSTD:.*]] = linalg.generic {{.*}} ins(%[[SQ]] : tensor<1x128xf32>)
// CHECK:           math.rsqrt
// CHECK:         linalg.generic {indexing_maps = [#[[ID3]], #[[ROW]], #[[ROW]], #[[HID]], #[[HID]], #[[ID3]]], iterator_types = ["parallel", "parallel", "parallel"]} ins(%arg0, %[[MEAN]], %[[RSTD]], %arg1, %arg2 :
// CHECK:           arith.subf
// CHECK:           arith.mulf
// CHECK:           arith.mulf
// CHECK:           arith.addf
func.func @layer_norm(%x: tensor<1x128x768xf32>, %s: tensor<768xf32>, %b: tensor<768xf32>) -> tensor<1x128x768xf32> {
  %0 = "wpk.layer_norm"(%x, %s, %b) {axis = 2 : i64, epsilon = 1.0e-12 : f32} : (tensor<1x128x768xf32>, tensor<768xf32>, tensor<768xf32>) -> tensor<1x128x768xf32>
  return %0 : tensor<1x128x768xf32>
}

// CHECK-LABEL: func.func @reduce_l2(
// CHECK:         %[[S:.*]] = linalg.generic {{.*}} iterator_types = ["parallel", "reduction", "parallel"]} ins(%arg0 : tensor<2x3x4xf32>)
// CHECK:           %[[SQ:.*]] = arith.mulf %in, %in : f32
// CHECK:           arith.addf %[[SQ]], %out : f32
// CHECK:         %[[R:.*]] = linalg.generic {{.*}} ins(%[[S]] : tensor<2x4xf32>)
// CHECK:           math.sqrt
// CHECK:         tensor.expand_shape %[[R]] {{\[}}[0], [1, 2]] output_shape [2, 1, 4] : tensor<2x4xf32> into tensor<2x1x4xf32>
func.func @reduce_l2(%x: tensor<2x3x4xf32>) -> tensor<2x1x4xf32> {
  %0 = "wpk.reduce_l2"(%x) {axes = array<i64: 1>, keepdims = true} : (tensor<2x3x4xf32>) -> tensor<2x1x4xf32>
  return %0 : tensor<2x1x4xf32>
}

// CHECK-LABEL: func.func @staged_sum(
// CHECK:         %[[WHOLE:.*]] = tensor.extract_slice %arg0[0, 0] [1, 39936] [1, 1]
// CHECK:         %[[BLOCKS:.*]] = tensor.expand_shape %[[WHOLE]] {{\[}}[0], [1, 2]] output_shape [1, 39, 1024]
// CHECK:         %[[PART:.*]] = linalg.generic {{.*}} iterator_types = ["parallel", "parallel", "reduction"]} ins(%[[BLOCKS]] : tensor<1x39x1024xf32>) outs(%{{.*}} : tensor<1x39xf32>)
// CHECK:         %[[SUM:.*]] = linalg.generic {{.*}} iterator_types = ["parallel", "reduction"]} ins(%[[PART]] : tensor<1x39xf32>) outs(%{{.*}} : tensor<1xf32>)
// CHECK:         %[[TAIL:.*]] = tensor.extract_slice %arg0[0, 39936] [1, 64] [1, 1]
// CHECK:         %[[REST:.*]] = linalg.generic {{.*}} iterator_types = ["parallel", "reduction"]} ins(%[[TAIL]] : tensor<1x64xf32>) outs(%{{.*}} : tensor<1xf32>)
// CHECK:         linalg.generic {{.*}} ins(%[[SUM]], %[[REST]] : tensor<1xf32>, tensor<1xf32>)
// CHECK:           arith.addf
func.func @staged_sum(%x: tensor<1x40000xf32>) -> tensor<1xf32> {
  %0 = "wpk.reduce_sum"(%x) {axes = array<i64: 1>, keepdims = false} : (tensor<1x40000xf32>) -> tensor<1xf32>
  return %0 : tensor<1xf32>
}
