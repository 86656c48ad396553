// cpu.conv on a 3x3 convolution (16 -> 16 channels, 16x16 output) with a bias+ReLU epilogue:
// the default schedule for a fixed AVX2 machine with 2 threads (outer tiles in an scf.forall),
// and a serial configuration: 8x4 outer tiles, input channels in blocks of 8 walked 4 at a
// step, kh and kw one by one, a 2x2x8 register tile (2 channels x 2 rows x 8 columns) updated
// by broadcasts of W and FMAs on rows of the input; the epilogue in rows of 16.
//
// DEFINE: %{lower} = wpk-opt %s --wpk-lower-to-linalg --canonicalize --cse
// RUN: %{lower} --wpk-apply-schedule=%S/Inputs/avx2-2threads.json | FileCheck %s --check-prefix=DEFAULT
// RUN: %{lower} --wpk-apply-schedule=%S/Inputs/conv3x3.json | FileCheck %s --check-prefix=CONFIG

// DEFAULT-LABEL: func.func @main
// DEFAULT:         scf.forall (%{{.*}}) in (4)
// DEFAULT:           vector.fma {{.*}} : vector<8xf32>
// DEFAULT:           arith.maximumf {{.*}} : vector<16xf32>
// DEFAULT:           scf.forall.in_parallel
// DEFAULT-NOT:   linalg.

// CONFIG-LABEL: func.func @main
// CONFIG-NOT:     scf.forall
// CONFIG-DAG:     %[[C1:.*]] = arith.constant 1 : index
// CONFIG-DAG:     %[[C2:.*]] = arith.constant 2 : index
// CONFIG-DAG:     %[[C3:.*]] = arith.constant 3 : index
// CONFIG-DAG:     %[[C4:.*]] = arith.constant 4 : index
// CONFIG-DAG:     %[[C8:.*]] = arith.constant 8 : index
// CONFIG-DAG:     %[[C16:.*]] = arith.constant 16 : index
// Outer tiles: 8 output channels x 4 rows.
// CONFIG:         scf.for %{{.*}} = %{{.*}} to %[[C16]] step %[[C8]]
// CONFIG:           scf.for %{{.*}} = %{{.*}} to %[[C16]] step %[[C4]]
// Input channel blocks of 8, then the register tiles (rows, columns, channels).
// CONFIG:             scf.for %{{.*}} = %{{.*}} to %[[C16]] step %[[C8]]
// CONFIG:               scf.for %{{.*}} = %{{.*}} to %[[C4]] step %[[C2]]
// CONFIG:                 scf.for %{{.*}} = %{{.*}} to %[[C16]] step %[[C8]]
// CONFIG:                   scf.for %{{.*}} = %{{.*}} to %[[C8]] step %[[C2]]
// The reduction: 4 channels a step, kh, kw; the accumulators stay in vector iter_args.
// CONFIG:                     %[[ACC:.*]] = vector.transfer_read {{.*}} : tensor<2x2x8xf32>, vector<2x2x8xf32>
// CONFIG:                     scf.for %{{.*}} = %{{.*}} to %[[C8]] step %[[C4]] iter_args(%{{.*}} = %[[ACC]]) -> (vector<2x2x8xf32>)
// CONFIG:                       scf.for %{{.*}} = %{{.*}} to %[[C3]] step %[[C1]] {{.*}} -> (vector<2x2x8xf32>)
// CONFIG:                         scf.for %{{.*}} = %{{.*}} to %[[C3]] step %[[C1]] {{.*}} -> (vector<2x2x8xf32>)
// CONFIG:                           vector.transfer_read {{.*}} : tensor<4x2x8xf32>, vector<4x2x8xf32>
// CONFIG:                           vector.transfer_read {{.*}} : tensor<2x4xf32>, vector<2x4xf32>
// CONFIG:                           vector.broadcast {{.*}} : f32 to vector<8xf32>
// CONFIG-COUNT-16:                  vector.fma {{.*}} : vector<8xf32>
// CONFIG-NOT:                       vector.fma
// CONFIG:                           scf.yield {{.*}} : vector<2x2x8xf32>
// CONFIG:                     vector.transfer_write {{.*}} : vector<2x2x8xf32>, tensor<2x2x8xf32>
// The epilogue: bias broadcast, ReLU, rows of 16.
// CONFIG:           arith.addf {{.*}} : vector<16xf32>
// CONFIG:           arith.maximumf {{.*}} : vector<16xf32>
// CONFIG-NOT:     linalg.

func.func @main(%x: tensor<1x16x18x18xf32>, %w: tensor<16x16x3x3xf32>, %b: tensor<16xf32>) -> tensor<1x16x16x16xf32> {
  %0 = "wpk.fused_conv2d"(%x, %w, %b) {strides = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>, groups = 1 : i64, epilogue = ["relu"], epilogue_params = array<f32>, operandSegmentSizes = array<i32: 1, 1, 1, 0, 0, 0>} : (tensor<1x16x18x18xf32>, tensor<16x16x3x3xf32>, tensor<16xf32>) -> tensor<1x16x16x16xf32>
  return %0 : tensor<1x16x16x16xf32>
}
