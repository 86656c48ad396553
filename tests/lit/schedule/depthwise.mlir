// cpu.depthwise_conv on a 3x3 depthwise convolution (16 channels, 16x16): the default for a
// fixed AVX2 machine with 2 threads, and 4x8 outer tiles (channels x rows) in an scf.forall
// with a 2x2x16 register tile; the multiply and add are marked contract (fused to FMAs by LLVM).
//
// DEFINE: %{lower} = wpk-opt %s --wpk-lower-to-linalg --canonicalize --cse
// RUN: %{lower} --wpk-apply-schedule=%S/Inputs/avx2-2threads.json | FileCheck %s --check-prefix=DEFAULT
// RUN: %{lower} --wpk-apply-schedule=%S/Inputs/depthwise.json | FileCheck %s --check-prefix=CONFIG

// DEFAULT-LABEL: func.func @main
// DEFAULT:         scf.forall (%{{.*}}) in (4)
// DEFAULT:           arith.mulf {{.*}} fastmath<contract> : vector<8x8xf32>
// DEFAULT:           arith.addf {{.*}} fastmath<contract> : vector<8x8xf32>
// DEFAULT-NOT:   linalg.

// CONFIG-LABEL: func.func @main
// CONFIG-DAG:     %[[C1:.*]] = arith.constant 1 : index
// CONFIG-DAG:     %[[C3:.*]] = arith.constant 3 : index
// CONFIG:         scf.forall (%{{.*}}, %{{.*}}) in (2, 4)
// CONFIG:           %[[ACC:.*]] = vector.transfer_read {{.*}} : tensor<2x2x16xf32>, vector<2x2x16xf32>
// CONFIG:           scf.for %{{.*}} = %{{.*}} to %[[C3]] step %[[C1]] iter_args(%{{.*}} = %[[ACC]]) -> (vector<2x2x16xf32>)
// CONFIG:             scf.for %{{.*}} = %{{.*}} to %[[C3]] step %[[C1]] {{.*}} -> (vector<2x2x16xf32>)
// CONFIG:               vector.transfer_read {{.*}} : tensor<2x2x16xf32>, vector<2x2x16xf32>
// CONFIG:               vector.transfer_read {{.*}} : tensor<2xf32>, vector<2xf32>
// CONFIG:               arith.mulf {{.*}} fastmath<contract> : vector<2x2x16xf32>
// CONFIG:               arith.addf {{.*}} fastmath<contract> : vector<2x2x16xf32>
// CONFIG:           scf.forall.in_parallel
// CONFIG-NOT:     linalg.

func.func @main(%x: tensor<1x16x18x18xf32>, %w: tensor<16x1x3x3xf32>) -> tensor<1x16x16x16xf32> {
  %0 = "wpk.conv2d"(%x, %w) {strides = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>, groups = 16 : i64} : (tensor<1x16x18x18xf32>, tensor<16x1x3x3xf32>) -> tensor<1x16x16x16xf32>
  return %0 : tensor<1x16x16x16xf32>
}
